// One forwarding loop with a latency policy, shared by `afxdp fwd`, the
// streams' idea of waiting, and burst-API users (runLoop).
//
//   busy      spin on the rings: turns of up to TURN_PASSES steps, each turn
//             followed by setImmediate (timers, signals and I/O still run)
//   event     run while steps move packets, then sleep on the rx rings'
//             readiness (epoll through the port's waiter) at once
//   adaptive  spin like busy while packets come and for `spinUs` after the
//             last one, then sleep like event (the default)
//
// No timer naps on the data path: a sleeping loop wakes on the socket's
// readiness, a spinning one never sleeps. Nothing is allocated per turn or
// per wakeup (the watches and the handlers are made once).
import { POLL_MODES, PollMode, defaults } from '../config/port-config';
import { AfxdpError, codes } from '../errors';
import type { Queue } from './queue';
import { CLOSED, ERROR, READABLE, Watch } from './waiter';

export { POLL_MODES };
export type { PollMode };

/**
 * Default adaptive spin window after the last packet, in µs. Measured
 * (docs/design.md "Poll policies"): long enough that a loop at 10 kpps
 * (100 µs between packets) still sleeps, short enough that idle costs
 * nothing.
 */
export const DEFAULT_SPIN_US = 50;

/**
 * How long one spinning turn runs before it yields to the event loop (µs).
 * Packets are handled within the turn, so its length costs them nothing;
 * it delays timers and I/O by at most this much. Each turn allocates one
 * Immediate (~100 bytes): shorter turns would make garbage for the
 * scavenger, whose pauses are themselves a latency tail.
 */
export const TURN_US = 100;
/**
 * Work between clock reads inside a turn: an empty step counts 1 (~130 ns),
 * a step that moved n packets 1 + n. Each read of performance.now() leaves
 * a 16-byte heap number: read every 32 empty steps, the clock was most of
 * a busy loop's garbage (8.5 MB/s, a scavenge every 200 ms).
 */
export const CLOCK_EVERY = 256;

export interface LoopOptions {
  /** 'busy', 'adaptive' (default) or 'event'. */
  pollMode?: PollMode;
  /** adaptive: µs to keep spinning after the last packet (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** Stops the loop (done resolves) when it aborts. */
  signal?: AbortSignal;
}

/** Check a poll mode given by a user; throws ERR_AFXDP_INVALID_ARGUMENT. */
export function checkPollMode(value: unknown, argument = 'pollMode'): PollMode {
  if (value === undefined) return defaults.pollMode;
  if ((POLL_MODES as readonly unknown[]).includes(value)) return value as PollMode;
  throw new AfxdpError(codes.INVALID_ARGUMENT,
    `${argument} must be one of ${POLL_MODES.map((m) => `'${m}'`).join(', ')}, not ${JSON.stringify(value)}`, { argument });
}

/** Check a spin window in µs (0..1 s). */
export function checkSpinUs(value: unknown, argument = 'spinUs'): number {
  if (value === undefined) return DEFAULT_SPIN_US;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1e6) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, `${argument} must be a number of microseconds in 0..1000000, not ${String(value)}`,
      { argument });
  }
  return value;
}

/**
 * Runs `step` (one pass over the rings; returns the packets it moved) under
 * a poll policy until stopped. `queues` are the rx queues whose readiness
 * wakes a sleeping loop; with none, a sleeping loop polls every 1 ms (a
 * generator has nothing to wait on).
 */
export class PollLoop {
  readonly pollMode: PollMode;
  readonly spinUs: number;
  #stopped = false;
  #sleeping = false;
  #lastPacket = 0;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #watches: Watch[] | null = null;
  readonly #queues: readonly Queue[];
  readonly #step: () => number;
  readonly #signal: AbortSignal | undefined;
  readonly #done: Promise<void>;
  #resolve!: () => void;
  #reject!: (err: unknown) => void;
  /** Times the loop went to sleep on events (for measurements). */
  sleeps = 0;

  constructor(queues: readonly Queue[], step: () => number, options: LoopOptions = {}) {
    this.pollMode = checkPollMode(options.pollMode);
    this.spinUs = checkSpinUs(options.spinUs);
    this.#queues = queues;
    this.#step = step;
    this.#signal = options.signal;
    this.#done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (this.#signal?.aborted) {
      this.stop();
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#lastPacket = performance.now();
    this.#immediate = setImmediate(this.#turn);
  }

  /** Resolves after stop() or the signal's abort; rejects if a step threw or a socket failed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Whether it sleeps on readiness right now. */
  get sleeping(): boolean {
    return this.#sleeping;
  }

  stop(): void {
    if (this.#finish()) this.#resolve();
  }

  readonly #onAbort = (): void => this.stop();

  #finish(): boolean {
    if (this.#stopped) return false;
    this.#stopped = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#immediate = undefined;
    this.#timer = undefined;
    if (this.#watches !== null) for (const w of this.#watches) w.close();
    this.#watches = null;
    this.#sleeping = false;
    return true;
  }

  #fail(err: unknown): void {
    if (this.#finish()) this.#reject(err);
  }

  readonly #turn = (): void => {
    this.#immediate = undefined;
    this.#timer = undefined;
    if (this.#stopped) return;
    const mode = this.pollMode;
    const began = performance.now();
    let now = began;
    try {
      for (let work = 0; ;) {
        const n = this.#step();
        if (this.#stopped) return;
        if (n > 0) {
          if (mode === 'adaptive') this.#lastPacket = now;
        } else if (mode === 'event') {
          break; // sleep at the first empty pass
        }
        work += 1 + n;
        if (work < CLOCK_EVERY) continue;
        work = 0;
        now = performance.now();
        if (now - began >= TURN_US / 1000) {
          this.#immediate = setImmediate(this.#turn);
          return;
        }
        if (mode === 'adaptive' && (now - this.#lastPacket) * 1000 >= this.spinUs) break;
      }
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#sleep();
  };

  #sleep(): void {
    this.sleeps++;
    if (this.#queues.length === 0) {
      this.#timer = setTimeout(this.#turn, 1);
      return;
    }
    if (this.#watches === null) {
      try {
        this.#watches = this.#queues.map((q, i) => q.watch((events) => this.#onWake(events, i)));
      } catch (err) {
        this.#fail(err);
        return;
      }
    }
    this.#sleeping = true;
    // Level-triggered: packets already waiting wake it at once.
    for (const w of this.#watches) w.set(READABLE);
  }

  #onWake(events: number, queue: number): void {
    if (this.#stopped) return;
    if (events & CLOSED) {
      this.stop();
      return;
    }
    if (events & ERROR) {
      this.#fail(this.#queues[queue].socketError());
      return;
    }
    if (!this.#sleeping) return;
    this.#sleeping = false;
    for (const w of this.#watches!) w.set(0);
    this.#lastPacket = performance.now();
    this.#turn();
  }
}

/**
 * Run `step` over `queues` under a poll policy until `signal` aborts or
 * `stop()` is called: the loop `afxdp fwd` runs, for burst-API programs.
 *
 *   const loop = runLoop(port.queues, () => forwardOnce(), { pollMode: 'adaptive', signal });
 *   await loop.done;
 */
export function runLoop(queues: readonly Queue[], step: () => number, options: LoopOptions = {}): PollLoop {
  return new PollLoop(queues, step, options);
}
