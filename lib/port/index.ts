export { openPort, openPorts } from './open';
export type { OpenOptions } from './open';
export { Port } from './port';
export { attachPort, isTransferHandle } from './transfer';
export type { TransferHandle } from './transfer';
export type { PortInfo, PortStats, FrameAccounting, BusyPollStatus } from './port';
export { Queue, XDP_PKT_CONTD, XDP_TX_METADATA } from './queue';
export { swapMacs } from './macswap';
export { RX_META_TIMESTAMP, RX_META_HASH, RX_META_VLAN, XDP_TXMD_FLAGS_TIMESTAMP, XDP_TXMD_FLAGS_CHECKSUM,
  XDP_TXMD_FLAGS_LAUNCH_TIME } from './metadata';
export type { TxMetadataSupport } from './metadata';
export type { QueueStats } from './queue';
export { READABLE, WRITABLE, ERROR, CLOSED, PortWaiter, Watch } from './waiter';
export type { WaitOptions, WakeupMode, WatchHandler } from './waiter';
export type { WritableWaitOptions } from './queue';
export { POLL_MODES, DEFAULT_SPIN_US } from './poll-policy';
export type { PollMode } from './poll-policy';
