// Typed errors for the afxdp facade.
//
// Every error the package throws on purpose is an AfxdpError with a stable
// Node-style `code`. The codes the native core throws are spelled exactly as
// in crates/afxdp-core/src/error.rs (`Code::ALL`); the addon exports that
// list (errorCodes()) and test/faults/port.test.ts checks the two agree.

import { capabilityHint, readProcessCaps } from './caps';

export const codes = Object.freeze({
  NO_SUCH_INTERFACE: 'ERR_AFXDP_NO_SUCH_INTERFACE',
  QUEUE_OUT_OF_RANGE: 'ERR_AFXDP_QUEUE_OUT_OF_RANGE',
  QUEUE_BUSY: 'ERR_AFXDP_QUEUE_BUSY',
  MEMLOCK: 'ERR_AFXDP_MEMLOCK',
  PERMISSION: 'ERR_AFXDP_PERMISSION',
  INVALID_ARGUMENT: 'ERR_AFXDP_INVALID_ARGUMENT',
  NOT_SUPPORTED: 'ERR_AFXDP_NOT_SUPPORTED',
  BPF: 'ERR_AFXDP_BPF',
  FRAME_OWNERSHIP: 'ERR_AFXDP_FRAME_OWNERSHIP',
  CLOSED: 'ERR_AFXDP_CLOSED',
  TRANSFERRED: 'ERR_AFXDP_TRANSFERRED',
  DEVICE_PLUGIN: 'ERR_AFXDP_DEVICE_PLUGIN',
  NO_MEMORY: 'ERR_AFXDP_NO_MEMORY',
  SYSTEM: 'ERR_AFXDP_SYSTEM',
  // Facade only: a devargs string that does not parse or validate.
  DEVARGS: 'ERR_AFXDP_DEVARGS',
} as const);

export type AfxdpErrorCode = (typeof codes)[keyof typeof codes];

const knownCodes: ReadonlySet<string> = new Set(Object.values(codes));

export function isAfxdpErrorCode(value: unknown): value is AfxdpErrorCode {
  return typeof value === 'string' && knownCodes.has(value);
}

export interface AfxdpErrorOptions {
  /** errno of the failing system call, when there was one. */
  errno?: number;
  /** The devarg or option at fault, e.g. `start_queue` or `startQueue`. */
  argument?: string;
  /** The file system path involved (socket, pinned map, XDP program). */
  path?: string;
  cause?: unknown;
}

export class AfxdpError extends Error {
  readonly code: AfxdpErrorCode;
  // `declare`: absent unless set, so util.inspect shows only what is known.
  declare errno?: number;
  declare argument?: string;
  declare path?: string;

  constructor(code: AfxdpErrorCode, message: string, options: AfxdpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.argument !== undefined) this.argument = options.argument;
    if (options.path !== undefined) this.path = options.path;
    labelStack(this, code);
  }

  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

Object.defineProperty(AfxdpError.prototype, 'name', {
  value: 'AfxdpError',
  writable: true,
  configurable: true,
  enumerable: false,
});

// Node's own errors print `Error [ERR_X]: message` at the top of the stack.
// V8 formats `stack` on first access using the current `name`, so give the
// error a temporary own name, format, then drop it (as lib/internal/errors.js does).
function labelStack(err: AfxdpError, code: string): void {
  Object.defineProperty(err, 'name', {
    value: `AfxdpError [${code}]`,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  void err.stack;
  delete (err as { name?: string }).name;
}

/**
 * Where errno and path start in a native error's message: the binding
 * appends `\u0001afxdp:` and a JSON object (crates/afxdp-node/src/error.rs).
 */
const TRAILER = '\u0001afxdp:';

/** A native message split into the text and its errno/path trailer. */
export function parseNativeMessage(message: string): { message: string; errno?: number; path?: string } {
  const at = message.lastIndexOf(TRAILER);
  if (at < 0) return { message };
  try {
    const fields = JSON.parse(message.slice(at + TRAILER.length)) as { errno?: unknown; path?: unknown };
    return {
      message: message.slice(0, at),
      errno: typeof fields.errno === 'number' ? fields.errno : undefined,
      path: typeof fields.path === 'string' ? fields.path : undefined,
    };
  } catch {
    return { message };
  }
}

/**
 * Turns an error thrown by the native addon into an AfxdpError.
 *
 * napi-rs copies the Rust status string into `err.code`; the message is the
 * core's message, with errno and path in a trailer that is parsed into
 * `err.errno` / `err.path` and stripped. Anything that does not carry one
 * of our codes is returned unchanged, so `throw fromNative(err)` is always
 * safe in a catch block.
 */
export function fromNative<T>(err: T): AfxdpError | T {
  if (err instanceof AfxdpError) return err;
  if (!(err instanceof Error)) return err;
  const { code, errno, path } = err as Error & { code?: unknown; errno?: unknown; path?: unknown };
  if (!isAfxdpErrorCode(code)) return err;
  const parsed = parseNativeMessage(err.message);
  // The one place the capability hint is added: EPERM on socket(AF_XDP) or
  // bpf() (ERR_AFXDP_PERMISSION) and RLIMIT_MEMLOCK (ERR_AFXDP_MEMLOCK) in a
  // non-root process whose capabilities sit in the bounding set only.
  const hint = code === codes.PERMISSION || code === codes.MEMLOCK ? capabilityHint(readProcessCaps()) : '';
  return new AfxdpError(code, stripCodePrefix(parsed.message, code) + hint, {
    errno: parsed.errno ?? (typeof errno === 'number' ? errno : undefined),
    path: parsed.path ?? (typeof path === 'string' ? path : undefined),
    cause: err,
  });
}

// Formatting the Rust error with `{}` of napi::Error gives `"CODE", message`
// and some bindings prepend `CODE: `; the code already lives in `err.code`.
function stripCodePrefix(message: string, code: string): string {
  for (const prefix of [`"${code}", `, `${code}: `, `[${code}] `]) {
    if (message.startsWith(prefix)) return message.slice(prefix.length);
  }
  return message;
}

const DEFAULT_QUOTE_LIMIT = 60;
// Control, format, private-use, unassigned and lone-surrogate code points, and
// every separator except the plain space: escaped so a message can neither
// break a log line nor display differently from what was parsed.
const UNSAFE_FOR_MESSAGE = /[\p{C}\p{Z}"\\]/u;

/**
 * Quotes user input for an error message: double quotes, escapes for
 * anything invisible or line-breaking, truncated to `limit` code points.
 */
export function quoteInput(input: string, limit = DEFAULT_QUOTE_LIMIT): string {
  let out = '';
  let taken = 0;
  for (const ch of input) {
    if (taken === limit) {
      return `"${out}"… (${input.length} characters)`;
    }
    out += UNSAFE_FOR_MESSAGE.test(ch) ? escapeCharacter(ch) : ch;
    taken++;
  }
  return `"${out}"`;
}

function escapeCharacter(ch: string): string {
  if (ch === ' ') return ch;
  if (ch === '"' || ch === '\\') return `\\${ch}`;
  const cp = ch.codePointAt(0)!;
  const hex = cp.toString(16).toUpperCase();
  return cp > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
}
