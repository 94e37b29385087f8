// One forwarding loop with a latency policy (lib/port/poll-policy.ts),
// shared by `afxdp fwd`, the forward engines and burst-API users (runLoop).
//
//   busy      spin on the rings: turns of up to TURN_US, each turn
//             followed by setImmediate (timers, signals and I/O still run)
//   event     run while steps move packets, then sleep on the rx rings'
//             readiness (epoll through the port's waiter) at once
//   adaptive  spin like busy while packets come and for `spinUs` after the
//             last one, then sleep like event (the default)
//
// No timer naps on the data path: a sleeping loop wakes on the socket's
// readiness, a spinning one never sleeps. Nothing is allocated per turn or
// per wakeup (the watches and the handlers are made once).
import type { Queue } from '../port/queue';
import { CLOSED, ERROR, READABLE, Watch } from '../port/waiter';
import { checkPollMode, checkSpinUs, CLOCK_EVERY, DEFAULT_SPIN_US, POLL_MODES, PollMode, spinVerdict, SLEEP, YIELD } from '../port/poll-policy';

// The policy's numbers live with the ports (lib/port/poll-policy.ts): ports
// and streams wait by the same rules and must not import this layer.
export { DEFAULT_SPIN_US, POLL_MODES };
export type { PollMode };

export interface LoopOptions {
  /** 'busy', 'adaptive' (default) or 'event'. */
  pollMode?: PollMode;
  /** adaptive: µs to keep spinning after the last packet (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** Stops the loop (done resolves) when it aborts. */
  signal?: AbortSignal;
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
        const verdict = spinVerdict(now, began, this.#lastPacket, mode === 'adaptive' ? this.spinUs : Infinity);
        if (verdict === SLEEP) break;
        if (verdict === YIELD) {
          this.#immediate = setImmediate(this.#turn);
          return;
        }
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
      this.#fail(this.#queues[queue]!.socketError());
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
