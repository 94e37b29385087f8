// The handle `port.transfer()` returns and `attachPort()` takes (see
// transfer.ts), and the busy-poll status it carries: plain types with no
// import from the rest of lib/port, so port-base.ts, queue.ts and
// transfer.ts can all name them without an import circle.
import type { PortConfig } from '../config/port-config';
import type { NativeTransfer } from '../native';

/** Whether preferred busy polling is on for the port's sockets, and why not. */
export interface BusyPollStatus {
  /** On for every socket of the port. */
  enabled: boolean;
  /** Why it is off (or only partly on). */
  reason?: string;
  /** SO_BUSY_POLL in µs and SO_BUSY_POLL_BUDGET, when on. */
  timeoutUs?: number;
  budget?: number;
  /** Who set it up: the Device Plugin (use_cni) or afxdp's own socket options. */
  via?: 'device-plugin' | 'socket-options';
}

/** What `port.transfer()` returns: structured-cloneable, for postMessage(). */
export interface TransferHandle {
  readonly afxdp: 'transfer';
  readonly native: NativeTransfer;
  /** The port's configuration (the attached port's `config`). */
  readonly config: PortConfig;
  /** Kernel queue ids of the transferred queues, in order. */
  readonly queueIds: readonly number[];
  readonly busyPoll: BusyPollStatus;
}

export function isTransferHandle(value: unknown): value is TransferHandle {
  const h = value as Partial<TransferHandle> | null;
  return typeof h === 'object' && h !== null && h.afxdp === 'transfer' && typeof h.native === 'object' &&
    typeof h.config === 'object';
}
