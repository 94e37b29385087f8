// The plain object that carries queues from one thread to another
// (port.transfer() → postMessage → attachPort(), see transfer.ts). Apart
// from port-base.ts and transfer.ts so that neither imports the other.
import type { PortConfig } from '../config/port-config';
import type { NativeTransfer } from '../native';

/** What `port.transfer()` returns: structured-cloneable, for postMessage(). */
export interface TransferHandle {
  readonly afxdp: 'transfer';
  readonly native: NativeTransfer;
  /** The port's configuration (the attached port's `config`). */
  readonly config: PortConfig;
  /** Kernel queue ids of the transferred queues, in order. */
  readonly queueIds: readonly number[];
  /** The port's BusyPollStatus (port-base.ts; typed loosely here to keep imports one way). */
  readonly busyPoll: object;
}

export function isTransferHandle(value: unknown): value is TransferHandle {
  const h = value as Partial<TransferHandle> | null;
  return typeof h === 'object' && h !== null && h.afxdp === 'transfer' && typeof h.native === 'object' &&
    typeof h.config === 'object';
}

