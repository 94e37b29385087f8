// afxdp: fast packet I/O for Node.js over Linux AF_XDP sockets.
export { openPort, openPorts, Port, Queue, swapMacs, PollLoop, runLoop, POLL_MODES, DEFAULT_SPIN_US } from './port';
export type { LoopOptions, PollMode } from './port';
export type { PortInfo, PortStats, FrameAccounting, QueueStats, BusyPollStatus } from './port';
export type { OpenOptions, WaitOptions, WritableWaitOptions } from './port';
export { Batch, BatchPool, BatchTransform, batchTransform, macswap, PortReadable, PortWritable } from './stream';
export type { BatchFunction, BatchPoolOptions, BatchTransformOptions, PortReadableOptions, PortWritableOptions } from './stream';
export {
  createHandshake,
  DpSession,
  fetchXskMaps,
  HANDSHAKE_VERSION,
  startDpServer,
  DpServer,
  defaultDpPath,
  DP_BASE_PATH,
  LEGACY_UDS_PATH,
  LEGACY_PINNED_PATH,
  devicesFromEnv,
} from './dp';
export type * from './dp';
export { resolvePortConfig, defaults as portDefaults } from './config/port-config';
export type { PortOptions, PortConfig } from './config/port-config';
export { parseDevargs } from './config/devargs';
export { AfxdpError, codes } from './errors';
export type { AfxdpErrorCode } from './errors';
