// A port without its stream face: the AF_XDP sockets on one interface's
// queue range, in the style of Node's dgram/net objects (EventEmitter,
// idempotent close, 'close' event). Use after close throws ERR_AFXDP_CLOSED;
// it never crashes. lib/stream builds on this; port.ts adds the streams.
import { EventEmitter } from 'node:events';
import type { NativePort, NativePortLike, NativeFrameCounts } from '../native';
import type { PortConfig } from '../config/port-config';
import { AfxdpError, codes } from '../errors';
import { Queue, QueueStats, toQueueStats } from './queue';
import { call } from './native-call';
import { PortWaiter, READABLE, Watch, WakeupMode } from './waiter';
import { UmemBuffer } from './umem-share';
import { rxMetaLayout, txMetadataSupport } from './metadata';
import type { TxMetadataSupport } from './metadata';
import type { BusyPollStatus, TransferHandle } from './transfer-handle';
import { CLOCK_EVERY, DEFAULT_SPIN_US, SPIN, SLEEP, spinVerdict } from './poll-policy';

export type { BusyPollStatus } from './transfer-handle';

export interface PortInfo {
  iface: string;
  ifindex: number;
  mac: string;
  mtu: number;
  linkUp: boolean;
  /** Kernel queue ids this port's sockets are bound to. */
  queues: number[];
  /** Queues the interface has. */
  interfaceQueues: number;
  driver: string;
  /** How packets reach the sockets: our program, the user's, or the Device Plugin's map. */
  source: PortConfig['source'];
  /** XDP attach mode of the program this port attached ('native' | 'generic'), or 'external'. */
  xdpMode: string;
  xdpProgramId: number;
  /** Per queue: did the kernel give zero-copy (XDP_OPTIONS)? */
  zeroCopy: boolean[];
  hugepages: boolean;
  frameSize: number;
  /** Offset of packet data inside a frame (kernel headroom + configured headroom). */
  dataOffset: number;
  /** Preferred busy polling: on, or off and why. */
  busyPoll: BusyPollStatus;
  /**
   * Interfaces of the other open ports that share this port's UMEM (every
   * queue's with shared_umem; see openPorts() and `shareUmemWith`), read
   * now; empty when the UMEM is this port's alone. Frames of a shared UMEM
   * can be transmitted on any of those ports without a copy.
   */
  umemSharedWith: string[];
  /**
   * RX metadata: where it comes from ('metadata-area': afxdp's program in the
   * XDP metadata area; 'prefix': the same struct prepended by the program and
   * skipped by receive(), on kernels whose verifier refuses
   * bpf_xdp_adjust_meta; 'xdp_prog': your program, by the xdp_meta_* devargs;
   * 'none') and what the device supports (netdev xdp-rx-metadata-features;
   * undefined when the kernel cannot say).
   */
  rxMetadata: { program: 'metadata-area' | 'prefix' | 'xdp_prog' | 'none'; deviceSupports: string[] | undefined };
  /** TX metadata: registration (how tx_metadata_len was taken), what queue 0 honours, and the device's xsk-features. */
  txMetadata: TxMetadataSupport & { deviceSupports: string[] | undefined };
  /**
   * Sockets bound multi-buffer (XDP_USE_SG): packets larger than a frame
   * arrive and leave as chains (queue.options XDP_PKT_CONTD). Off: such
   * packets are dropped by the kernel (stats xdp.rxDropped); open with
   * multiBuffer 'on' (or leave it 'auto' with a jumbo MTU) to take them.
   */
  multiBuffer: boolean;
  /** The interface's xdp-zc-max-segs (netdev netlink), where the kernel reports it. */
  xdpZcMaxSegs: number | undefined;
  /** The program this port attached is frags-aware (xdp.frags); undefined for one it did not attach. */
  xdpFrags: boolean | undefined;
  /**
   * Set when the MTU allows packets larger than a frame's room and the
   * sockets are not multi-buffer: the kernel drops those (rxDropped); says
   * how to take them.
   */
  mtuWarning: string | undefined;
}

/** Ethernet header plus a VLAN tag: a frame's bytes beyond the MTU. */
const L2_OVERHEAD = 18;

/** PortInfo.mtuWarning: packets the MTU allows that single-buffer sockets cannot take. */
export function mtuWarning(mtu: number, room: number, multiBuffer: boolean): string | undefined {
  if (multiBuffer || mtu + L2_OVERHEAD <= room) return undefined;
  return `MTU ${mtu} allows packets of up to ${mtu + L2_OVERHEAD} bytes but a frame holds ${room} and multiBuffer is off: ` +
    "the kernel drops larger packets (stats xdp.rxDropped); open the port with multiBuffer 'on' or 'auto' " +
    '(Linux >= 6.6) to receive them as chains of frames, or lower the MTU';
}

/** @internal what openPort learned besides the native port. */
export interface PortExtras {
  busyPoll?: BusyPollStatus;
  /** The port whose UMEM 0 this one joined (NativePort.open's shareWith). */
  umemOf?: PortBase;
}

export interface PortStats extends Omit<QueueStats, 'queueId'> {
  queues: QueueStats[];
}

export type FrameAccounting = NativeFrameCounts;

function isOwnPort(port: NativePortLike): port is NativePort {
  return typeof (port as Partial<NativePort>).transfer === 'function';
}

export class PortBase extends EventEmitter {
  readonly config: PortConfig;
  /** One per queue id, in order; never empty (queueCount is at least 1). */
  readonly queues: readonly [Queue, ...Queue[]];
  #native: NativePortLike | null;
  /** Opened on this thread (not attached from another). */
  readonly #own: boolean;
  #umems: UmemBuffer[];
  #descriptors: ArrayBuffer | null;
  #info: PortInfo;
  #waiter: PortWaiter | null = null;
  #readableWatches: Watch[] | null = null;
  // 'readable' under the busy and adaptive policies: the rings are checked
  // every event-loop turn (and, adaptive, the watches armed after a quiet
  // window).
  #readablePoll: NodeJS.Immediate | undefined;
  #readableLast = 0;
  #onClose: (() => void)[] = [];

  /** @internal use openPort() */
  constructor(nativePort: NativePortLike, config: PortConfig, extras: PortExtras = {}) {
    super();
    this.#native = nativePort;
    this.#own = isOwnPort(nativePort);
    this.config = config;
    const info = nativePort.info();
    // A joined UMEM already has its buffer (V8 allows one per address).
    this.#umems = Array.from({ length: info.umemCount }, (_, u) =>
      u === 0 && extras.umemOf !== undefined ? extras.umemOf.umemBuffer(0) : new UmemBuffer(nativePort.umemBuffer(u)));
    const umems = this.#umems.map((b) => b.retain());
    const descriptors = nativePort.descriptorBuffer();
    this.#descriptors = descriptors;
    this.queues = info.queueIds.map((id, index) => {
      const u = nativePort.umemOf(index);
      return new Queue(nativePort, index, id, new Uint8Array(umems[u]!), u, descriptors, config.burstSize,
        () => this.waiter(), this.#own ? () => this.transfer([index]) : undefined);
    }) as [Queue, ...Queue[]]; // the core opens at least one queue or fails
    const tx = txMetadataSupport(info.txMetadataReg ?? undefined, info.zeroCopy[0] === true, info.xskFeatures ?? undefined);
    const rx = rxMetaLayout(config);
    for (const q of this.queues) q.setMetadata(rx, txMetadataSupport(info.txMetadataReg ?? undefined,
      info.zeroCopy[q.index] === true, info.xskFeatures ?? undefined));
    this.#info = {
      iface: info.ifname, // the addon's word; `iface` in every TS surface
      ifindex: info.ifindex,
      mac: info.mac,
      mtu: info.mtu,
      linkUp: info.linkUp,
      queues: info.queueIds,
      interfaceQueues: info.interfaceQueues,
      driver: info.driver,
      source: config.source,
      xdpMode: info.xdpMode,
      xdpProgramId: info.xdpProgramId,
      zeroCopy: info.zeroCopy,
      hugepages: info.hugepages,
      frameSize: info.frameSize,
      dataOffset: info.dataOffset,
      busyPoll: Object.freeze({ ...(extras.busyPoll ?? { enabled: false, reason: 'not configured' }) }),
      umemSharedWith: info.umemSharedWith,
      rxMetadata: Object.freeze({
        program: info.rxMetadata ? (info.rxMetadataPrefix === 0 ? 'metadata-area' : 'prefix') : rx.kind === 'custom' ? 'xdp_prog' : 'none',
        deviceSupports: info.rxMetadataFeatures ?? undefined,
      }),
      txMetadata: Object.freeze({ ...tx, deviceSupports: info.xskFeatures ?? undefined }),
      multiBuffer: info.multiBuffer,
      xdpZcMaxSegs: info.xdpZcMaxSegs ?? undefined,
      xdpFrags: info.xdpFrags ?? undefined,
      mtuWarning: mtuWarning(info.mtu, info.frameSize - info.dataOffset, info.multiBuffer),
    };
    // 'readable' listeners arm rx wakeups on every queue (or, busy and
    // adaptive, poll the rings); the last one gone disarms.
    this.on('newListener', (event: string | symbol) => {
      if (event === 'readable' && this.#native !== null && this.#readableWatches === null) {
        const polling = config.pollMode !== 'event';
        this.#readableWatches = this.queues.map((q) => {
          const w = this.waiter().watch(q.index, (ev) => {
            if (!(ev & READABLE)) return;
            if (polling) this.#readableWoke();
            this.#emitReadable(q);
          });
          if (!polling) w.set(READABLE);
          return w;
        });
        if (polling) {
          this.#readableLast = performance.now();
          this.#readablePoll = setImmediate(this.#pollReadable);
        }
      }
    });
    this.on('removeListener', (event: string | symbol) => {
      if (event === 'readable' && this.listenerCount('readable') === 0 && this.#readableWatches !== null) {
        for (const w of this.#readableWatches) w.close();
        this.#readableWatches = null;
        this.#stopReadablePoll();
      }
    });
  }

  #stopReadablePoll(): void {
    if (this.#readablePoll !== undefined) clearImmediate(this.#readablePoll);
    this.#readablePoll = undefined;
  }

  // adaptive: a packet woke the sleeping watches: poll again.
  #readableWoke(): void {
    const watches = this.#readableWatches;
    if (watches === null) return;
    for (const w of watches) w.set(0);
    this.#readableLast = performance.now();
    this.#readablePoll ??= setImmediate(this.#pollReadable);
  }

  // One spinning turn (TURN_US at most, like PollLoop): 'readable' for each
  // queue with packets, then the next turn, or (adaptive, quiet for the
  // window) the armed watches. A listener's exception propagates
  // (uncaughtException) after the next turn is scheduled.
  readonly #pollReadable = (): void => {
    this.#readablePoll = undefined;
    const watches = this.#readableWatches;
    if (watches === null || this.#native === null) return;
    const busy = this.config.pollMode === 'busy';
    const began = performance.now();
    let now = began;
    let sleep = false;
    try {
      for (let i = 1; ; i++) {
        for (const q of this.queues) {
          if (q.pending() === 0) continue;
          this.#readableLast = now;
          this.#emitReadable(q);
          if (this.#readableWatches !== watches || this.#native === null) return;
        }
        if (i % CLOCK_EVERY !== 0) continue;
        now = performance.now();
        const verdict = spinVerdict(now, began, this.#readableLast, busy ? Infinity : DEFAULT_SPIN_US);
        if (verdict === SLEEP) sleep = true;
        if (verdict !== SPIN) return;
      }
    } finally {
      if (this.#readableWatches === watches && this.#native !== null && this.#readablePoll === undefined) {
        if (sleep) for (const w of watches) w.set(READABLE); // level-triggered: a packet now wakes at once
        else this.#readablePoll = setImmediate(this.#pollReadable);
      }
    }
  };

  // emit() gathers its arguments into a fresh array on every call; with a
  // single listener (the usual case) call it directly, so an event-driven
  // burst loop allocates nothing per wakeup.
  #emitReadable(q: Queue): void {
    const events = (this as unknown as { _events?: Record<string, unknown> })._events;
    const handler = events?.readable;
    if (typeof handler === 'function') (handler as (q: Queue) => void).call(this, q);
    else this.emit('readable', q);
  }

  /**
   * @internal The port's wakeup source (created on first use). Queues,
   * 'readable' listeners and streams subscribe to it.
   */
  waiter(mode?: WakeupMode): PortWaiter {
    if (this.#waiter === null) {
      const port = this.#port();
      this.#waiter = new PortWaiter(port, this.queues.length, mode);
    }
    return this.#waiter;
  }

  /** @internal run `fn` when the port closes (before its memory goes away). */
  onClosing(fn: () => void): void {
    this.#onClose.push(fn);
  }

  /** @internal */
  offClosing(fn: () => void): void {
    const i = this.#onClose.indexOf(fn);
    if (i >= 0) this.#onClose.splice(i, 1);
  }

  get closed(): boolean {
    return this.#native === null;
  }

  /** @internal The buffer of UMEM `u`, for a port joining it. */
  umemBuffer(u: number): UmemBuffer {
    this.#port();
    const b = this.#umems[u];
    if (b === undefined) throw new AfxdpError(codes.INVALID_ARGUMENT, `UMEM index ${u} out of range (port has ${this.#umems.length})`);
    return b;
  }

  /** @internal The native port, for a port joining its UMEM. */
  nativePort(): NativePort {
    const port = this.#port();
    if (!isOwnPort(port)) {
      throw new AfxdpError(codes.NOT_SUPPORTED, `the port on ${this.config.iface} was attached from another thread; ` +
        'use the port on the thread that opened it');
    }
    return port;
  }

  /** Whether this port's queues were transferred from another thread (attachPort). */
  get attached(): boolean {
    return !this.#own;
  }

  /**
   * Hand queues (indexes, default all) to another thread: returns a plain
   * object to postMessage() to a worker, which calls `attachPort(handle)`
   * for a Port over them there (streams, 'readable', poll policies and
   * wakeups on its own event loop). Until that thread closes them or ends,
   * calls on those queues here fail with ERR_AFXDP_TRANSFERRED.
   */
  transfer(queues: readonly number[] = this.queues.map((q) => q.index)): TransferHandle {
    const port = this.nativePort();
    const native = call(() => port.transfer([...queues]));
    return {
      afxdp: 'transfer',
      native,
      config: { ...this.config },
      queueIds: native.queues.map((i) => this.queues[i]!.id),
      busyPoll: { ...this.#info.busyPoll },
    };
  }

  /**
   * Take back queue `queue` whose transfer handle was never attached (the
   * worker died before attachPort); true if it was. A queue attached
   * elsewhere comes back by itself when that thread closes it or ends.
   */
  cancelTransfer(queue: number): boolean {
    const port = this.nativePort();
    return call(() => port.cancelTransfer(queue));
  }

  /** Whether queue `queue` is used on this thread now (not transferred). */
  queueHere(queue: number): boolean {
    const port = this.#port();
    return isOwnPort(port) ? call(() => port.queueAtPort(queue)) : true;
  }

  #port(): NativePortLike {
    if (this.#native === null) {
      throw new AfxdpError(codes.CLOSED, `port on ${this.config.iface} is closed; open a new one with openPort()`);
    }
    return this.#native;
  }

  /** Interface and socket facts, with link state read from the kernel now. */
  info(): PortInfo {
    const live = call(() => this.#port().info());
    return {
      ...this.#info, linkUp: live.linkUp, mtu: live.mtu, zeroCopy: live.zeroCopy, umemSharedWith: live.umemSharedWith,
    };
  }

  /** Software and kernel counters, summed over queues and per queue. */
  stats(): PortStats {
    const port = this.#port();
    const queues = this.queues.map((q) => toQueueStats(call(() => port.stats(q.index))));
    const total: PortStats = {
      rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDescs: 0, txDescs: 0,
      xdp: { rxDropped: 0, rxInvalidDescs: 0, txInvalidDescs: 0, rxRingFull: 0, rxFillRingEmptyDescs: 0, txRingEmptyDescs: 0 },
      queues,
    };
    for (const q of queues) {
      total.rxPackets += q.rxPackets;
      total.rxBytes += q.rxBytes;
      total.txPackets += q.txPackets;
      total.txBytes += q.txBytes;
      total.rxDescs += q.rxDescs;
      total.txDescs += q.txDescs;
      for (const key of Object.keys(total.xdp) as (keyof QueueStats['xdp'])[]) total.xdp[key] += q.xdp[key];
    }
    return total;
  }

  /** Who owns the frames of UMEM `umem` right now (see docs: frame ownership). */
  frames(umem = 0): FrameAccounting {
    const port = this.#port();
    return call(() => port.frames(umem));
  }

  /** @internal after the streams' closing hooks, before the memory goes: the batches go. */
  protected releaseBatches(): void {}

  /** Release everything; idempotent. Emits 'close' once. */
  close(): void {
    const port = this.#native;
    if (port === null) return;
    // Streams first (they release their batches), then wakeups, then memory.
    let first: unknown;
    for (const fn of this.#onClose.splice(0)) {
      try {
        fn();
      } catch (err) {
        first ??= err;
      }
    }
    this.releaseBatches();
    this.#native = null;
    for (const q of this.queues) q.markClosed();
    this.#readableWatches = null;
    this.#stopReadablePoll();
    const waiter = this.#waiter;
    this.#waiter = null;
    try {
      waiter?.close();
    } catch (err) {
      first ??= err;
    }
    // Detaches the descriptor buffer and the UMEM buffers no other open
    // port uses, so views made from them read as empty; a UMEM another
    // port still uses stays mapped and its views valid.
    const detach = this.#umems.filter((b) => b.release()).map((b) => b.buffer);
    if (this.#descriptors !== null) detach.push(this.#descriptors);
    this.#umems = [];
    this.#descriptors = null;
    call(() => port.close(detach));
    process.nextTick(() => this.emit('close'));
    if (first !== undefined) throw first;
  }
}
