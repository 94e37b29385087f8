// Packet batches: the chunks of a port's streams.
//
// A Batch is up to `burstSize` packets of one queue: frame addresses,
// lengths and descriptor options in its own Uint32Arrays, bytes in the
// queue's UMEM. On a multi-buffer port a packet larger than a frame is a
// chain of slots (`options` XDP_PKT_CONTD on all but the last); a batch
// read from a port ends on a packet's last fragment unless one chain is
// longer than the whole burst (docs/api.md "Multi-buffer chains"). Batch objects
// and their arrays come from a fixed pool per port and are recycled, so a
// steady stream allocates nothing per batch.
//
// Ownership: the frames of a batch belong to whoever holds the batch, from
// the moment a readable hands it out (or allocBatch() returns it) until
// `release()` (frames back to the free pool) or `write()` to a port's
// writable (frames go to the tx ring; a batch it could not send yet stays
// with the writable). After that the batch object goes back to the pool:
// every use throws ERR_AFXDP_FRAME_OWNERSHIP until the pool hands the same
// object out again for other packets. Batches are recycled oldest-first, so
// a stale reference is caught for as long as possible; `recycle: false`
// (a fresh object per batch) makes every use after release throw.
import type { PortBase } from '../port/port-base';
import type { Queue } from '../port/queue';
import { AfxdpError, codes } from '../errors';
import { swapMacs } from '../port/macswap';

/** Where a batch is (see the ownership rule above). */
export enum BatchState {
  /** In the pool; no frames. */
  Free = 0,
  /** With the application (read from a stream, or allocated), or in a stream's read buffer. */
  Held = 2,
  /** Written to a port writable: its frames are the writable's. */
  Sending = 3,
  /** Released for good (recycle: false, or the port closed). */
  Dead = 4,
}

function ownershipError(what: string, state: BatchState): AfxdpError {
  const why = state === BatchState.Sending
    ? 'it was written to a port writable, which owns its frames now'
    : 'it was released or written (its frames went back to the port or out on the tx ring), or the port closed';
  return new AfxdpError(codes.FRAME_OWNERSHIP,
    `cannot ${what} this packet batch: ${why}. A batch is valid from the moment you read it until you ` +
    'release() it or write() it; copy what you need to keep before that');
}

export class Batch {
  readonly #pool: BatchPool;
  readonly #addrs: Uint32Array;
  readonly #lengths: Uint32Array;
  readonly #options: Uint32Array;
  #queue: Queue | null = null;
  #length = 0;
  /** @internal first slot not yet transmitted (a writable's progress). */
  start = 0;
  /** @internal */
  state: BatchState = BatchState.Free;
  /** @internal the stream that owns it while Sending (or that pushed it, while Held). */
  holder: object | null = null;
  /** @internal position in the pool */
  readonly slot: number;
  /** @internal link in a BatchQueue (a batch is in at most one). */
  next: Batch | null = null;

  /** @internal use a stream or Port.allocBatch() */
  constructor(pool: BatchPool, capacity: number, slot: number) {
    this.#pool = pool;
    this.#addrs = new Uint32Array(capacity);
    this.#lengths = new Uint32Array(capacity);
    this.#options = new Uint32Array(capacity);
    this.slot = slot;
  }

  #check(what: string): void {
    if (this.state !== BatchState.Held) throw ownershipError(what, this.state);
  }

  /** Packets in the batch. */
  get length(): number {
    this.#check('use');
    return this.#length;
  }

  /** The queue the frames belong to. */
  get queue(): Queue {
    this.#check('use');
    return this.#queue!;
  }

  get port(): PortBase {
    this.#check('use');
    return this.#pool.port;
  }

  /** The UMEM the packets are in (`umem[addrs[i] .. addrs[i] + lengths[i]]`). */
  get umem(): Uint8Array {
    this.#check('use');
    return this.#queue!.umem;
  }

  /** Frame addresses (byte offsets into `umem`), slots [0, length). Capacity: burstSize. */
  get addrs(): Uint32Array {
    this.#check('use');
    return this.#addrs;
  }

  /** Packet lengths, slots [0, length). Set them when you build packets. */
  get lengths(): Uint32Array {
    this.#check('use');
    return this.#lengths;
  }

  /**
   * Descriptor options, slots [0, length): `XDP_PKT_CONTD` (1) on every
   * fragment of a multi-buffer chain but the last (docs/api.md). Zero for
   * single-frame packets; set it when you build chains.
   */
  get options(): Uint32Array {
    this.#check('use');
    return this.#options;
  }

  /** Whether the batch is still yours to use. */
  get valid(): boolean {
    return this.state === BatchState.Held;
  }

  /** A view of packet `i` (allocates a view: not for per-packet hot loops). */
  packet(i: number): Uint8Array {
    this.#check('use');
    if (!(i >= 0 && i < this.#length)) throw new RangeError(`packet index ${i} out of range (batch has ${this.#length})`);
    const a = this.#addrs[i]!;
    return this.#queue!.umem.subarray(a, a + this.#lengths[i]!);
  }

  /** RX metadata of packet `i` (rxMetadata or the xdp_meta_* devargs; see Queue.rxMetaValid). */
  rxMetaValid(i: number): number {
    this.#check('use');
    return this.#queue!.rxMetaValidAt(this.#addrs[i]!);
  }

  /** The driver's RX hash of packet `i`, -1 when none (Queue.rxHash). */
  rxHash(i: number): number {
    this.#check('use');
    return this.#queue!.rxHashAt(this.#addrs[i]!);
  }

  /** The RX timestamp of packet `i` in ns, 0n when none (Queue.rxTimestamp). */
  rxTimestamp(i: number): bigint {
    this.#check('use');
    return this.#queue!.rxTimestampAt(this.#addrs[i]!);
  }

  /** The RX timestamp of packet `i` in ms as a number, 0 when none (Queue.rxTimestampMs). */
  rxTimestampMs(i: number): number {
    this.#check('use');
    return this.#queue!.rxTimestampMsAt(this.#addrs[i]!);
  }

  /** Swap destination and source MAC of every packet (the first fragment of a chain), in place. */
  macswap(): this {
    this.#check('use');
    swapMacs(this.#queue!.umem, this.#addrs, this.#length, this.#options);
    return this;
  }

  /**
   * Keep only the first `n` packets; the frames of the others go back to
   * the port now (for filters: move the packets to keep to the front first).
   */
  truncate(n: number): this {
    this.#check('truncate');
    if (!(Number.isInteger(n) && n >= 0 && n <= this.#length)) {
      throw new RangeError(`truncate(${n}): must be an integer between 0 and ${this.#length}`);
    }
    if (n < this.#length) this.#releaseSlots(n, this.#length - n);
    this.#length = n;
    return this;
  }

  /** Give the frames back to the port; the batch object is recycled. Idempotent only while never reused: call it once. */
  release(): void {
    this.#check('release');
    this.#releaseSlots(this.start, this.#length - this.start);
    this.#pool.recycle(this);
  }

  #releaseSlots(from: number, count: number): void {
    if (count <= 0) return;
    const q = this.#queue!;
    q.addrs.set(this.#addrs);
    q.release(count, from);
  }

  /** @internal take `n` descriptors from the queue's slots [0, n). */
  fill(queue: Queue, n: number): void {
    this.#queue = queue;
    this.#addrs.set(queue.addrs);
    this.#lengths.set(queue.lengths);
    this.#options.set(queue.options);
    this.#length = n;
    this.start = 0;
  }

  /** @internal for writables and the pool, whatever the state. */
  get rawQueue(): Queue | null {
    return this.#queue;
  }

  /** @internal */
  get rawLength(): number {
    return this.#length;
  }

  /** @internal */
  get rawAddrs(): Uint32Array {
    return this.#addrs;
  }

  /** @internal */
  get rawLengths(): Uint32Array {
    return this.#lengths;
  }

  /** @internal */
  get rawOptions(): Uint32Array {
    return this.#options;
  }

  /** @internal release the untransmitted frames whatever the state, then recycle. */
  reclaim(): void {
    if (this.state === BatchState.Free || this.state === BatchState.Dead) return;
    try {
      if (!this.#pool.port.closed) this.#releaseSlots(this.start, this.#length - this.start);
    } finally {
      this.#pool.recycle(this);
    }
  }

  /** @internal the frames were sent; only the object goes back. */
  clear(): void {
    this.#queue = null;
    this.#length = 0;
    this.start = 0;
    this.holder = null;
  }
}

/**
 * @internal A FIFO of batches linked through `Batch.next`: a stream's
 * written-but-not-yet-processed batches, without allocating per batch.
 */
export class BatchQueue {
  #head: Batch | null = null;
  #tail: Batch | null = null;

  /**
   * A stream's write(): take the batch's frames over for `holder`. Anything
   * but a batch throws ERR_AFXDP_INVALID_ARGUMENT (`refusal`), a batch that
   * is not yours any more ERR_AFXDP_FRAME_OWNERSHIP. When the stream can
   * no longer take writes (`closed`), the frames go back to their port
   * at once (Node reports the failed write) instead of getting lost.
   */
  accept(chunk: unknown, holder: object, closed: boolean, refusal: string): void {
    if (!(chunk instanceof Batch)) throw new AfxdpError(codes.INVALID_ARGUMENT, refusal);
    if (chunk.state !== BatchState.Held) void chunk.length; // throws the ownership error naming why
    if (closed) {
      chunk.reclaim();
    } else {
      chunk.state = BatchState.Sending;
      chunk.holder = holder;
      this.push(chunk);
    }
  }

  push(b: Batch): void {
    b.next = null;
    if (this.#tail === null) this.#head = b;
    else this.#tail.next = b;
    this.#tail = b;
  }

  /** Unlink `b` (normally the head). */
  remove(b: Batch): void {
    let prev: Batch | null = null;
    for (let x = this.#head; x !== null; prev = x, x = x.next) {
      if (x !== b) continue;
      if (prev === null) this.#head = x.next;
      else prev.next = x.next;
      if (this.#tail === x) this.#tail = prev;
      x.next = null;
      return;
    }
  }

  /** Empty the queue, returning its batches oldest first. */
  drain(): Batch[] {
    const out: Batch[] = [];
    for (let x = this.#head; x !== null;) {
      const next = x.next;
      x.next = null;
      out.push(x);
      x = next;
    }
    this.#head = null;
    this.#tail = null;
    return out;
  }
}

export interface BatchPoolOptions {
  /** Batch objects in the pool: at most this many batches are out at once. */
  batches?: number;
  /** false: a new object per batch, so any use after release throws (debugging). */
  recycle?: boolean;
}

/**
 * The fixed pool of batch objects of one port. Free batches are handed out
 * oldest-released first. A stream that finds the pool empty waits for a
 * release (`onFree`): that is how a consumer holding batches throttles rx.
 */
export class BatchPool {
  readonly port: PortBase;
  readonly size: number;
  readonly capacity: number;
  readonly recycling: boolean;
  // Every batch object that can be out: the fixed set, or (recycle: false)
  // the ones out now.
  readonly #all = new Set<Batch>();
  // FIFO ring of free batches.
  readonly #ring: (Batch | null)[];
  #head = 0;
  #count = 0;
  #out = 0;
  #waiting: (() => void)[] = [];
  #created = 0;

  constructor(port: PortBase, options: BatchPoolOptions = {}) {
    this.port = port;
    this.capacity = port.config.burstSize;
    const defaultSize = Math.max(8, Math.floor(port.config.frameCount / 4 / this.capacity));
    const size = options.batches ?? defaultSize;
    if (!Number.isInteger(size) || size < 2 || size > 65536) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `batches must be an integer between 2 and 65536, not ${String(size)}`,
        { argument: 'batches' });
    }
    this.size = size;
    this.recycling = options.recycle ?? true;
    this.#ring = new Array<Batch | null>(size).fill(null);
    if (this.recycling) {
      for (let i = 0; i < size; i++) {
        const b = new Batch(this, this.capacity, i);
        this.#all.add(b);
        this.#push(b);
      }
      this.#created = size;
    }
  }

  /** Batches handed out and not yet back. */
  get outstanding(): number {
    return this.#out;
  }

  /** Batch objects created so far (stays `size` when recycling). */
  get created(): number {
    return this.#created;
  }

  #push(b: Batch): void {
    this.#ring[(this.#head + this.#count) % this.size] = b;
    this.#count++;
  }

  /** A free batch in state `state` held by `holder`, or null if all are out. */
  take(state: BatchState, holder: object | null): Batch | null {
    let b: Batch;
    if (this.recycling) {
      if (this.#count === 0) return null;
      b = this.#ring[this.#head]!;
      this.#ring[this.#head] = null;
      this.#head = (this.#head + 1) % this.size;
      this.#count--;
    } else {
      if (this.#out >= this.size) return null;
      b = new Batch(this, this.capacity, -1);
      this.#all.add(b);
      this.#created++;
    }
    this.#out++;
    b.state = state;
    b.holder = holder;
    return b;
  }

  /** @internal a batch (its frames already dealt with) comes back. */
  recycle(b: Batch): void {
    if (b.state === BatchState.Free || b.state === BatchState.Dead) return;
    b.clear();
    this.#out--;
    if (this.recycling && !this.port.closed) {
      b.state = BatchState.Free;
      this.#push(b);
    } else {
      b.state = BatchState.Dead;
      if (!this.recycling) this.#all.delete(b);
    }
    if (this.#waiting.length > 0) this.#wake();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const fn of waiting) fn();
  }

  /** Call `fn` once when a batch comes back. */
  onFree(fn: () => void): void {
    if (!this.#waiting.includes(fn)) this.#waiting.push(fn);
  }

  offFree(fn: () => void): void {
    const i = this.#waiting.indexOf(fn);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  /** @internal the port is closing: every batch out is dead (its memory goes away). */
  closeAll(): void {
    for (const b of this.#all) {
      if (b.state !== BatchState.Free) b.clear();
      b.state = BatchState.Dead;
    }
    for (let i = 0; i < this.size; i++) {
      const b = this.#ring[i];
      if (b != null) b.state = BatchState.Dead;
      this.#ring[i] = null;
    }
    this.#count = 0;
    this.#out = 0;
    this.#waiting = [];
  }
}
