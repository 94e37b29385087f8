// `afxdp fwd`: a testpmd-style forwarder over AF_XDP ports: the arguments
// and the run. The data path is lib/fwd (one engine per --forward-mode over
// lanes between the ports, scheduled by PollLoop under --poll-mode); what is
// printed is fwd-report.ts.
//
// One --vdev forwards back out of the same port (testpmd with one port);
// two forward between each other, by descriptor when they share a UMEM
// (both --vdev with shared_umem=1), else copying each packet (lib/fwd/lane.ts).
import { parseArgs } from 'node:util';
import { openPorts, Port } from '../port';
import { DEFAULT_TX, ENGINES, Forwarder, FORWARD_MODES, ForwardMode, PollLoop, ThreadedForwarder, TX_MAX_LENGTH, TX_MIN_LENGTH } from '../fwd';
import type { TxConfig } from '../fwd';
import { POLL_MODES, PollMode } from '../port/poll-policy';
import { defaults as portDefaults, resolvePortConfig } from '../config/port-config';
import type { PortConfig, PortOptions } from '../config/port-config';
import { limits } from '../config/limits';
import { devargsHelp, MULTI_BUFFER_MODES } from '../config/options';
import type { MultiBufferMode } from '../config/options';
import { AfxdpError } from '../errors';
import { UsageError } from './usage';
import { dropPastedWords, integer, ipv4, mac, seconds, udpPort } from './args';
import { StatsTracker } from './stats';
import { metricsRegistry, serveMetrics, MetricsServer } from './metrics';
import { FwdReport } from './fwd-report';

export { FORWARD_MODES };
export type { ForwardMode, TxConfig };

const MODES_HELP = FORWARD_MODES.map((m) => `${m.padEnd(9)}${ENGINES[m].summary}`).join('\n                            ');

export const fwdUsage = `Usage: afxdp fwd --vdev DEVARGS [--vdev DEVARGS] [options]

Forward packets between AF_XDP ports, like dpdk-testpmd. DEVARGS are DPDK's
net_af_xdp arguments, e.g. net_af_xdp0,iface=eth1,queue_count=2 (the keys
are listed at the end).
One --vdev sends packets back out of the same port; two forward between them,
without copying when both say shared_umem=1 (one UMEM, Linux >= 5.10),
else copying each packet into the other port's UMEM.

  --vdev DEVARGS          a port (once or twice); --vdev=... works too
  --forward-mode MODE     ${FORWARD_MODES[0]} (default), ${FORWARD_MODES.slice(1, -1).join(', ')} or ${FORWARD_MODES.at(-1)}:
                            ${MODES_HELP}
  --poll-mode POLICY      busy (spin on the rings: a core, lowest latency), event (sleep on
                          readiness at once: least CPU) or adaptive (default: spin while
                          packets come and a short window after, then sleep)
  --nb-cores N            forwarding threads (default 1): each serves the queue indexes k
                          with k mod N = its number, of every port, on its own core; at most
                          one per queue. The ports and any Device Plugin session stay on the
                          main thread
  --burst N               packets per burst, 1-${limits.maxBurstSize} (default 64)
  --stats-period S        print statistics every S seconds (default 1; 0 = only at the end)
  --duration S            stop after S seconds (default: run until SIGINT/SIGTERM)
  --json                  one JSON object per line: start, one per period, final
  --metrics-port P        serve Prometheus metrics at http://127.0.0.1:P/metrics (0 = any free port)
  --metrics-host H        address for --metrics-port (default 127.0.0.1)
  --netns NS              open the ports in network namespace NS (/run/netns/NS or a path);
                          give it once for every port or once per --vdev, in order
  --frame-count N         UMEM frames per queue (default 4096)
  --frame-size B          UMEM frame size, 2048 or 4096 (default 4096)
  --multi-buffer MODE     jumbo frames as chains of frames (XDP_USE_SG, Linux >= 6.6): auto (default:
                          on when the MTU needs more than a frame), on or off
  --pod-name NAME         pod name sent to the Device Plugin (default: the host name)
  --file-prefix PREFIX    DPDK's EAL file prefix (default rte): use_cni/use_pinned_map ports
                          without dp_path look first in <runtime dir>/dpdk/PREFIX/afxdp_dp/
                          (DPDK 26.11), then in /tmp/afxdp_dp/

txonly (64-byte IPv4/UDP frames, as testpmd):
  --txpkts LEN            frame length without FCS (default 64, at most ${TX_MAX_LENGTH}); "a,b" segment lists
                          are summed; a frame longer than a UMEM frame is sent as a multi-buffer chain
  --eth-peer [N,]MAC      destination MAC (of port N; default 02:00:00:00:00:01)
  --eth-src MAC           source MAC (default: the port's MAC)
  --tx-ip SRC,DST         IPv4 addresses (default 198.51.100.1,198.51.100.2)
  --tx-udp SRC[,DST]      UDP ports (default 9,9)
  --tx-rate PPS           at most PPS frames per second per port (default: as fast as possible)
  --tx-count N            stop generating after N frames per port (keeps running for stats)

  -h, --help              this text

Accepted and ignored, so a testpmd line can be pasted: --, -i, -a, --auto-start,
--rxq, --txq, -l, --no-pci, --no-mlockall, --in-memory.
Exit: 0 after SIGINT, SIGTERM or --duration (final totals printed; also when
stopped while the ports open, e.g. during a Device Plugin handshake);
1 when a port cannot be opened or fails; 2 for bad arguments.

DEVARGS keys (docs/options.md has the afxdp extensions and the rules):
${devargsHelp()}`;

export interface FwdOptions {
  specs: PortConfig[];
  vdevs: string[];
  mode: ForwardMode;
  pollMode: PollMode;
  /** Forwarding threads (testpmd's --nb-cores). */
  nbCores: number;
  statsPeriod: number;
  duration: number | undefined;
  json: boolean;
  metricsPort: number | undefined;
  metricsHost: string;
  tx: TxConfig;
}

/**
 * The config of one --vdev plus the command's own options (--burst,
 * --netns ...): the string is parsed once here, and openPorts takes the
 * resolved config as it is. Bad input exits 2 with the usage.
 */
function portSpec(vdev: string, extra: Partial<PortOptions>): PortConfig {
  try {
    return resolvePortConfig(vdev, extra);
  } catch (err) {
    if (!(err instanceof AfxdpError)) throw err;
    throw new UsageError(`--vdev ${JSON.stringify(vdev)}: ${err.message}`, fwdUsage);
  }
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
      'nb-cores': { type: 'string' },
      burst: { type: 'string' },
      'stats-period': { type: 'string' },
      duration: { type: 'string' },
      json: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      netns: { type: 'string', multiple: true },
      'frame-count': { type: 'string' },
      'frame-size': { type: 'string' },
      'multi-buffer': { type: 'string' },
      'pod-name': { type: 'string' },
      'file-prefix': { type: 'string' },
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
  const mode = (values['forward-mode'] ?? FORWARD_MODES[0]) as ForwardMode;
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
  const burst = integer('burst', values.burst, 1, limits.maxBurstSize, fwdUsage);
  const frameCount = integer('frame-count', values['frame-count'], 64, limits.maxFrameCount, fwdUsage);
  const frameSize = integer('frame-size', values['frame-size'], 2048, 4096, fwdUsage);
  if (frameSize !== undefined && frameSize !== 2048 && frameSize !== 4096) {
    throw new UsageError(`--frame-size must be 2048 or 4096, not ${frameSize}`, fwdUsage);
  }
  const multiBuffer = values['multi-buffer'] as MultiBufferMode | undefined;
  if (multiBuffer !== undefined && !MULTI_BUFFER_MODES.includes(multiBuffer)) {
    throw new UsageError(`--multi-buffer must be one of ${MULTI_BUFFER_MODES.join(', ')}, not ${JSON.stringify(multiBuffer)}`, fwdUsage);
  }
  const specs = vdevs.map((vdev, i): PortConfig => {
    const ns = netns.length === 1 ? netns[0] : netns[i];
    return portSpec(vdev, {
      ...(burst === undefined ? {} : { burstSize: burst }),
      ...(frameCount === undefined ? {} : { frameCount }),
      ...(frameSize === undefined ? {} : { frameSize: frameSize as 2048 | 4096 }),
      ...(multiBuffer === undefined ? {} : { multiBuffer }),
      ...(ns === undefined ? {} : { netns: ns }),
      ...(values['pod-name'] === undefined ? {} : { podName: values['pod-name'] }),
      ...(values['file-prefix'] === undefined ? {} : { filePrefix: values['file-prefix'] }),
    });
  });

  const length = values.txpkts === undefined ? DEFAULT_TX.length : values.txpkts.split(',').reduce((sum, part) => {
    const n = integer('txpkts', part, 1, TX_MAX_LENGTH, fwdUsage)!;
    return sum + n;
  }, 0);
  if (length > TX_MAX_LENGTH) throw new UsageError(`--txpkts must be at most ${TX_MAX_LENGTH} bytes (a jumbo frame), not ${length}`, fwdUsage);
  if (length < TX_MIN_LENGTH) throw new UsageError(`--txpkts must be at least ${TX_MIN_LENGTH} bytes (Ethernet, IPv4, UDP and the sequence number), not ${length}`, fwdUsage);
  const dstMacs: (Buffer | undefined)[] = vdevs.map(() => undefined);
  for (const peer of values['eth-peer'] ?? []) {
    const m = /^(?:([0-9]+),)?(.*)$/.exec(peer)!;
    const index = m[1] === undefined ? undefined : Number(m[1]);
    if (index !== undefined && index >= vdevs.length) throw new UsageError(`--eth-peer ${peer}: there is no port ${index}`, fwdUsage);
    const address = mac('eth-peer', m[2]!, fwdUsage);
    if (index === undefined) dstMacs.fill(address);
    else dstMacs[index] = address;
  }
  const [srcIp, dstIp] = values['tx-ip']?.split(',') ?? [];
  if (srcIp !== undefined && dstIp === undefined) throw new UsageError('--tx-ip takes SRC,DST', fwdUsage);
  const [srcPort, dstPort] = values['tx-udp']?.split(',') ?? [];
  const rate = integer('tx-rate', values['tx-rate'], 1, 1e9, fwdUsage);
  const count = integer('tx-count', values['tx-count'], 0, Number.MAX_SAFE_INTEGER, fwdUsage);
  const metricsPort = integer('metrics-port', values['metrics-port'], 0, 65535, fwdUsage);
  return {
    specs,
    vdevs,
    mode,
    pollMode,
    nbCores: integer('nb-cores', values['nb-cores'], 1, limits.maxQueueCount, fwdUsage) ?? 1,
    statsPeriod: seconds('stats-period', values['stats-period'], 0, fwdUsage) ?? 1,
    duration: seconds('duration', values.duration, 0, fwdUsage),
    json: values.json ?? false,
    metricsPort,
    metricsHost: values['metrics-host'] ?? '127.0.0.1',
    tx: {
      length,
      dstMacs,
      srcMac: values['eth-src'] === undefined ? undefined : mac('eth-src', values['eth-src'], fwdUsage),
      srcIp: srcIp === undefined ? DEFAULT_TX.srcIp : ipv4('tx-ip', srcIp, fwdUsage),
      dstIp: dstIp === undefined ? DEFAULT_TX.dstIp : ipv4('tx-ip', dstIp, fwdUsage),
      srcPort: srcPort === undefined ? DEFAULT_TX.srcPort : udpPort('tx-udp', srcPort, fwdUsage),
      dstPort: srcPort === undefined ? DEFAULT_TX.dstPort : udpPort('tx-udp', dstPort ?? srcPort, fwdUsage),
      rate,
      count,
    },
  };
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
  const report = new FwdReport(options);
  let ports: Port[] = [];
  let metrics: MetricsServer | undefined;
  let loop: PollLoop | undefined;
  let threaded: ThreadedForwarder | undefined;
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
    threaded?.stop();
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
      report.stoppedOpening(reason, Math.round(performance.now() - began) / 1000);
      return 0;
    }
    const threads = Math.min(options.nbCores, ports[0]!.queues.length);
    if (threads > 1) {
      threaded = await ThreadedForwarder.start(ports, options.mode, threads, { pollMode: options.pollMode, engine: { tx: options.tx } });
      if (reason !== undefined) threaded.stop();
    }
    const forwarder = threaded ?? new Forwarder(ports, options.mode, { tx: options.tx });
    const tracker = new StatsTracker(forwarder.ports);
    const fold = () => threaded?.refreshDrops();
    if (options.metricsPort !== undefined) {
      metrics = await serveMetrics(metricsRegistry(forwarder.ports), options.metricsPort, options.metricsHost);
      if (threaded !== undefined) timers.push(setInterval(fold, 1000).unref());
    }
    report.start(ports, forwarder, metrics, threaded);

    if (threaded === undefined) {
      loop = (forwarder as Forwarder).run({ pollMode: options.pollMode });
      if (reason !== undefined) loop.stop();
    }
    if (options.duration !== undefined) timers.push(setTimeout(() => stop('duration'), options.duration * 1000));
    if (options.statsPeriod > 0) {
      timers.push(setInterval(() => {
        fold();
        report.period(tracker.snapshot());
      }, options.statsPeriod * 1000));
    }

    if (threaded !== undefined) await threaded.done;
    else await loop!.done;
    for (const t of timers) clearTimeout(t);
    if (threaded === undefined) await (forwarder as Forwarder).drain();
    fold();
    tracker.freeze();
    report.final(tracker.snapshot(true), reason ?? 'stopped', threaded);
    return 0;
  } finally {
    loop?.stop();
    await threaded?.terminate();
    for (const t of timers) clearTimeout(t);
    for (const [signal, handler] of signals) process.off(signal, handler);
    await metrics?.close();
    for (const port of ports) port.close();
  }
}
