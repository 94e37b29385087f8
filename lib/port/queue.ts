// One AF_XDP socket of a port: the burst API.
//
// Descriptors travel through three preallocated Uint32Arrays shared with the
// native side (`addrs`, `lengths`, `options`), packet bytes through one Uint8Array over
// the whole UMEM (`umem`). A burst is one native call; nothing is allocated
// per packet (hot methods avoid even a closure per burst).
// Frame ownership: after `receive(n)` or `alloc(n)` the frames in
// slots [0, n) belong to the application until it passes them to
// `transmit` or `release`; the native side refuses (ERR_AFXDP_FRAME_OWNERSHIP)
// any address the application does not own.
import type { NativeQueueCalls, NativeQueueStats } from '../native';
import { AfxdpError, codes, fromNative } from '../errors';
import type { NativePortLike } from '../native';
import { call } from './native-call';
import { RX_META_HASH, RX_META_LEN, RX_META_TIMESTAMP, RX_META_VLAN, TX_META_LEN, XDP_TXMD_FLAGS_CHECKSUM,
  XDP_TXMD_FLAGS_LAUNCH_TIME, XDP_TXMD_FLAGS_TIMESTAMP, txMetadataSupport } from './metadata';
import type { RxMetaLayout, TxMetadataSupport } from './metadata';
import type { TransferHandle } from './transfer-handle';
import { PortWaiter, READABLE, WRITABLE, WaitOptions, Watch, WatchHandler, socketError, waitFor } from './waiter';

export interface WritableWaitOptions extends WaitOptions {
  /**
   * Also wait until this many frames are free (after reaping completions),
   * for senders that `alloc()` their frames. The kernel raises no event for
   * completions, so this part of the wait reaps on a 1 ms timer.
   */
  frames?: number;
}

export interface QueueStats {
  queueId: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Descriptors received and posted: packets plus the extra fragments of multi-buffer chains. */
  rxDescs: number;
  txDescs: number;
  /** The kernel's XDP_STATISTICS for this socket. */
  xdp: {
    rxDropped: number;
    rxInvalidDescs: number;
    txInvalidDescs: number;
    rxRingFull: number;
    rxFillRingEmptyDescs: number;
    txRingEmptyDescs: number;
  };
}

/** Arrays per queue in the descriptor area: addrs, lengths, options. */
export const DESCRIPTOR_ARRAYS = 3;
/** `options` bit: the packet continues in the next slot (multi-buffer chain). */
export const XDP_PKT_CONTD = 1;
/** `options` bit: the frame carries TX metadata before the packet. */
export const XDP_TX_METADATA = 2;

export class Queue {
  /** Kernel queue id the socket is bound to. */
  readonly id: number;
  /** Position of this queue in its port. */
  readonly index: number;
  /** The whole UMEM this queue's frames live in. */
  readonly umem: Uint8Array;
  /** Which of the port's UMEMs that is (queues share one with shared_umem). */
  readonly umemIndex: number;
  /** Descriptor slots: frame addresses (byte offsets into `umem`). */
  readonly addrs: Uint32Array;
  /** Descriptor slots: packet (or fragment) lengths. */
  readonly lengths: Uint32Array;
  /**
   * Descriptor slots: the options word of each descriptor (`xdp_desc.options`).
   * `XDP_PKT_CONTD` (1) marks a fragment that the next slot continues (a
   * multi-buffer chain, see docs/api.md); `receive()` fills it, `transmit()`
   * posts it as given (`alloc()` zeroes it). Other bits: `XDP_TX_METADATA` (2).
   */
  readonly options: Uint32Array;
  /** Slots per burst. */
  readonly burstSize: number;
  readonly #native: QueueNative;
  // Plain native functions that reach this queue through their data
  // pointer: no `this` to unwrap, the cheapest call into Node-API.
  readonly #calls: NativeQueueCalls;
  readonly #waiter: () => PortWaiter;
  readonly #transfer: (() => TransferHandle) | undefined;
  #closed = false;
  // RX/TX metadata (lib/port/metadata.ts): one DataView over the UMEM, made once.
  readonly #view: DataView;
  #rxMeta: RxMetaLayout = { kind: 'none' };
  #txMeta: TxMetadataSupport = txMetadataSupport(undefined, false, undefined);

  /** @internal */
  constructor(port: QueueNative, index: number, id: number, umem: Uint8Array, umemIndex: number,
    descriptors: ArrayBuffer, burstSize: number, waiter?: () => PortWaiter, transfer?: () => TransferHandle) {
    this.#native = port;
    this.#calls = call(() => port.queueCalls(index));
    this.#waiter = waiter ?? (() => {
      throw new AfxdpError(codes.NOT_SUPPORTED, 'this queue has no waiter');
    });
    this.#transfer = transfer;
    this.index = index;
    this.id = id;
    this.umem = umem;
    this.umemIndex = umemIndex;
    this.burstSize = burstSize;
    // Per queue: burstSize addresses, lengths, then options (u32 each).
    const base = index * DESCRIPTOR_ARRAYS * burstSize * 4;
    this.addrs = new Uint32Array(descriptors, base, burstSize);
    this.lengths = new Uint32Array(descriptors, base + burstSize * 4, burstSize);
    this.#view = new DataView(umem.buffer, umem.byteOffset, umem.byteLength);
    this.options = new Uint32Array(descriptors, base + 2 * burstSize * 4, burstSize);
  }

  /**
   * Take up to `max` received descriptors into slots [0, n); returns n.
   * Without multi-buffer each is a packet; with it, a chain of fragments
   * (options & XDP_PKT_CONTD on all but the last) is never split at the end
   * of a burst unless it is longer than the whole burst.
   */
  receive(max: number = this.burstSize): number {
    try {
      return this.#calls.rxBurst(max);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /**
   * Post slots [start, start + count) for transmission, with their
   * `options`; returns how many the tx ring took (a prefix that ends on a
   * packet's last fragment). The slots must end on a last fragment. With
   * `dropUnsent` the rest are released, otherwise they stay with the
   * application.
   */
  transmit(count: number, start = 0, dropUnsent = false): number {
    try {
      return this.#calls.txBurst(start, count, dropUnsent);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Give slots [start, start + count) back to the free pool. */
  release(count: number, start = 0): void {
    try {
      this.#calls.release(start, count);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Take up to `count` free frames into slots [start, start + count) for
   * building packets; returns how many were available. */
  alloc(count: number, start = 0): number {
    try {
      return this.#calls.alloc(start, count);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Move completed transmissions back to the free pool now (transmit and
   * receive also do this). */
  reap(): number {
    try {
      return this.#calls.reap();
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Packets waiting on the rx ring now (no syscall, nothing consumed). */
  pending(): number {
    try {
      return this.#calls.rxPending();
    } catch (err) {
      throw fromNative(err);
    }
  }

  /**
   * Push out what waits on the tx ring (a kick when the kernel asks for one:
   * in copy mode nothing else transmits) and reap completions; returns the
   * frames reaped.
   */
  flushTx(): number {
    try {
      return this.#calls.flushTx();
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Free tx ring slots now. */
  txRoom(): number {
    try {
      return this.#calls.txRoom();
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Reap completions, then the number of free frames in this queue's UMEM. */
  freeFrames(): number {
    try {
      return this.#calls.freeFrames();
    } catch (err) {
      throw fromNative(err);
    }
  }

  /**
   * Resolves `true` once the rx ring has packets (at once if it has some
   * now), without spinning: the process sleeps in the event loop on the
   * socket's fd. `false` after `timeoutMs`; rejects with an AbortError when
   * `signal` aborts, ERR_AFXDP_CLOSED when the port closes.
   */
  readable(options?: WaitOptions): Promise<boolean> {
    return waitFor(this.#waiter, this.index, () => READABLE, () => this.pending() > 0, () => undefined, options);
  }

  /**
   * Resolves `true` once a transmit can make progress: the tx ring has a
   * free slot (POLLOUT, plus retries that kick the ring: a copy-mode ring
   * only drains when kicked) and, with `frames`, that many frames are free
   * (completions are reaped on the retries: the kernel posts no event for
   * them). Retries back off from 1 ms to 64 ms while nothing changes. Use it
   * when `transmit()` posted only a prefix or `alloc()` came back short.
   */
  writable(options: WritableWaitOptions = {}): Promise<boolean> {
    const frames = options.frames ?? 0;
    const ringFull = () => this.txRoom() === 0;
    const ready = () => {
      if (ringFull()) this.flushTx();
      return !ringFull() && (frames === 0 || this.freeFrames() >= frames);
    };
    // Retries back off (1, 2, 4 ... 64 ms) while nothing moves, e.g. with the link down.
    let retry = 0.5;
    const nextRetry = () => (retry = Math.min(retry * 2, 64));
    return waitFor(this.#waiter, this.index, () => (ringFull() ? WRITABLE : 0), ready, nextRetry, options);
  }

  /** @internal A (paused) watch on this queue's readiness; see PortWaiter. */
  watch(handler: WatchHandler): Watch {
    return this.#waiter().watch(this.index, handler);
  }

  /** @internal The error behind an ERROR event on this queue. */
  socketError(): AfxdpError {
    return socketError(this.index, this.#waiter().errnoOf(this.index));
  }

  /** @internal The port closed: its buffers are detached. */
  markClosed(): void {
    this.#closed = true;
  }

  /**
   * A view of the packet in slot `slot` (allocates a view: not for hot
   * loops). Throws ERR_AFXDP_CLOSED after the port closed, like every other
   * method, and ERR_AFXDP_INVALID_ARGUMENT for a slot outside the burst.
   */
  packet(slot: number): Uint8Array {
    if (this.#closed) {
      throw new AfxdpError(codes.CLOSED, `queue ${this.id} is closed (its port was closed); open a new port`);
    }
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.burstSize) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `slot must be an integer in 0..${this.burstSize - 1}, got ${String(slot)}`,
        { argument: 'slot' });
    }
    const addr = this.addrs[slot]!; // slot checked against burstSize above
    return this.umem.subarray(addr, addr + this.lengths[slot]!);
  }

  /** @internal the port's metadata layout and TX support (PortBase sets it once). */
  setMetadata(rx: RxMetaLayout, tx: TxMetadataSupport): void {
    this.#rxMeta = rx;
    this.#txMeta = tx;
  }

  /** What TX metadata this queue honours, and why not the rest. */
  get txMetadata(): TxMetadataSupport {
    return this.#txMeta;
  }

  #noRxMeta(): never {
    throw new AfxdpError(codes.NOT_SUPPORTED, `queue ${this.id} has no RX metadata: open the port with rxMetadata: true ` +
      '(afxdp\'s program asks the driver), or describe your xdp_prog\'s with xdp_meta_rx_ts_offset');
  }

  /**
   * Which RX metadata the packet in `slot` (after `receive()`) carries:
   * RX_META_TIMESTAMP | RX_META_HASH | RX_META_VLAN. With a custom
   * program's xdp_meta_* devargs: RX_META_TIMESTAMP or 0. Each rx* accessor
   * has an `...At(addr)` twin taking the packet's address instead (for
   * batches: `batch.rxHash(i)` uses it).
   */
  rxMetaValid(slot: number): number {
    return this.rxMetaValidAt(this.addrs[slot]!);
  }

  rxMetaValidAt(addr: number): number {
    const m = this.#rxMeta;
    if (m.kind === 'afxdp') return this.#view.getUint32(addr - 4, true);
    if (m.kind === 'none') this.#noRxMeta();
    if (m.hintOffset !== undefined) return (this.#view.getUint32(addr - m.hintOffset, true) & m.mask) !== 0 ? RX_META_TIMESTAMP : 0;
    return this.#view.getBigUint64(addr - m.tsOffset, true) !== 0n ? RX_META_TIMESTAMP : 0;
  }

  /** The RX timestamp of `slot` in ns (the driver's clock; a NIC's PHC), 0n when it has none. */
  rxTimestamp(slot: number): bigint {
    return this.rxTimestampAt(this.addrs[slot]!);
  }

  rxTimestampAt(addr: number): bigint {
    const m = this.#rxMeta;
    if ((this.rxMetaValidAt(addr) & RX_META_TIMESTAMP) === 0) return 0n;
    return this.#view.getBigUint64(addr - (m.kind === 'afxdp' ? RX_META_LEN : (m as { tsOffset: number }).tsOffset), true);
  }

  /** rxTimestamp as milliseconds in a number (no bigint; ~0.25 µs resolution for epoch-based clocks), 0 when none. */
  rxTimestampMs(slot: number): number {
    return this.rxTimestampMsAt(this.addrs[slot]!);
  }

  rxTimestampMsAt(addr: number): number {
    const m = this.#rxMeta;
    if ((this.rxMetaValidAt(addr) & RX_META_TIMESTAMP) === 0) return 0;
    const at = addr - (m.kind === 'afxdp' ? RX_META_LEN : (m as { tsOffset: number }).tsOffset);
    // Two 32-bit halves: no bigint.
    return (this.#view.getUint32(at + 4, true) * 4294967296 + this.#view.getUint32(at, true)) / 1e6;
  }

  /** The driver's RX hash of `slot` (RSS), or -1 when it gave none (rxMetadata only). */
  rxHash(slot: number): number {
    return this.rxHashAt(this.addrs[slot]!);
  }

  rxHashAt(addr: number): number {
    if (this.#rxMeta.kind !== 'afxdp') this.#noRxMeta();
    return (this.#view.getUint32(addr - 4, true) & RX_META_HASH) === 0 ? -1 : this.#view.getUint32(addr - 16, true);
  }

  /** enum xdp_rss_hash_type of rxHash (L3/L4 bits), 0 when none. */
  rxHashType(slot: number): number {
    if (this.#rxMeta.kind !== 'afxdp') this.#noRxMeta();
    return this.#view.getUint32(this.addrs[slot]! - 12, true);
  }

  /** The stripped VLAN tag's TCI of `slot`, -1 when none (rxVlanProto: its TPID). */
  rxVlanTci(slot: number): number {
    const addr = this.addrs[slot]!;
    if (this.#rxMeta.kind !== 'afxdp') this.#noRxMeta();
    return (this.#view.getUint32(addr - 4, true) & RX_META_VLAN) === 0 ? -1 : this.#view.getUint16(addr - 6, true);
  }

  /** The TPID (0x8100, 0x88a8) of a stripped VLAN tag, -1 when none. */
  rxVlanProto(slot: number): number {
    const addr = this.addrs[slot]!;
    if (this.#rxMeta.kind !== 'afxdp') this.#noRxMeta();
    // The kfunc gives it in network byte order.
    return (this.#view.getUint32(addr - 4, true) & RX_META_VLAN) === 0 ? -1 : this.#view.getUint16(addr - 8, false);
  }

  /**
   * Ask for TX metadata for the packet in `slot` (before `transmit()`):
   * XDP_TXMD_FLAGS_* in `flags`; `csumStart`/`csumOffset` (bytes from the
   * packet start to where checksumming starts, and from there to the
   * checksum field) with XDP_TXMD_FLAGS_CHECKSUM; `launchTimeNs` with
   * XDP_TXMD_FLAGS_LAUNCH_TIME. Writes struct xsk_tx_metadata before the
   * packet and sets XDP_TX_METADATA in `options[slot]`. A feature this
   * queue cannot honour throws ERR_AFXDP_NOT_SUPPORTED with the reason.
   */
  requestTxMetadata(slot: number, flags: number, csumStart = 0, csumOffset = 0, launchTimeNs = 0n): void {
    const t = this.#txMeta;
    if ((flags & XDP_TXMD_FLAGS_CHECKSUM) !== 0 && !t.checksum) this.#txUnsupported('checksum offload', t.reasons.checksum);
    if ((flags & XDP_TXMD_FLAGS_TIMESTAMP) !== 0 && !t.timestamp) this.#txUnsupported('TX timestamp', t.reasons.timestamp);
    if ((flags & XDP_TXMD_FLAGS_LAUNCH_TIME) !== 0 && !t.launchTime) this.#txUnsupported('launch time', t.reasons.launchTime);
    if ((flags & ~(XDP_TXMD_FLAGS_CHECKSUM | XDP_TXMD_FLAGS_TIMESTAMP | XDP_TXMD_FLAGS_LAUNCH_TIME)) !== 0) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `unknown TX metadata flags 0x${flags.toString(16)}`, { argument: 'flags' });
    }
    const at = this.addrs[slot]! - TX_META_LEN;
    const v = this.#view;
    v.setBigUint64(at, BigInt(flags), true);
    v.setUint16(at + 8, csumStart, true);
    v.setUint16(at + 10, csumOffset, true);
    v.setUint32(at + 12, 0, true);
    v.setBigUint64(at + 16, launchTimeNs, true);
    this.options[slot] = this.options[slot]! | XDP_TX_METADATA;
  }

  #txUnsupported(what: string, why: string | undefined): never {
    throw new AfxdpError(codes.NOT_SUPPORTED, `TX metadata ${what} is not supported on queue ${this.id}: ${why ?? 'unknown'}`);
  }

  /**
   * The TX completion timestamp (ns; CLOCK_TAI in copy mode, the NIC's clock
   * in zero-copy) of the frame at `addr` sent with XDP_TXMD_FLAGS_TIMESTAMP,
   * read after the frame completed (`reap()`, `flushTx()`) and before it is
   * allocated again. 0n if the kernel wrote none.
   */
  txTimestamp(addr: number): bigint {
    return this.#view.getBigUint64(addr - TX_META_LEN + 8, true);
  }

  stats(): QueueStats {
    return toQueueStats(call(() => this.#native.stats(this.index)));
  }

  /**
   * Hand this queue to another thread: `port.transfer([queue.index])`.
   * Post the handle to a worker and `attachPort(handle)` there.
   */
  transfer(): TransferHandle {
    if (this.#transfer === undefined) {
      throw new AfxdpError(codes.NOT_SUPPORTED, `queue ${this.id} is attached on this thread; only its port's own thread transfers it`);
    }
    return this.#transfer();
  }
}

/** @internal what a Queue calls: a port, or queues attached on this thread. */
export type QueueNative = Pick<NativePortLike, 'queueCalls' | 'stats'>;

export function toQueueStats(s: NativeQueueStats): QueueStats {
  return {
    queueId: s.queueId,
    rxPackets: s.rxPackets,
    rxBytes: s.rxBytes,
    txPackets: s.txPackets,
    txBytes: s.txBytes,
    rxDescs: s.rxDescs,
    txDescs: s.txDescs,
    xdp: {
      rxDropped: s.rxDropped,
      rxInvalidDescs: s.rxInvalidDescs,
      txInvalidDescs: s.txInvalidDescs,
      rxRingFull: s.rxRingFull,
      rxFillRingEmptyDescs: s.rxFillRingEmptyDescs,
      txRingEmptyDescs: s.txRingEmptyDescs,
    },
  };
}
