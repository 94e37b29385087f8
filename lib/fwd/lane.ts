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
import { swapMacs } from '../port/macswap';
import type { Queue } from '../port/queue';

/** What a lane uses of a queue: `Queue` has it; unit tests pass fakes. */
export type LaneQueue = Pick<Queue,
  'receive' | 'transmit' | 'alloc' | 'release' | 'reap' | 'addrs' | 'lengths' | 'options' | 'umem' | 'umemIndex' | 'burstSize' | 'index'>;

export type LanePath = 'same' | 'descriptor' | 'copy';

export interface LaneOptions {
  /** Room for packet data in a frame of `tx` (frame size minus headroom); longer packets are dropped when copied. */
  txRoom?: number;
  /** Where the lane counts the packets it drops (tx ring full, too long to copy): `dropped[droppedIndex]`. */
  dropped?: Float64Array;
  droppedIndex?: number;
  /** Position of the tx queue's port among the forwarder's ports. */
  txPort?: number;
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
 * Send the `n` packets just received on `lane.rx` (its slots [0, n)) out
 * through `lane.tx`, swapping their Ethernet addresses first with `swap`.
 * Every frame ends on the tx ring or back in its pool; what the tx ring did
 * not take is counted in `lane.dropped`. Returns the packets posted.
 */
export function sendReceived(lane: Lane, n: number, swap: boolean): number {
  const rx = lane.rx;
  if (lane.same) {
    if (swap) swapMacs(lane.rxBytes, rx.addrs, n);
    const posted = rx.transmit(n, 0, true);
    if (posted < n) countDropped(lane, n - posted);
    return posted;
  }
  const tx = lane.tx;
  if (lane.byDescriptor) {
    // One UMEM: hand the received frames to the other tx ring; what it
    // does not take goes back to the pool.
    const ra = rx.addrs, rl = rx.lengths, ro = rx.options, ta = tx.addrs, tl = tx.lengths, to = tx.options;
    for (let i = 0; i < n; i++) {
      ta[i] = ra[i]!;
      tl[i] = rl[i]!;
      to[i] = ro[i]!;
    }
    if (swap) swapMacs(lane.txBytes, ta, n);
    const posted = tx.transmit(n, 0, true);
    if (posted < n) countDropped(lane, n - posted);
    return posted;
  }
  return copyReceived(lane, n, swap);
}

// Different UMEMs: one memcpy per packet into a frame of tx's UMEM.
function copyReceived(lane: Lane, n: number, swap: boolean): number {
  const rx = lane.rx;
  const tx = lane.tx;
  const m = tx.alloc(n);
  const src = lane.rxBytes;
  const dst = lane.txBytes;
  const ra = rx.addrs, rl = rx.lengths, ta = tx.addrs, tl = tx.lengths;
  const room = lane.txRoom;
  let k = 0;
  for (let i = 0; i < m; i++) {
    const len = rl[i]!;
    if (len > room) continue;
    const from = ra[i]!;
    src.copy(dst, ta[k]!, from, from + len);
    tl[k] = len;
    k++;
  }
  rx.release(n);
  if (k < m) tx.release(m - k, k);
  if (swap) swapMacs(dst, ta, k);
  const posted = k > 0 ? tx.transmit(k, 0, true) : 0;
  if (posted < n) countDropped(lane, n - posted);
  return posted;
}
