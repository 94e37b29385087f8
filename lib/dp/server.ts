// The privileged half of Kubernetes mode, without Kubernetes: a server
// that speaks the AF_XDP Device Plugin's protocol (UDS handshake and/or
// pinned XSKMAPs) for unprivileged afxdp ports on development machines,
// CI and bare-metal hosts. The protocol work is native (crates/afxdp-core
// src/dp); this is the Node-style object around it.
import { EventEmitter } from 'node:events';
import type { NativeDpServerOptions, NativeDpServerInfo } from '../../index';
import { AfxdpError, codes } from '../errors';
import { native } from '../native';
import { call } from '../port/native-call';

export type DpServerOptions = NativeDpServerOptions;
export type DpServerInfo = NativeDpServerInfo;

interface NativeDpServerHandle {
  stop(): void;
  info(): NativeDpServerInfo;
  sessionsServed(): number;
  log(): string[];
}

export class DpServer extends EventEmitter {
  #native: NativeDpServerHandle | null;

  /** @internal use startDpServer() */
  constructor(handle: NativeDpServerHandle) {
    super();
    this.#native = handle;
  }

  get stopped(): boolean {
    return this.#native === null;
  }

  /** Socket paths, pins, attached programs and counters. */
  info(): DpServerInfo {
    if (this.#native === null) {
      throw new AfxdpError(codes.CLOSED, 'this DpServer is stopped; start a new one with startDpServer()');
    }
    return call(() => this.#native!.info());
  }

  sessionsServed(): number {
    return this.#native === null ? 0 : this.#native.sessionsServed();
  }

  /** Recent log lines: every record in and out, accepts, rejections. */
  log(): string[] {
    return this.#native === null ? [] : this.#native.log();
  }

  /**
   * Detach programs (unless keepPrograms), remove pins, sockets and mounts.
   * Idempotent; emits 'close'. A process that dies without stop() leaves its
   * programs attached: the next server adopts them.
   */
  stop(): void {
    const handle = this.#native;
    if (handle === null) return;
    this.#native = null;
    call(() => handle.stop());
    process.nextTick(() => this.emit('close'));
  }
}

/** Start serving; the first allocation's socket exists when this returns. */
export function startDpServer(options: DpServerOptions): DpServer {
  const binding = native() as unknown as { NativeDpServer: { start(o: DpServerOptions): NativeDpServerHandle } };
  return new DpServer(call(() => binding.NativeDpServer.start(options)));
}
