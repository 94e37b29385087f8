// What `afxdp fwd` prints: the start line (or JSON object) with its
// warnings, the periodic statistics and the final totals.
import type { Port, PortInfo } from '../port';
import type { Forwarder, ThreadReport } from '../fwd';
import type { MetricsServer } from './metrics';
import { LiveTable, plainLines, Snapshot, table } from './stats';

/** What the report shows of `afxdp fwd`'s options (FwdOptions has them). */
export interface ReportOptions {
  mode: string;
  pollMode: string;
  json: boolean;
  vdevs: readonly string[];
}

/** Forwarding threads (--nb-cores > 1): the queue indexes each serves, then what each reported. */
export interface ThreadsReport {
  assignment: readonly number[][];
  reports?: readonly ThreadReport[];
}

function threadsJson(t: ThreadsReport | undefined): object {
  if (t === undefined) return { nbCores: 1 };
  return {
    nbCores: t.assignment.length,
    threads: t.reports !== undefined && t.reports.length > 0 ? t.reports.map((r) => ({
      thread: r.thread,
      threadId: r.threadId,
      queues: r.queues,
      cpuMs: Math.round(r.cpuMs),
      cpuPct: Math.round((1000 * r.cpuMs) / Math.max(1, r.elapsedMs)) / 10,
    })) : t.assignment.map((queues, thread) => ({ thread, queueIndexes: queues })),
  };
}

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
    if (info.mtuWarning !== undefined) {
      warnings.push(`port ${i} ${info.iface}: MTU ${info.mtu} is larger than a frame holds (${room} bytes: frame size ` +
        `${info.frameSize} minus ${info.dataOffset} of headroom, so at most MTU ${room - L2_OVERHEAD}) and multi-buffer ` +
        `is off: frames over it are dropped; use --multi-buffer auto or on (Linux >= 6.6) to forward them as chains of ` +
        `frames, or lower the MTU (ip link set dev ${info.iface} mtu ${room - L2_OVERHEAD})` +
        (info.frameSize < 4096 ? ' or use --frame-size 4096' : ''));
    }
    if (port.config.source === 'cni' && port.config.busyBudget > 0) {
      warnings.push(`port ${i} ${info.iface}: busy polling goes through the Device Plugin (use_cni with busy_budget=` +
        `${port.config.busyBudget}); the AF_XDP Device Plugin never closes the socket fd it receives with ` +
        '/config_busy_poll, so each run leaves its AF_XDP sockets (and their UMEM) open in the plugin until the plugin ' +
        'restarts; set busy_budget=0 to avoid it');
    }
  });
  return warnings;
}

function describeStart(ports: Port[], options: ReportOptions, metrics: MetricsServer | undefined, path: Forwarder['path'],
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
        iface: info.iface,
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
        multiBuffer: info.multiBuffer,
        ...(info.xdpZcMaxSegs === undefined ? {} : { xdpZcMaxSegs: info.xdpZcMaxSegs }),
        ...(info.dpPath === undefined ? {} : { dpPath: info.dpPath, dpPathOrigin: info.dpPathOrigin }),
      };
    }),
  };
}

/** How the start line says where a port's dp_path came from. */
const DP_PATH_ORIGIN: Record<NonNullable<PortInfo['dpPathOrigin']>, string> = {
  explicit: 'given',
  default: 'default',
  'runtime-dir': 'found in the DPDK runtime directory',
  tmp: 'default /tmp/afxdp_dp; none in the DPDK runtime directory',
};

function startLine(ports: Port[], options: ReportOptions, metrics: MetricsServer | undefined, path: Forwarder['path']): string {
  const parts = ports.map((port, i) => {
    const info = port.info();
    const zc = (info.zeroCopy.every(Boolean) ? 'zero-copy' : 'copy mode') + (info.multiBuffer ? ', multi-buffer' : '');
    const dp = info.dpPath === undefined ? '' : `, dp_path ${info.dpPath} (${DP_PATH_ORIGIN[info.dpPathOrigin ?? 'explicit']})`;
    return `port ${i} ${info.iface} (${info.mac}, ${info.source}, ${info.xdpMode}, ${zc}, queues ${info.queues.join(',')}${dp})`;
  });
  const how = path === 'descriptor' ? '; forwarding without copying (shared UMEM)'
    : path === 'copy' ? '; copying each packet between the ports\' UMEMs' : '';
  return `afxdp fwd: forward-mode ${options.mode}, poll-mode ${options.pollMode}; ${parts.join('; ')}${how}` +
    (metrics ? `; metrics at ${metrics.url}` : '') + ' (Ctrl-C to stop)';
}

/** Prints the start, each period's statistics and the final totals, as text, a live table or JSON lines. */
export class FwdReport {
  readonly #options: ReportOptions;
  readonly #live: LiveTable | undefined;
  readonly #title: string;

  constructor(options: ReportOptions) {
    this.#options = options;
    this.#live = !options.json && process.stdout.isTTY ? new LiveTable(process.stdout) : undefined;
    this.#title = `afxdp fwd ${options.mode}`;
  }

  start(ports: Port[], forwarder: Pick<Forwarder, 'path'>, metrics: MetricsServer | undefined, threads?: ThreadsReport): void {
    const warnings = startWarnings(ports);
    if (this.#options.json) {
      console.log(JSON.stringify({ ...describeStart(ports, this.#options, metrics, forwarder.path, warnings), ...threadsJson(threads) }));
      return;
    }
    const on = threads === undefined ? ''
      : `; ${threads.assignment.length} forwarding threads (queue indexes ${threads.assignment.map((q) => q.join(',')).join(' | ')})`;
    console.log(startLine(ports, this.#options, metrics, forwarder.path) + on);
    for (const warning of warnings) console.log(`afxdp fwd: warning: ${warning}`);
  }

  /** Stopped while the ports were opening: every port, connection and fd is already released. */
  stoppedOpening(reason: string, elapsed: number): void {
    const o = this.#options;
    if (o.json) {
      console.log(JSON.stringify({ type: 'final', reason, forwardMode: o.mode, pollMode: o.pollMode, opened: false, elapsed, ports: [] }));
    } else {
      console.log(`afxdp fwd: ${reason} while opening the ports; stopped after ${elapsed.toFixed(1)} s, nothing left open`);
    }
  }

  period(s: Snapshot): void {
    if (this.#options.json) console.log(JSON.stringify({ type: 'stats', elapsed: s.elapsed, ports: s.ports }));
    else if (this.#live) this.#live.draw(table(s, this.#title));
    else for (const line of plainLines(s)) console.log(line);
  }

  final(s: Snapshot, reason: string, threads?: ThreadsReport): void {
    const o = this.#options;
    if (o.json) {
      console.log(JSON.stringify({ type: 'final', reason, forwardMode: o.mode, pollMode: o.pollMode, elapsed: s.elapsed, ports: s.ports,
        ...threadsJson(threads) }));
    } else if (this.#live) {
      this.#live.draw(table(s, `${this.#title}: final totals, average rates`));
    } else {
      console.log(`afxdp fwd: ${reason}; totals after ${s.elapsed.toFixed(1)} s (average rates):`);
      for (const line of plainLines(s)) console.log(line);
      for (const r of threads?.reports ?? []) {
        console.log(`  thread ${r.thread} (queues ${r.queues.map((q) => q.join(',')).join(' / ')}): ` +
          `${(r.cpuMs / 1000).toFixed(2)} s CPU, ${((100 * r.cpuMs) / Math.max(1, r.elapsedMs)).toFixed(1)} % of a core`);
      }
    }
  }
}
