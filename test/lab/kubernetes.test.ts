// use_cni and use_pinned_map end to end, the way a Kubernetes pod runs:
// afxdp's Device-Plugin-compatible server (NativeDpServer) runs as root in
// this process; the port runs in a child that is uid 65534 with only
// CAP_NET_RAW and CAP_IPC_LOCK, inside the port's network namespace.
// Exact packet counts both ways, queue_count=2 over one handshake, its two
// queues forwarded in two worker threads of the pod over that one session,
// several ports over one session, and every fault mode of the server: each
// gives its own typed error within the timeout and leaves no fd behind.
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { createLab, Lab } from '../helpers/lab';
import { first, pair } from '../helpers/tuple';
import { frameSeq, testFrame } from '../helpers/frames';
import { udpFrame, udpSeq } from '../helpers/udp-frames';
import { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();
const ROOT = path.join(__dirname, '../..');
const CHILD = path.join(__dirname, '../helpers/dp-client-child.ts');
const NOBODY = 65534;

interface NativeDpServer {
  stop(): void;
  info(): { podSocketPaths: string[]; pinPaths: string[]; socketPath: string | null; sessionsServed: number; devices: { mapId: number }[] };
  sessionsServed(): number;
  log(): string[];
}
const { NativeDpServer: Server } = require('../../index.js') as { NativeDpServer: { start(options: object): NativeDpServer } };

/** A pod-like client: uid 65534, CAP_NET_RAW + CAP_IPC_LOCK only, in `netns`. */
class Pod {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  #waiting: ((line: string) => void) | undefined;
  stderr = '';

  constructor(netns: string) {
    const caps = '-all,+net_raw,+ipc_lock';
    this.#child = spawn('ip', ['netns', 'exec', netns, 'setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY),
      '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`,
      process.execPath, '--import', 'tsx', CHILD], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.#child.stdout }).on('line', (line) => {
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = undefined;
        w(line);
      } else {
        this.#lines.push(line);
      }
    });
    this.#child.stderr.on('data', (d) => {
      this.stderr += String(d);
    });
  }

  async next(timeoutMs = 30_000): Promise<any> {
    const line = this.#lines.shift() ?? await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the pod child; stderr: ${this.stderr}`)), timeoutMs);
      this.#waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
    return JSON.parse(line);
  }

  async ready(): Promise<void> {
    const hello = await this.next();
    if (!hello.ready || hello.uid !== NOBODY) throw new Error(`pod child did not start: ${JSON.stringify(hello)} ${this.stderr}`);
  }

  async do(command: object, timeoutMs?: number): Promise<any> {
    this.#child.stdin.write(`${JSON.stringify(command)}\n`);
    return this.next(timeoutMs);
  }

  kill(): void {
    try {
      this.#child.stdin.write(`${JSON.stringify({ op: 'exit' })}\n`);
    } catch {
      // gone
    }
    setTimeout(() => this.#child.kill('SIGKILL'), 2000).unref();
  }
}

interface Env {
  lab: Lab;
  dir: string;
  pod: Pod;
  peer: PacketSocket;
}

type EnvBase = Omit<Env, 'pod' | 'peer'>;

let sequence = 0;

/**
 * A lab, a work directory, a peer and a pod child. `first` runs before the
 * child exists: `ip netns exec` gives the child its own mount namespace, so
 * a bpffs the server mounts later would not be visible in it (in a real
 * cluster the DaemonSet uses mountPropagation: Bidirectional for this).
 */
async function withEnv(options: { queues?: number; first?: (env: EnvBase) => NativeDpServer },
  fn: (env: Env, server?: NativeDpServer) => Promise<void>): Promise<void> {
  const lab = createLab({ queues: options.queues });
  const dir = path.join(os.tmpdir(), `afxdp-k8s-${process.pid}-${sequence++}`);
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  let server: NativeDpServer | undefined;
  let pod: Pod | undefined;
  let peer: PacketSocket | undefined;
  try {
    server = options.first?.({ lab, dir });
    pod = new Pod(lab.portNs);
    peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    await pod.ready();
    await fn({ lab, dir, pod, peer }, server);
  } finally {
    pod?.kill();
    peer?.close();
    server?.stop();
    lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function startServer(env: EnvBase, options: object = {}): NativeDpServer {
  return Server.start({
    devices: [{ iface: env.lab.portIf, netns: env.lab.portNs }],
    udsDir: path.join(env.dir, 'host'),
    podDir: path.join(env.dir, 'pod'),
    ownerUid: NOBODY,
    ownerGid: NOBODY,
    acceptTimeoutMs: 20_000,
    readTimeoutMs: 20_000,
    ...options,
  });
}

/** Frames the peer sees from the port within `timeoutMs` (test frames only). */
function peerReceive(peer: PacketSocket, n: number, timeoutMs: number, seqOf: (f: Uint8Array) => number | undefined): Set<number> {
  const seen = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  while (seen.size < n && Date.now() < deadline) {
    for (const f of peer.receive(256, 100)) {
      const seq = seqOf(f);
      if (seq !== undefined) seen.add(seq);
    }
  }
  for (const f of peer.receive(256, 100)) {
    const seq = seqOf(f);
    if (seq !== undefined) seen.add(seq + 1_000_000);
  }
  return seen;
}

/** Peer → port: N frames, the pod receives exactly N. Port → peer: N frames, the peer sees exactly N. */
async function trafficBothWays(t: ExecutionContext, env: Env, port: number, n: number, udp = false): Promise<{ rx: number[]; tx: number[] }> {
  const { lab, pod, peer } = env;
  peer.drain();
  const frames = Array.from({ length: n }, (_, i) => (udp ? udpFrame(lab.portMac, lab.peerMac, i, 1000 + i) : testFrame(lab.portMac, lab.peerMac, i)));
  let sent = 0;
  for (let i = 0; i < n; i += 100) sent += peer.send(frames.slice(i, i + 100));
  t.is(sent, n);
  const rx = await pod.do({ op: 'receive', port, n, timeoutMs: 5000 });
  t.is(rx.got, n, 'the pod received exactly the frames the peer sent');
  t.is(rx.wrong, 0);

  peer.drain();
  const tx = await pod.do({ op: 'transmit', port, n, dst: lab.peerMac, src: lab.portMac, udp });
  t.is(tx.sent, n);
  const seen = peerReceive(peer, n, 5000, udp ? udpSeq : frameSeq);
  t.is(seen.size, n, 'the peer saw exactly the frames the pod sent');
  t.true([...seen].every((s) => s < n));
  return { rx: rx.perQueue, tx: tx.perQueue };
}

// ----------------------------------------------------------------- end to end

test.serial('use_cni: an unprivileged pod gets the XSKMAP over the handshake; exact counts both ways', async (t) => {
  await withEnv({}, async (env) => {
    const server = startServer(env, { allowedPods: [os.hostname()] });
    try {
      const dpPath = first(server.info().podSocketPaths);
      t.is(dpPath, path.join(env.dir, 'pod', env.lab.portIf, 'afxdp.sock'));
      // No podName: the host name is sent, as DPDK does.
      const open = await env.pod.do({ op: 'open', specs: [`net_af_xdp0,iface=${env.lab.portIf},use_cni=1,dp_path=${dpPath}`] });
      t.true(open.ok, JSON.stringify(open));
      const info = open.info[0];
      t.is(info.source, 'cni');
      t.deepEqual(info.queues, [0]);
      t.false(info.busyPoll.enabled);
      t.regex(info.busyPoll.reason, /busy_budget is 0 \(the default with use_cni\)/);
      await trafficBothWays(t, env, 0, 1000);
      const log = server.log().join('\n');
      t.regex(log, /<- "\/connect,[^"]+"[\s\S]*-> "\/host_ok"[\s\S]*<- "\/version"[\s\S]*-> "0\.1"[\s\S]*"\/fd_ack" \+ fd[\s\S]*<- "\/fin"[\s\S]*-> "\/fin_ack"/);
      t.regex(log, new RegExp(`uid ${NOBODY}`));
      t.is(server.sessionsServed(), 1);
      const closed = await env.pod.do({ op: 'close' });
      t.true(closed.fds <= open.fdsBefore, `fds after close ${closed.fds}, before open ${open.fdsBefore}`);
    } finally {
      server.stop();
    }
  });
});

test.serial('use_pinned_map: an unprivileged pod opens the pinned XSKMAP; exact counts both ways', async (t) => {
  const first = (env: EnvBase) => startServer(env, { uds: false, pinDir: path.join(env.dir, 'bpf') });
  await withEnv({ first }, async (env, server) => {
    if (server === undefined) throw new Error('no server');
    try {
      const pin = server.info().pinPaths[0];
      t.is(pin, path.join(env.dir, 'bpf', env.lab.portIf, 'xsks_map'));
      const open = await env.pod.do({ op: 'open', specs: [`iface=${env.lab.portIf},use_pinned_map=1,dp_path=${pin}`] });
      t.true(open.ok, JSON.stringify(open));
      t.is(open.info[0].source, 'pinned');
      t.false(open.info[0].busyPoll.enabled);
      await trafficBothWays(t, env, 0, 1000);
      await env.pod.do({ op: 'close' });

      // A wrong pin path names the dp_path.
      const bad = `${pin}.missing`;
      const failed = await env.pod.do({ op: 'open', specs: [`iface=${env.lab.portIf},use_pinned_map=1,dp_path=${bad}`] });
      t.false(failed.ok);
      t.true(failed.message.includes(bad), failed.message);
      t.is(failed.fdsAfter, failed.fdsBefore);
    } finally {
      server.stop();
    }
  });
});

test.serial('use_cni with queue_count=2 on a 2-queue veth: one handshake, both queues, busy polling set by the Device Plugin', async (t) => {
  await withEnv({ queues: 2 }, async (env) => {
    const server = startServer(env);
    try {
      const dpPath = first(server.info().podSocketPaths);
      const open = await env.pod.do({
        op: 'open',
        specs: [{ iface: env.lab.portIf, useCni: true, dpPath, queueCount: 2, busyBudget: 64, podName: 'pod-a' }],
      });
      t.true(open.ok, JSON.stringify(open));
      const info = open.info[0];
      t.deepEqual(info.queues, [0, 1]);
      t.deepEqual(info.busyPoll, { enabled: true, timeoutUs: 20, budget: 64, via: 'device-plugin' });
      const log = server.log();
      t.is(log.filter((l) => /accepted client/.test(l)).length, 1, 'one connection');
      t.is(log.filter((l) => /<- "\/xsk_map_fd,/.test(l)).length, 1, 'one map fd for both queues');
      t.is(log.filter((l) => /<- "\/config_busy_poll,20,64" \+ fd/.test(l)).length, 2, 'busy poll per queue, each with its XSK');
      t.is(log.filter((l) => /-> "\/config_busy_poll_ack"/.test(l)).length, 2);

      const { rx, tx } = await trafficBothWays(t, env, 0, 1000, true);
      const [rx0, rx1] = pair(rx);
      t.true(rx0 > 0 && rx1 > 0, `both queues received (${rx})`);
      t.deepEqual(tx, [500, 500]);
    } finally {
      server.stop();
    }
  });
});

test.serial('openPorts: two ports on one Device Plugin socket share one session (the DP accepts one connection)', async (t) => {
  await withEnv({ queues: 2 }, async (env) => {
    const server = startServer(env);
    try {
      const dpPath = first(server.info().podSocketPaths);
      const spec = (q: number) => ({ iface: env.lab.portIf, useCni: true, dpPath, startQueue: q, podName: 'pod-a' });
      const open = await env.pod.do({ op: 'open', specs: [spec(0), spec(1)] });
      t.true(open.ok, JSON.stringify(open));
      t.deepEqual(open.info.map((i: { queues: number[] }) => i.queues), [[0], [1]]);
      const log = server.log();
      t.is(log.filter((l) => /accepted client/.test(l)).length, 1);
      t.is(log.filter((l) => /<- "\/xsk_map_fd,/.test(l)).length, 2);
      // Both ports carry traffic: the peer's UDP flows spread over both queues.
      env.peer.drain();
      const n = 400;
      env.peer.send(Array.from({ length: n }, (_, i) => udpFrame(env.lab.portMac, env.lab.peerMac, i, 2000 + i)));
      const a = await env.pod.do({ op: 'receive', port: 0, n, timeoutMs: 1000 });
      const b = await env.pod.do({ op: 'receive', port: 1, n, timeoutMs: 1000 });
      t.is(a.got + b.got, n);
      t.true(a.got > 0 && b.got > 0, `${a.got} + ${b.got}`);

      // The allocation is used up: a second openPort is refused, naming the fix.
      await env.pod.do({ op: 'close' });
      const again = await env.pod.do({ op: 'open', specs: [spec(0)] });
      t.false(again.ok);
      t.is(again.code, 'ERR_AFXDP_DEVICE_PLUGIN');
      t.regex(again.message, /connection refused|nothing is listening/);
      t.is(again.fdsAfter, again.fdsBefore);
    } finally {
      server.stop();
    }
  });
});

/** The kernel's XDP_REDIRECT count per rx queue of the port's veth (ethtool -S). */
function kernelRedirects(lab: Lab, queues: number): number[] {
  const out = execFileSync('ip', ['netns', 'exec', lab.portNs, 'ethtool', '-S', lab.portIf], { encoding: 'utf8' });
  return Array.from({ length: queues }, (_, q) => {
    const m = new RegExp(`rx_queue_${q}_xdp_redirect: (\\d+)`).exec(out);
    if (m === null) throw new Error(`no rx_queue_${q}_xdp_redirect in ethtool -S ${lab.portIf}`);
    return Number(m[1]);
  });
}

/**
 * Peer → port → peer: `n` UDP frames (flows spread over the veth's queues by
 * their source ports), at most `window` in flight; the seqs that came back.
 * Gives up after `timeoutMs` without progress, or a minute in all.
 * Synchronous: the port runs in another process.
 */
function echoThrough(env: Env, n: number, window: number, timeoutMs: number): { sent: number; back: Set<number>; extra: number } {
  const { lab, peer } = env;
  peer.drain();
  const back = new Set<number>();
  let sent = 0;
  let extra = 0;
  const count = (frames: Buffer[]) => {
    for (const f of frames) {
      const seq = udpSeq(f);
      if (seq === undefined) continue;
      if (seq >= n || back.has(seq) || f.subarray(0, 6).toString('hex') !== lab.peerMac.replaceAll(':', '')) extra++;
      else back.add(seq);
    }
  };
  let lastProgress = Date.now();
  const deadline = lastProgress + 60_000;
  while (back.size < n && Date.now() - lastProgress < timeoutMs && Date.now() < deadline) {
    const before = back.size;
    if (sent < n && sent - back.size < window) {
      const k = Math.min(64, n - sent, window - (sent - back.size));
      sent += peer.send(Array.from({ length: k }, (_, i) => udpFrame(lab.portMac, lab.peerMac, sent + i, 1000 + ((sent + i) % 4096))));
    }
    count(peer.receive(256, sent - back.size >= window || sent === n ? 5 : 0));
    if (back.size > before) lastProgress = Date.now();
  }
  // Nothing more comes back.
  count(peer.receive(256, 100));
  return { sent, back, extra };
}

test.serial('use_cni with queue_count=2 in 2 worker threads: one Device Plugin session, each queue forwarded in its own thread, exact counts', async (t) => {
  await withEnv({ queues: 2 }, async (env) => {
    const server = startServer(env);
    try {
      const dpPath = first(server.info().podSocketPaths);
      const fdsStart = (await env.pod.do({ op: 'fds' })).fds;
      const open = await env.pod.do({ op: 'open', specs: [{ iface: env.lab.portIf, useCni: true, dpPath, queueCount: 2, podName: 'pod-a' }] });
      t.true(open.ok, JSON.stringify(open));
      t.deepEqual(open.info[0].queues, [0, 1]);
      t.is(open.info[0].source, 'cni');
      t.is(server.sessionsServed(), 1, 'one handshake for both queues');
      t.is(server.log().filter((l) => /accepted client/.test(l)).length, 1, 'one connection');

      const started = await env.pod.do({ op: 'workers', port: 0, mode: 'macswap', pollMode: 'adaptive' });
      t.falsy(started.error, JSON.stringify(started));
      const [thread0, thread1] = pair(started.threads as number[]);
      t.not(thread0, thread1, 'each queue in its own thread');
      t.true(thread0 > 0 && thread1 > 0, 'worker threads, not the main thread (threadId 0)');
      t.deepEqual(started.queueIds, [[0], [1]]);
      // The handshake was not repeated for the workers.
      t.is(server.sessionsServed(), 1);
      // While the workers hold the queues, the pod's own thread cannot use them.
      const held = await env.pod.do({ op: 'receive', port: 0, n: 1, timeoutMs: 100 });
      t.is(held.code, 'ERR_AFXDP_TRANSFERRED', JSON.stringify(held));

      const n = 20_000;
      const redirectsBefore = kernelRedirects(env.lab, 2);
      const { sent, back, extra } = echoThrough(env, n, 256, 5000);
      t.is(sent, n);
      t.is(back.size, n, 'every frame came back once, MACs swapped');
      t.is(extra, 0, 'nothing extra came back');

      const stopped = await env.pod.do({ op: 'stopWorkers' });
      t.falsy(stopped.error, JSON.stringify(stopped));
      const reports = stopped.workers as { threadId: number; rxPackets: number; txPackets: number; cpuMs: number; queueIds: number[] }[];
      t.deepEqual(reports.map((r) => r.threadId), [thread0, thread1]);
      const redirects = kernelRedirects(env.lab, 2).map((c, q) => c - redirectsBefore[q]!);
      for (const r of reports) {
        const q = first(r.queueIds as [number]);
        t.is(r.rxPackets, redirects[q] ?? -1, `queue ${q}: the worker received what the kernel redirected to its queue`);
        t.is(r.txPackets, r.rxPackets, `queue ${q}: macswap sent back all it received`);
        t.true(r.rxPackets > 0, `queue ${q} carried traffic (${redirects})`);
        t.true(r.cpuMs > 0, `queue ${q}: its worker thread spent CPU time (${r.cpuMs} ms)`);
      }
      t.is(reports.reduce((sum, r) => sum + r.rxPackets, 0), n);
      t.log(`per worker: ${reports.map((r) => `thread ${r.threadId} queue ${r.queueIds}: ${r.rxPackets} packets, ${r.cpuMs} ms CPU`).join('; ')}`);

      // The queues are the port's again: the pod's own thread receives on both.
      env.peer.drain();
      const m = 400;
      t.is(env.peer.send(Array.from({ length: m }, (_, i) => udpFrame(env.lab.portMac, env.lab.peerMac, i, 3000 + i))), m);
      const rx = await env.pod.do({ op: 'receive', port: 0, n: m, timeoutMs: 5000 });
      t.is(rx.got, m, JSON.stringify(rx));
      t.true(rx.perQueue[0] > 0 && rx.perQueue[1] > 0, JSON.stringify(rx));

      const closed = await env.pod.do({ op: 'close' });
      // At most as many as at the start: on a cold tsx cache, compiling the
      // worker's modules holds a transient fd at the start that is gone later.
      t.true(closed.fds <= fdsStart, `fds after close ${closed.fds}, at the start ${fdsStart} (${open.fdsAfter} with the port open)`);
      t.is(server.sessionsServed(), 1);
    } finally {
      server.stop();
    }
  });
});

// ----------------------------------------------------------------- faults

const TIMEOUT_MS = 1000;

interface FaultCase {
  fault: string;
  ok?: true;
  message?: RegExp;
  /** The error comes only after the handshake timeout. */
  slow?: true;
  server?: object;
  spec?: object;
}

const faultCases: FaultCase[] = [
  { fault: 'silent', slow: true, message: /failed at step \/connect \(pod "pod-a"\): no reply within 1000 ms/ },
  { fault: 'stall', slow: true, server: { stallMs: 4000 }, message: /step \/connect \(pod "pod-a"\): no reply within 1000 ms/ },
  { fault: 'close-after-connect', message: /closed the connection without answering "\/connect,pod-a".*one connection per allocation.*UdsTimeout/ },
  { fault: 'host-nak', message: /answered "\/host_nak": it did not find pod "pod-a" with this device; check the pod name/ },
  { fault: 'error-then-host-nak', message: /answered "\/error" then "\/host_nak": it could not query kubelet's pod-resources API/ },
  { fault: 'fd-nak', message: /step \/xsk_map_fd \(interface "[^"]+"\): the Device Plugin answered "\/fd_nak": interface "[^"]+" is not one of the devices allocated to this pod/ },
  { fault: 'nak', message: /step \/connect \(pod "pod-a"\): expected "\/host_ok", but the Device Plugin answered "\/nak"/ },
  { fault: 'fd-ack-without-fd', message: /step \/xsk_map_fd \(interface "[^"]+"\): the Device Plugin answered "\/fd_ack" without a file descriptor/ },
  { fault: 'garbage', message: /step \/connect \(pod "pod-a"\): the reply is not a text record: 8 bytes that are not UTF-8 \(hex ff fe 00 01 80 c3 28 7f\)/ },
  { fault: 'overlong-record', message: /step \/connect \(pod "pod-a"\): the reply is longer than 128 bytes; it starts "\/host_okxxx/ },
  { fault: 'fd-ack-with-suffix', ok: true },
  { fault: 'trailing-nul', ok: true },
  { fault: 'none', server: { allowedPods: ['someone-else'] }, message: /answered "\/host_nak": it did not find pod "pod-a"/ },
  { fault: 'none', spec: { iface: 'lo' }, message: /interface "lo" is not one of the devices allocated to this pod/ },
];

test.serial('fault modes: each gives its own ERR_AFXDP_DEVICE_PLUGIN error within the timeout, naming dp_path; no fd left open', async (t) => {
  await withEnv({}, async (env) => {
    let warm = false;
    for (const c of faultCases) {
      const server = startServer(env, { fault: c.fault, ...c.server });
      try {
        const dpPath = first(server.info().podSocketPaths);
        const result = await env.pod.do({
          op: 'open',
          warmup: !warm,
          specs: [{ iface: env.lab.portIf, useCni: true, dpPath, podName: 'pod-a', handshakeTimeoutMs: TIMEOUT_MS, ...c.spec }],
        });
        warm = true;
        const label = `${c.fault} ${JSON.stringify(c.server ?? c.spec ?? '')}`;
        if (c.ok) {
          t.true(result.ok, `${label}: ${result.message}`);
          const closed = await env.pod.do({ op: 'close' });
          t.is(closed.fds, result.fdsBefore, `${label}: fds after close`);
          continue;
        }
        t.false(result.ok, label);
        t.is(result.code, 'ERR_AFXDP_DEVICE_PLUGIN', `${label}: ${result.message}`);
        t.is(result.name, 'AfxdpError');
        t.regex(result.message, c.message!, label);
        t.true(result.message.includes(dpPath), `${label} names dp_path`);
        t.is(result.path, dpPath);
        t.is(result.fdsAfter, result.fdsBefore, `${label}: no fd left open`);
        if (c.slow) {
          t.true(result.elapsedMs >= TIMEOUT_MS - 50 && result.elapsedMs < TIMEOUT_MS + 1500, `${label}: ${result.elapsedMs} ms`);
        } else {
          t.true(result.elapsedMs < TIMEOUT_MS, `${label}: ${result.elapsedMs} ms`);
        }
      } finally {
        server.stop();
      }
    }
  });
});

test.serial('transport failures: no socket, nothing listening, a SOCK_STREAM listener; no fd left open', async (t) => {
  await withEnv({}, async (env) => {
    const spec = (dpPath: string) => ({ iface: env.lab.portIf, useCni: true, dpPath, podName: 'pod-a', handshakeTimeoutMs: TIMEOUT_MS });
    const missing = path.join(env.dir, 'nowhere', 'afxdp.sock');
    const noSocket = await env.pod.do({ op: 'open', warmup: true, specs: [spec(missing)] });
    t.is(noSocket.code, 'ERR_AFXDP_DEVICE_PLUGIN');
    t.regex(noSocket.message, /no Device Plugin socket at .*is an AF_XDP device allocated to this pod/);
    t.true(noSocket.message.includes(missing));
    t.is(noSocket.fdsAfter, noSocket.fdsBefore);

    // A socket file nobody listens on any more (the session ended).
    const server = startServer(env, { fault: 'close-after-connect' });
    const dpPath = first(server.info().podSocketPaths);
    await env.pod.do({ op: 'open', specs: [spec(dpPath)] });
    server.stop();
    const refused = await env.pod.do({ op: 'open', specs: [spec(dpPath)] });
    t.is(refused.code, 'ERR_AFXDP_DEVICE_PLUGIN');
    t.regex(refused.message, /connection refused|no Device Plugin socket/);
    t.is(refused.fdsAfter, refused.fdsBefore);

    // A SOCK_STREAM listener is not the Device Plugin.
    const streamPath = path.join(env.dir, 'stream.sock');
    const stream = net.createServer(() => {}).listen(streamPath);
    await new Promise((r) => stream.once('listening', r));
    fs.chmodSync(streamPath, 0o777);
    try {
      const wrongType = await env.pod.do({ op: 'open', specs: [spec(streamPath)] });
      t.is(wrongType.code, 'ERR_AFXDP_DEVICE_PLUGIN');
      t.regex(wrongType.message, /not a SOCK_SEQPACKET socket/);
      t.is(wrongType.fdsAfter, wrongType.fdsBefore);
    } finally {
      stream.close();
    }
  });
});
