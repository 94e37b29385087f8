export { openPort, openPorts } from './open';
export { Port } from './port';
export type { PortInfo, PortStats, FrameAccounting, BusyPollStatus } from './port';
export { Queue } from './queue';
export type { QueueStats } from './queue';
