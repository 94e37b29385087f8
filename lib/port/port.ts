// A port: the AF_XDP sockets on one interface's queue range, in the style
// of Node's dgram/net objects (EventEmitter, idempotent close, 'close'
// event). Use after close throws ERR_AFXDP_CLOSED; it never crashes.
import { EventEmitter } from 'node:events';
import type { NativePort, NativeFrameCounts } from '../native';
import type { PortConfig } from '../config/port-config';
import { AfxdpError, codes } from '../errors';
import { Queue, QueueStats, toQueueStats } from './queue';
import { call } from './native-call';
import { PortWaiter, READABLE, Watch, WakeupMode } from './waiter';

export interface PortInfo {
  ifname: string;
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
}

/** Whether preferred busy polling is on for the port's sockets, and why not. */
export interface BusyPollStatus {
  /** On for every socket of the port. */
  enabled: boolean;
  /** Why it is off (or only partly on). */
  reason?: string;
  /** SO_BUSY_POLL in µs and SO_BUSY_POLL_BUDGET, when on. */
  timeoutUs?: number;
  budget?: number;
  /** Who set it up: the Device Plugin (use_cni) or afxdp's own socket options. */
  via?: 'device-plugin' | 'socket-options';
}

/** @internal what openPort learned besides the native port. */
export interface PortExtras {
  busyPoll?: BusyPollStatus;
}

export interface PortStats extends Omit<QueueStats, 'queueId'> {
  queues: QueueStats[];
}

export type FrameAccounting = NativeFrameCounts;

export class Port extends EventEmitter {
  readonly config: PortConfig;
  readonly queues: readonly Queue[];
  #native: NativePort | null;
  #buffers: ArrayBuffer[];
  #info: PortInfo;
  #waiter: PortWaiter | null = null;
  #readableWatches: Watch[] | null = null;
  #onClose: (() => void)[] = [];

  /** @internal use openPort() */
  constructor(nativePort: NativePort, config: PortConfig, extras: PortExtras = {}) {
    super();
    this.#native = nativePort;
    this.config = config;
    const info = nativePort.info();
    const umems = Array.from({ length: info.umemCount }, (_, u) => nativePort.umemBuffer(u));
    const descriptors = nativePort.descriptorBuffer();
    this.#buffers = [...umems, descriptors];
    this.queues = info.queueIds.map((id, index) => {
      const u = nativePort.umemOf(index);
      return new Queue(nativePort, index, id, new Uint8Array(umems[u]), u, descriptors, config.burstSize,
        () => this.waiter());
    });
    this.#info = {
      ifname: info.ifname,
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
    };
    // 'readable' listeners arm rx wakeups on every queue; the last one gone disarms.
    this.on('newListener', (event: string | symbol) => {
      if (event === 'readable' && this.#native !== null && this.#readableWatches === null) {
        this.#readableWatches = this.queues.map((q) => {
          const w = this.waiter().watch(q.index, (ev) => {
            if (ev & READABLE) this.emit('readable', q);
          });
          w.set(READABLE);
          return w;
        });
      }
    });
    this.on('removeListener', (event: string | symbol) => {
      if (event === 'readable' && this.listenerCount('readable') === 0 && this.#readableWatches !== null) {
        for (const w of this.#readableWatches) w.close();
        this.#readableWatches = null;
      }
    });
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

  #port(): NativePort {
    if (this.#native === null) {
      throw new AfxdpError(codes.CLOSED, `port on ${this.config.iface} is closed; open a new one with openPort()`);
    }
    return this.#native;
  }

  /** Interface and socket facts, with link state read from the kernel now. */
  info(): PortInfo {
    const live = call(() => this.#port().info());
    return { ...this.#info, linkUp: live.linkUp, mtu: live.mtu, zeroCopy: live.zeroCopy };
  }

  /** Software and kernel counters, summed over queues and per queue. */
  stats(): PortStats {
    const port = this.#port();
    const queues = this.queues.map((q) => toQueueStats(call(() => port.stats(q.index))));
    const total: PortStats = {
      rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0,
      xdp: { rxDropped: 0, rxInvalidDescs: 0, txInvalidDescs: 0, rxRingFull: 0, rxFillRingEmptyDescs: 0, txRingEmptyDescs: 0 },
      queues,
    };
    for (const q of queues) {
      total.rxPackets += q.rxPackets;
      total.rxBytes += q.rxBytes;
      total.txPackets += q.txPackets;
      total.txBytes += q.txBytes;
      for (const key of Object.keys(total.xdp) as (keyof QueueStats['xdp'])[]) total.xdp[key] += q.xdp[key];
    }
    return total;
  }

  /** Who owns the frames of UMEM `umem` right now (see docs: frame ownership). */
  frames(umem = 0): FrameAccounting {
    const port = this.#port();
    return call(() => port.frames(umem));
  }

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
    this.#native = null;
    this.#readableWatches = null;
    const waiter = this.#waiter;
    this.#waiter = null;
    try {
      waiter?.close();
    } catch (err) {
      first ??= err;
    }
    // Detaches the UMEM and descriptor buffers first, so views made from
    // them read as empty instead of pointing at unmapped memory.
    call(() => port.close(this.#buffers));
    this.#buffers = [];
    process.nextTick(() => this.emit('close'));
    if (first !== undefined) throw first;
  }
}
