// The Device Plugin handshake over a real connection: runs the state machine
// (state-machine.ts) on the native SEQPACKET transport.
//
// Fd discipline: every fd received is closed unless the state machine says
// it is an XSKMAP to keep; kept fds belong to the session until taken over
// (NativePort.open) and are closed by close() otherwise. The connection is
// closed by close(), which every caller runs in a finally block.
//
// Each step waits at most timeoutMs for its reply, and a session has a fixed
// number of steps (connect, version, one per interface, one per busy-polled
// socket, fin), so a session is bounded. Every wait runs on the threadpool
// (the native calls return Promises), so the event loop never waits; an
// AbortSignal closes the connection, which ends a pending wait at once.

import os from 'node:os';
import { Buffer } from 'node:buffer';

import { AfxdpError, codes, fromNative } from '../errors';
import { devicesFromEnv } from './devices-env';
import { defaults } from '../config/port-config';
import { native } from '../native';
import type { NativeBinding, NativeDpConnection, NativeDpRecord, NativeFd, NativePort } from '../native';
import { abortError } from '../port/waiter';
import { MAX_REPLY_BYTES } from './messages';
import { createHandshake } from './state-machine';
import type { BusyPollRequest, Handshake, HandshakeResult, XskRef } from './state-machine';

/** How long to wait for the /host_nak that should follow /error. */
const SECOND_RECORD_WAIT_MS = 1000;
/** How long to look for EOF after a send failed. */
const CLOSE_PROBE_MS = 200;
const ETIMEDOUT = 110;

export interface DpSessionOptions {
  /** The Device Plugin's socket. */
  dpPath: string;
  /** One XSKMAP fd is requested per entry, in order (a name may repeat). */
  interfaces: readonly string[];
  /** Defaults to the host name, as DPDK does. */
  podName?: string;
  /** Per step; default 10 000 ms (handshakeTimeoutMs). */
  timeoutMs?: number;
  /** Ask the Device Plugin for preferred busy polling on each socket, after the sockets exist. */
  busyPoll?: BusyPollRequest;
  /** For error messages; defaults to the AFXDP_DEVICES_* variables of process.env. */
  allocatedDevices?: readonly string[];
  /** The transport; defaults to the native NativeDpConnection (tests pass a fake). */
  connect?: (path: string, timeoutMs: number, signal?: AbortSignal) => NativeDpConnection | Promise<NativeDpConnection>;
  /**
   * Aborting rejects start() or finish() at once with an AbortError (code
   * ABORT_ERR, cause signal.reason) and closes the connection and every fd
   * received and not taken over.
   */
  signal?: AbortSignal;
}

/** Resolves a busy-poll request's socket to the port and queue index holding it. */
export type XskResolver = (xsk: XskRef) => { port: NativePort; queue: number };

/**
 * One handshake session with the Device Plugin. start() connects and fetches
 * the XSKMAP fds; finish() runs busy polling (if asked) and /fin; close()
 * always.
 *
 *   const session = await DpSession.start({ dpPath, interfaces: ['eth1'] });
 *   try {
 *     const port = NativePort.open(options, session.maps[0]);
 *     await session.finish(() => ({ port, queue: 0 }));
 *   } finally {
 *     session.close();
 *   }
 */
export class DpSession {
  readonly dpPath: string;
  readonly podName: string;
  readonly timeoutMs: number;
  #conn: NativeDpConnection | null;
  readonly #machine: Handshake;
  readonly #maps: (NativeFd | undefined)[];
  #result: HandshakeResult | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();

  private constructor(conn: NativeDpConnection, machine: Handshake,
    options: { dpPath: string; podName: string; timeoutMs: number; count: number; signal?: AbortSignal }) {
    this.#conn = conn;
    this.#machine = machine;
    this.dpPath = options.dpPath;
    this.podName = options.podName;
    this.timeoutMs = options.timeoutMs;
    this.#maps = new Array(options.count).fill(undefined);
    this.#signal = options.signal;
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Connect to dpPath and run the handshake until every XSKMAP fd is in hand. */
  static async start(options: DpSessionOptions): Promise<DpSession> {
    const timeoutMs = options.timeoutMs ?? defaults.handshakeTimeoutMs;
    const podName = options.podName ?? os.hostname();
    const machine = createHandshake({
      podName,
      podNameFrom: options.podName === undefined ? 'hostname' : 'option',
      interfaces: options.interfaces,
      dpPath: options.dpPath,
      timeoutMs,
      busyPoll: options.busyPoll,
      allocatedDevices: options.allocatedDevices ?? devicesFromEnv(process.env).flatMap((pool) => pool.devices),
    });
    const connect = options.connect ?? nativeConnect;
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    let conn: NativeDpConnection;
    try {
      conn = await connect(options.dpPath, timeoutMs, signal);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw withPath(fromNative(err), options.dpPath);
    }
    if (signal?.aborted) {
      conn.close();
      throw abortError(signal);
    }
    const session = new DpSession(conn, machine, { dpPath: options.dpPath, podName, timeoutMs, count: options.interfaces.length, signal });
    try {
      session.#result = await session.#run(undefined);
    } catch (err) {
      session.close();
      throw err;
    }
    return session;
  }

  /**
   * The XSKMAP fds in interface order. Pass them to NativePort.open (which
   * takes them over); any left are closed by close().
   */
  get maps(): readonly NativeFd[] {
    return this.#maps.map((fd, i) => {
      if (fd === undefined) throw new Error(`internal: no map fd for request ${i}`);
      return fd;
    });
  }

  /**
   * Hand the fds over: the caller closes those it does not pass to
   * NativePort.open; close() no longer does.
   */
  takeMaps(): NativeFd[] {
    const maps = [...this.maps];
    this.#maps.fill(undefined);
    return maps;
  }

  /**
   * Busy polling for each socket (when requested; `resolve` finds them),
   * then /fin. Without busy polling the session already ended in start().
   */
  async finish(resolve?: XskResolver): Promise<HandshakeResult> {
    if (this.#result !== undefined) return this.#result;
    if (resolve === undefined) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        'DpSession.finish() needs a resolver from busy-poll requests to sockets, since busyPoll was requested');
    }
    const result = await this.#run(resolve);
    this.#result = result;
    return result!;
  }

  /**
   * Close the connection and every fd not taken over; a pending wait ends
   * at once. Idempotent.
   */
  close(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const conn = this.#conn;
    this.#conn = null;
    for (const fd of this.#maps) fd?.close();
    if (conn !== null) {
      try {
        conn.close();
      } catch {
        // Closing is best effort; the fd is gone either way.
      }
    }
  }

  // Drives the machine: until the 'sockets' pause (resolve undefined: returns
  // undefined) or the end. After an abort every failure is the AbortError.
  async #run(resolve: XskResolver | undefined): Promise<HandshakeResult | undefined> {
    const signal = this.#signal;
    try {
      if (signal?.aborted) throw abortError(signal);
      return await this.#steps(resolve);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      throw err;
    }
  }

  async #steps(resolve: XskResolver | undefined): Promise<HandshakeResult | undefined> {
    const machine = this.#machine;
    for (;;) {
      const action = machine.next();
      switch (action.type) {
        case 'send': {
          const conn = this.#connection();
          const record = Buffer.from(action.record, 'latin1');
          try {
            if (action.attachXsk !== undefined) {
              if (resolve === undefined) throw new Error('internal: a busy-poll request needs the sockets');
              const { port, queue } = resolve(action.attachXsk);
              await conn.sendWithSocket(record, port, queue);
            } else {
              await conn.send(record);
            }
          } catch (err) {
            // The /fin after a nak: the failure stands whether it went or not.
            if (action.optional) {
              machine.receive('eof');
              break;
            }
            // A peer that closed makes send fail (EPIPE): let the machine see
            // the EOF it would have read, so the error names the step.
            if (!(await this.#peerClosed(conn))) throw withPath(fromNative(err), this.dpPath);
            machine.receive('eof');
          }
          break;
        }
        case 'receive': {
          const conn = this.#connection();
          const wait = action.optional ? Math.min(this.timeoutMs, SECOND_RECORD_WAIT_MS) : this.timeoutMs;
          const started = Date.now();
          let record: NativeDpRecord | null;
          try {
            record = await conn.recv(wait, MAX_REPLY_BYTES);
          } catch (err) {
            if (!isTimeout(err, Date.now() - started, wait)) throw withPath(fromNative(err), this.dpPath);
            machine.receive('timeout');
            break;
          }
          if (record === null) {
            machine.receive('eof');
            break;
          }
          this.#take(record);
          break;
        }
        case 'sockets':
          if (resolve === undefined) return undefined;
          machine.socketsReady();
          break;
        case 'done':
          // Without busy polling the session ends before the sockets exist.
          return action.result;
        case 'failed':
          throw action.error;
      }
    }
  }

  // Feed one record to the machine; keep or close its fd.
  #take(record: NativeDpRecord): void {
    const fd = record.fd ?? null;
    let kept = false;
    try {
      const disposition = this.#machine.receive({
        data: record.data,
        hasFd: fd !== null,
        truncated: Boolean(record.truncated),
        fdsDropped: Number(record.fdsDropped ?? 0),
        controlTruncated: Boolean(record.controlTruncated),
      });
      if (disposition.fd === 'keep' && fd !== null) {
        this.#maps[disposition.map]?.close();
        this.#maps[disposition.map] = fd;
        kept = true;
      }
    } finally {
      if (!kept) fd?.close();
    }
  }

  async #peerClosed(conn: NativeDpConnection): Promise<boolean> {
    try {
      const record = await conn.recv(CLOSE_PROBE_MS, MAX_REPLY_BYTES);
      if (record === null) return true;
      record.fd?.close();
      return false;
    } catch {
      return false;
    }
  }

  #connection(): NativeDpConnection {
    if (this.#conn === null) {
      throw new AfxdpError(codes.CLOSED, `the Device Plugin session on ${this.dpPath} is closed`, { path: this.dpPath });
    }
    return this.#conn;
  }
}

// Connect off the event loop; an abort closes the connection, which ends
// the connect at once.
async function nativeConnect(path: string, timeoutMs: number, signal?: AbortSignal): Promise<NativeDpConnection> {
  const transport = (native() as Partial<NativeBinding>).NativeDpConnection;
  if (transport === undefined || typeof transport.create !== 'function') {
    throw new AfxdpError(codes.NOT_SUPPORTED,
      'this build of the afxdp native addon has no asynchronous Device Plugin transport (NativeDpConnection.create); ' +
      'rebuild it (npm run build), or use use_pinned_map=1');
  }
  const conn = transport.create(path);
  const onAbort = () => conn.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await conn.connect(timeoutMs);
    return conn;
  } catch (err) {
    conn.close();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function isTimeout(err: unknown, elapsedMs: number, waitMs: number): boolean {
  const e = err as { errno?: unknown; code?: unknown } | null;
  if (e !== null && typeof e === 'object' && (e.errno === ETIMEDOUT || e.errno === -ETIMEDOUT || e.code === 'ETIMEDOUT')) return true;
  // The native transport reports a timeout as an ERR_AFXDP_DEVICE_PLUGIN
  // error; other failures are immediate, so a full wait means a timeout.
  return e !== null && typeof e === 'object' && e.code === codes.DEVICE_PLUGIN && elapsedMs >= waitMs - 5;
}

/** The error, naming the dp_path if its message does not already. */
export function withPath<T>(err: T, dpPath: string): T | AfxdpError {
  if (!(err instanceof AfxdpError)) return err;
  if (err.message.includes(dpPath)) {
    if (err.path === undefined) err.path = dpPath;
    return err;
  }
  return new AfxdpError(err.code, `${err.message} (Device Plugin dp_path ${dpPath})`, {
    errno: err.errno,
    argument: err.argument,
    path: dpPath,
    cause: err,
  });
}

/**
 * Run a whole session: fetch one XSKMAP fd per interface and end it (no
 * busy polling). The caller owns the returned fds and must close() those it
 * does not hand to NativePort.open.
 */
export async function fetchXskMaps(options: Omit<DpSessionOptions, 'busyPoll'>): Promise<{ maps: NativeFd[]; result: HandshakeResult }> {
  const session = await DpSession.start(options);
  try {
    const result = await session.finish();
    return { maps: session.takeMaps(), result };
  } finally {
    session.close();
  }
}
