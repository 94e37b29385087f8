// `afxdp demo` and `afxdp doctor` as a user runs them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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
    // veth: all three RX metadata kfuncs, no AF_XDP TX metadata ops (netdev netlink).
    t.regex(byId.rx_metadata.detail, /^timestamp, hash, vlan-tag/);
    t.regex(byId.tx_metadata.detail, /^zero-copy: none; copy mode: checksum/);
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

test.serial('doctor lists a Device Plugin socket under the DPDK runtime directory (--file-prefix), then /tmp/afxdp_dp', async (t) => {
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-doctor-rundir-'));
  const prefix = `doc${process.pid}`;
  const iface = `afxd${process.pid % 100000}`;
  const socket = path.join(runtimeDir, 'dpdk', prefix, 'afxdp_dp', iface, 'afxdp.sock');
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
    const env = { ...process.env, RUNTIME_DIRECTORY: runtimeDir };
    const r = runAfxdp(['doctor', '--json', '--file-prefix', prefix], { env });
    const dp = JSON.parse(r.stdout).checks.find((c: any) => c.id === 'dp_path');
    t.is(dp.status, 'ok');
    t.true(dp.detail.includes(`${socket} (use_cni, DPDK runtime directory)`), dp.detail);
    // Another prefix looks elsewhere and says where it looked.
    const other = JSON.parse(runAfxdp(['doctor', '--json', iface], { env }).stdout).checks.find((c: any) => c.id === 'dp_path');
    t.true(other.detail.includes(`none under ${path.join(runtimeDir, 'dpdk', 'rte', 'afxdp_dp', iface)} or /tmp/afxdp_dp/${iface}`), other.detail);
    const bad = runAfxdp(['doctor', '--file-prefix', '../x']);
    t.is(bad.status, 2);
    t.regex(bad.stderr, /--file-prefix must be one directory name/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(runtimeDir, { recursive: true, force: true });
  }
});

// The Kubernetes non-root case: capabilities.add puts NET_RAW and IPC_LOCK in
// the bounding set of a uid-1000 container, never in CapEff.
const BOUNDING_ONLY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all',
  '--bounding-set=-all,+net_raw,+ipc_lock'];

test.serial('doctor as a non-root uid with CAP_NET_RAW/CAP_IPC_LOCK in the bounding set only: the case and its three fixes', (t) => {
  const r = runAfxdp(['doctor', '--json'], { prefix: BOUNDING_ONLY });
  t.is(r.status, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  const caps = report.checks.find((c: any) => c.id === 'capabilities');
  t.is(caps.status, 'fail');
  t.regex(caps.detail, /runs as uid 65534 with CAP_NET_RAW, CAP_IPC_LOCK only in its bounding set \(CapEff 0{16},/);
  t.regex(caps.detail, /CapBnd 0{12}6000/);
  t.regex(caps.fix, /\(1\) run the container as uid 0 without privileged: securityContext: \{runAsUser: 0, capabilities: \{add: \[NET_RAW, IPC_LOCK\]\}\}/);
  t.true(caps.fix.includes('(2) give the node binary file capabilities in the image: setcap cap_net_raw,cap_ipc_lock+ep $(readlink -f $(which node))'), caps.fix);
  t.regex(caps.fix, /\(3\) with use_cni, set the Device Plugin pool's "uid" to this uid \(65534\)/);
  const af = report.checks.find((c: any) => c.id === 'af_xdp');
  t.is(af.status, 'fail');
  t.regex(af.detail, /bounding set only/);

  const human = runAfxdp(['doctor'], { prefix: BOUNDING_ONLY });
  t.is(human.status, 1);
  t.regex(human.stdout, /^\[FAIL\] capabilities: .*only in its bounding set/m);
  t.regex(human.stdout, /^ {7}fix: \(1\) run the container as uid 0 .*\(2\) .*setcap .*\(3\) .*"uid"/m);

  // Not the case when the bounding set is empty too (capabilities.add lacks them): no such advice.
  const none = JSON.parse(runAfxdp(['doctor', '--json'], {
    prefix: ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
  }).stdout);
  t.notRegex(none.checks.find((c: any) => c.id === 'capabilities').detail, /bounding set only/);
});

test.serial('a port that fails for lack of capabilities in the bounding-only case says so in its error, with the fixes', (t) => {
  const r = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--duration', '0.1'], { prefix: BOUNDING_ONLY });
  t.is(r.status, 1, r.stdout);
  t.regex(r.stderr, /ERR_AFXDP_PERMISSION/);
  t.regex(r.stderr, /AF_XDP ports need CAP_NET_RAW, CAP_IPC_LOCK effective, but this process runs as uid 65534/);
  t.regex(r.stderr, /Fixes: \(1\) .*runAsUser: 0.*\(2\) .*setcap cap_net_raw,cap_ipc_lock\+ep.*\(3\) .*"uid"/);
  // With nothing in the bounding set either, the error has no such hint.
  const plain = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--duration', '0.1'], {
    prefix: ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
  });
  t.is(plain.status, 1);
  t.regex(plain.stderr, /ERR_AFXDP_PERMISSION/);
  t.notRegex(plain.stderr, /bounding set only/);
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
