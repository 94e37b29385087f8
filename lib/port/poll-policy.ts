// The poll policies' shared numbers and checks: how long a spinning turn
// runs, how often it reads the clock, the adaptive window. Ports ('readable'
// events), streams and the forwarding loop (lib/fwd/poll-loop.ts) all wait
// by these rules; they live with the ports, the lowest layer using them.
//
//   busy      spin on the rings: turns of up to TURN_US, each turn followed
//             by setImmediate (timers, signals and I/O still run)
//   event     run while packets come, then sleep on the rx rings' readiness
//   adaptive  spin like busy while packets come and for `spinUs` after the
//             last one, then sleep like event (the default)
import { POLL_MODES, PollMode, defaults } from '../config/port-config';
import { AfxdpError, codes } from '../errors';

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

/** spinVerdict(): keep spinning this turn. */
export const SPIN = 0;
/** spinVerdict(): the turn is over; continue on the next event-loop turn. */
export const YIELD = 1;
/** spinVerdict(): the adaptive window closed; sleep on readiness. */
export const SLEEP = 2;

/**
 * What a spinning loop does at one of its clock reads (all times in ms from
 * performance.now(); `windowUs` Infinity for busy). The window is checked
 * before the turn's end: where CLOCK_EVERY steps outlast TURN_US (a loaded
 * machine), checking the turn first would yield forever and never sleep.
 */
export function spinVerdict(now: number, turnBegan: number, lastPacket: number, windowUs: number): number {
  if ((now - lastPacket) * 1000 >= windowUs) return SLEEP;
  return now - turnBegan >= TURN_US / 1000 ? YIELD : SPIN;
}
