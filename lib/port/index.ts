export { openPort } from './open';
export { Port } from './port';
export type { PortInfo, PortStats, FrameAccounting } from './port';
export { Queue } from './queue';
export type { QueueStats } from './queue';
