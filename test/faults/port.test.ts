// Fault suite, ports (issue 12, defects 2, 3, 5, 6, 8, 9, 10, 11): a killed
// process does not block its restart, a UMEM too big for the memory fails
// typed instead of the OOM killer, close() frees the UMEM at once, use after
// close is typed, native errors carry errno and path, and every layer agrees
// on the limits and error codes.
import anyTest from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AfxdpError, codes, fromNative } from '../../lib/errors';
import { limits, resolvePortConfig } from '../../lib/config/port-config';
import { native } from '../../lib/native';
import { nativeOptions } from '../../lib/port/open';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { openPort, Port } from '../../lib/index';
import { attachedXdp, fdCount, fdsSettle, measureStall, waitFor } from '../helpers/faults';
import { first } from '../helpers/tuple';
import { createLab } from '../helpers/lab';
import { privileged } from '../helpers/privileged';
import { Running } from '../cli/helpers';

const test = privileged();
const ROOT = path.join(__dirname, '../..');
const HOLD = path.join(__dirname, '../helpers/hold-port-child.ts');

interface ChildReport {
  ok: boolean;
  pid?: number;
  code?: string;
  message?: string;
  errno?: number;
  path?: string;
  info?: { xdpProgramId: number };
}

interface Held {
  child: ChildProcess;
  report: ChildReport;
  stderr: () => string;
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

/** Spawn hold-port-child (optionally behind `prefix`, e.g. ip netns exec / setpriv) and wait for its report line. */
async function spawnPortChild(options: object, prefix: string[] = [], mode: 'hold' | 'exit' = 'hold', timeoutMs = 30_000): Promise<Held> {
  const argv = [...prefix, process.execPath, '--import', 'tsx', HOLD, JSON.stringify(options), mode];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const report = await new Promise<ChildReport>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child gave no report in ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)) as ChildReport);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before reporting; stderr: ${err}`));
    });
  });
  return { child, report, stderr: () => err, exit };
}

async function endChild(h: Held): Promise<void> {
  if (h.child.exitCode === null && h.child.signalCode === null) {
    h.child.stdin!.end();
    const timer = setTimeout(() => h.child.kill('SIGKILL'), 10_000);
    await h.exit;
    clearTimeout(timer);
  }
}

const rss = () => process.memoryUsage().rss;
const MiB = 1 << 20;
const FREE_HUGEPAGES = '/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages';
const freeHugepages = () => (fs.existsSync(FREE_HUGEPAGES) ? Number(fs.readFileSync(FREE_HUGEPAGES, 'utf8')) : 0);

// ---------------------------------------------------------------- defect 2

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  test.serial(`${signal} of a process holding a port in attach mode: its program goes with it, and a restart works at once`, async (t) => {
    const lab = createLab();
    try {
      const first = await spawnPortChild({ iface: lab.portIf, netns: lab.portNs });
      t.true(first.report.ok, JSON.stringify(first.report));
      t.deepEqual(attachedXdp(lab.portNs, lab.portIf), [first.report.info!.xdpProgramId]);
      first.child.kill(signal);
      const [, sig] = await first.exit;
      t.is(sig, signal, 'no handler: the signal ended it');

      // The kernel drops the bpf_link with the process's last fd.
      t.true(await waitFor(() => attachedXdp(lab.portNs, lab.portIf).length === 0, 2000), 'program left attached');

      const fds = fdCount();
      const opened = await measureStall(() => openPort({ iface: lab.portIf, netns: lab.portNs }));
      t.is(opened.error, undefined, String((opened.error as Error | undefined)?.message));
      t.true(opened.elapsedMs < 5000, `restart took ${opened.elapsedMs.toFixed(0)} ms`);
      t.true(opened.stallMs < 1000, `event loop stalled ${opened.stallMs.toFixed(0)} ms`);
      t.log(`${signal}: restart ${opened.elapsedMs.toFixed(1)} ms, longest stall ${opened.stallMs.toFixed(1)} ms`);
      const port = opened.result!;
      t.is(port.info().xdpMode, 'native');
      port.close();
      t.deepEqual(attachedXdp(lab.portNs, lab.portIf), [], 'nothing left attached after close');
      t.is(await fdsSettle(fds), fds, 'fds back to their start');
    } finally {
      lab.destroy();
    }
  });
}

test.serial('afxdp fwd killed with SIGKILL in attach mode: the same command starts again at once', async (t) => {
  const lab = createLab();
  const args = ['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--json'];
  const runs: Running[] = [];
  try {
    const first = new Running(args);
    runs.push(first);
    await first.waitFor((o) => o.type === 'start', 30_000);
    t.is(attachedXdp(lab.portNs, lab.portIf).length, 1);
    first.child.kill('SIGKILL');
    t.is((await first.exit).signal, 'SIGKILL');
    t.true(await waitFor(() => attachedXdp(lab.portNs, lab.portIf).length === 0, 2000), 'the killed forwarder left its program');

    const second = new Running(args);
    runs.push(second);
    await second.waitFor((o) => o.type === 'start', 30_000);
    const exit = await second.stop('SIGTERM');
    t.is(exit.code, 0, second.stderr);
    t.false(second.stderr.includes('libbpf:'), second.stderr);
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
  } finally {
    for (const r of runs) r.kill();
    lab.destroy();
  }
});

test.serial('a port never replaces a program it did not attach, names its holder, and libbpf prints nothing on stderr', async (t) => {
  const lab = createLab();
  try {
    const holder = await spawnPortChild({ iface: lab.portIf, netns: lab.portNs });
    t.true(holder.report.ok, JSON.stringify(holder.report));
    const id = holder.report.info!.xdpProgramId;
    try {
      for (const xdpMode of ['auto', 'native', 'generic']) {
        const second = await spawnPortChild({ iface: lab.portIf, netns: lab.portNs, xdpMode }, [], 'exit');
        const [code] = await second.exit;
        t.false(second.report.ok);
        t.is(second.report.code, codes.BPF, second.report.message);
        t.true(second.report.message!.includes(`id ${id}`), second.report.message);
        t.true(second.report.message!.includes(`pid ${holder.report.pid}`), `names the holding process: ${second.report.message}`);
        t.is(code, 0);
        t.false(second.stderr().includes('libbpf:'), `stderr: ${second.stderr()}`);
        t.deepEqual(attachedXdp(lab.portNs, lab.portIf), [id], 'the holder keeps its program');
      }
    } finally {
      await endChild(holder);
    }
    t.true(await waitFor(() => attachedXdp(lab.portNs, lab.portIf).length === 0, 2000));
  } finally {
    lab.destroy();
  }
});

// ---------------------------------------------------------------- defect 3

/** A memory cgroup for a child (v1 memory controller or v2 with memory), or undefined. */
function memoryCgroup(limitBytes: number): { dir: string; procs: string; remove(): void } | undefined {
  const name = `afxdp-test-${process.pid}`;
  const v1 = '/sys/fs/cgroup/memory';
  const candidates: { base: string; limit: string }[] = [];
  if (fs.existsSync(path.join(v1, 'memory.limit_in_bytes'))) candidates.push({ base: v1, limit: 'memory.limit_in_bytes' });
  for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const ctl = path.join(base, 'cgroup.subtree_control');
    if (fs.existsSync(ctl) && fs.readFileSync(ctl, 'utf8').split(/\s+/).includes('memory')) candidates.push({ base, limit: 'memory.max' });
  }
  for (const c of candidates) {
    const dir = path.join(c.base, name);
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, c.limit), String(limitBytes));
      return { dir, procs: path.join(dir, 'cgroup.procs'), remove: () => fs.rmdirSync(dir) };
    } catch {
      try { fs.rmdirSync(dir); } catch { /* not created */ }
    }
  }
  return undefined;
}

test.serial('a UMEM bigger than the memory cgroup allows: typed error with the sizes, no OOM kill, nothing attached', async (t) => {
  const cg = memoryCgroup(256 * MiB);
  if (cg === undefined) {
    t.fail('no memory cgroup controller to test with (cgroup v1 memory or v2 with memory in subtree_control)');
    return;
  }
  const lab = createLab();
  try {
    // 512 MiB of ordinary pages (hugepages are not charged to the cgroup).
    const options = { iface: lab.portIf, netns: lab.portNs, frameSize: 4096, frameCount: 131_072, hugepages: 'never' };
    const t0 = performance.now();
    const child = await spawnPortChild(options, ['sh', '-c', `echo $$ > ${cg.procs} && exec "$@"`, 'sh'], 'exit');
    const [code, signal] = await child.exit;
    const elapsed = performance.now() - t0;
    t.is(signal, null, 'not killed');
    t.is(code, 0);
    t.false(child.report.ok, JSON.stringify(child.report));
    t.is(child.report.code, codes.NO_MEMORY, child.report.message);
    t.regex(child.report.message!, /512\.0 MiB/);
    t.regex(child.report.message!, /memory cgroup .*afxdp-test-/);
    t.regex(child.report.message!, /lower frameCount/);
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
    t.log(`refused in ${elapsed.toFixed(0)} ms (child start included): ${child.report.message}`);
  } finally {
    lab.destroy();
    // The child has exited: the cgroup is empty and can go.
    await waitFor(() => { try { cg.remove(); return true; } catch { return false; } }, 5000);
    t.false(fs.existsSync(cg.dir), 'cgroup removed');
  }
});

// ---------------------------------------------------------------- defect 5

test.serial('close() frees the UMEM itself: open/close cycles with no macrotask between keep RSS and hugepages flat', async (t) => {
  const lab = createLab();
  try {
    const cycles = 300;
    // 4 MiB per UMEM: the old code kept every one mapped until a GC, 1.2 GiB here.
    const options = { iface: lab.portIf, netns: lab.portNs, frameSize: 2048 as const, frameCount: 2048, fillSize: 1024, compSize: 1024, rxSize: 1024, txSize: 1024 };
    // Warm up (code paths, first allocations), then measure.
    (await openPort(options)).close();
    const hugeStart = freeHugepages();
    const rssStart = rss();
    const fds = fdCount();
    let rssMax = rssStart;
    const run = await measureStall(async () => {
      for (let i = 0; i < cycles; i++) {
        const port = await openPort(options);
        port.close();
        rssMax = Math.max(rssMax, rss());
      }
    });
    t.is(run.error, undefined, String((run.error as Error | undefined)?.message));
    const growth = rssMax - rssStart;
    t.log(`${cycles} cycles in ${run.elapsedMs.toFixed(0)} ms; peak RSS growth ${(growth / MiB).toFixed(1)} MiB; ` +
      `free hugepages ${hugeStart} before, ${freeHugepages()} right after`);
    t.true(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
    // The kernel unpins a closed socket's UMEM on a workqueue: give it a moment.
    t.true(await waitFor(() => freeHugepages() >= hugeStart, 5000), `free hugepages ${freeHugepages()} < ${hugeStart}`);
    t.is(await fdsSettle(fds), fds);
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
  } finally {
    lab.destroy();
  }
});

// ---------------------------------------------------------------- defect 6

test.serial('every Queue and Port method after close throws ERR_AFXDP_CLOSED', async (t) => {
  const lab = createLab();
  try {
    const port: Port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const q = port.queues[0];
    t.true(q.packet(0) instanceof Uint8Array);
    port.close();
    const closed = { instanceOf: AfxdpError, code: codes.CLOSED };
    const queueCalls: [string, () => unknown][] = [
      ['packet', () => q.packet(0)], ['receive', () => q.receive()], ['transmit', () => q.transmit(1)],
      ['release', () => q.release(1)], ['alloc', () => q.alloc(1)], ['reap', () => q.reap()],
      ['pending', () => q.pending()], ['flushTx', () => q.flushTx()], ['txRoom', () => q.txRoom()],
      ['freeFrames', () => q.freeFrames()], ['stats', () => q.stats()],
    ];
    for (const [name, fn] of queueCalls) t.throws(fn, closed, `Queue.${name}`);
    await t.throwsAsync(() => q.readable({ timeoutMs: 100 }), closed, 'Queue.readable');
    await t.throwsAsync(() => q.writable({ timeoutMs: 100 }), closed, 'Queue.writable');
    const portCalls: [string, () => unknown][] = [
      ['info', () => port.info()], ['stats', () => port.stats()], ['frames', () => port.frames()],
      ['readable', () => port.readable()], ['writable', () => port.writable()], ['duplex', () => port.duplex()],
      ['allocBatch', () => port.allocBatch()], ['batchPool', () => port.batchPool()], ['waiter', () => port.waiter()],
      ['asyncIterator', () => port[Symbol.asyncIterator]()],
    ];
    for (const [name, fn] of portCalls) t.throws(fn, closed, `Port.${name}`);
    t.notThrows(() => port.close(), 'close is idempotent');
    t.is(q.addrs.length, 0, 'descriptor views are detached');
    t.is(q.umem.length, 0, 'UMEM views are detached');
  } finally {
    lab.destroy();
  }
});

test.serial('a PacketSocket after close throws ERR_AFXDP_CLOSED', (t) => {
  const socket = new PacketSocket('lo');
  socket.close();
  const closed = { instanceOf: AfxdpError, code: codes.CLOSED };
  t.throws(() => socket.send([Buffer.alloc(60)]), closed, 'send');
  t.throws(() => socket.receive(1, 0), closed, 'receive');
  t.throws(() => socket.drain(), closed, 'drain');
  t.notThrows(() => socket.close(), 'close is idempotent');
});

// ---------------------------------------------------------------- defect 8

test.serial('a pinned dp_path that is not on a bpffs says so, with errno and path', async (t) => {
  const lab = createLab();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-notbpf-'));
  const plain = path.join(dir, 'xsks_map');
  fs.writeFileSync(plain, 'not a map');
  try {
    for (const [dpPath, what] of [['/dev/null', 'a device or special file'], [plain, 'a regular file'], ['/', 'a directory']]) {
      const fds = fdCount();
      const r = await measureStall(() => openPort({ iface: lab.portIf, netns: lab.portNs, usePinnedMap: true, dpPath }));
      const err = r.error as AfxdpError;
      t.true(err instanceof AfxdpError, String(err));
      t.is(err.code, codes.INVALID_ARGUMENT, err.message);
      t.true(err.message.includes(`dp_path ${dpPath} is ${what}`), err.message);
      t.true(err.message.includes('not a map pinned on a BPF file system'), err.message);
      t.false(/permission/i.test(err.message), err.message);
      t.false(err.message.includes('\u0001'), 'the errno/path trailer is stripped');
      t.is(err.errno, os.constants.errno.EINVAL);
      t.is(err.path, dpPath);
      t.true(r.stallMs < 1000, `stall ${r.stallMs.toFixed(0)} ms`);
      t.is(await fdsSettle(fds), fds);
    }
    // A missing pin: ENOENT, with the path.
    const missing = path.join(dir, 'nope', 'xsks_map');
    const err = await t.throwsAsync(() => openPort({ iface: lab.portIf, netns: lab.portNs, usePinnedMap: true, dpPath: missing }),
      { instanceOf: AfxdpError });
    t.is(err!.errno, os.constants.errno.ENOENT, err!.message);
    t.is(err!.path, missing);
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
  } finally {
    lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('pinned map 0600 root (the Device Plugin way) opened by a non-root pod: EACCES says the pod must run as uid 0', async (t) => {
  const lab = createLab();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-rootpin-'));
  fs.chmodSync(dir, 0o755);
  const { NativeDpServer } = native() as unknown as {
    NativeDpServer: { start(o: object): { stop(): void; info(): { pinPaths: string[] } } };
  };
  const server = NativeDpServer.start({
    devices: [{ iface: lab.portIf, netns: lab.portNs }], uds: false, podDir: '', pinDir: path.join(dir, 'bpf'),
    ownerUid: 0, ownerGid: 0,
  });
  try {
    const pin = first(server.info().pinPaths);
    // As the real plugin pins it: root:root 0600, directories searchable.
    fs.chownSync(pin, 0, 0);
    fs.chmodSync(pin, 0o600);
    for (let d = path.dirname(pin); d.startsWith(dir); d = path.dirname(d)) fs.chmodSync(d, 0o755);
    const caps = '-all,+net_raw,+ipc_lock';
    const child = await spawnPortChild({ iface: lab.portIf, usePinnedMap: true, dpPath: pin, frameSize: 2048, frameCount: 1024, fillSize: 512, compSize: 512, rxSize: 512, txSize: 512 },
      ['ip', 'netns', 'exec', lab.portNs, 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
        `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`], 'exit');
    await child.exit;
    t.false(child.report.ok, JSON.stringify(child.report));
    t.is(child.report.code, codes.PERMISSION, child.report.message);
    t.is(child.report.errno, os.constants.errno.EACCES);
    t.is(child.report.path, pin);
    t.regex(child.report.message!, /pins its map for root only/);
    t.regex(child.report.message!, /run as uid 0/);
    t.regex(child.report.message!, /uid 65534/);
  } finally {
    server.stop();
    lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- defect 9

test.serial('RLIMIT_MEMLOCK too small for 2 queues x 4 MiB: the message gives the port total', async (t) => {
  const lab = createLab({ queues: 2 });
  try {
    const child = await spawnPortChild(
      { iface: lab.portIf, netns: lab.portNs, queueCount: 2, frameSize: 4096, frameCount: 1024, fillSize: 512, compSize: 512, rxSize: 512, txSize: 512, hugepages: 'never' },
      ['prlimit', `--memlock=${6 * MiB}:${6 * MiB}`, 'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'], 'exit');
    const [code] = await child.exit;
    t.is(code, 0);
    t.false(child.report.ok, JSON.stringify(child.report));
    t.is(child.report.code, codes.MEMLOCK, child.report.message);
    t.regex(child.report.message!, /2 UMEMs of 4096 KiB each \(8192 KiB in all\)/);
    t.regex(child.report.message!, /at least 8192 KiB/);
    t.regex(child.report.message!, /currently 6144 KiB/);
    t.is(child.report.errno, os.constants.errno.ENOBUFS);
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
  } finally {
    lab.destroy();
  }
});

// ---------------------------------------------------------------- defect 10

anyTest('TS config and native code share one set of limits and one list of error codes', (t) => {
  const n = native().limits();
  // Every limit the core exports is in the TS table with the same value.
  for (const [key, value] of Object.entries(n)) {
    t.deepEqual([...[(limits as Record<string, unknown>)[key]].flat()], [...[value].flat()], key);
  }
  t.deepEqual(
    {
      maxQueueId: n.maxQueueId, maxQueueCount: n.maxQueueCount, ringMinSize: n.ringMinSize, ringMaxSize: n.ringMaxSize,
      frameSizes: n.frameSizes, maxFrameCount: n.maxFrameCount, maxUmemBytes: n.maxUmemBytes,
      kernelHeadroom: n.kernelHeadroom, minFrameData: n.minFrameData, maxBurstSize: n.maxBurstSize,
    },
    {
      maxQueueId: limits.maxQueueId, maxQueueCount: limits.maxQueueCount, ringMinSize: limits.ringMinSize,
      ringMaxSize: limits.ringMaxSize, frameSizes: [...limits.frameSizes], maxFrameCount: limits.maxFrameCount,
      maxUmemBytes: limits.maxUmemBytes, kernelHeadroom: limits.kernelHeadroom, minFrameData: limits.minFrameData,
      maxBurstSize: limits.maxBurstSize,
    },
  );
  // What the config accepts at the edges, native accepts too: the biggest UMEM
  // per frame size stays within maxUmemBytes, and 2^20 frames of 4 KiB are refused.
  for (const frameSize of limits.frameSizes) {
    const biggest = Math.min(limits.maxFrameCount, Math.floor(limits.maxUmemBytes / frameSize));
    t.true(resolvePortConfig({ iface: 'eth0', frameSize, frameCount: biggest }).frameCount * frameSize <= n.maxUmemBytes);
    t.throws(() => resolvePortConfig({ iface: 'eth0', frameSize, frameCount: biggest + 1 }), { code: codes.INVALID_ARGUMENT });
  }
  const facadeOnly = new Set<string>([codes.DEVARGS]);
  t.deepEqual([...native().errorCodes()].sort(), Object.values(codes).filter((c) => !facadeOnly.has(c)).sort());
});

// Unprivileged part of defect 8: the trailer parser.
anyTest('errno and path travel from native errors into AfxdpError', (t) => {
  const raw = Object.assign(new Error('open failed\u0001afxdp:{"errno":13,"path":"/tmp/a \\"b\\""}'), { code: codes.PERMISSION });
  const e = fromNative(raw) as AfxdpError;
  t.is(e.message, 'open failed');
  t.is(e.errno, 13);
  t.is(e.path, '/tmp/a "b"');
});

// The same through real entry points of the addon: a port call, a Device
// Plugin call (a rejected promise) and a closed object.
anyTest('native entry points reject with code, errno and path', async (t) => {
  const missing = path.join(os.tmpdir(), `afxdp-missing-${process.pid}`, 'xsks_map');
  const config = resolvePortConfig({
    iface: 'lo', usePinnedMap: true, dpPath: missing, frameCount: 64, rxSize: 64, txSize: 64, fillSize: 64, compSize: 64,
  });
  const portErr = fromNative(t.throws(() => native().NativePort.open(nativeOptions(config), null, null))) as AfxdpError;
  t.true(portErr instanceof AfxdpError, String(portErr));
  t.is(portErr.path, missing, portErr.message);
  t.false(portErr.message.includes('\u0001'), 'the trailer is stripped');

  const conn = native().NativeDpConnection.create(path.join(path.dirname(missing), 'afxdp.sock'));
  const dpErr = fromNative(await t.throwsAsync(conn.connect(200))) as AfxdpError;
  conn.close();
  t.true(dpErr instanceof AfxdpError, String(dpErr));
  t.is(dpErr.errno, 2, `ENOENT: ${dpErr.message}`);
  const closedErr = fromNative(await t.throwsAsync(async () => conn.send(Buffer.from('/version')))) as AfxdpError;
  t.is(closedErr.code, codes.CLOSED, closedErr.message);
});
