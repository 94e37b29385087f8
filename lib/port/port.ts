// A port: the AF_XDP sockets on one interface's queue range (port-base.ts)
// with its stream face: a pool of packet batches, readable(), writable(),
// duplex() and async iteration. The streams (lib/stream) build on
// PortBase and never on this file, so the layers point one way:
// port-base <- stream <- port.
import { Duplex } from 'node:stream';
import { AfxdpError, codes } from '../errors';
import { PortBase } from './port-base';
import type { PortInfo as BaseInfo } from './port-base';
import type { DpPathOrigin } from '../dp/paths';
import { Batch, BatchPool, BatchPoolOptions, BatchState } from '../stream/batch';
import { PortReadable, PortReadableOptions } from '../stream/readable';
import { PortWritable, PortWritableOptions } from '../stream/writable';

export { PortBase } from './port-base';
export type { BusyPollStatus, FrameAccounting, PortExtras, PortStats } from './port-base';

export interface PortInfo extends BaseInfo {
  /** The Device Plugin socket (use_cni) or pinned map (use_pinned_map) used; absent when afxdp attached the program. */
  dpPath?: string;
  /**
   * How dpPath was chosen: given (explicit), found under the DPDK runtime
   * directory (runtime-dir, DPDK 26.11's first default), or the
   * /tmp/afxdp_dp fallback (tmp).
   */
  dpPathOrigin?: DpPathOrigin;
}

export class Port extends PortBase {
  #pool: BatchPool | null = null;

  /** Interface and socket facts (PortBase.info()), and which Device Plugin path the port uses. */
  override info(): PortInfo {
    const info: PortInfo = super.info();
    const { dpPath, dpPathOrigin } = this.config;
    return dpPath === undefined ? info : { ...info, dpPath, dpPathOrigin };
  }

  /**
   * The port's pool of batch objects (created on first use; `options` only
   * apply then). Streams and allocBatch() draw from it.
   */
  batchPool(options: BatchPoolOptions = {}): BatchPool {
    this.nativePort();
    if (this.#pool === null) {
      this.#pool = new BatchPool(this, options);
    } else if ((options.batches !== undefined && options.batches !== this.#pool.size) ||
      (options.recycle !== undefined && options.recycle !== this.#pool.recycling)) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        `this port's batch pool already exists with batches=${this.#pool.size}, recycle=${this.#pool.recycling}; ` +
        'pass batches/recycle only with the first stream of the port');
    }
    return this.#pool;
  }

  /**
   * The receive side as an object-mode Readable of packet batches (see
   * lib/stream). Each batch is yours until you release() it or write() it
   * to a port writable.
   */
  readable(options: PortReadableOptions & BatchPoolOptions = {}): PortReadable {
    return new PortReadable(this, this.batchPool(options), options);
  }

  /** The transmit side as an object-mode Writable of packet batches. */
  writable(options: PortWritableOptions = {}): PortWritable {
    this.nativePort();
    return new PortWritable(this, options);
  }

  /** readable() and writable() as one Duplex. */
  duplex(options: { readable?: PortReadableOptions & BatchPoolOptions; writable?: PortWritableOptions } = {}): Duplex {
    return Duplex.from({ readable: this.readable(options.readable), writable: this.writable(options.writable) });
  }

  /** `for await (const batch of port)`: batches from every queue (a readable()). */
  [Symbol.asyncIterator](): AsyncIterableIterator<Batch> {
    return this.readable()[Symbol.asyncIterator]() as AsyncIterableIterator<Batch>;
  }

  /**
   * A batch of `count` (default burstSize) free frames of queue index
   * `queue`, for building packets to write(); fewer if fewer are free, null
   * when none are (await port.queues[queue].writable({ frames }) then) or
   * every batch object is out. Lengths start at 0: set them.
   */
  allocBatch(queue = 0, count?: number): Batch | null {
    const q = this.queues[queue];
    if (q === undefined) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `queue index ${String(queue)} out of range (port has ${this.queues.length})`,
        { argument: 'queue' });
    }
    const pool = this.batchPool();
    const want = count ?? pool.capacity;
    if (!Number.isInteger(want) || want < 1 || want > pool.capacity) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `count must be an integer between 1 and ${pool.capacity}`, { argument: 'count' });
    }
    const b = pool.take(BatchState.Held, null);
    if (b === null) return null;
    let n: number;
    try {
      n = q.alloc(want);
    } catch (err) {
      pool.recycle(b);
      throw err;
    }
    if (n === 0) {
      pool.recycle(b);
      return null;
    }
    b.fill(q, n);
    return b;
  }

  protected override releaseBatches(): void {
    this.#pool?.closeAll();
  }
}
