// The native addon (napi-rs loader in ../index.js) with the shapes the
// facade relies on. Everything else imports the binding from here. Plain
// data shapes come from the generated ../index.d.ts; the classes are
// described here, more precisely than napi-rs can (fds, promises, calls).
import { AfxdpError, codes } from './errors';

export type {
  NativeFrameCounts, NativeHugepages, NativeLimits, NativeOpenOptions, NativePortInfo, NativeQueueStats, NativeXdpMode,
} from '../index';
import type { NativeFrameCounts, NativeLimits, NativeOpenOptions, NativePortInfo, NativeQueueStats } from '../index';





/** A file descriptor held by native code (e.g. a received XSKMAP). */
export interface NativeFd {
  /** Close now; idempotent. NativePort.open() takes the fd over (it then reads as closed). */
  close(): void;
  readonly closed: boolean;
}

/** One record from the Device Plugin socket. */
export interface NativeDpRecord {
  data: Buffer;
  /** The first fd that came with it (close-on-exec); null when none did. */
  fd: NativeFd | null;
  /** Longer than the receive limit: `data` is its start (MSG_TRUNC). */
  truncated: boolean;
  /** How many fds beyond the first came (the transport closed them). */
  fdsDropped: number;
  /** The control data was cut (MSG_CTRUNC): more fds were sent than arrived. */
  controlTruncated?: boolean;
}

/**
 * A connected SOCK_SEQPACKET socket to the Device Plugin (dp-protocol.md §1).
 * Every call is bounded: recv by its timeout, send by a send timeout. The
 * native calls wait on the threadpool and return Promises (a fake may answer
 * synchronously); close() ends a pending one at once (ERR_AFXDP_CLOSED).
 */
export interface NativeDpConnection {
  send(record: Buffer): Promise<void> | void;
  /** Send `record` with queue `queue`'s XSK fd of `port` attached (SCM_RIGHTS). */
  sendWithSocket(record: Buffer, port: NativePort, queue: number): Promise<void> | void;
  /** One record of at most `limit` bytes; null on EOF. Rejects (errno ETIMEDOUT) after `timeoutMs` without one. */
  recv(timeoutMs: number, limit: number): Promise<NativeDpRecord | null> | NativeDpRecord | null;
  /** Idempotent. */
  close(): void;
}

/** The native connection before it is connected: create(path), then await connect(timeoutMs). */
export interface NativeDpConnector extends NativeDpConnection {
  connect(timeoutMs: number): Promise<void>;
}

/**
 * One queue's hot calls as plain Node-API functions (no `this` to unwrap:
 * crates/afxdp-node/src/queue_calls.rs). Slots are the queue's descriptor
 * slots; every call returns a count.
 */
export interface NativeQueueCalls {
  /** Receive up to `max` packets into slots [0, n). */
  rxBurst(max: number): number;
  /** Post slots [start, start+count); with `dropUnsent` the rest are released. */
  txBurst(start: number, count: number, dropUnsent: boolean): number;
  /** Give slots [start, start+count) back to the free pool. */
  release(start: number, count: number): number;
  /** Take free frames into slots [start, start+count). */
  alloc(start: number, count: number): number;
  reap(): number;
  /** Kick the tx ring if it holds descriptors, then reap; returns frames reaped. */
  flushTx(): number;
  /** Packets waiting on the rx ring (nothing consumed, no syscall). */
  rxPending(): number;
  /** Free tx ring slots. */
  txRoom(): number;
  /** Reap completions, then count the free frames of the queue's UMEM. */
  freeFrames(): number;
}

/**
 * What lib/port uses of a port: a NativePort on the thread that opened it,
 * or a NativeAttachedPort (queues transferred to this thread) elsewhere.
 */
export interface NativePortLike {
  umemBuffer(umem: number): ArrayBuffer;
  descriptorBuffer(): ArrayBuffer;
  umemOf(queue: number): number;
  /** Queue `queue`'s per-burst calls, bound to it (plain functions, no `this`). */
  queueCalls(queue: number): NativeQueueCalls;
  /** The socket's pending error as an errno, 0 for none (reading clears it). */
  socketError(queue: number): number;
  stats(queue: number): NativeQueueStats;
  frames(umem: number): NativeFrameCounts;
  info(): NativePortInfo;
  close(buffers: ArrayBuffer[]): void;
}

/** Queues handed to another thread (NativePort.transfer): plain data. */
export interface NativeTransfer {
  port: number;
  queues: number[];
  tokens: number[];
}

export interface NativePort extends NativePortLike {
  /** Hand these queues (indexes) to another thread, all or none. */
  transfer(queues: number[]): NativeTransfer;
  /** Take back queue `queue` if its transfer was never attached; true if it was. */
  cancelTransfer(queue: number): boolean;
  /** Whether this port's own calls may use queue `queue` (it is not transferred). */
  queueAtPort(queue: number): boolean;
  /**
   * Preferred busy polling on every socket (SO_PREFER_BUSY_POLL, SO_BUSY_POLL,
   * SO_BUSY_POLL_BUDGET; needs CAP_NET_ADMIN). Optional: not in every build.
   */
  setBusyPoll?(timeoutUs: number, budget: number): void;
}

/** Queues of a port attached on this thread; numbered 0.. in the handle's order. */
export interface NativeAttachedPort extends NativePortLike {
  /** Positions of the attached queues in their port. */
  portIndexes(): number[];
}

/**
 * Event-driven wakeups for a port's sockets (crates/afxdp-node/src/wakeup.rs).
 * `arm(queue, events)` sets the wanted events (1 readable, 2 writable; 0
 * stops); level-triggered and persistent. The callback gets (queue, events)
 * with 4 for a socket error.
 */
export interface NativeWaiter {
  readonly mode: 'uv' | 'thread' | 'closed';
  arm(queue: number, events: number): void;
  close(): void;
}

export interface NativePacketSocket {
  send(frames: Buffer[]): number;
  recv(max: number, timeoutMs: number): Buffer[];
  drain(): number;
  close(): void;
}


export interface NativeBinding {
  coreVersion(): string;
  limits(): NativeLimits;
  /** Every error code native code throws (afxdp_core::Code::ALL). */
  errorCodes(): string[];
  /** `shareWith`: an open port whose UMEM 0 the new port uses (it then creates no UMEM buffer). */
  NativePort: { open(options: NativeOpenOptions, mapFd?: NativeFd | null, shareWith?: NativePort | null): NativePort };
  NativePacketSocket: { open(ifname: string, netns?: string | null): NativePacketSocket };
  /** Take the queues of a transfer on this thread (each handle once). */
  NativeAttachedPort: { attach(handle: NativeTransfer): NativeAttachedPort };
  NativeWaiter: { create(port: NativePortLike, callback: (queue: number, events: number) => void, mode?: string | null): NativeWaiter };
  NativeDpConnection: { create(path: string): NativeDpConnector };
}

let binding: NativeBinding | undefined;

/** Targets published as prebuilt packages `afxdp-<target>` (optionalDependencies). */
export const PREBUILT_TARGETS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl'] as const;

/** This process's target in napi-rs naming, e.g. `linux-x64-gnu` or `linux-arm64-musl`. */
export function platformTarget(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  return `linux-${process.arch}-${isMusl() ? 'musl' : 'gnu'}`;
}

// Same evidence as the napi-rs loader: glibc reports its runtime version in
// the process report; a musl process maps libc.musl-* / ld-musl-*.
function isMusl(): boolean {
  try {
    const report = process.report?.getReport() as
      { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] } | undefined;
    if (report?.header?.glibcVersionRuntime) return false;
    if (report?.sharedObjects?.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))) return true;
  } catch { /* fall through */ }
  try {
    return require('node:fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    return false;
  }
}

function causeMessages(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.message === 'string') out.push(e.message.split('\n')[0] ?? '');
  }
  return out;
}

/** The error for "the addon did not load", naming the package and the fix. */
export function nativeLoadError(err: unknown, target = platformTarget()): AfxdpError {
  const version = (require('../package.json') as { version: string }).version;
  const pkg = `afxdp-${target}`;
  // The napi-rs loader's own summary and its WebAssembly fallbacks are noise here.
  const causes = causeMessages(err).filter((m) => !m.startsWith('Cannot find native binding') && !/wasi/.test(m));
  const detail = causes.length > 0 ? ` Load errors: ${causes.join('; ')}` : '';
  if (!(PREBUILT_TARGETS as readonly string[]).includes(target)) {
    return new AfxdpError(codes.NOT_SUPPORTED,
      `afxdp has no prebuilt native addon for ${target}; prebuilt targets are ${PREBUILT_TARGETS.join(', ')}. ` +
      'Build it from source in a clone of the repository (README "Build from source": npm install builds ' +
      `afxdp.${target}.node next to index.js), or point NAPI_RS_NATIVE_LIBRARY_PATH at a built .node file.${detail}`,
      { cause: err });
  }
  let installed = false;
  try {
    require.resolve(`${pkg}/package.json`);
    installed = true;
  } catch { /* not installed */ }
  const message = installed
    ? `afxdp's native addon for ${target} is installed (${pkg}) but did not load. ` +
      `Check that it matches afxdp ${version} (npm ls ${pkg}) and that this system's libc is new enough ` +
      '(linux-*-gnu builds need glibc >= 2.34).'
    : `afxdp's native addon for ${target} is missing: it ships in the optional dependency ${pkg}@${version}, ` +
      'which is not installed. Reinstall without omitting optional dependencies (no --omit=optional / ' +
      `--no-optional), or add it explicitly: npm install ${pkg}@${version}. A lockfile written on another ` +
      'platform can leave it out (npm/cli#4828): remove node_modules and package-lock.json and install again.';
  return new AfxdpError(codes.NOT_SUPPORTED, message + detail, { cause: err });
}

/** The addon, loaded on first use so config parsing works without it. */
export function native(): NativeBinding {
  if (binding) return binding;
  if (process.platform !== 'linux') {
    throw new AfxdpError(codes.NOT_SUPPORTED,
      `afxdp needs Linux (AF_XDP sockets); this is ${process.platform}/${process.arch}`);
  }
  try {
    binding = require('../index.js') as NativeBinding;
  } catch (err) {
    throw nativeLoadError(err);
  }
  return binding;
}
