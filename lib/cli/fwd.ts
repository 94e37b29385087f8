// `afxdp fwd`: a testpmd-style forwarder over AF_XDP ports.
//
//   io       receive, send unchanged      macswap  swap the MACs, send
//   rxonly   receive, drop                txonly   generate UDP frames
//
// One --vdev forwards back out of the same port (testpmd with one port);
// two forward between each other. On one port, or between two ports that
// share a UMEM (both --vdev with shared_umem=1), the received frame itself
// is transmitted (by descriptor, zero copies). Between ports with their own
// UMEMs each packet is copied into a frame of the other port (one memcpy,
// no allocation).
//
// Scheduling: the library's PollLoop (lib/port/poll-loop.ts) under the
// --poll-mode policy: busy spins, event sleeps on the rx rings' readiness
// at once, adaptive (the default) spins a short window after the last
// packet, then sleeps, so an idle forwarder uses next to no CPU.
import { parseArgs } from 'node:util';
import { openPorts, Port, Queue } from '../port';
import { PollLoop, POLL_MODES, PollMode } from '../port/poll-loop';
import { defaults as portDefaults, devargsToOptions, resolvePortConfig } from '../config/port-config';
import type { PortOptions } from '../config/port-config';
import { AfxdpError, codes } from '../errors';
import { UsageError } from './usage';
import { dropPastedWords, integer, ipv4, mac, macString, seconds, udpPort } from './args';
import { StatsTracker, TrackedPort, LiveTable, plainLines, table, Snapshot } from './stats';
import { metricsRegistry, serveMetrics, MetricsServer } from './metrics';
import { txFrame, TX_MIN_LENGTH, TX_SEQ_OFFSET } from './txframe';
import { swapMacs } from '../port/macswap';

export const FORWARD_MODES = ['io', 'macswap', 'rxonly', 'txonly'] as const;
export type ForwardMode = (typeof FORWARD_MODES)[number];

export const fwdUsage = `Usage: afxdp fwd --vdev DEVARGS [--vdev DEVARGS] [options]

Forward packets between AF_XDP ports, like dpdk-testpmd. DEVARGS are DPDK's
net_af_xdp arguments: net_af_xdp0,iface=eth1[,start_queue=0,queue_count=1,
use_cni=1,use_pinned_map=1,dp_path=...,busy_budget=64,force_copy=1,...].
One --vdev sends packets back out of the same port; two forward between them,
without copying when both say shared_umem=1 (one UMEM, Linux >= 5.10),
else copying each packet into the other port's UMEM.

  --vdev DEVARGS          a port (once or twice); --vdev=... works too
  --forward-mode MODE     io (default), macswap, rxonly or txonly
  --poll-mode POLICY      busy (spin on the rings: a core, lowest latency), event (sleep on
                          readiness at once: least CPU) or adaptive (default: spin while
                          packets come and a short window after, then sleep)
  --burst N               packets per burst, 1-1024 (default 64)
  --stats-period S        print statistics every S seconds (default 1; 0 = only at the end)
  --duration S            stop after S seconds (default: run until SIGINT/SIGTERM)
  --json                  one JSON object per line: start, one per period, final
  --metrics-port P        serve Prometheus metrics at http://127.0.0.1:P/metrics (0 = any free port)
  --metrics-host H        address for --metrics-port (default 127.0.0.1)
  --netns NS              open the ports in network namespace NS (/run/netns/NS or a path);
                          give it once for every port or once per --vdev, in order
  --frame-count N         UMEM frames per queue (default 4096)
  --frame-size B          UMEM frame size, 2048 or 4096 (default 4096)
  --pod-name NAME         pod name sent to the Device Plugin (default: the host name)

txonly (64-byte IPv4/UDP frames, as testpmd):
  --txpkts LEN            frame length without FCS (default 64); "a,b" segment lists are summed
  --eth-peer [N,]MAC      destination MAC (of port N; default 02:00:00:00:00:01)
  --eth-src MAC           source MAC (default: the port's MAC)
  --tx-ip SRC,DST         IPv4 addresses (default 198.51.100.1,198.51.100.2)
  --tx-udp SRC[,DST]      UDP ports (default 9,9)
  --tx-rate PPS           at most PPS frames per second per port (default: as fast as possible)
  --tx-count N            stop generating after N frames per port (keeps running for stats)

  -h, --help              this text

Accepted and ignored, so a testpmd line can be pasted: --, -i, -a, --auto-start,
--nb-cores, --rxq, --txq, -l, --no-pci, --no-mlockall, --in-memory.
Exit: 0 after SIGINT, SIGTERM or --duration (final totals printed; also when
stopped while the ports open, e.g. during a Device Plugin handshake);
1 when a port cannot be opened or fails; 2 for bad arguments.`;

export interface TxConfig {
  length: number;
  dstMacs: (Buffer | undefined)[];
  srcMac: Buffer | undefined;
  srcIp: Buffer;
  dstIp: Buffer;
  srcPort: number;
  dstPort: number;
  rate: number | undefined;
  count: number | undefined;
}

export interface FwdOptions {
  specs: PortOptions[];
  vdevs: string[];
  mode: ForwardMode;
  pollMode: PollMode;
  statsPeriod: number;
  duration: number | undefined;
  json: boolean;
  metricsPort: number | undefined;
  metricsHost: string;
  tx: TxConfig;
}

/** Parse `afxdp fwd` arguments; throws UsageError for anything wrong. */
export function parseFwdArgs(argv: string[]): FwdOptions | 'help' {
  const { rest } = dropPastedWords(argv);
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      vdev: { type: 'string', multiple: true },
      'forward-mode': { type: 'string' },
      'poll-mode': { type: 'string' },
      burst: { type: 'string' },
      'stats-period': { type: 'string' },
      duration: { type: 'string' },
      json: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      netns: { type: 'string', multiple: true },
      'frame-count': { type: 'string' },
      'frame-size': { type: 'string' },
      'pod-name': { type: 'string' },
      txpkts: { type: 'string' },
      'eth-peer': { type: 'string', multiple: true },
      'eth-src': { type: 'string' },
      'tx-ip': { type: 'string' },
      'tx-udp': { type: 'string' },
      'tx-rate': { type: 'string' },
      'tx-count': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`, fwdUsage);
  const vdevs = values.vdev ?? [];
  if (vdevs.length === 0) throw new UsageError('fwd needs --vdev (e.g. --vdev net_af_xdp0,iface=eth1)', fwdUsage);
  if (vdevs.length > 2) throw new UsageError(`fwd takes one or two --vdev, not ${vdevs.length}`, fwdUsage);
  const mode = (values['forward-mode'] ?? 'io') as ForwardMode;
  if (!FORWARD_MODES.includes(mode)) {
    throw new UsageError(`--forward-mode must be one of ${FORWARD_MODES.join(', ')}, not ${JSON.stringify(values['forward-mode'])}`, fwdUsage);
  }
  const pollMode = (values['poll-mode'] ?? portDefaults.pollMode) as PollMode;
  if (!POLL_MODES.includes(pollMode)) {
    throw new UsageError(`--poll-mode must be one of ${POLL_MODES.join(', ')}, not ${JSON.stringify(values['poll-mode'])}`, fwdUsage);
  }
  const netns = values.netns ?? [];
  if (netns.length > 1 && netns.length !== vdevs.length) {
    throw new UsageError(`give --netns once for all ports or once per --vdev (${vdevs.length}), not ${netns.length} times`, fwdUsage);
  }
  const burst = integer('burst', values.burst, 1, 1024, fwdUsage);
  const frameCount = integer('frame-count', values['frame-count'], 64, 1 << 20, fwdUsage);
  const frameSize = integer('frame-size', values['frame-size'], 2048, 4096, fwdUsage);
  if (frameSize !== undefined && frameSize !== 2048 && frameSize !== 4096) {
    throw new UsageError(`--frame-size must be 2048 or 4096, not ${frameSize}`, fwdUsage);
  }
  const specs = vdevs.map((vdev, i): PortOptions => {
    let options: PortOptions;
    try {
      resolvePortConfig(vdev); // DPDK's rules, worded with devargs names
      options = devargsToOptions(vdev);
    } catch (err) {
      if (err instanceof AfxdpError) throw new UsageError(`--vdev ${JSON.stringify(vdev)}: ${err.message}`, fwdUsage);
      throw err;
    }
    const ns = netns.length === 1 ? netns[0] : netns[i];
    return {
      ...options,
      ...(burst === undefined ? {} : { burstSize: burst }),
      ...(frameCount === undefined ? {} : { frameCount }),
      ...(frameSize === undefined ? {} : { frameSize: frameSize as 2048 | 4096 }),
      ...(ns === undefined ? {} : { netns: ns }),
      ...(values['pod-name'] === undefined ? {} : { podName: values['pod-name'] }),
    };
  });

  const length = values.txpkts === undefined ? 64 : values.txpkts.split(',').reduce((sum, part) => {
    const n = integer('txpkts', part, 1, 4096, fwdUsage)!;
    return sum + n;
  }, 0);
  if (length < TX_MIN_LENGTH) throw new UsageError(`--txpkts must be at least ${TX_MIN_LENGTH} bytes (Ethernet, IPv4, UDP and the sequence number), not ${length}`, fwdUsage);
  const dstMacs: (Buffer | undefined)[] = vdevs.map(() => undefined);
  for (const peer of values['eth-peer'] ?? []) {
    const m = /^(?:([0-9]+),)?(.*)$/.exec(peer)!;
    const index = m[1] === undefined ? undefined : Number(m[1]);
    if (index !== undefined && index >= vdevs.length) throw new UsageError(`--eth-peer ${peer}: there is no port ${index}`, fwdUsage);
    const address = mac('eth-peer', m[2], fwdUsage);
    if (index === undefined) dstMacs.fill(address);
    else dstMacs[index] = address;
  }
  const [srcIp, dstIp] = (values['tx-ip'] ?? '198.51.100.1,198.51.100.2').split(',');
  if (dstIp === undefined) throw new UsageError('--tx-ip takes SRC,DST', fwdUsage);
  const [srcPort, dstPort] = (values['tx-udp'] ?? '9,9').split(',');
  const rate = integer('tx-rate', values['tx-rate'], 1, 1e9, fwdUsage);
  const count = integer('tx-count', values['tx-count'], 0, Number.MAX_SAFE_INTEGER, fwdUsage);
  const metricsPort = integer('metrics-port', values['metrics-port'], 0, 65535, fwdUsage);
  return {
    specs,
    vdevs,
    mode,
    pollMode,
    statsPeriod: seconds('stats-period', values['stats-period'], 0, fwdUsage) ?? 1,
    duration: seconds('duration', values.duration, 0, fwdUsage),
    json: values.json ?? false,
    metricsPort,
    metricsHost: values['metrics-host'] ?? '127.0.0.1',
    tx: {
      length,
      dstMacs,
      srcMac: values['eth-src'] === undefined ? undefined : mac('eth-src', values['eth-src'], fwdUsage),
      srcIp: ipv4('tx-ip', srcIp, fwdUsage),
      dstIp: ipv4('tx-ip', dstIp, fwdUsage),
      srcPort: udpPort('tx-udp', srcPort, fwdUsage),
      dstPort: udpPort('tx-udp', dstPort ?? srcPort, fwdUsage),
      rate,
      count,
    },
  };
}

// ------------------------------------------------------------- data path

/** One direction: packets received on `rx` leave through `tx`. */
interface Lane {
  rx: Queue;
  tx: Queue;
  same: boolean;
  /** rx and tx are different queues on one UMEM: forward by descriptor. */
  byDescriptor: boolean;
  rxBytes: Buffer;
  txBytes: Buffer;
  /** Room for packet data in a frame of `tx`. */
  txRoom: number;
  dropped: Float64Array;
  droppedIndex: number;
}

interface Generator {
  queue: Queue;
  bytes: Buffer;
  template: Buffer;
  seq: number;
  dropped: Float64Array;
}

function bytesOf(q: Queue): Buffer {
  return Buffer.from(q.umem.buffer, q.umem.byteOffset, q.umem.byteLength);
}

/** The forwarding engine: call `step()` repeatedly; it returns packets moved. */
export class Forwarder {
  readonly tracked: TrackedPort[];
  readonly #mode: ForwardMode;
  readonly #lanes: Lane[] = [];
  readonly #generators: Generator[][] = [];
  readonly #tx: TxConfig;
  #tokens: number[];
  #lastRefill = performance.now();
  readonly #generated: number[];

  constructor(ports: Port[], mode: ForwardMode, tx: TxConfig) {
    this.#mode = mode;
    this.#tx = tx;
    this.tracked = ports.map((port) => ({ port, txDropped: new Float64Array(port.queues.length) }));
    this.#tokens = ports.map(() => 0);
    this.#generated = ports.map(() => 0);
    if (mode === 'txonly') {
      ports.forEach((port, p) => {
        const info = port.info();
        const room = info.frameSize - info.dataOffset;
        if (tx.length > room) {
          throw new AfxdpError(codes.INVALID_ARGUMENT, `--txpkts ${tx.length} does not fit in a ${info.frameSize}-byte frame (room for ${room} bytes)`);
        }
        const template = txFrame({
          length: tx.length,
          srcMac: tx.srcMac ?? Buffer.from(info.mac.split(':').map((h) => parseInt(h, 16))),
          dstMac: tx.dstMacs[p] ?? Buffer.from([2, 0, 0, 0, 0, 1]),
          srcIp: tx.srcIp,
          dstIp: tx.dstIp,
          srcPort: tx.srcPort,
          dstPort: tx.dstPort,
        });
        this.#generators.push(port.queues.map((queue) => ({
          queue, bytes: bytesOf(queue), template, seq: 0, dropped: this.tracked[p].txDropped,
        })));
      });
      return;
    }
    const out = (p: number) => (ports.length === 1 ? 0 : 1 - p);
    ports.forEach((port, p) => {
      const target = ports[out(p)];
      port.queues.forEach((rx, k) => {
        const tx = target.queues[k % target.queues.length];
        const info = target.info();
        this.#lanes.push({
          rx,
          tx,
          same: rx === tx,
          byDescriptor: rx !== tx && rx.umem.buffer === tx.umem.buffer,
          rxBytes: bytesOf(rx),
          txBytes: bytesOf(tx),
          txRoom: info.frameSize - info.dataOffset,
          dropped: this.tracked[out(p)].txDropped,
          droppedIndex: tx.index,
        });
      });
    });
  }

  /** How packets move between ports: 'descriptor' (no copy) or 'copy'; 'none' for one port or txonly. */
  get path(): 'descriptor' | 'copy' | 'none' {
    const between = this.#lanes.filter((l) => !l.same);
    if (between.length === 0) return 'none';
    return between.every((l) => l.byDescriptor) ? 'descriptor' : 'copy';
  }

  /** One pass over every queue; returns the packets moved. */
  step(): number {
    return this.#mode === 'txonly' ? this.#generate() : this.#forward();
  }

  /** txonly frames generated so far, per port. */
  get generated(): readonly number[] {
    return this.#generated;
  }

  #forward(): number {
    const macswap = this.#mode === 'macswap';
    const rxonly = this.#mode === 'rxonly';
    let moved = 0;
    for (let l = 0; l < this.#lanes.length; l++) {
      const lane = this.#lanes[l];
      const rx = lane.rx;
      const n = rx.receive();
      if (n === 0) continue;
      moved += n;
      if (rxonly) {
        rx.release(n);
        continue;
      }
      if (lane.same) {
        if (macswap) swapMacs(lane.rxBytes, rx.addrs, n);
        const posted = rx.transmit(n, 0, true);
        if (posted < n) lane.dropped[lane.droppedIndex] += n - posted;
        continue;
      }
      const tx = lane.tx;
      if (lane.byDescriptor) {
        // One UMEM: hand the received frames to the other port's tx ring;
        // what it does not take goes back to the pool.
        const ra = rx.addrs, rl = rx.lengths, ta = tx.addrs, tl = tx.lengths;
        for (let i = 0; i < n; i++) {
          ta[i] = ra[i];
          tl[i] = rl[i];
        }
        if (macswap) swapMacs(lane.txBytes, ta, n);
        const posted = tx.transmit(n, 0, true);
        if (posted < n) lane.dropped[lane.droppedIndex] += n - posted;
        continue;
      }
      const m = tx.alloc(n);
      const src = lane.rxBytes;
      const dst = lane.txBytes;
      let k = 0;
      for (let i = 0; i < m; i++) {
        const len = rx.lengths[i];
        if (len > lane.txRoom) continue;
        const from = rx.addrs[i];
        const to = tx.addrs[k];
        src.copy(dst, to, from, from + len);
        tx.lengths[k] = len;
        k++;
      }
      rx.release(n);
      if (k < m) tx.release(m - k, k);
      if (macswap) swapMacs(dst, tx.addrs, k);
      const posted = k > 0 ? tx.transmit(k, 0, true) : 0;
      if (posted < n) lane.dropped[lane.droppedIndex] += n - posted;
    }
    return moved;
  }

  #generate(): number {
    const { rate, count } = this.#tx;
    const now = performance.now();
    const dt = (now - this.#lastRefill) / 1000;
    this.#lastRefill = now;
    let moved = 0;
    for (let p = 0; p < this.#generators.length; p++) {
      let budget = Infinity;
      if (rate !== undefined) {
        // Token bucket holding at most ~10 ms (or one burst) of frames.
        const cap = Math.max(this.#generators[p][0].queue.burstSize, rate / 100);
        this.#tokens[p] = Math.min(cap, this.#tokens[p] + rate * dt);
        budget = Math.floor(this.#tokens[p]);
      }
      if (count !== undefined) budget = Math.min(budget, count - this.#generated[p]);
      for (const g of this.#generators[p]) {
        if (budget <= 0) break;
        const q = g.queue;
        const n = q.alloc(Math.min(q.burstSize, budget));
        if (n === 0) {
          q.reap();
          continue;
        }
        const t = g.template;
        const len = t.length;
        for (let i = 0; i < n; i++) {
          const at = q.addrs[i];
          t.copy(g.bytes, at);
          const seq = g.seq++;
          g.bytes[at + TX_SEQ_OFFSET] = seq >>> 24;
          g.bytes[at + TX_SEQ_OFFSET + 1] = (seq >>> 16) & 0xff;
          g.bytes[at + TX_SEQ_OFFSET + 2] = (seq >>> 8) & 0xff;
          g.bytes[at + TX_SEQ_OFFSET + 3] = seq & 0xff;
          q.lengths[i] = len;
        }
        const posted = q.transmit(n, 0, false);
        if (posted < n) {
          // Unsent frames go back unsent; their sequence numbers are reused.
          q.release(n - posted, posted);
          g.seq -= n - posted;
        }
        moved += posted;
        budget -= posted;
        this.#generated[p] += posted;
        if (rate !== undefined) this.#tokens[p] -= posted;
      }
    }
    return moved;
  }

  /** Let posted frames leave and completions come back (bounded). */
  async drain(maxMs = 200): Promise<void> {
    const deadline = Date.now() + maxMs;
    for (const t of this.tracked) {
      while (!t.port.closed && Date.now() < deadline) {
        let inFlight = 0;
        for (const q of t.port.queues) q.reap();
        const seen = new Set<number>();
        for (const q of t.port.queues) {
          if (seen.has(q.umemIndex)) continue;
          seen.add(q.umemIndex);
          const f = t.port.frames(q.umemIndex);
          inFlight += f.txRing + f.completionRing;
        }
        if (inFlight === 0) break;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }
}

// ------------------------------------------------------------- command

/** Ethernet header plus one VLAN tag: a frame is this much longer than the MTU. */
const L2_OVERHEAD = 14 + 4;

/**
 * What the start output warns about: frames the MTU allows but a UMEM frame
 * cannot hold (dropped), and busy polling through the Device Plugin (which
 * never closes the socket fd it receives with /config_busy_poll).
 */
export function startWarnings(ports: Port[]): string[] {
  const warnings: string[] = [];
  ports.forEach((port, i) => {
    const info = port.info();
    const room = info.frameSize - info.dataOffset;
    if (info.mtu + L2_OVERHEAD > room) {
      warnings.push(`port ${i} ${info.ifname}: MTU ${info.mtu} is larger than a frame holds (${room} bytes: frame size ` +
        `${info.frameSize} minus ${info.dataOffset} of headroom, so at most MTU ${room - L2_OVERHEAD}); frames over it are ` +
        `dropped until jumbo frames are supported; lower the MTU (ip link set dev ${info.ifname} mtu ${room - L2_OVERHEAD})` +
        (info.frameSize < 4096 ? ' or use --frame-size 4096' : ''));
    }
    if (port.config.source === 'cni' && port.config.busyBudget > 0) {
      warnings.push(`port ${i} ${info.ifname}: busy polling goes through the Device Plugin (use_cni with busy_budget=` +
        `${port.config.busyBudget}); the AF_XDP Device Plugin never closes the socket fd it receives with ` +
        '/config_busy_poll, so each run leaves its AF_XDP sockets (and their UMEM) open in the plugin until the plugin ' +
        'restarts; set busy_budget=0 to avoid it');
    }
  });
  return warnings;
}

function describeStart(ports: Port[], options: FwdOptions, metrics: MetricsServer | undefined, path: Forwarder['path'],
  warnings: string[]): object {
  return {
    type: 'start',
    forwardMode: options.mode,
    pollMode: options.pollMode,
    warnings,
    /** Between two ports: 'descriptor' (shared UMEM, no copy) or 'copy'. */
    ...(path === 'none' ? {} : { forwarding: path }),
    pid: process.pid,
    metrics: metrics?.url,
    ports: ports.map((port, i) => {
      const info = port.info();
      return {
        port: i,
        vdev: options.vdevs[i],
        iface: info.ifname,
        mac: info.mac,
        source: info.source,
        queues: info.queues,
        xdpMode: info.xdpMode,
        zeroCopy: info.zeroCopy,
        hugepages: info.hugepages,
        driver: info.driver,
        busyPoll: info.busyPoll,
        umemSharedWith: info.umemSharedWith,
        mtu: info.mtu,
      };
    }),
  };
}

function startLine(ports: Port[], options: FwdOptions, metrics: MetricsServer | undefined, path: Forwarder['path']): string {
  const parts = ports.map((port, i) => {
    const info = port.info();
    const zc = info.zeroCopy.every(Boolean) ? 'zero-copy' : 'copy mode';
    return `port ${i} ${info.ifname} (${info.mac}, ${info.source}, ${info.xdpMode}, ${zc}, queues ${info.queues.join(',')})`;
  });
  const how = path === 'descriptor' ? '; forwarding without copying (shared UMEM)'
    : path === 'copy' ? '; copying each packet between the ports\' UMEMs' : '';
  return `afxdp fwd: forward-mode ${options.mode}, poll-mode ${options.pollMode}; ${parts.join('; ')}${how}` +
    (metrics ? `; metrics at ${metrics.url}` : '') + ' (Ctrl-C to stop)';
}

function snapshotJson(type: 'stats' | 'final', s: Snapshot, extra: object = {}): string {
  return JSON.stringify({ type, ...extra, elapsed: s.elapsed, ports: s.ports });
}

/** Run `afxdp fwd`; resolves to the exit code. */
export async function fwd(argv: string[]): Promise<number> {
  const options = parseFwdArgs(argv);
  if (options === 'help') {
    console.log(fwdUsage);
    return 0;
  }
  return runForwarder(options);
}

export async function runForwarder(options: FwdOptions): Promise<number> {
  const began = performance.now();
  let ports: Port[] = [];
  let metrics: MetricsServer | undefined;
  let loop: PollLoop | undefined;
  const signals: [NodeJS.Signals, () => void][] = [];
  const timers: NodeJS.Timeout[] = [];
  // Signals are handled from the start, so one that arrives while the
  // ports open still ends in a clean close (an attached XDP program would
  // otherwise outlive the process). The abort ends a Device Plugin
  // handshake at once.
  let reason: string | undefined;
  const opening = new AbortController();
  const stop = (why: string) => {
    reason ??= why;
    opening.abort(new Error(`afxdp fwd stopped by ${why}`));
    loop?.stop();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as NodeJS.Signals[]) {
    const handler = () => stop(signal);
    process.on(signal, handler);
    signals.push([signal, handler]);
  }
  try {
    try {
      ports = await openPorts(options.specs, { signal: opening.signal });
    } catch (err) {
      if (reason === undefined || (err as { code?: unknown }).code !== 'ABORT_ERR') throw err;
      // Stopped while opening (e.g. during a Device Plugin handshake): every
      // port, connection and fd is already released.
      const elapsed = Math.round(performance.now() - began) / 1000;
      if (options.json) {
        console.log(JSON.stringify({ type: 'final', reason, forwardMode: options.mode, pollMode: options.pollMode, opened: false, elapsed, ports: [] }));
      } else {
        console.log(`afxdp fwd: ${reason} while opening the ports; stopped after ${elapsed.toFixed(1)} s, nothing left open`);
      }
      return 0;
    }
    const forwarder = new Forwarder(ports, options.mode, options.tx);
    const tracker = new StatsTracker(forwarder.tracked);
    if (options.metricsPort !== undefined) {
      metrics = await serveMetrics(metricsRegistry(forwarder.tracked), options.metricsPort, options.metricsHost);
    }
    const live = !options.json && process.stdout.isTTY ? new LiveTable(process.stdout) : undefined;
    const warnings = startWarnings(ports);
    if (options.json) console.log(JSON.stringify(describeStart(ports, options, metrics, forwarder.path, warnings)));
    else {
      console.log(startLine(ports, options, metrics, forwarder.path));
      for (const warning of warnings) console.log(`afxdp fwd: warning: ${warning}`);
    }

    // Forwarding modes sleep on the rx rings' readiness; txonly has nothing
    // to wait on (a rate limit or a full ring), so its sleeps are 1 ms polls.
    const wakeOn = options.mode === 'txonly' ? [] : ports.flatMap((p) => p.queues);
    loop = new PollLoop(wakeOn, () => forwarder.step(), { pollMode: options.pollMode });
    if (reason !== undefined) loop.stop();
    if (options.duration !== undefined) timers.push(setTimeout(() => stop('duration'), options.duration * 1000));
    const title = `afxdp fwd ${options.mode}`;
    const report = () => {
      const s = tracker.snapshot();
      if (options.json) console.log(snapshotJson('stats', s));
      else if (live) live.draw(table(s, title));
      else for (const line of plainLines(s)) console.log(line);
    };
    if (options.statsPeriod > 0) timers.push(setInterval(report, options.statsPeriod * 1000));

    await loop.done;
    for (const t of timers) clearTimeout(t);
    await forwarder.drain();
    tracker.freeze();
    const final = tracker.snapshot(true);
    if (options.json) {
      console.log(snapshotJson('final', final, { reason: reason ?? 'stopped', forwardMode: options.mode, pollMode: options.pollMode }));
    } else {
      if (live) live.draw(table(final, `${title}: final totals, average rates`));
      else {
        console.log(`afxdp fwd: ${reason ?? 'stopped'}; totals after ${final.elapsed.toFixed(1)} s (average rates):`);
        for (const line of plainLines(final)) console.log(line);
      }
    }
    return 0;
  } finally {
    loop?.stop();
    for (const t of timers) clearTimeout(t);
    for (const [signal, handler] of signals) process.off(signal, handler);
    await metrics?.close();
    for (const port of ports) port.close();
  }
}
