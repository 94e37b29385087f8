// Probes every fault test asserts with: the event loop's longest stall, the
// process's open fds, and the XDP programs attached in a namespace.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * Measures the event loop's longest stall while it runs: a short interval
 * timer notes the largest gap between its ticks beyond the interval. A loop
 * blocked by a synchronous wait shows the whole wait here.
 */
export class StallMeter {
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #maxMs = 0;

  constructor(intervalMs = 5) {
    this.#intervalMs = intervalMs;
  }

  start(): this {
    this.#last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#maxMs = Math.max(this.#maxMs, now - this.#last - this.#intervalMs);
      this.#last = now;
    }, this.#intervalMs);
    return this;
  }

  /** Stops the timer; returns the longest stall in ms (the gap still open counts too). */
  stop(): number {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#maxMs = Math.max(this.#maxMs, performance.now() - this.#last - this.#intervalMs);
    return Math.max(0, this.#maxMs);
  }
}

/** Runs `fn` with a StallMeter on; returns its result (or error) and the longest stall. */
export async function measureStall<T>(fn: () => Promise<T>, intervalMs = 5): Promise<{ result?: T; error?: unknown; stallMs: number; elapsedMs: number }> {
  const meter = new StallMeter(intervalMs).start();
  const t0 = performance.now();
  try {
    const result = await fn();
    return { result, stallMs: meter.stop(), elapsedMs: performance.now() - t0 };
  } catch (error) {
    return { error, stallMs: meter.stop(), elapsedMs: performance.now() - t0 };
  }
}

/** Open fds of a process (default: this one). */
export function fdCount(pid: number | 'self' = 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Waits (bounded) for this process's fd count to come back to `start`:
 * finalizers and libuv close callbacks run a turn or two after close().
 */
export async function fdsSettle(start: number, timeoutMs = 2000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let now = fdCount();
  while (now !== start && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    now = fdCount();
  }
  return now;
}

/** Ids of the XDP programs attached to `dev` in namespace `ns` (empty: none). */
export function attachedXdp(ns: string | undefined, dev: string): number[] {
  const args = [...(ns === undefined ? [] : ['-n', ns]), '-j', '-d', 'link', 'show', 'dev', dev];
  const [link] = JSON.parse(execFileSync('ip', args, { encoding: 'utf8' })) as { xdp?: { prog?: { id: number }; attached?: { prog?: { id: number } }[] } }[];
  const ids = new Set<number>();
  if (link === undefined) throw new Error(`ip link show dev ${dev}: no link in the output`);
  if (link.xdp?.prog?.id !== undefined) ids.add(link.xdp.prog.id);
  for (const a of link.xdp?.attached ?? []) if (a.prog?.id !== undefined) ids.add(a.prog.id);
  return [...ids];
}

/** Polls `check` until it is true or `timeoutMs` passes; returns the last answer. */
export async function waitFor(check: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/**
 * The longest event-loop stall a fault test accepts while afxdp waits on a
 * peer. The defects stalled the loop for the whole wait (2-10 s); a
 * non-blocking wait measures 0-30 ms, and the margin is for a loaded 2-core
 * CI machine.
 */
export const MAX_WAIT_STALL_MS = 300;
