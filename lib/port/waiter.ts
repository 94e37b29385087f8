// Event-driven wakeups: one native waiter per port (created on first use),
// shared by every subscriber (Port 'readable' listeners, Queue.readable()/
// writable() promises, streams). Each subscriber is a Watch on one queue
// with the events it wants; the native side is armed with the union.
//
// Semantics are level-triggered and persistent (see
// crates/afxdp-node/src/wakeup.rs): while a watch wants READABLE and the rx
// ring is not empty, its handler runs once per event-loop turn. Handlers
// drain (a bounded amount) or change what they want; nothing is allocated
// per wakeup.
import os from 'node:os';
import { native, NativePortLike, NativeWaiter } from '../native';
import { AfxdpError, codes, fromNative } from '../errors';
import { call } from './native-call';

/** The rx ring has packets (POLLIN). */
export const READABLE = 1;
/** The tx ring is at most half full (POLLOUT). */
export const WRITABLE = 2;
/** The socket reported an error (POLLERR/POLLHUP, e.g. the interface went away). */
export const ERROR = 4;
/** The port closed; the watch is dead. */
export const CLOSED = 8;

export type WakeupMode = 'uv' | 'thread';

/**
 * The wakeup backend for new waiters: 'uv' (libuv polls the XSK fds on
 * Node's own loop; the default) or 'thread' (a poll thread per port hands
 * events over through a thread-safe function). `AFXDP_WAKEUP=thread` sets
 * the default; docs/design.md has the measurements behind the choice.
 */
let defaultMode: WakeupMode | undefined = process.env.AFXDP_WAKEUP === 'thread' || process.env.AFXDP_WAKEUP === 'uv'
  ? process.env.AFXDP_WAKEUP
  : undefined;

/** @internal for measurements and tests */
export function setDefaultWakeupMode(mode: WakeupMode | undefined): void {
  defaultMode = mode;
}

export type WatchHandler = (events: number) => void;

/** One subscriber's interest in one queue. */
export class Watch {
  readonly queue: number;
  readonly handler: WatchHandler;
  #events = 0;
  #owner: PortWaiter | null;

  /** @internal use PortWaiter.watch() */
  constructor(owner: PortWaiter, queue: number, handler: WatchHandler) {
    this.#owner = owner;
    this.queue = queue;
    this.handler = handler;
  }

  get events(): number {
    return this.#events;
  }

  /** Want `events` (READABLE | WRITABLE) from now on; 0 pauses. */
  set(events: number): void {
    if (events === this.#events || this.#owner === null) return;
    this.#events = events;
    this.#owner.update(this.queue);
  }

  get closed(): boolean {
    return this.#owner === null;
  }

  /** Stop for good; idempotent. */
  close(): void {
    const owner = this.#owner;
    if (owner === null) return;
    this.#events = 0;
    this.#owner = null;
    owner.remove(this);
  }

  /** @internal the port closed */
  detach(): void {
    this.#owner = null;
    this.#events = 0;
  }
}

/** How often armed sockets are asked for a pending error (see #health). */
const HEALTH_CHECK_MS = 1000;

export class PortWaiter {
  #native: NativeWaiter | null;
  readonly #port: NativePortLike;
  // An AF_XDP socket whose interface is unregistered is unbound: the kernel
  // sets SO_ERROR (ENETDOWN) and wakes waiters, but its poll() then reports
  // no event at all, so nothing would ever wake us. While anything is
  // armed, a 1 s unref'd timer asks the sockets instead (one getsockopt per
  // armed queue per second).
  #health: NodeJS.Timeout | undefined;
  #errnos: number[];
  // Per queue, replaced (never mutated) on subscribe/unsubscribe, so a
  // handler that closes watches cannot disturb a dispatch in progress.
  #watches: Watch[][];
  #armed: number[];
  #failed: boolean[];

  constructor(port: NativePortLike, queueCount: number, mode: WakeupMode | undefined = defaultMode) {
    this.#watches = Array.from({ length: queueCount }, () => []);
    this.#armed = new Array<number>(queueCount).fill(0);
    this.#failed = new Array<boolean>(queueCount).fill(false);
    this.#errnos = new Array<number>(queueCount).fill(0);
    this.#port = port;
    const dispatch = (queue: number, events: number) => this.#dispatch(queue, events);
    this.#native = call(() => native().NativeWaiter.create(port, dispatch, mode ?? null));
  }

  /** 'uv' or 'thread'. */
  get mode(): WakeupMode {
    return this.#open().mode as WakeupMode;
  }

  get closed(): boolean {
    return this.#native === null;
  }

  #open(): NativeWaiter {
    if (this.#native === null) throw new AfxdpError(codes.CLOSED, 'the port is closed; open a new one with openPort()');
    return this.#native;
  }

  /** A new (paused) watch on queue index `queue`. */
  watch(queue: number, handler: WatchHandler): Watch {
    this.#open();
    const list = this.#watches[queue];
    if (list === undefined) {
      throw new AfxdpError(codes.INVALID_ARGUMENT, `queue must be an index in 0..${this.#watches.length - 1}, got ${String(queue)}`,
        { argument: 'queue' });
    }
    const w = new Watch(this, queue, handler);
    this.#watches[queue] = [...list, w];
    return w;
  }

  /** @internal */
  remove(w: Watch): void {
    const list = this.#watches[w.queue];
    if (list === undefined) return;
    this.#watches[w.queue] = list.filter((x) => x !== w);
    this.update(w.queue);
  }

  /** @internal re-arm queue `queue` with the union of what its watches want. */
  update(queue: number): void {
    if (this.#native === null || this.#failed[queue]) return;
    let want = 0;
    const list = this.#watches[queue]!; // queue came from a Watch, checked in watch()
    for (let i = 0; i < list.length; i++) want |= list[i]!.events;
    if (want === this.#armed[queue]) return;
    this.#armed[queue] = want;
    try {
      this.#native.arm(queue, want); // no closure: this runs per wakeup in streams
    } catch (err) {
      throw fromNative(err);
    }
    if (want !== 0 && this.#health === undefined) {
      this.#health = setTimeout(this.#checkHealth, HEALTH_CHECK_MS);
      this.#health.unref();
    }
  }

  /** The errno behind a queue's ERROR event (0 when the kernel gave none). */
  errnoOf(queue: number): number {
    return this.#errnos[queue] ?? 0;
  }

  readonly #checkHealth = (): void => {
    let armed = false;
    for (let q = 0; q < this.#armed.length && this.#native !== null; q++) {
      if (this.#armed[q] === 0 || this.#failed[q]) continue;
      let errno = 0;
      try {
        errno = this.#port.socketError(q);
      } catch (err) {
        // Queues attached from another thread whose port was closed there:
        // tell every armed watch (socketError() names the case).
        if ((err as { code?: unknown }).code === codes.CLOSED) errno = CLOSED_ELSEWHERE;
        else return; // this thread's port is closing
      }
      if (errno !== 0) {
        this.#errnos[q] = errno;
        this.#dispatch(q, ERROR);
      } else {
        armed = true;
      }
    }
    if (this.#errnos.includes(CLOSED_ELSEWHERE)) {
      // Release the duplicated socket fds now: they would keep the closed
      // port's sockets (and their queues) alive in the kernel.
      this.#health = undefined;
      this.close();
      return;
    }
    if (armed && this.#native !== null) this.#health!.refresh();
    else this.#health = undefined;
  };

  #dispatch(queue: number, events: number): void {
    if (events & ERROR) {
      // Level-triggered errors would fire forever: stop watching this socket.
      this.#failed[queue] = true;
      this.#armed[queue] = 0;
      try {
        this.#native?.arm(queue, 0);
      } catch {
        // closing anyway
      }
    }
    const list = this.#watches[queue]!; // the addon reports only queues it was given
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!;
      const mine = events & (w.events | ERROR);
      if (w.events !== 0 && mine !== 0 && !w.closed) w.handler(mine);
    }
  }

  /** Stop watching; every live watch gets CLOSED once. Idempotent. */
  close(): void {
    const waiter = this.#native;
    if (waiter === null) return;
    this.#native = null;
    if (this.#health !== undefined) clearTimeout(this.#health);
    this.#health = undefined;
    waiter.close();
    const all = this.#watches;
    this.#watches = all.map(() => []);
    let first: unknown;
    for (const list of all) {
      for (const w of list) {
        w.detach();
        try {
          w.handler(CLOSED);
        } catch (err) {
          first ??= err;
        }
      }
    }
    if (first !== undefined) throw first;
  }
}

/** The error Node's own APIs reject with on abort (name AbortError, code ABORT_ERR). */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}

export interface WaitOptions {
  /** Reject with an AbortError when it aborts. */
  signal?: AbortSignal;
  /** Resolve `false` after this many milliseconds without the event. */
  timeoutMs?: number;
}

/**
 * One-shot wait on a watch: resolves true when `ready()` holds after an
 * event or a `retryMs` tick, false on timeout; rejects on abort, socket
 * error or port close. `ready()` is checked first, so an already-ready
 * condition resolves without touching the native waiter.
 */
export function waitFor(waiter: () => PortWaiter, queue: number, events: () => number, ready: () => boolean,
  retryMs: () => number | undefined, options: WaitOptions = {}): Promise<boolean> {
  const { signal, timeoutMs } = options;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  try {
    if (ready()) return Promise.resolve(true);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise<boolean>((resolve, reject) => {
    let timeout: NodeJS.Timeout | undefined;
    let retry: NodeJS.Timeout | undefined;
    let retryEvery = 0;
    let watch: Watch | undefined;
    const finish = (err: unknown, value: boolean) => {
      watch?.close();
      if (timeout !== undefined) clearTimeout(timeout);
      if (retry !== undefined) clearTimeout(retry);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(value);
    };
    const onAbort = () => finish(abortError(signal!), false);
    const check = () => {
      try {
        if (ready()) {
          finish(undefined, true);
          return;
        }
        watch!.set(events());
        const ms = retryMs();
        if (ms !== undefined) {
          if (retry !== undefined && ms === retryEvery) retry.refresh();
          else {
            if (retry !== undefined) clearTimeout(retry);
            retry = setTimeout(check, ms);
            retryEvery = ms;
          }
        }
      } catch (err) {
        finish(err, false);
      }
    };
    try {
      watch = waiter().watch(queue, (ev) => {
        if (ev & CLOSED) finish(new AfxdpError(codes.CLOSED, 'the port closed while waiting'), false);
        else if (ev & ERROR) finish(socketError(queue, waiter().errnoOf(queue)), false);
        else check();
      });
    } catch (err) {
      reject(err);
      return;
    }
    if (timeoutMs !== undefined) timeout = setTimeout(() => finish(undefined, false), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    check();
  });
}

/** @internal errnoOf() for queues whose port was closed on the thread that opened it. */
export const CLOSED_ELSEWHERE = -1;

export function socketError(queue: number, errno = 0): AfxdpError {
  if (errno === CLOSED_ELSEWHERE) {
    return new AfxdpError(codes.CLOSED,
      `queue index ${queue} is closed: its port was closed on the thread that opened it; transfer queues of an open port`);
  }
  const why = errno === os.constants.errno.ENETDOWN
    ? 'its interface went away (ENETDOWN: unregistered, e.g. deleted or moved to another network namespace)'
    : errno !== 0
      ? `it reported ${Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`}`
      : 'it reported an error or hang-up (POLLERR/POLLHUP)';
  return new AfxdpError(codes.SYSTEM,
    `the AF_XDP socket of queue index ${queue} is unusable: ${why}; close the port and open it again`,
    errno !== 0 ? { errno } : {});
}
