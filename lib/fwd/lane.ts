// A lane: one rx queue whose packets leave through one tx queue, testpmd's
// `struct fwd_stream`. How a received burst reaches the tx ring depends on
// where the two queues' frames live:
//
//   same        rx and tx are one queue: transmit the received slots as they are
//   descriptor  two queues on one UMEM (one port, or ports with shared_umem):
//               hand the received frames' descriptors to the other tx ring
//   copy        different UMEMs: copy each packet into a free frame of the
//               tx queue's UMEM (one memcpy, no allocation), free the rx frame
//
// Nothing here allocates per burst: the byte views are made once per lane.
//
// Multi-buffer chains (docs/api.md): a packet larger than a frame is a run
// of slots with XDP_PKT_CONTD on all but the last. Every path moves chains
// whole: the tx ring takes whole chains, macswap swaps the first fragment
// only, the copy path re-cuts each packet to the tx frames' room (a packet
// needing several frames on a port that is not multi-buffer is dropped
// whole). A chain longer than the whole burst
// (receive then delivers it across bursts, the last slot flagged) is
// dropped and counted: raise the burst size above the longest chain.
import { swapMacs } from '../port/macswap';
import type { Queue } from '../port/queue';
import type { PcapWriter } from '../pcap/writer';

/** What a lane uses of a queue: `Queue` has it; unit tests pass fakes. */
export type LaneQueue = Pick<Queue,
  'receive' | 'transmit' | 'alloc' | 'release' | 'reap' | 'flushTx' | 'addrs' | 'lengths' | 'options' | 'umem' | 'umemIndex' | 'burstSize' | 'index'>;

export type LanePath = 'same' | 'descriptor' | 'copy';

export interface LaneOptions {
  /** Room for packet data in a frame of `tx` (frame size minus headroom); longer packets are dropped when copied. */
  txRoom?: number;
  /** Where the lane counts the packets it drops (tx ring full, too long to copy): `dropped[droppedIndex]`. */
  dropped?: Float64Array;
  droppedIndex?: number;
  /** Position of the tx queue's port among the forwarder's ports. */
  txPort?: number;
  /** The tx port is multi-buffer (takes chains); default true. Chains copied to a port that is not are dropped. */
  txMultiBuffer?: boolean;
}

const CONTD = 1;

/** Packets among slots [from, to): the slots that end a packet. */
function packetsIn(options: Uint32Array, from: number, to: number): number {
  let p = 0;
  for (let i = from; i < to; i++) if ((options[i]! & CONTD) === 0) p++;
  return p;
}

function bytesOf(q: LaneQueue): Buffer {
  return Buffer.from(q.umem.buffer, q.umem.byteOffset, q.umem.byteLength);
}

export class Lane {
  readonly rx: LaneQueue;
  readonly tx: LaneQueue;
  /** rx and tx are one queue. */
  readonly same: boolean;
  /** rx and tx are different queues on one UMEM: forward by descriptor. */
  readonly byDescriptor: boolean;
  /** The rx and tx UMEMs as Buffers (one view each, made here). */
  readonly rxBytes: Buffer;
  readonly txBytes: Buffer;
  readonly txRoom: number;
  readonly dropped: Float64Array;
  readonly droppedIndex: number;
  readonly txPort: number;
  readonly txMultiBuffer: boolean;
  /** Receive ended inside a chain longer than the burst: its remaining fragments are dropped. */
  skipChain = false;
  /** First slot of the whole chains of the burst being sent (set by sendReceived). */
  start = 0;
  /** An engine's per-lane state, set by its begin() (txonly's generator). */
  state: unknown = undefined;
  /**
   * Where receiveBurst() writes what this lane receives (`afxdp fwd --pcap`),
   * or null: then capture costs one null check per burst.
   */
  capture: PcapWriter | null = null;

  constructor(rx: LaneQueue, tx: LaneQueue, options: LaneOptions = {}) {
    this.rx = rx;
    this.tx = tx;
    this.same = rx === tx;
    this.byDescriptor = rx !== tx && rx.umem.buffer === tx.umem.buffer;
    this.rxBytes = bytesOf(rx);
    this.txBytes = this.same ? this.rxBytes : bytesOf(tx);
    this.txRoom = options.txRoom ?? tx.umem.byteLength;
    this.dropped = options.dropped ?? new Float64Array(tx.index + 1);
    this.droppedIndex = options.droppedIndex ?? tx.index;
    this.txPort = options.txPort ?? 0;
    this.txMultiBuffer = options.txMultiBuffer ?? true;
  }

  get path(): LanePath {
    return this.same ? 'same' : this.byDescriptor ? 'descriptor' : 'copy';
  }

  /** Packets this lane dropped so far. */
  get droppedCount(): number {
    return this.dropped[this.droppedIndex]!;
  }
}

/**
 * Receive a burst on `lane.rx` (slots [0, n)); with a capture set, the
 * packets are written to it first, as received (before any engine changes
 * or sends them). Returns n. Allocates nothing when there is no capture.
 */
export function receiveBurst(lane: Lane): number {
  const rx = lane.rx;
  const n = rx.receive();
  const capture = lane.capture;
  if (n > 0 && capture !== null) {
    capture.write(lane.rxBytes, rx.addrs, rx.lengths, n);
    if (capture.full) lane.capture = null; // --pcap-count reached: the null check from now on
  }
  return n;
}

function countDropped(lane: Lane, n: number): void {
  lane.dropped[lane.droppedIndex] = lane.droppedCount + n;
}

/**
 * The part of received slots [0, n) that holds whole chains: [start, end).
 * Fragments of a chain longer than the burst (its head in an earlier burst,
 * or its end in a later one) are released here and the chain counted as
 * dropped once.
 */
function wholeChains(lane: Lane, n: number): number {
  const rx = lane.rx;
  const o = rx.options;
  let start = 0;
  if (lane.skipChain) {
    while (start < n && (o[start]! & CONTD) !== 0) start++;
    if (start < n) {
      start++; // the chain's last fragment
      lane.skipChain = false;
      countDropped(lane, 1);
    }
    if (start > 0) rx.release(start);
  }
  if (start < n && (o[n - 1]! & CONTD) !== 0) {
    let head = n - 1;
    while (head > start && (o[head - 1]! & CONTD) !== 0) head--;
    rx.release(n - head, head);
    lane.skipChain = true;
    n = head;
  }
  lane.start = start;
  return n;
}

/**
 * Send the `n` descriptors just received on `lane.rx` (its slots [0, n))
 * out through `lane.tx`, swapping the Ethernet addresses of each packet
 * first with `swap`. Every frame ends on the tx ring or back in its pool;
 * the packets the tx ring did not take are counted in `lane.dropped`.
 * Returns the descriptors posted.
 */
export function sendReceived(lane: Lane, n: number, swap: boolean): number {
  const rx = lane.rx;
  const ro = rx.options;
  const end = wholeChains(lane, n);
  const start = lane.start;
  const count = end - start;
  if (count <= 0) return 0;
  if (lane.same) {
    if (swap) swapMacs(lane.rxBytes, rx.addrs, count, ro, start);
    const posted = rx.transmit(count, start, true);
    if (posted < count) countDropped(lane, packetsIn(ro, start + posted, end));
    return posted;
  }
  const tx = lane.tx;
  if (lane.byDescriptor) {
    // One UMEM: hand the received frames to the other tx ring; what it
    // does not take goes back to the pool.
    const ra = rx.addrs, rl = rx.lengths, ta = tx.addrs, tl = tx.lengths, to = tx.options;
    for (let i = 0; i < count; i++) {
      ta[i] = ra[start + i]!;
      tl[i] = rl[start + i]!;
      to[i] = ro[start + i]!;
    }
    if (swap) swapMacs(lane.txBytes, ta, count, to);
    const posted = tx.transmit(count, 0, true);
    if (posted < count) countDropped(lane, packetsIn(to, posted, count));
    return posted;
  }
  return copyReceived(lane, start, end, swap);
}

// Different UMEMs: copy each packet into frames of tx's UMEM (one memcpy per
// piece). A chain is re-cut to the tx frames' room, so chains also cross
// from 4 KiB to 2 KiB frames; a packet needing more than one tx frame goes
// only to a multi-buffer port (else it is dropped whole and counted). Rounds
// of at most a burst of tx slots, whole chains per round.
function copyReceived(lane: Lane, start: number, end: number, swap: boolean): number {
  const rx = lane.rx;
  const tx = lane.tx;
  const src = lane.rxBytes;
  const dst = lane.txBytes;
  const ra = rx.addrs, rl = rx.lengths, ro = rx.options, ta = tx.addrs, tl = tx.lengths, to = tx.options;
  const room = lane.txRoom;
  const chains = lane.txMultiBuffer;
  const slots = tx.burstSize;
  let dropped = 0;
  let posted = 0;
  let i = start; // first fragment of the next chain to copy
  while (i < end) {
    // Chains for this round: as many whole ones as the tx slots hold.
    let need = 0;
    let j = i;
    while (j < end) {
      let bytes = 0;
      let last = j;
      while (last < end - 1 && (ro[last]! & CONTD) !== 0) last++;
      for (let f = j; f <= last; f++) bytes += rl[f]!;
      const frames = Math.max(1, Math.ceil(bytes / room));
      if (need + frames > slots) break;
      need += frames;
      j = last + 1;
    }
    if (j === i) {
      // One packet needs more frames than a burst has slots: drop it.
      while (i < end - 1 && (ro[i]! & CONTD) !== 0) i++;
      i++;
      dropped++;
      continue;
    }
    const m = tx.alloc(need);
    let k = 0;
    for (let c = i; c < j;) {
      let last = c;
      while (last < j - 1 && (ro[last]! & CONTD) !== 0) last++;
      let bytes = 0;
      for (let f = c; f <= last; f++) bytes += rl[f]!;
      const frames = Math.max(1, Math.ceil(bytes / room));
      if (k + frames > m || (frames > 1 && !chains)) {
        dropped++;
      } else {
        // Stream the fragments' bytes into `frames` tx frames of `room` bytes.
        let out = k;
        let filled = 0;
        for (let f = c; f <= last; f++) {
          let from = ra[f]!;
          let left = rl[f]!;
          while (left > 0) {
            if (filled === room) {
              tl[out] = filled;
              to[out] = CONTD;
              out++;
              filled = 0;
            }
            const piece = Math.min(left, room - filled);
            src.copy(dst, ta[out]! + filled, from, from + piece);
            filled += piece;
            from += piece;
            left -= piece;
          }
        }
        tl[out] = filled;
        to[out] = 0;
        k = out + 1;
      }
      c = last + 1;
    }
    if (k < m) tx.release(m - k, k);
    if (swap) swapMacs(dst, ta, k, to);
    const sent = k > 0 ? tx.transmit(k, 0, true) : 0;
    dropped += packetsIn(to, sent, k);
    posted += sent;
    i = j;
  }
  rx.release(end - start, start);
  if (dropped > 0) countDropped(lane, dropped);
  return posted;
}
