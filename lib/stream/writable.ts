// A port's transmit side as an object-mode Writable of packet batches.
//
// write(batch) takes the batch's frames over at once (the batch is unusable
// from then on, even if the write fails). A batch whose frames are in this
// port's UMEM (its own, or another port's that shares the UMEM) goes to the
// tx ring of its own queue (or of `queue`), zero-copy; a batch of another
// UMEM is copied into frames of this port and its own frames go back to
// its port. When the tx ring is full the writable waits for POLLOUT
// (with a short retry for copy-mode rings that drain only when kicked)
// instead of spinning, and the stream's own backpressure (write() returning
// false, 'drain') reaches the producer. end() resolves once the tx rings
// have drained (bounded).
import { Writable } from 'node:stream';
import type { PortBase } from '../port/port-base';
import type { Queue } from '../port/queue';
import { AfxdpError, codes } from '../errors';
import { CLOSED, ERROR, WRITABLE, socketError, Watch } from '../port/waiter';
import { Batch, BatchQueue } from './batch';

export interface PortWritableOptions {
  /** Transmit every batch on this queue index (default: the batch's own queue). */
  queue?: number;
  /** Batches buffered before write() returns false (default 4). */
  highWaterMark?: number;
  /** Destroys the stream with an AbortError when it aborts. */
  signal?: AbortSignal;
  /** How long end() waits for the tx rings to drain (default 2000 ms). */
  drainTimeoutMs?: number;
}

// Retry (kick and reap) while waiting; backs off while nothing moves.
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 64;
const FRAMES_RETRY_MS = 1;

export class PortWritable extends Writable {
  readonly port: PortBase;
  readonly #queue: Queue | undefined;
  readonly #drainTimeoutMs: number;
  // Batches written and not yet handed to _write, oldest first.
  readonly #queued = new BatchQueue();
  #current: Batch | null = null;
  #currentCb: ((error?: Error | null) => void) | null = null;
  #watches: (Watch | undefined)[];
  #waitingOn: Watch | null = null;
  #retry: NodeJS.Timeout | undefined;
  #retryMs = RETRY_MIN_MS;
  readonly #used = new Set<Queue>();
  readonly #bytes = new WeakMap<Uint8Array, Buffer>();
  readonly #onWake = (ev: number): void => {
    if (ev & CLOSED) this.destroy();
    else if (ev & ERROR) {
      const q = this.#waitingOn?.queue ?? 0;
      this.destroy(socketError(q, this.port.waiter().errnoOf(q)));
    }
    else this.#send();
  };
  readonly #onRetry = (): void => {
    this.#retry = undefined;
    this.#send();
  };
  readonly #onPortClosing = (): void => {
    this.destroy();
  };

  /** @internal use port.writable() */
  constructor(port: PortBase, options: PortWritableOptions = {}) {
    const hwm = options.highWaterMark ?? 4;
    if (!Number.isInteger(hwm) || hwm < 1) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `highWaterMark must be a positive integer, not ${String(hwm)}`,
        { argument: 'highWaterMark' });
    }
    super({ objectMode: true, highWaterMark: hwm, signal: options.signal, emitClose: true, autoDestroy: true, decodeStrings: false });
    this.port = port;
    if (options.queue !== undefined && port.queues[options.queue] === undefined) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        `queue must be a queue index of this port (0..${port.queues.length - 1}), not ${String(options.queue)}`,
        { argument: 'queue' });
    }
    this.#queue = options.queue === undefined ? undefined : port.queues[options.queue];
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 2000;
    this.#watches = port.queues.map(() => undefined);
    port.onClosing(this.#onPortClosing);
  }

  /**
   * Takes the batch's frames over (see the ownership rule in batch.ts): a
   * batch that is not yours any more throws ERR_AFXDP_FRAME_OWNERSHIP. Other
   * chunks are refused with ERR_AFXDP_INVALID_ARGUMENT.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((error: Error | null | undefined) => void),
    cb?: (error: Error | null | undefined) => void): boolean {
    this.#queued.accept(chunk, this, this.destroyed || this.writableEnded,
      'a port writable takes packet batches (from a port readable or port.allocBatch())');
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  override _write(b: Batch, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#queued.remove(b);
    this.#current = b;
    this.#currentCb = callback;
    this.#send();
  }

  #txQueue(b: Batch): Queue {
    if (this.#queue !== undefined) return this.#queue;
    const src = b.rawQueue!;
    if (src !== null && this.port.queues[src.index] === src) return src;
    return this.port.queues[(src?.index ?? 0) % this.port.queues.length]!;
  }

  #send(): void {
    const b = this.#current;
    if (b === null || this.destroyed) return;
    const q = this.#txQueue(b);
    this.#used.add(q);
    const src = b.rawQueue!;
    let waitRing = false;
    try {
      if (src === q || src.umem.buffer === q.umem.buffer) {
        // Zero-copy: the frames are in this queue's UMEM (the same port's,
        // or another port's that shares it: one buffer, one ledger).
        q.addrs.set(b.rawAddrs);
        q.lengths.set(b.rawLengths);
        q.options.set(b.rawOptions);
        const n = b.rawLength - b.start;
        const sent = n > 0 ? q.transmit(n, b.start, false) : 0;
        b.start += sent;
        waitRing = b.start < b.rawLength;
        if (sent > 0) this.#retryMs = RETRY_MIN_MS;
      } else if (!this.#copy(b, q)) {
        this.#retryMs = FRAMES_RETRY_MS;
        this.#wait(q, false);
        return;
      } else {
        waitRing = b.start < b.rawLength;
      }
    } catch (err) {
      this.#done(err as Error);
      return;
    }
    if (waitRing) {
      this.#wait(q, true);
      return;
    }
    this.#done(null);
  }

  // Copy what fits into fresh frames of `q`, transmit them and release the
  // source frames that went out. False when no frame was free.
  #copy(b: Batch, q: Queue): boolean {
    const src = b.rawQueue!;
    const from = this.#bytesOf(src.umem);
    const to = this.#bytesOf(q.umem);
    const want = Math.min(b.rawLength - b.start, q.burstSize);
    const allocated = q.alloc(want);
    const addrs = b.rawAddrs;
    const lens = b.rawLengths;
    const opts = b.rawOptions;
    // Whole multi-buffer chains only (XDP_PKT_CONTD on all but the last
    // fragment): the frames of a cut chain go back at once.
    let got = allocated;
    while (got > 0 && (opts[b.start + got - 1]! & 1) !== 0) got--;
    if (got < allocated) q.release(allocated - got, got);
    if (got === 0) return false;
    for (let i = 0; i < got; i++) {
      const a = addrs[b.start + i]!;
      const len = lens[b.start + i]!;
      from.copy(to, q.addrs[i]!, a, a + len);
      q.lengths[i] = len;
      q.options[i] = opts[b.start + i]! & 1;
    }
    const sent = q.transmit(got, 0, false);
    if (sent < got) q.release(got - sent, sent);
    if (sent > 0) {
      src.addrs.set(addrs);
      src.release(sent, b.start);
      b.start += sent;
    }
    return true;
  }

  #bytesOf(u: Uint8Array): Buffer {
    let buf = this.#bytes.get(u);
    if (buf === undefined) {
      buf = Buffer.from(u.buffer, u.byteOffset, u.byteLength);
      this.#bytes.set(u, buf);
    }
    return buf;
  }

  #wait(q: Queue, ring: boolean): void {
    let w = this.#watches[q.index];
    if (w === undefined) {
      w = this.port.waiter().watch(q.index, this.#onWake);
      this.#watches[q.index] = w;
    }
    if (this.#waitingOn !== null && this.#waitingOn !== w) this.#waitingOn.set(0);
    this.#waitingOn = w;
    w.set(ring ? WRITABLE : 0);
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = setTimeout(this.#onRetry, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  #done(err: Error | null): void {
    const b = this.#current!;
    this.#current = null;
    if (this.#waitingOn !== null) {
      this.#waitingOn.set(0);
      this.#waitingOn = null;
    }
    if (this.#retry !== undefined) {
      clearTimeout(this.#retry);
      this.#retry = undefined;
    }
    // Sent frames belong to the tx ring now; unsent ones (on error) go back.
    try {
      b.reclaim();
    } catch (e) {
      err ??= e as Error;
    }
    const cb = this.#currentCb!;
    this.#currentCb = null;
    cb(err);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const deadline = Date.now() + this.#drainTimeoutMs;
    const size = this.port.config.txSize;
    const check = () => {
      if (this.port.closed || this.destroyed) {
        callback();
        return;
      }
      let busy = false;
      try {
        for (const q of this.#used) {
          q.reap();
          if (q.txRoom() < size) busy = true;
        }
      } catch (err) {
        callback(err as Error);
        return;
      }
      if (!busy || Date.now() >= deadline) callback();
      else setTimeout(check, FRAMES_RETRY_MS);
    };
    check();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.port.offClosing(this.#onPortClosing);
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = undefined;
    for (const w of this.#watches) w?.close();
    this.#watches = [];
    this.#waitingOn = null;
    let first: unknown;
    const pending = this.#current === null ? this.#queued.drain() : [this.#current, ...this.#queued.drain()];
    this.#current = null;
    this.#currentCb = null;
    for (const b of pending) {
      try {
        b.reclaim();
      } catch (e) {
        first ??= e;
      }
    }
    callback(err ?? (first as Error | undefined) ?? null);
  }
}
