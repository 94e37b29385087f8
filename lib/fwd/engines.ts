// Forward engines, as dpdk-testpmd has them (`struct fwd_engine`): one
// object per --forward-mode. An engine forwards one burst on one lane
// (testpmd's packet_fwd on a fwd_stream) and may prepare its lanes once
// before the first burst (port_fwd_begin). A new mode is one engine object
// plus one line in ENGINE_TABLE.
//
// forward() runs once per lane per loop step: it allocates nothing and makes
// the same native calls per burst as a hand-written loop would.
import { AfxdpError, codes } from '../errors';
import type { Lane } from './lane';
import { sendReceived } from './lane';
import { txFrame, TX_SEQ_OFFSET } from './txframe';

const XDP_PKT_CONTD = 1;

/** What an engine's begin() may read of a port. */
export interface EnginePortInfo {
  mac: string;
  frameSize: number;
  dataOffset: number;
  /** Multi-buffer sockets: frames longer than a UMEM frame go out as chains. */
  multiBuffer?: boolean;
}

/** txonly's frames (testpmd's --txpkts, --eth-peer, --tx-ip, --tx-udp, plus rate and count). */
export interface TxConfig {
  /** Frame length without the FCS. */
  length: number;
  /** Destination MAC per port (default 02:00:00:00:00:01). */
  dstMacs: (Buffer | undefined)[];
  /** Source MAC (default: the port's MAC). */
  srcMac: Buffer | undefined;
  srcIp: Buffer;
  dstIp: Buffer;
  srcPort: number;
  dstPort: number;
  /** At most this many frames per second per port. */
  rate: number | undefined;
  /** Stop generating after this many frames per port. */
  count: number | undefined;
}

export interface EngineOptions {
  /** txonly: the frames to generate (default: 64-byte UDP frames as testpmd's). */
  tx?: TxConfig;
}

export interface ForwardEngine {
  /** The --forward-mode name, as testpmd's. */
  readonly name: string;
  /** One line for usage texts. */
  readonly summary: string;
  /**
   * A forwarding engine (true) gets a lane from each rx queue to the peer
   * port's tx queue, and a sleeping loop wakes on rx readiness. A generator
   * (false) gets one lane per queue (rx = tx) and nothing to wait on.
   */
  readonly receives: boolean;
  /** testpmd's port_fwd_begin: check and prepare the lanes once; throws AfxdpError for a setup it cannot run. */
  begin?(lanes: readonly Lane[], ports: readonly EnginePortInfo[], options: EngineOptions): void;
  /** testpmd's packet_fwd: one burst on `lane`; returns the packets moved. */
  forward(lane: Lane): number;
}

const io = {
  name: 'io' as const,
  summary: 'receive, send unchanged',
  receives: true,
  forward(lane: Lane): number {
    const n = lane.rx.receive();
    if (n > 0) sendReceived(lane, n, false);
    return n;
  },
} satisfies ForwardEngine;

const macswap = {
  name: 'macswap' as const,
  summary: 'swap the Ethernet addresses, send',
  receives: true,
  forward(lane: Lane): number {
    const n = lane.rx.receive();
    if (n > 0) sendReceived(lane, n, true);
    return n;
  },
} satisfies ForwardEngine;

const rxonly = {
  name: 'rxonly' as const,
  summary: 'receive, drop',
  receives: true,
  forward(lane: Lane): number {
    const n = lane.rx.receive();
    if (n > 0) lane.rx.release(n);
    return n;
  },
} satisfies ForwardEngine;

/** The budget all lanes of one port draw from (rate and count are per port). */
class TxPortBudget {
  /** The lane that refills the budget, once per loop step. */
  lead: Lane;
  tokens = 0;
  lastRefill = performance.now();
  generated = 0;
  budget = 0;
  constructor(lead: Lane) {
    this.lead = lead;
  }
}

/** txonly's state of one lane. */
class TxGenerator {
  seq = 0;
  /** Descriptors per frame: 1, or a multi-buffer chain of `frags` fragments of at most `room` bytes. */
  readonly frags: number;
  constructor(readonly template: Buffer, readonly port: TxPortBudget, readonly rate: number | undefined,
    readonly count: number | undefined, readonly room: number) {
    this.frags = Math.ceil(template.length / room);
  }
}

/** The frames txonly sends by default: 64 bytes, testpmd's addresses. */
export const DEFAULT_TX: Readonly<TxConfig> = Object.freeze({
  length: 64,
  dstMacs: [],
  srcMac: undefined,
  srcIp: Buffer.from([198, 51, 100, 1]),
  dstIp: Buffer.from([198, 51, 100, 2]),
  srcPort: 9,
  dstPort: 9,
  rate: undefined,
  count: undefined,
});

const txonly = {
  name: 'txonly' as const,
  summary: 'generate IPv4/UDP frames with sequence numbers, send',
  receives: false,
  begin(lanes: readonly Lane[], ports: readonly EnginePortInfo[], options: EngineOptions): void {
    const tx = options.tx ?? DEFAULT_TX;
    const rooms = ports.map((info) => info.frameSize - info.dataOffset);
    const templates = ports.map((info, p) => {
      const room = rooms[p]!;
      if (tx.length > room && info.multiBuffer !== true) {
        throw new AfxdpError(codes.INVALID_ARGUMENT,
          `--txpkts ${tx.length} does not fit in a ${info.frameSize}-byte frame (room for ${room} bytes) and the port ` +
          `is not multi-buffer; use --txpkts ${room} or less${info.frameSize < 4096 ? ', --frame-size 4096' : ''}, or ` +
          'a jumbo MTU on the interface (multiBuffer auto turns on) to send the frame as a chain', { argument: 'txpkts' });
      }
      return txFrame({
        length: tx.length,
        srcMac: tx.srcMac ?? Buffer.from(info.mac.split(':').map((h) => parseInt(h, 16))),
        dstMac: tx.dstMacs[p] ?? Buffer.from([2, 0, 0, 0, 0, 1]),
        srcIp: tx.srcIp,
        dstIp: tx.dstIp,
        srcPort: tx.srcPort,
        dstPort: tx.dstPort,
      });
    });
    const budgets = new Map<number, TxPortBudget>();
    for (const lane of lanes) {
      let budget = budgets.get(lane.txPort);
      if (budget === undefined) {
        budget = new TxPortBudget(lane);
        budgets.set(lane.txPort, budget);
      }
      lane.state = new TxGenerator(templates[lane.txPort]!, budget, tx.rate, tx.count, rooms[lane.txPort]!);
    }
  },
  forward(lane: Lane): number {
    const g = lane.state as TxGenerator;
    const port = g.port;
    const rate = g.rate;
    if (port.lead === lane) {
      // Once per step and port: the budget of this port's lanes.
      let budget = Infinity;
      if (rate !== undefined) {
        // Token bucket holding at most ~10 ms (or one burst) of frames.
        const now = performance.now();
        const dt = (now - port.lastRefill) / 1000;
        port.lastRefill = now;
        const cap = Math.max(lane.tx.burstSize, rate / 100);
        port.tokens = Math.min(cap, port.tokens + rate * dt);
        budget = Math.floor(port.tokens);
      }
      if (g.count !== undefined) budget = Math.min(budget, g.count - port.generated);
      port.budget = budget;
    }
    if (port.budget <= 0) return 0;
    const q = lane.tx;
    const frags = g.frags;
    if (frags > 1) return txChains(g, q, lane.txBytes, port, rate);
    const n = q.alloc(Math.min(q.burstSize, port.budget));
    if (n === 0) {
      // Every frame is on the tx ring or the completion ring: push the
      // ring (copy mode drains only on a kick) and reap.
      q.flushTx();
      return 0;
    }
    const t = g.template;
    const len = t.length;
    const bytes = lane.txBytes;
    const addrs = q.addrs, lengths = q.lengths;
    for (let i = 0; i < n; i++) {
      const at = addrs[i]!;
      t.copy(bytes, at);
      const seq = g.seq++;
      bytes[at + TX_SEQ_OFFSET] = seq >>> 24;
      bytes[at + TX_SEQ_OFFSET + 1] = (seq >>> 16) & 0xff;
      bytes[at + TX_SEQ_OFFSET + 2] = (seq >>> 8) & 0xff;
      bytes[at + TX_SEQ_OFFSET + 3] = seq & 0xff;
      lengths[i] = len;
    }
    const posted = q.transmit(n, 0, false);
    if (posted < n) {
      // Unsent frames go back unsent; their sequence numbers are reused.
      q.release(n - posted, posted);
      g.seq -= n - posted;
    }
    port.budget -= posted;
    port.generated += posted;
    if (rate !== undefined) port.tokens -= posted;
    return posted;
  },
} satisfies ForwardEngine;

// txonly's frames longer than a UMEM frame: chains of `frags` fragments
// (XDP_PKT_CONTD on all but the last), as many whole chains as a burst
// holds; the sequence number sits in the first fragment. Returns frames sent.
function txChains(g: TxGenerator, q: Lane['tx'], bytes: Buffer, port: TxPortBudget, rate: number | undefined): number {
  const frags = g.frags;
  const room = g.room;
  const frames = Math.min(Math.floor(q.burstSize / frags), port.budget);
  if (frames === 0) {
    throw new AfxdpError(codes.INVALID_ARGUMENT,
      `a ${g.template.length}-byte frame is a chain of ${frags} fragments, more than the burst size ${q.burstSize}; raise --burst`,
      { argument: 'txpkts' });
  }
  const got = q.alloc(frames * frags);
  const whole = Math.floor(got / frags);
  const n = whole * frags;
  if (got > n) q.release(got - n, n);
  if (whole === 0) {
    q.flushTx();
    return 0;
  }
  const t = g.template;
  const len = t.length;
  const addrs = q.addrs, lengths = q.lengths, options = q.options;
  for (let p = 0; p < whole; p++) {
    const base = p * frags;
    for (let f = 0; f < frags; f++) {
      const at = addrs[base + f]!;
      const from = f * room;
      const to = Math.min(len, from + room);
      t.copy(bytes, at, from, to);
      lengths[base + f] = to - from;
      options[base + f] = f < frags - 1 ? XDP_PKT_CONTD : 0;
    }
    const at = addrs[base]!;
    const seq = g.seq++;
    bytes[at + TX_SEQ_OFFSET] = seq >>> 24;
    bytes[at + TX_SEQ_OFFSET + 1] = (seq >>> 16) & 0xff;
    bytes[at + TX_SEQ_OFFSET + 2] = (seq >>> 8) & 0xff;
    bytes[at + TX_SEQ_OFFSET + 3] = seq & 0xff;
  }
  const posted = q.transmit(n, 0, false);
  if (posted < n) {
    q.release(n - posted, posted);
    g.seq -= (n - posted) / frags;
  }
  const sent = posted / frags;
  port.budget -= sent;
  port.generated += sent;
  if (rate !== undefined) port.tokens -= sent;
  return sent;
}

// The table: one line per mode, in testpmd's order of our four.
const ENGINE_TABLE = [io, macswap, rxonly, txonly] as const;

export type ForwardMode = (typeof ENGINE_TABLE)[number]['name'];
/** The --forward-mode names, the first the default. */
export const FORWARD_MODES: readonly ForwardMode[] = Object.freeze(ENGINE_TABLE.map((e) => e.name));
/** Every engine by its mode name. */
export const ENGINES: Readonly<Record<ForwardMode, ForwardEngine>> = Object.freeze(
  Object.fromEntries(ENGINE_TABLE.map((e) => [e.name, e])) as Record<ForwardMode, ForwardEngine>);

/** The engine of `mode`; throws ERR_AFXDP_INVALID_ARGUMENT naming the modes. */
export function engineOf(mode: string): ForwardEngine {
  if (Object.hasOwn(ENGINES, mode)) return ENGINES[mode as ForwardMode];
  throw new AfxdpError(codes.INVALID_ARGUMENT,
    `forward mode must be one of ${FORWARD_MODES.join(', ')}, not ${JSON.stringify(mode)}`, { argument: 'mode' });
}

/** Frames txonly generated on a lane's port so far (0 for other engines). */
export function generatedOn(lane: Lane): number {
  return lane.state instanceof TxGenerator ? lane.state.port.generated : 0;
}
