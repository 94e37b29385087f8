// Fault suite: the Device Plugin handshake never blocks the event loop.
// A Device-Plugin-compatible server with injected faults runs in a child
// process (test/helpers/dp-server-child.ts) on a veth lab; this process
// opens use_cni ports against it. Each case asserts the error code, the
// time bound, the event loop's longest stall during the whole open, that
// the fd count returns to its start and that the client attached nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { createLab, Lab } from '../helpers/lab';
import { attachedXdp, fdCount, fdsSettle, MAX_WAIT_STALL_MS, measureStall } from '../helpers/faults';
import { DpChild } from '../helpers/dp-child';
import { openPort, openPorts, Port } from '../../lib/index';
import type { PortOptions } from '../../lib/index';
import { native } from '../../lib/native';
import type { NativeDpConnector } from '../../lib/native';

const test = privileged();
const ROOT = path.join(__dirname, '../..');
const PORT_CHILD = path.join(__dirname, '../helpers/open-port-child.ts');
const TIMEOUT_MS = 2000;

interface Env {
  lab: Lab;
  dp: DpChild;
  dpPath: string;
  programIds: number[];
  dir: string;
}

let warmed = false;

// Load everything loaded lazily on the failure path (addon, threadpool)
// before fds are counted.
async function warmUp(): Promise<void> {
  if (warmed) return;
  warmed = true;
  try {
    await openPort({ iface: 'lo', useCni: true, dpPath: '/nonexistent/afxdp.sock', handshakeTimeoutMs: 100 });
  } catch {
    // expected
  }
}

async function withDp(t: ExecutionContext, server: object, fn: (env: Env) => Promise<void>): Promise<void> {
  await warmUp();
  const lab = createLab();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-fault-hs-'));
  fs.chmodSync(dir, 0o755);
  let dp: DpChild | undefined;
  try {
    dp = new DpChild({
      devices: [{ iface: lab.portIf, netns: lab.portNs }],
      podDir: path.join(dir, 'pod'),
      udsDir: path.join(dir, 'host'),
      ...server,
    });
    const { info } = await dp.next('info');
    await fn({ lab, dp, dpPath: info.podSocketPaths[0], programIds: info.programIds, dir });
  } finally {
    await dp?.stop();
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), [], 'nothing left attached once the server stopped');
    lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function spec(env: Env, extra: Partial<PortOptions> = {}): PortOptions {
  return { iface: env.lab.portIf, netns: env.lab.portNs, useCni: true, dpPath: env.dpPath, podName: 'pod-a', handshakeTimeoutMs: TIMEOUT_MS, ...extra };
}

/** Open with a stall meter and fd count around it. */
async function measuredOpen(open: () => Promise<Port | Port[]>) {
  const fds = fdCount();
  const r = await measureStall(open);
  const ports = r.result === undefined ? [] : Array.isArray(r.result) ? r.result : [r.result];
  return { ...r, ports, fds };
}

function expectError(t: ExecutionContext, error: unknown, code: string, message: RegExp): void {
  const e = error as { code?: string; message?: string } | undefined;
  t.truthy(e, 'rejects');
  t.is(e?.code, code, e?.message);
  t.regex(e?.message ?? '', message);
}

test.serial('a Device Plugin that never answers: ERR_AFXDP_DEVICE_PLUGIN after the timeout, the loop never stalls', async (t) => {
  await withDp(t, { fault: 'silent' }, async (env) => {
    const r = await measuredOpen(() => openPort(spec(env)));
    expectError(t, r.error, 'ERR_AFXDP_DEVICE_PLUGIN', /step \/connect \(pod "pod-a"\): no reply within 2000 ms/);
    t.true(r.elapsedMs >= TIMEOUT_MS - 50 && r.elapsedMs < TIMEOUT_MS + 1500, `${r.elapsedMs} ms`);
    t.true(r.stallMs < MAX_WAIT_STALL_MS, `event loop stalled ${r.stallMs.toFixed(1)} ms`);
    t.log(`silent: rejected after ${r.elapsedMs.toFixed(0)} ms, longest stall ${r.stallMs.toFixed(1)} ms`);
    t.is(await fdsSettle(r.fds), r.fds, 'fds back to the start');
    t.deepEqual(attachedXdp(env.lab.portNs, env.lab.portIf), env.programIds, 'only the server\'s program');
  });
});

test.serial('a Device Plugin answering each step 2 s late: the port opens after ~8 s, the loop never stalls', async (t) => {
  await withDp(t, { fault: 'stall', stallMs: 2000 }, async (env) => {
    const r = await measuredOpen(() => openPort(spec(env, { handshakeTimeoutMs: 10_000 })));
    t.is(r.error, undefined, String((r.error as Error | undefined)?.message));
    t.is(r.ports.length, 1);
    t.true(r.elapsedMs >= 4 * 2000 - 100 && r.elapsedMs < 4 * 2000 + 3000, `${r.elapsedMs} ms`);
    t.true(r.stallMs < MAX_WAIT_STALL_MS, `event loop stalled ${r.stallMs.toFixed(1)} ms`);
    t.log(`stall 2 s per step: opened after ${r.elapsedMs.toFixed(0)} ms, longest stall ${r.stallMs.toFixed(1)} ms`);
    t.is(r.ports[0]!.info().source, 'cni');
    for (const port of r.ports) port.close();
    t.is(await fdsSettle(r.fds), r.fds, 'fds back to the start');
    t.deepEqual(attachedXdp(env.lab.portNs, env.lab.portIf), env.programIds, 'only the server\'s program');
  });
});

test.serial('a Device Plugin that closes mid-session or sends garbage: a prompt, specific error', async (t) => {
  const cases: [string, RegExp][] = [
    ['close-after-connect', /closed the connection without answering "\/connect,pod-a"/],
    ['garbage', /the reply is not a text record: 8 bytes that are not UTF-8/],
  ];
  for (const [fault, message] of cases) {
    await withDp(t, { fault }, async (env) => {
      const r = await measuredOpen(() => openPort(spec(env)));
      expectError(t, r.error, 'ERR_AFXDP_DEVICE_PLUGIN', message);
      t.true(r.elapsedMs < TIMEOUT_MS, `${fault}: ${r.elapsedMs} ms`);
      t.true(r.stallMs < MAX_WAIT_STALL_MS, `${fault}: event loop stalled ${r.stallMs.toFixed(1)} ms`);
      t.is(await fdsSettle(r.fds), r.fds, `${fault}: fds back to the start`);
      t.deepEqual(attachedXdp(env.lab.portNs, env.lab.portIf), env.programIds);
    });
  }
});

test.serial('AbortSignal: an abort 200 ms into a silent handshake rejects at once with an AbortError and releases everything', async (t) => {
  // sessions 0: a fresh allocation after each client, like a new pod.
  await withDp(t, { fault: 'silent', sessions: 0 }, async (env) => {
    for (const many of [false, true]) {
      const controller = new AbortController();
      const reason = new Error('the test gave up');
      const timer = setTimeout(() => controller.abort(reason), 200);
      const r = await measuredOpen(() => (many
        ? openPorts([spec(env)], { signal: controller.signal })
        : openPort(spec(env), { signal: controller.signal })));
      clearTimeout(timer);
      const e = r.error as { name?: string; code?: string; cause?: unknown } | undefined;
      t.is(e?.name, 'AbortError', String((e as Error | undefined)?.stack));
      t.is(e?.code, 'ABORT_ERR');
      t.is(e?.cause, reason);
      t.true(r.elapsedMs >= 190 && r.elapsedMs < 500, `${many ? 'openPorts' : 'openPort'}: rejected after ${r.elapsedMs} ms`);
      t.true(r.stallMs < MAX_WAIT_STALL_MS, `event loop stalled ${r.stallMs.toFixed(1)} ms`);
      t.log(`${many ? 'openPorts' : 'openPort'} aborted at 200 ms: rejected after ${r.elapsedMs.toFixed(0)} ms, longest stall ${r.stallMs.toFixed(1)} ms`);
      t.is(await fdsSettle(r.fds), r.fds, 'connection closed: fds back to the start');
    }
    // An aborted signal rejects before anything is opened.
    const fds = fdCount();
    const aborted = AbortSignal.abort(new Error('early'));
    const e = await t.throwsAsync(openPort(spec(env), { signal: aborted }));
    t.is((e as { code?: string }).code, 'ABORT_ERR');
    t.is(fdCount(), fds);
  });
});

test.serial('an abort while the server is slow to answer (2 s per step) releases the received fds and the connection', async (t) => {
  await withDp(t, { fault: 'stall', stallMs: 2000 }, async (env) => {
    const controller = new AbortController();
    // After /connect and /version (4 s), during /xsk_map_fd.
    const timer = setTimeout(() => controller.abort(), 5000);
    const r = await measuredOpen(() => openPort(spec(env, { handshakeTimeoutMs: 10_000 }), { signal: controller.signal }));
    clearTimeout(timer);
    t.is((r.error as { code?: string } | undefined)?.code, 'ABORT_ERR');
    t.true(r.elapsedMs >= 4990 && r.elapsedMs < 5500, `${r.elapsedMs} ms`);
    t.true(r.stallMs < MAX_WAIT_STALL_MS, `event loop stalled ${r.stallMs.toFixed(1)} ms`);
    t.is(await fdsSettle(r.fds), r.fds);
    t.deepEqual(attachedXdp(env.lab.portNs, env.lab.portIf), env.programIds);
  });
});

test.serial('after a nak the client still sends /fin (the Device Plugin logs an error otherwise)', async (t) => {
  await withDp(t, { fault: 'fd-nak' }, async (env) => {
    const r = await measuredOpen(() => openPort(spec(env)));
    expectError(t, r.error, 'ERR_AFXDP_DEVICE_PLUGIN', /answered "\/fd_nak"/);
    t.true(r.elapsedMs < TIMEOUT_MS, `${r.elapsedMs} ms`);
    t.true(r.stallMs < MAX_WAIT_STALL_MS);
    const log = (await env.dp.log()).join('\n');
    t.regex(log, /fd_nak[\s\S]*\/fin/, log);
    t.is(await fdsSettle(r.fds), r.fds);
  });
});

test.serial('a second session on a used allocation: the error names one session per allocation and udsTimeout', async (t) => {
  await withDp(t, { fault: 'close-after-connect' }, async (env) => {
    await t.throwsAsync(openPort(spec(env)));
    // The allocation is used up: the server no longer listens.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const r = await measuredOpen(() => openPort(spec(env)));
    expectError(t, r.error, 'ERR_AFXDP_DEVICE_PLUGIN', /one session per allocation.*udsTimeout/);
    t.regex((r.error as Error).message, /restarted inside the same pod/);
    t.true(r.stallMs < MAX_WAIT_STALL_MS);
    t.is(await fdsSettle(r.fds), r.fds);
  });
});

test.serial('a root-only socket (a pool without "uid"): EACCES names the pool\'s "uid" setting', async (t) => {
  const haveSetpriv = spawnSync('setpriv', ['--version']).status === 0;
  t.true(haveSetpriv, 'setpriv (util-linux) is needed');
  await withDp(t, { socketMode: 0o600 }, async (env) => {
    // The pod's directories are traversable, the socket is root's alone.
    for (let d = path.dirname(env.dpPath); d.startsWith(env.dir); d = path.dirname(d)) fs.chmodSync(d, 0o755);
    const out = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '--import', 'tsx', PORT_CHILD,
      JSON.stringify({ iface: env.lab.portIf, useCni: true, dpPath: env.dpPath, podName: 'pod-a', handshakeTimeoutMs: TIMEOUT_MS })],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    const result = JSON.parse(out.stdout || '{}');
    t.false(result.ok, out.stderr);
    t.is(result.code, 'ERR_AFXDP_DEVICE_PLUGIN');
    t.regex(result.message, /permission denied/i);
    t.regex(result.message, /set the pool's "uid" in the plugin's config/);
  });
});

test.serial('a full accept queue: connect waits off the loop, bounded by the timeout, and an abort ends it', async (t) => {
  // Two allocations: while the first (silent) session runs, the second
  // socket listens but nobody accepts, so its backlog fills.
  await withDp(t, { fault: 'silent', sessions: 2, maxConcurrent: 1 }, async (env) => {
    const Connection = native().NativeDpConnection;
    const held: NativeDpConnector[] = [];
    try {
      const first = Connection.create(env.dpPath);
      held.push(first);
      await first.connect(1000);
      const armed = async () => (await env.dp.log()).filter((l) => l.includes('] listening at')).length === 2;
      for (let i = 0; i < 100 && !(await armed()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      t.true(await armed(), (await env.dp.log()).join('\n'));
      let full: { code?: string; message?: string } | undefined;
      for (let i = 0; i < 4096 && full === undefined; i++) {
        const c = Connection.create(env.dpPath);
        try {
          await c.connect(50);
          held.push(c);
        } catch (err) {
          full = err as typeof full;
          c.close();
        }
      }
      t.is(full?.code, 'ERR_AFXDP_DEVICE_PLUGIN');
      t.regex(full?.message ?? '', /accept queue stayed full/);

      const r = await measuredOpen(() => openPort(spec(env, { handshakeTimeoutMs: 1000 })));
      expectError(t, r.error, 'ERR_AFXDP_DEVICE_PLUGIN', /timed out after 1s: its accept queue stayed full/);
      t.true(r.elapsedMs >= 950 && r.elapsedMs < 2500, `${r.elapsedMs} ms`);
      t.true(r.stallMs < MAX_WAIT_STALL_MS, `event loop stalled ${r.stallMs.toFixed(1)} ms`);
      t.log(`full backlog: rejected after ${r.elapsedMs.toFixed(0)} ms, longest stall ${r.stallMs.toFixed(1)} ms`);
      t.is(await fdsSettle(r.fds), r.fds);

      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      const a = await measuredOpen(() => openPort(spec(env, { handshakeTimeoutMs: 10_000 }), { signal: controller.signal }));
      t.is((a.error as { code?: string } | undefined)?.code, 'ABORT_ERR');
      t.true(a.elapsedMs < 500, `aborted connect rejected after ${a.elapsedMs} ms`);
      t.true(a.stallMs < MAX_WAIT_STALL_MS);
      t.is(await fdsSettle(a.fds), a.fds);
    } finally {
      for (const c of held) c.close();
    }
  });
});
