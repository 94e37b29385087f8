export { openPort, openPorts } from './open';
export { Port } from './port';
export type { PortInfo, PortStats, FrameAccounting, BusyPollStatus } from './port';
export { Queue } from './queue';
export { swapMacs } from './macswap';
export type { QueueStats } from './queue';
export { READABLE, WRITABLE, ERROR, CLOSED, PortWaiter, Watch } from './waiter';
export type { WaitOptions, WakeupMode, WatchHandler } from './waiter';
export type { WritableWaitOptions } from './queue';
