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
// only, the copy path copies fragment by fragment (a chain whose fragment
// does not fit the tx frame, or that the tx port cannot send because it is
// not multi-buffer, is dropped whole). A chain longer than the whole burst
// (receive then delivers it across bursts, the last slot flagged) is
// dropped and counted: raise the burst size above the longest chain.
import { swapMacs } from '../port/macswap';
import type { Queue } from '../port/queue';

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

// Different UMEMs: one memcpy per fragment into a frame of tx's UMEM.
function copyReceived(lane: Lane, start: number, end: number, swap: boolean): number {
  const rx = lane.rx;
  const tx = lane.tx;
  const n = end - start;
  const m = tx.alloc(n);
  const src = lane.rxBytes;
  const dst = lane.txBytes;
  const ra = rx.addrs, rl = rx.lengths, ro = rx.options, ta = tx.addrs, tl = tx.lengths, to = tx.options;
  const room = lane.txRoom;
  const chains = lane.txMultiBuffer;
  let k = 0;
  let head = 0; // tx slot of the current chain's first fragment
  let dropping = false;
  let dropped = 0;
  for (let i = start; i < end; i++) {
    const o = ro[i]!;
    if (i === start || (ro[i - 1]! & CONTD) === 0) {
      head = k;
      dropping = false;
    }
    if (!dropping) {
      const len = rl[i]!;
      if (k >= m || len > room || ((o & CONTD) !== 0 && !chains)) {
        // The chain does not fit (frames, room, or a port without chains): drop it whole.
        dropping = true;
        k = head;
      } else {
        const from = ra[i]!;
        src.copy(dst, ta[k]!, from, from + len);
        tl[k] = len;
        to[k] = o & CONTD;
        k++;
      }
    }
    if (dropping && (o & CONTD) === 0) dropped++;
  }
  rx.release(n, start);
  if (k < m) tx.release(m - k, k);
  if (swap) swapMacs(dst, ta, k, to);
  const posted = k > 0 ? tx.transmit(k, 0, true) : 0;
  dropped += packetsIn(to, posted, k);
  if (dropped > 0) countDropped(lane, dropped);
  return posted;
}
