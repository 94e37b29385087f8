// Per-port statistics of the forwarder: counters since the start, rates
// over the last period, and three renderings: a live table (TTY), plain
// lines (pipes, logs) and JSON (one object per line).
import type { PortStats, QueueStats } from '../port';
import type { ForwardedPort } from '../fwd';

export type XdpCounters = QueueStats['xdp'];

export interface QueueSnapshot {
  queue: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Packets the forwarder dropped because this queue's tx ring was full. */
  txDropped: number;
  xdp: XdpCounters;
  zeroCopy: boolean;
}

export interface PortSnapshot {
  port: number;
  iface: string;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
  /** Everything the kernel dropped on receive (XDP rx_dropped + rx_ring_full). */
  rxMissed: number;
  rxPps: number;
  txPps: number;
  rxBps: number;
  txBps: number;
  xdp: XdpCounters;
  queues: QueueSnapshot[];
}

export interface Snapshot {
  /** Seconds since the forwarder started. */
  elapsed: number;
  ports: PortSnapshot[];
}

/** A port plus the forwarder's own per-queue drop counters. */
export type TrackedPort = ForwardedPort;

export class StatsTracker {
  readonly #ports: readonly TrackedPort[];
  readonly #started: number;
  #last: { time: number; rx: number[]; tx: number[]; rxB: number[]; txB: number[] };
  /** Final counters, kept once the ports close. */
  #frozen: PortStats[] | undefined;

  constructor(ports: readonly TrackedPort[], now = Date.now()) {
    this.#ports = ports;
    this.#started = now;
    const zero = ports.map(() => 0);
    this.#last = { time: now, rx: [...zero], tx: [...zero], rxB: [...zero], txB: [...zero] };
  }

  /** Keep the current counters (call before closing the ports). */
  freeze(): void {
    this.#frozen = this.#ports.map((t) => t.port.stats());
  }

  /** Counters now and rates since the previous call (or, with `overall`, since the start). */
  snapshot(overall = false, now = Date.now()): Snapshot {
    const since = overall ? this.#started : this.#last.time;
    const dt = Math.max(0.001, (now - since) / 1000);
    const ports = this.#ports.map((tracked, i): PortSnapshot => {
      const stats = this.#frozen?.[i] ?? tracked.port.stats();
      const info = tracked.port.config;
      const zeroCopy = this.#frozen === undefined ? tracked.port.info().zeroCopy : [];
      const queues = stats.queues.map((q, k): QueueSnapshot => ({
        queue: q.queueId,
        rxPackets: q.rxPackets,
        rxBytes: q.rxBytes,
        txPackets: q.txPackets,
        txBytes: q.txBytes,
        txDropped: tracked.txDropped[k] ?? 0,
        xdp: { ...q.xdp },
        zeroCopy: zeroCopy[k] ?? false,
      }));
      const base = overall
        ? { rx: 0, tx: 0, rxB: 0, txB: 0 }
        : { rx: this.#last.rx[i] ?? 0, tx: this.#last.tx[i] ?? 0, rxB: this.#last.rxB[i] ?? 0, txB: this.#last.txB[i] ?? 0 };
      return {
        port: i,
        iface: info.iface,
        rxPackets: stats.rxPackets,
        rxBytes: stats.rxBytes,
        txPackets: stats.txPackets,
        txBytes: stats.txBytes,
        txDropped: queues.reduce((s, q) => s + q.txDropped, 0),
        rxMissed: stats.xdp.rxDropped + stats.xdp.rxRingFull,
        rxPps: Math.round((stats.rxPackets - base.rx) / dt),
        txPps: Math.round((stats.txPackets - base.tx) / dt),
        rxBps: Math.round(((stats.rxBytes - base.rxB) * 8) / dt),
        txBps: Math.round(((stats.txBytes - base.txB) * 8) / dt),
        xdp: { ...stats.xdp },
        queues,
      };
    });
    if (!overall) {
      this.#last = {
        time: now,
        rx: ports.map((p) => p.rxPackets),
        tx: ports.map((p) => p.txPackets),
        rxB: ports.map((p) => p.rxBytes),
        txB: ports.map((p) => p.txBytes),
      };
    }
    return { elapsed: Math.round((now - this.#started) / 10) / 100, ports };
  }
}

// ------------------------------------------------------------- rendering

const XDP_LABELS: [keyof XdpCounters, string][] = [
  ['rxDropped', 'rx_dropped'],
  ['rxRingFull', 'rx_ring_full'],
  ['rxFillRingEmptyDescs', 'rx_fill_ring_empty'],
  ['rxInvalidDescs', 'rx_invalid'],
  ['txInvalidDescs', 'tx_invalid'],
  ['txRingEmptyDescs', 'tx_ring_empty'],
];

export function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** One line per port, for logs and pipes. */
export function plainLines(s: Snapshot): string[] {
  return s.ports.map((p) => {
    const xdp = XDP_LABELS.map(([k, label]) => `${label}=${p.xdp[k]}`).join(' ');
    return `[${s.elapsed.toFixed(1)}s] port ${p.port} (${p.iface}): ` +
      `rx ${p.rxPackets} pkts ${p.rxBytes} B ${p.rxPps} pps | ` +
      `tx ${p.txPackets} pkts ${p.txBytes} B ${p.txPps} pps | ` +
      `tx_dropped ${p.txDropped} | xdp ${xdp}`;
  });
}

/** The live table, testpmd's port statistics laid out side by side. */
export function table(s: Snapshot, title: string): string[] {
  const head = ['', ...s.ports.map((p) => `port ${p.port} ${p.iface}`)];
  const rows: [string, (p: PortSnapshot) => string][] = [
    ['RX-packets', (p) => String(p.rxPackets)],
    ['RX-pps', (p) => human(p.rxPps)],
    ['RX-bytes', (p) => human(p.rxBytes)],
    ['RX-missed', (p) => String(p.rxMissed)],
    ['TX-packets', (p) => String(p.txPackets)],
    ['TX-pps', (p) => human(p.txPps)],
    ['TX-bytes', (p) => human(p.txBytes)],
    ['TX-dropped', (p) => String(p.txDropped)],
    ...XDP_LABELS.map(([k, label]): [string, (p: PortSnapshot) => string] => [`xdp ${label}`, (p) => String(p.xdp[k])]),
  ];
  const cells = [head, ...rows.map(([label, f]) => [label, ...s.ports.map(f)])];
  const widths = head.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('   ');
  return [`${title}  (${s.elapsed.toFixed(1)} s)`, ...cells.map(line)];
}

/** Rewrites the previous table in place on a terminal. */
export class LiveTable {
  #lines = 0;
  constructor(private readonly out: NodeJS.WriteStream) {}

  draw(lines: string[]): void {
    let text = '';
    if (this.#lines > 0) text += `\x1b[${this.#lines}A`;
    for (const l of lines) text += `\x1b[2K${l}\n`;
    this.out.write(text);
    this.#lines = lines.length;
  }
}
