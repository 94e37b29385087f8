// Transforms between port streams that keep the ownership rule: a batch
// written into one is the transform's until it is pushed on; on destroy
// the batches it still buffers go back to their ports (a plain Transform
// would strand them until the port closes).
import { Duplex } from 'node:stream';
import { Batch, BatchQueue, BatchState } from './batch';

/**
 * `fn(batch)` runs on every batch and returns the batch to pass on (the
 * same one, usually, after changing packets in place), nothing to pass the
 * same batch on, or `null` to drop it (its frames are released). It may
 * also truncate() or release() the batch itself.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a function that only releases or edits the batch returns void
export type BatchFunction = (batch: Batch) => Batch | null | undefined | void;

export interface BatchTransformOptions {
  /** Batches buffered on each side (default 4). */
  highWaterMark?: number;
  signal?: AbortSignal;
}

// A Duplex rather than a stream.Transform: Transform allocates a closure
// per chunk; this one calls `fn` and pushes from _write, holding the write
// callback only while the readable side is full.
export class BatchTransform extends Duplex {
  readonly #fn: BatchFunction;
  readonly #queued = new BatchQueue();
  readonly #pushed: (Batch | null)[];
  #pushedNext = 0;
  #blocked: ((error?: Error | null) => void) | null = null;

  constructor(fn: BatchFunction, options: BatchTransformOptions = {}) {
    const hwm = options.highWaterMark ?? 4;
    super({ objectMode: true, highWaterMark: hwm, signal: options.signal, allowHalfOpen: true });
    this.#fn = fn;
    this.#pushed = new Array<Batch | null>(Math.max(16, hwm * 4)).fill(null);
  }

  override write(chunk: unknown, encoding?: BufferEncoding | ((error: Error | null | undefined) => void),
    cb?: (error: Error | null | undefined) => void): boolean {
    this.#queued.accept(chunk, this, this.destroyed || this.writableEnded, 'a batch transform takes packet batches');
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  override _read(): void {
    const cb = this.#blocked;
    if (cb !== null) {
      this.#blocked = null;
      cb();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.push(null);
    callback();
  }

  override _write(b: Batch, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#queued.remove(b);
    b.state = BatchState.Held;
    b.holder = this;
    // biome-ignore lint/suspicious/noConfusingVoidType: what a BatchFunction returns
    let out: Batch | null | undefined | void;
    try {
      out = this.#fn(b);
    } catch (err) {
      if (b.valid) b.reclaim();
      callback(err as Error);
      return;
    }
    if (out === undefined) out = b;
    if (out === null || !out.valid) {
      if (out === null && b.valid) b.release();
      callback();
      return;
    }
    if (out !== b && b.valid) b.release();
    out.holder = this;
    this.#pushed[this.#pushedNext] = out;
    if (++this.#pushedNext === this.#pushed.length) this.#pushedNext = 0;
    if (this.push(out)) callback();
    else this.#blocked = callback;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#blocked = null;
    let first: unknown;
    const release = (b: Batch | null) => {
      if (b === null) return;
      try {
        b.reclaim();
      } catch (e) {
        first ??= e;
      }
    };
    for (const b of this.#queued.drain()) release(b);
    const ring = this.#pushed;
    for (let k = 0, i = this.#pushedNext; k < Math.min(this.readableLength, ring.length); k++) {
      i = i === 0 ? ring.length - 1 : i - 1;
      const b = ring[i];
      if (b != null && b.state === BatchState.Held && b.holder === this) release(b);
    }
    ring.fill(null);
    callback(err ?? (first as Error | undefined) ?? null);
  }
}

/** A Transform applying `fn` to every batch (see BatchFunction). */
export function batchTransform(fn: BatchFunction, options?: BatchTransformOptions): BatchTransform {
  return new BatchTransform(fn, options);
}

/** A Transform that swaps the MAC addresses of every packet (a reflector's core). */
export function macswap(options?: BatchTransformOptions): BatchTransform {
  return new BatchTransform((b) => b.macswap(), options);
}
