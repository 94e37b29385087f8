// A port's receive side as an object-mode Readable of packet batches.
//
// Backpressure reaches the rings: the stream receives only while Node asks
// for data (`_read`) and a batch object is free. When the consumer stops
// (push() returns false, or it holds every batch of the pool), the stream
// stops calling receive(): the rx ring fills up and the kernel drops and
// counts (XDP_STATISTICS rx_ring_full, or rx_dropped when the fill ring ran
// dry first). No frame is lost track of: they are on the rings, in the
// stream's buffer, or with the consumer.
//
// Batches: with only a few packets waiting, a turn checks the ring a few
// microseconds for more (`minBatch`, `gatherChecks`) before it receives.
//
// Wakeups: while packets flow the stream stays off epoll. A turn receives
// up to `maxBurstsPerWakeup` bursts and then continues on the next
// event-loop turn (setImmediate); when the rings run empty it polls them
// for a few microseconds (`spinChecks`) before it arms READABLE and the
// process sleeps in the event loop. Why not sleep on the socket all the
// time: while a socket is registered with epoll, every burst the kernel
// delivers runs the epoll callback in the receiving softirq and every
// epoll_wait polls the socket (in copy mode that runs the transmit path),
// which under load costs more than the checks.
import { Readable } from 'node:stream';
import type { PortBase } from '../port/port-base';
import type { Queue } from '../port/queue';
import { AfxdpError, codes } from '../errors';
import { CLOSED, ERROR, READABLE, socketError, Watch } from '../port/waiter';
import { checkPollMode, checkSpinUs, CLOCK_EVERY, PollMode, SPIN, spinVerdict } from '../port/poll-policy';
import { Batch, BatchPool, BatchState } from './batch';

export interface PortReadableOptions {
  /** Queue indexes to receive from (round robin); default every queue of the port. */
  queues?: readonly number[];
  /** Batches buffered inside the stream before it stops receiving (default 4). */
  highWaterMark?: number;
  /** Packets per batch at most (default and maximum: the port's burstSize). */
  burst?: number;
  /** Bursts received per wakeup before yielding to the event loop (default 16). */
  maxBurstsPerWakeup?: number;
  /**
   * Ring checks (about 50 ns each) while packets flow and the rings are
   * empty for an instant, before the stream sleeps on the socket (default
   * 64; 0: sleep at once).
   */
  spinChecks?: number;
  /**
   * A batch is taken at once when it has this many packets (default 16, at
   * most `burst`); with fewer waiting, the stream first checks the ring up
   * to `gatherChecks` times for more.
   */
  minBatch?: number;
  /**
   * Ring checks (about 50 ns each, default 128 ≈ 6 µs) a short batch may
   * wait to fill up: a batch's trip through the stream costs far more than
   * the checks, so under load fuller batches are cheaper. 0: take what is
   * there.
   */
  gatherChecks?: number;
  /**
   * When the rings run empty: 'busy' keeps checking them every event-loop
   * turn (a core, lowest latency), 'event' sleeps on the socket at once,
   * 'adaptive' checks every turn for `spinUs` after the last packet, then
   * sleeps. Default: the port's pollMode (openPort option, 'adaptive').
   */
  pollMode?: PollMode;
  /** adaptive: µs to keep checking after the last packet (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** Destroys the stream with an AbortError when it aborts. */
  signal?: AbortSignal;
}

function boundedInt(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, `${name} must be an integer between ${min} and ${max}, not ${String(v)}`,
      { argument: name });
  }
  return v;
}

function positiveInt(name: string, v: number | undefined, dflt: number, max: number): number {
  return boundedInt(name, v, dflt, 1, max);
}

export class PortReadable extends Readable {
  readonly port: PortBase;
  readonly #pool: BatchPool;
  readonly #queues: Queue[];
  readonly #burst: number;
  readonly #maxBursts: number;
  readonly #spinChecks: number;
  readonly #minBatch: number;
  readonly #gatherChecks: number;
  readonly #pollMode: PollMode;
  readonly #spinUs: number;
  #lastPacket = 0;
  #turn: NodeJS.Immediate | null = null;
  readonly #onTurn = (): void => {
    this.#turn = null;
    this.#ownTurn = true;
    try {
      this.#pump();
    } finally {
      this.#ownTurn = false;
    }
  };
  // Inside #onTurn: the consumer has drained what was pushed (nextTicks run
  // before Immediates), so a spin here delays no packet.
  #ownTurn = false;
  #watches: Watch[] | null = null;
  #armed = false;
  #wanting = false;
  #pumping = false;
  #again = false;
  #rr = 0;
  // The last batches pushed (ring): the newest `readableLength` of them are
  // still in the stream's buffer and go back to the port on destroy.
  readonly #pushed: (Batch | null)[];
  #pushedNext = 0;
  #onWake(queue: number, ev: number): void {
    if (ev & CLOSED) this.destroy();
    else if (ev & ERROR) this.destroy(socketError(queue, this.port.waiter().errnoOf(queue)));
    else this.#pump();
  }
  readonly #onPoolFree = (): void => this.#pump();
  readonly #onPortClosing = (): void => {
    this.destroy();
  };

  /** @internal use port.readable() */
  constructor(port: PortBase, pool: BatchPool, options: PortReadableOptions = {}) {
    super({
      objectMode: true,
      highWaterMark: positiveInt('highWaterMark', options.highWaterMark, 4, 65536),
      signal: options.signal,
      emitClose: true,
      autoDestroy: true,
    });
    this.port = port;
    this.#pool = pool;
    const indexes = options.queues ?? port.queues.map((q) => q.index);
    if (indexes.length === 0 || indexes.some((i) => !Number.isInteger(i) || port.queues[i] === undefined)) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        `queues must list queue indexes of this port (0..${port.queues.length - 1}), not ${JSON.stringify(indexes)}`,
        { argument: 'queues' });
    }
    this.#queues = [...new Set(indexes)].map((i) => port.queues[i]!);
    this.#burst = positiveInt('burst', options.burst, pool.capacity, pool.capacity);
    this.#maxBursts = positiveInt('maxBurstsPerWakeup', options.maxBurstsPerWakeup, 16, 1 << 20);
    this.#pollMode = checkPollMode(options.pollMode ?? port.config.pollMode);
    this.#spinUs = checkSpinUs(options.spinUs);
    this.#spinChecks = boundedInt('spinChecks', options.spinChecks, this.#pollMode === 'event' ? 0 : 64, 0, 1 << 20);
    this.#minBatch = positiveInt('minBatch', options.minBatch, Math.min(16, this.#burst), this.#burst);
    this.#gatherChecks = boundedInt('gatherChecks', options.gatherChecks, 128, 0, 1 << 20);
    this.#pushed = new Array<Batch | null>(pool.size).fill(null);
    port.onClosing(this.#onPortClosing);
  }

  /** The queues this stream receives from. */
  get queues(): readonly Queue[] {
    return this.#queues;
  }

  /** The poll policy in use. */
  get pollMode(): PollMode {
    return this.#pollMode;
  }

  /** Whether it is waiting in the event loop for packets right now. */
  get waiting(): boolean {
    return this.#armed;
  }

  override _read(): void {
    this.#wanting = true;
    this.#pump();
  }

  #arm(on: boolean): void {
    if (on === this.#armed || this.destroyed) return;
    if (this.#watches === null) {
      const waiter = this.port.waiter();
      this.#watches = this.#queues.map((q) => waiter.watch(q.index, (ev) => this.#onWake(q.index, ev)));
    }
    this.#armed = on;
    for (const w of this.#watches) w.set(on ? READABLE : 0);
  }

  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        this.#pumpOnce();
      } while (this.#again && !this.destroyed);
    } finally {
      this.#pumping = false;
    }
  }

  #pumpOnce(): void {
    if (!this.#wanting || this.destroyed) return;
    const queues = this.#queues;
    const pool = this.#pool;
    let empty = 0;
    for (let bursts = 0; ;) {
      if (bursts >= this.#maxBursts) {
        if (this.#pollMode === 'adaptive') this.#lastPacket = performance.now();
        this.#nextTurn();
        return;
      }
      const b = pool.take(BatchState.Held, this);
      if (b === null) {
        // The consumer holds every batch: stop receiving until one comes back.
        this.#arm(false);
        pool.onFree(this.#onPoolFree);
        return;
      }
      const q = queues[this.#rr]!;
      if (++this.#rr === queues.length) this.#rr = 0;
      let n: number;
      try {
        this.#gather(q);
        n = q.receive(this.#burst);
      } catch (err) {
        pool.recycle(b);
        this.destroy(err as Error);
        return;
      }
      if (n === 0) {
        pool.recycle(b);
        if (++empty >= queues.length) {
          if (bursts > 0 && this.#spin()) {
            empty = 0;
            continue;
          }
          if (!this.#keepPolling(bursts > 0)) {
            this.#arm(true);
            return;
          }
          // In our own turn with nothing pushed, the consumer waits on nothing:
          // spin the rest of a turn here rather than one check per event-loop
          // turn (each turn's Immediate is garbage, and scavenges are a tail).
          // From _read the consumer may still hold packets: never spin there.
          if (bursts === 0 && this.#ownTurn && this.#spinTurn()) {
            empty = 0;
            continue;
          }
          this.#nextTurn();
          return;
        }
        continue;
      }
      empty = 0;
      bursts++;
      b.fill(q, n);
      this.#pushed[this.#pushedNext] = b;
      if (++this.#pushedNext === this.#pushed.length) this.#pushedNext = 0;
      if (!this.push(b)) {
        this.#wanting = false;
        this.#arm(false);
        return;
      }
      if (this.destroyed) return;
    }
  }

  /**
   * While a few packets wait, give the batch a few microseconds to fill
   * (the checks cost far less than a batch's trip through the stream).
   */
  #gather(q: Queue): void {
    const want = this.#minBatch;
    let pending = q.pending();
    for (let i = 0; pending > 0 && pending < want && i < this.#gatherChecks; i++) pending = q.pending();
  }

  /** Whether a packet arrives within `spinChecks` checks of the rings. */
  #spin(): boolean {
    const queues = this.#queues;
    for (let i = 0; i < this.#spinChecks; i++) {
      for (let k = 0; k < queues.length; k++) {
        if (queues[k]!.pending() > 0) return true;
      }
    }
    return false;
  }

  /**
   * busy and adaptive: whether a packet arrives within one turn (TURN_US),
   * or for adaptive before its spin window closes. The clock is read every
   * CLOCK_EVERY checks (each read is a heap number).
   */
  #spinTurn(): boolean {
    const queues = this.#queues;
    const began = performance.now();
    for (let i = 1; ; i++) {
      for (let k = 0; k < queues.length; k++) {
        if (queues[k]!.pending() > 0) return true;
      }
      if (i % CLOCK_EVERY !== 0) continue;
      const window = this.#pollMode === 'adaptive' ? this.#spinUs : Infinity;
      if (spinVerdict(performance.now(), began, this.#lastPacket, window) !== SPIN) return false;
    }
  }

  /** Whether the policy checks the rings again next turn rather than sleeping. */
  #keepPolling(moved: boolean): boolean {
    if (this.#pollMode === 'busy') return true;
    if (this.#pollMode === 'event') return false;
    const now = performance.now();
    if (moved) this.#lastPacket = now;
    return (now - this.#lastPacket) * 1000 < this.#spinUs;
  }

  /** Check the rings again on the next event-loop turn, not on a wakeup. */
  #nextTurn(): void {
    this.#arm(false);
    this.#turn ??= setImmediate(this.#onTurn);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#wanting = false;
    if (this.#turn !== null) clearImmediate(this.#turn);
    this.#turn = null;
    this.#pool.offFree(this.#onPoolFree);
    this.port.offClosing(this.#onPortClosing);
    if (this.#watches !== null) for (const w of this.#watches) w.close();
    this.#watches = null;
    this.#armed = false;
    // Batches still in the buffer were never handed out: their frames go back.
    let first: unknown;
    const ring = this.#pushed;
    for (let k = 0, i = this.#pushedNext; k < Math.min(this.readableLength, ring.length); k++) {
      i = i === 0 ? ring.length - 1 : i - 1;
      const b = ring[i];
      if (b != null && b.state === BatchState.Held && b.holder === this) {
        try {
          b.reclaim();
        } catch (e) {
          first ??= e;
        }
      }
    }
    ring.fill(null);
    callback(err ?? (first as Error | undefined) ?? null);
  }
}
