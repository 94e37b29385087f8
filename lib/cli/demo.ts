// `afxdp demo`: the whole Kubernetes-style setup on one Linux box, as root,
// with nothing prepared:
//
//   1. a lab: two network namespaces joined by a veth pair (192.0.2.0/24);
//   2. afxdp's Device-Plugin-compatible server on the forwarder's end
//      (it attaches the XDP program and serves the XSKMAP over a UDS);
//   3. `afxdp fwd` through use_cni, as uid 65534 with only CAP_NET_RAW and
//      CAP_IPC_LOCK, inside the forwarder's namespace (a pod, minus k8s);
//   4. traffic from the other namespace at a bounded rate, counted back;
//   5. live statistics, then everything removed: on --duration, Ctrl-C,
//      SIGTERM, a crash of the forwarder or an error of the demo itself.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { startDpServer, DpServer } from '../dp/server';
import { PacketSocket } from '../peer/packet-socket';
import { UsageError } from './usage';
import { integer, macString, seconds } from './args';
import { txFrame, txFrameSeq } from '../fwd/txframe';
import { human, LiveTable } from './stats';
import type { PortSnapshot } from './stats';

export const demoUsage = `Usage: sudo afxdp demo [options]

As root, on any Linux machine with nothing set up: creates two network
namespaces joined by a veth pair, starts afxdp's Device-Plugin-compatible
server, runs 'afxdp fwd' through use_cni as an unprivileged user (uid 65534,
only CAP_NET_RAW and CAP_IPC_LOCK), sends traffic from the other side and
shows live statistics. Everything is removed on exit, also on Ctrl-C.

  --duration S          stop after S seconds (default: run until Ctrl-C)
  --rate PPS            frames per second the traffic side sends (default 10000, max 200000)
  --forward-mode MODE   macswap (default) or io
  --stats-period S      statistics every S seconds (default 1)
  --json                one JSON object per line instead of the table
  -h, --help            this text

Needs: root, iproute2 ('ip'), util-linux ('setpriv'), a kernel with AF_XDP
(Linux >= 5.4 recommended).`;

const NOBODY = 65534;
const NS_PREFIX = 'afxdp-demo-';
const BIN = path.join(__dirname, '../../bin/afxdp.js');

interface DemoOptions {
  duration: number | undefined;
  rate: number;
  mode: 'macswap' | 'io';
  statsPeriod: number;
  json: boolean;
}

function parseDemoArgs(argv: string[]): DemoOptions | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      rate: { type: 'string' },
      'forward-mode': { type: 'string' },
      'stats-period': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`, demoUsage);
  const mode = values['forward-mode'] ?? 'macswap';
  if (mode !== 'macswap' && mode !== 'io') throw new UsageError(`--forward-mode must be macswap or io, not ${JSON.stringify(mode)}`, demoUsage);
  const period = seconds('stats-period', values['stats-period'], 0.1, demoUsage) ?? 1;
  return {
    duration: seconds('duration', values.duration, 0, demoUsage),
    rate: integer('rate', values.rate, 1, 200_000, demoUsage) ?? 10_000,
    mode,
    statsPeriod: period,
    json: values.json ?? false,
  };
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function have(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).error === undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces and work directories of earlier demos that were killed before they could clean up. */
export function removeStaleDemos(): string[] {
  const removed: string[] = [];
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${NS_PREFIX}([0-9]+)-`).exec(entry);
    if (m && !pidAlive(Number(m[1]))) {
      fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
      removed.push(path.join(os.tmpdir(), entry));
    }
  }
  let list = '';
  try {
    list = ip('netns', 'list');
  } catch {
    return removed;
  }
  for (const name of list.split('\n').map((l) => l.split(' ')[0] ?? '')) {
    const m = new RegExp(`^${NS_PREFIX}([0-9]+)-`).exec(name);
    if (m && !pidAlive(Number(m[1]))) {
      try {
        ip('netns', 'del', name);
        removed.push(name);
      } catch {
        // someone else removed it
      }
    }
  }
  return removed;
}

/** Can `uid` read and run this package with this node binary? (Off the event loop: signals still count.) */
function canRunAs(uid: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups',
      process.execPath, '-e', `require(${JSON.stringify(path.join(__dirname, 'main.js'))})`], { stdio: 'ignore', timeout: 20_000, signal });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

interface Resources {
  namespaces: string[];
  dir?: string;
  server?: DpServer;
  child?: ChildProcess;
  peer?: PacketSocket;
}

/** Remove everything, synchronously (also runs from process 'exit'). Idempotent. */
function cleanup(r: Resources): void {
  if (r.child && r.child.exitCode === null && r.child.signalCode === null) {
    try {
      r.child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  r.child = undefined;
  try {
    r.peer?.close();
  } catch {
    // closed
  }
  r.peer = undefined;
  try {
    r.server?.stop();
  } catch {
    // stopped
  }
  r.server = undefined;
  for (const ns of r.namespaces.splice(0)) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // gone
    }
  }
  if (r.dir) fs.rmSync(r.dir, { recursive: true, force: true });
  r.dir = undefined;
}

export async function demo(argv: string[]): Promise<number> {
  const options = parseDemoArgs(argv);
  if (options === 'help') {
    console.log(demoUsage);
    return 0;
  }
  if (process.geteuid?.() !== 0) {
    console.error('afxdp demo: needs root (it creates network namespaces and attaches an XDP program); run: sudo npx afxdp demo');
    return 1;
  }
  for (const [command, pkg] of [['ip', 'iproute2'], ['setpriv', 'util-linux']] as const) {
    if (!have(command)) {
      console.error(`afxdp demo: '${command}' is missing; install ${pkg} (e.g. apt-get install ${pkg})`);
      return 1;
    }
  }
  const say = (text: string) => {
    if (!options.json) console.log(text);
  };
  const stale = removeStaleDemos();
  if (stale.length > 0) say(`removed what an earlier demo left: ${stale.join(', ')}`);

  const id = process.pid;
  const fwdNs = `${NS_PREFIX}${id}-fwd`;
  const peerNs = `${NS_PREFIX}${id}-peer`;
  const short = String(id % 1_000_000);
  const fwdIf = `afxd${short}f`;
  const peerIf = `afxd${short}p`;
  const r: Resources = { namespaces: [] };
  const onExit = () => cleanup(r);
  process.on('exit', onExit);
  // Signals count from here on, in every phase: each ends in the same
  // ordered stop and cleanup (a signal while setting up too).
  const signals: [NodeJS.Signals, () => void][] = [];
  const stopping = new AbortController();
  let reason = 'stopped';
  let wake: (() => void) | undefined;
  const stop = (why: string) => {
    if (stopping.signal.aborted) return;
    reason = why;
    stopping.abort();
    wake?.();
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
    const handler = () => stop(signal);
    process.on(signal, handler);
    signals.push([signal, handler]);
  }
  const stoppedEarly = (phase: string): number => {
    if (options.json) console.log(JSON.stringify({ type: 'final', reason, started: false, phase }));
    else console.log(`afxdp demo: ${reason} while ${phase}; removing the lab`);
    return 0;
  };
  try {
    // 1. The lab.
    for (const ns of [fwdNs, peerNs]) {
      // Recorded first: a Ctrl-C can kill `ip` after it made the namespace.
      r.namespaces.push(ns);
      ip('netns', 'add', ns);
    }
    ip('link', 'add', fwdIf, 'netns', fwdNs, 'type', 'veth', 'peer', 'name', peerIf, 'netns', peerNs);
    for (const [ns, dev, addr] of [[fwdNs, fwdIf, '192.0.2.1'], [peerNs, peerIf, '192.0.2.2']] as const) {
      ip('netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`);
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    const peerMac = JSON.parse(ip('-n', peerNs, '-j', 'link', 'show', 'dev', peerIf))[0].address as string;
    say(`lab: namespace ${fwdNs} (${fwdIf}, 192.0.2.1) <-veth-> namespace ${peerNs} (${peerIf}, 192.0.2.2)`);

    // 2. The Device-Plugin-compatible server, for the forwarder's user.
    const uid = (await canRunAs(NOBODY, stopping.signal)) ? NOBODY : 0;
    if (stopping.signal.aborted) return stoppedEarly('setting up the lab');
    if (uid !== NOBODY) {
      say(`note: uid ${NOBODY} cannot read ${path.dirname(BIN)} or ${process.execPath}; the forwarder runs as uid 0 ` +
        'with the same two capabilities only (install afxdp somewhere world-readable to see uid 65534)');
    }
    r.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${NS_PREFIX}${id}-`));
    fs.chmodSync(r.dir, 0o755);
    r.server = startDpServer({
      devices: [{ iface: fwdIf, netns: fwdNs }],
      podDir: path.join(r.dir, 'pod'),
      udsDir: path.join(r.dir, 'host'),
      ownerUid: uid,
      ownerGid: uid,
      allowedUids: [uid],
      sessions: 1,
      acceptTimeoutMs: 30_000,
      readTimeoutMs: 30_000,
    });
    const dpPath = r.server.info().podSocketPaths[0];
    say(`device plugin: XDP program ${r.server.info().programIds.join(',')} on ${fwdIf}, socket ${dpPath} (uid ${uid} only)`);

    // 3. The unprivileged forwarder.
    const caps = '-all,+net_raw,+ipc_lock';
    const vdev = `net_af_xdp0,use_cni=1,iface=${fwdIf},dp_path=${dpPath}`;
    const args = ['netns', 'exec', fwdNs, 'setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups',
      `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`,
      process.execPath, BIN, 'fwd', '--vdev', vdev, '--forward-mode', options.mode, '--json',
      '--stats-period', String(Math.min(0.25, options.statsPeriod))];
    say(`forwarder: ip ${args.slice(0, 13).join(' ')} \\\n    node ${path.relative(process.cwd(), BIN) || BIN} ${args.slice(15).join(' ')}`);
    // Its own process group: Ctrl-C reaches the demo only, which then stops
    // the forwarder in order (SIGTERM, final totals) before removing the lab.
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    r.child = child;
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-4000);
    });
    const lines: object[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        lines.push(JSON.parse(line));
      } catch {
        stderr += `${line}\n`;
      }
      wake?.();
    });
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      wake?.();
    });
    // biome-ignore lint/suspicious/noExplicitAny: a JSON line of `afxdp fwd --json`, read field by field
    const nextLine = async (type: string, timeoutMs: number): Promise<any> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = lines.findIndex((l) => (l as { type?: string }).type === type);
        if (i >= 0) return lines.splice(0, i + 1)[i];
        if (exited || (type === 'start' && stopping.signal.aborted) || Date.now() >= deadline) return undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(100, deadline - Date.now())).unref();
        });
        wake = undefined;
      }
    };
    const start = await nextLine('start', 30_000);
    // A signal during the forwarder's handshake: it stops too (SIGTERM below).
    if (stopping.signal.aborted) return stoppedEarly('the forwarder was starting');
    if (start === undefined) {
      console.error(`afxdp demo: the forwarder did not start${exited ? ` (exit ${exited.code ?? exited.signal})` : ''}:\n${stderr.trim()}`);
      return 1;
    }
    const fwdMac = start.ports[0].mac as string;
    if (options.json) {
      console.log(JSON.stringify({ type: 'start', forwardMode: options.mode, namespaces: [fwdNs, peerNs], interfaces: [fwdIf, peerIf],
        dpPath, uid, forwarderPid: start.pid, forwarder: start.ports[0] }));
    }
    say(`forwarder ready: ${fwdIf} ${fwdMac}, ${start.ports[0].source}, XDP ${start.ports[0].xdpMode}, ` +
      `${start.ports[0].zeroCopy[0] ? 'zero-copy' : 'copy mode'}, pid ${start.pid}`);

    // 4. Traffic.
    r.peer = new PacketSocket(peerIf, { netns: peerNs });
    r.peer.drain();
    const frame = txFrame({
      length: 64,
      srcMac: Buffer.from(peerMac.split(':').map((h) => parseInt(h, 16))),
      dstMac: Buffer.from(fwdMac.split(':').map((h) => parseInt(h, 16))),
      srcIp: Buffer.from([192, 0, 2, 2]),
      dstIp: Buffer.from([192, 0, 2, 1]),
      srcPort: 9,
      dstPort: 9,
    });
    const expectSrc = options.mode === 'macswap' ? fwdMac : peerMac;
    let sent = 0;
    let received = 0;
    const started = Date.now();
    const countBack = (frames: Buffer[]) => {
      // Anything else on the wire (our own frames, IPv6 noise) is not counted.
      for (const f of frames) {
        if (txFrameSeq(f) !== undefined && macString(f.subarray(6, 12)) === expectSrc) received++;
      }
    };
    const TICK_MS = 10;
    const traffic = setInterval(() => {
      const due = Math.floor(((Date.now() - started) * options.rate) / 1000) - sent;
      const batch = Math.min(due, 1000);
      if (batch > 0) {
        const frames: Buffer[] = [];
        for (let i = 0; i < batch; i++) {
          const f = Buffer.from(frame);
          f.writeUInt32BE((sent + i) >>> 0, 46);
          frames.push(f);
        }
        sent += r.peer!.send(frames);
      }
      countBack(r.peer!.receive(4096, 0));
    }, TICK_MS);

    // 5. Statistics until the end.
    const live = !options.json && process.stdout.isTTY ? new LiveTable(process.stdout) : undefined;
    let lastFwd: PortSnapshot | undefined;
    let lastReport = { time: started, sent: 0, received: 0 };
    const render = (type: 'stats' | 'final', fwdPort: PortSnapshot | undefined, elapsed: number) => {
      const now = Date.now();
      const dt = Math.max(0.001, (now - lastReport.time) / 1000);
      const peer = {
        sent,
        received,
        sentPps: Math.round((type === 'final' ? sent / elapsed : (sent - lastReport.sent) / dt)),
        receivedPps: Math.round((type === 'final' ? received / elapsed : (received - lastReport.received) / dt)),
      };
      lastReport = { time: now, sent, received };
      if (options.json) {
        console.log(JSON.stringify({ type, elapsed, peer, forwarder: fwdPort }));
        return;
      }
      const f = fwdPort;
      const rows: [string, string, string][] = [
        ['', `traffic (${peerIf})`, `forwarder (${fwdIf}, uid ${uid})`],
        ['packets out/rx', String(peer.sent), String(f?.rxPackets ?? 0)],
        ['pps out/rx', human(peer.sentPps), human(f?.rxPps ?? 0)],
        ['packets back/tx', String(peer.received), String(f?.txPackets ?? 0)],
        ['pps back/tx', human(peer.receivedPps), human(f?.txPps ?? 0)],
        ['in flight or lost', String(Math.max(0, peer.sent - peer.received)), `dropped: tx ${f?.txDropped ?? 0}, xdp rx ${f?.rxMissed ?? 0}`],
      ];
      const width = (c: 0 | 1 | 2) => Math.max(...rows.map((row) => row[c].length));
      const w = [width(0), width(1), width(2)] as const;
      const text = [
        `afxdp demo: ${options.mode} through use_cni${type === 'final' ? ': final totals' : ''} (${elapsed.toFixed(1)} s)`,
        ...rows.map((row) => `${row[0].padEnd(w[0])}   ${row[1].padStart(w[1])}   ${row[2].padStart(w[2])}`),
      ];
      if (live) live.draw(text);
      else {
        console.log(`[${elapsed.toFixed(1)}s]${type === 'final' ? ' final:' : ''} sent ${peer.sent} (${peer.sentPps} pps) | ` +
          `forwarder rx ${f?.rxPackets ?? 0} tx ${f?.txPackets ?? 0} (${f?.txPps ?? 0} pps), dropped tx ${f?.txDropped ?? 0} xdp ${f?.rxMissed ?? 0} | ` +
          `back ${peer.received} (${peer.receivedPps} pps)`);
      }
    };
    if (live) say('');
    const reporter = setInterval(() => {
      for (let s = lines.findIndex((l) => (l as { type?: string }).type === 'stats'); s >= 0;
        s = lines.findIndex((l) => (l as { type?: string }).type === 'stats')) {
        lastFwd = (lines.splice(s, 1)[0] as { ports: PortSnapshot[] }).ports[0];
      }
      render('stats', lastFwd, (Date.now() - started) / 1000);
    }, options.statsPeriod * 1000);

    await new Promise<void>((resolve) => {
      if (stopping.signal.aborted) return resolve();
      stopping.signal.addEventListener('abort', () => resolve(), { once: true });
      if (options.duration !== undefined) setTimeout(() => stop('duration'), options.duration * 1000).unref();
      child.once('exit', () => stop('forwarder exited'));
    });
    clearInterval(traffic);
    clearInterval(reporter);
    const elapsed = (Date.now() - started) / 1000;
    if (reason === 'forwarder exited') {
      console.error(`afxdp demo: the forwarder exited unexpectedly (${exited?.code ?? exited?.signal}):\n${stderr.trim()}`);
      return 1;
    }
    // In-flight frames come back (briefly: the whole stop stays within a
    // second), then the forwarder prints its totals.
    const settle = Date.now() + 200;
    while (Date.now() < settle && received < sent) {
      countBack(r.peer.receive(4096, 50));
    }
    if (!exited) child.kill('SIGTERM');
    const final = await nextLine('final', 5000);
    render('final', final?.ports[0] ?? lastFwd, elapsed);
    if (!options.json) {
      const lost = sent - received;
      say(`${reason}: sent ${sent}, forwarded back ${received}${lost > 0 ? `, lost ${lost}` : ', none lost'}; removing the lab`);
    }
    if (final === undefined) {
      console.error(`afxdp demo: the forwarder did not report its totals:\n${stderr.trim()}`);
      return 1;
    }
    if (received === 0) {
      console.error('afxdp demo: no packet came back through the forwarder');
      return 1;
    }
    return 0;
  } catch (err) {
    // Ctrl-C reaches the whole process group: an `ip` command of the setup
    // dies of it before our handler runs. That is the same stop.
    const signal = (err as { signal?: unknown }).signal;
    if (signal === 'SIGINT' || signal === 'SIGTERM' || signal === 'SIGHUP') {
      stop(signal);
      return stoppedEarly('setting up the lab');
    }
    throw err;
  } finally {
    for (const [signal, handler] of signals) process.off(signal, handler);
    // Wait (bounded) for the forwarder to exit by itself before removing its namespace.
    const child = r.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      // Its process group: `ip netns exec` and the forwarder under it.
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      await Promise.race([new Promise((resolve) => child.once('exit', resolve)), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    }
    cleanup(r);
    process.off('exit', onExit);
  }
}
