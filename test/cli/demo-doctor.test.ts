// `afxdp demo` and `afxdp doctor` as a user runs them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import { Running, runAfxdp } from './helpers';

const test = privileged();

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

function demoDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('afxdp-demo-'));
}

test.serial('demo --duration 3 ends clean: packets forwarded by the unprivileged use_cni forwarder, nothing left behind', (t) => {
  const dirsBefore = demoDirs();
  const r = runAfxdp(['demo', '--duration', '3', '--json', '--rate', '5000'], { timeout: 90_000 });
  t.is(r.status, 0, r.stderr);
  const objects = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const start = objects.find((o) => o.type === 'start');
  const final = objects.at(-1);
  t.truthy(start);
  t.is(start.forwarder.source, 'cni');
  t.is(start.uid, 65534);
  t.is(final.type, 'final');
  t.true(objects.some((o) => o.type === 'stats'));
  t.true(final.peer.sent > 5000, `sent ${final.peer.sent}`);
  t.is(final.peer.received, final.peer.sent, 'every frame came back');
  t.is(final.forwarder.rxPackets, final.peer.sent);
  t.is(final.forwarder.txPackets, final.peer.sent);
  for (const ns of start.namespaces) t.false(namespaces().includes(ns), `${ns} removed`);
  t.deepEqual(demoDirs(), dirsBefore, 'work directory removed');
});

test.serial('demo: Ctrl-C (SIGINT to its process group) ends it with exit 0 and removes everything', async (t) => {
  const run = new Running(['demo', '--json', '--rate', '2000'], [], { group: true });
  try {
    const start = await run.waitFor((o) => o.type === 'start', 60_000);
    await run.waitFor((o) => o.type === 'stats' && o.peer.received > 0, 20_000);
    t.true(namespaces().includes(start.namespaces[0]));
    run.interrupt();
    const exit = await run.stop('SIGCONT', 20_000);
    t.is(exit.code, 0, run.stderr);
    t.is(run.objects.at(-1).type, 'final');
    for (const ns of start.namespaces) t.false(namespaces().includes(ns));
    t.throws(() => process.kill(start.forwarderPid, 0), undefined, 'the forwarder is gone');
  } finally {
    run.kill();
  }
});

test.serial('demo: a crash of the forwarder child ends the demo with exit 1 and still removes everything', async (t) => {
  const run = new Running(['demo', '--json', '--rate', '2000']);
  try {
    const start = await run.waitFor((o) => o.type === 'start', 60_000);
    process.kill(start.forwarderPid, 'SIGKILL');
    const exit = await run.stop('SIGCONT', 20_000);
    t.is(exit.code, 1);
    t.regex(run.stderr, /forwarder exited unexpectedly/);
    for (const ns of start.namespaces) t.false(namespaces().includes(ns));
  } finally {
    run.kill();
  }
});

test.serial('demo: namespaces left by a killed demo are removed by the next one', async (t) => {
  const run = new Running(['demo', '--json', '--rate', '1000']);
  let start: any;
  try {
    start = await run.waitFor((o) => o.type === 'start', 60_000);
  } finally {
    run.kill(); // SIGKILL: no cleanup possible
  }
  await run.exit;
  // Its forwarder child may outlive it for a moment; the namespaces stay.
  try {
    process.kill(start.forwarderPid, 'SIGKILL');
  } catch {
    // gone
  }
  t.true(namespaces().includes(start.namespaces[0]));
  const r = runAfxdp(['demo', '--duration', '1'], { timeout: 90_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /removed what an earlier demo left: /);
  for (const ns of start.namespaces) t.false(namespaces().includes(ns));
  t.false(demoDirs().some((d) => d.startsWith(`afxdp-demo-${start.dpPath.split('afxdp-demo-')[1].split('-')[0]}-`)), 'its work directory too');
});

test.serial('doctor on a good setup: root, a veth in a namespace: exit 0, every check ok or warn', (t) => {
  const lab = createLab();
  try {
    const r = runAfxdp(['doctor', lab.portIf, '--netns', lab.portNs, '--json']);
    t.is(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    t.true(report.ok);
    const byId = Object.fromEntries(report.checks.map((c: any) => [c.id, c]));
    for (const id of ['kernel', 'af_xdp', 'capabilities', 'memlock', 'hugepages', 'bpffs', 'unprivileged_bpf', 'interface', 'queues', 'xdp', 'dp_path', 'afxdp_devices']) {
      t.truthy(byId[id], id);
    }
    t.is(byId.af_xdp.status, 'ok');
    t.is(byId.capabilities.status, 'ok');
    t.is(byId.interface.status, 'ok');
    t.regex(byId.interface.detail, /driver veth/);
    t.regex(byId.queues.detail, /^1 rx \/ 1 tx queues/);
    t.is(byId.busy_poll.status, 'warn');
    t.regex(byId.busy_poll.fix, /busy_budget=0/);
    t.true(report.checks.every((c: any) => c.status !== 'fail'));
    const human = runAfxdp(['doctor', lab.portIf, '--netns', lab.portNs]);
    t.is(human.status, 0);
    t.regex(human.stdout, /^\[ ok \] AF_XDP socket: /m);
    t.regex(human.stdout, /Nothing blocks an AF_XDP port/);
  } finally {
    lab.destroy();
  }
});

test.serial('doctor on a broken setup: tiny RLIMIT_MEMLOCK without CAP_IPC_LOCK fails with the fix; exit 1', (t) => {
  const r = runAfxdp(['doctor', '--json'], { prefix: ['prlimit', '--memlock=1048576:1048576', 'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'] });
  t.is(r.status, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  t.false(report.ok);
  const memlock = report.checks.find((c: any) => c.id === 'memlock');
  t.is(memlock.status, 'fail');
  t.regex(memlock.detail, /RLIMIT_MEMLOCK 1 MiB is below the UMEM .*16 MiB/);
  t.regex(memlock.fix, /ulimit -l/);
  t.regex(memlock.fix, /CAP_IPC_LOCK/);
  const human = runAfxdp(['doctor'], { prefix: ['prlimit', '--memlock=1048576:1048576', 'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'] });
  t.is(human.status, 1);
  t.regex(human.stdout, /^\[FAIL\] locked memory/m);
  t.regex(human.stdout, /^ {7}fix: raise it/m);
});

test.serial('doctor as an unprivileged user: no CAP_NET_RAW blocks every port; a missing interface fails', (t) => {
  const r = runAfxdp(['doctor', '--json'], { prefix: ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'] });
  t.is(r.status, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  const af = report.checks.find((c: any) => c.id === 'af_xdp');
  t.is(af.status, 'fail');
  t.regex(af.detail, /CAP_NET_RAW/);
  t.is(report.checks.find((c: any) => c.id === 'capabilities').status, 'fail');

  const missing = runAfxdp(['doctor', 'nosuchif0', '--json']);
  t.is(missing.status, 1);
  const iface = JSON.parse(missing.stdout).checks.find((c: any) => c.id === 'interface');
  t.is(iface.status, 'fail');
  t.regex(iface.detail, /no interface named nosuchif0/);
});
