// afxdp: fast packet I/O for Node.js over Linux AF_XDP sockets.
export { openPort, openPorts, Port, Queue, swapMacs, POLL_MODES, DEFAULT_SPIN_US, XDP_PKT_CONTD, XDP_TX_METADATA } from './port';
export { RX_META_TIMESTAMP, RX_META_HASH, RX_META_VLAN, XDP_TXMD_FLAGS_TIMESTAMP, XDP_TXMD_FLAGS_CHECKSUM,
  XDP_TXMD_FLAGS_LAUNCH_TIME } from './port';
export type { TxMetadataSupport } from './port';
export type { PollMode } from './port';
/**
 * Queues on worker threads: `port.transfer(queues)` on the opening thread,
 * postMessage the handle, `attachPort(handle)` in the worker.
 */
export { attachPort, isTransferHandle } from './port';
export type { TransferHandle } from './port';
/**
 * Forwarding, as dpdk-testpmd does it: `ENGINES` (io, macswap, rxonly,
 * txonly) each forward one burst on a `Lane` (an rx queue and the tx queue
 * its packets leave by); a `Forwarder` runs one engine on every lane of one
 * or two ports; `runLoop`/`PollLoop` schedule any step under a poll policy.
 *
 *   const fwd = new Forwarder([port], 'macswap');
 *   await fwd.run({ pollMode: 'adaptive', signal }).done;
 */
export { ENGINES, FORWARD_MODES, Forwarder, Lane, PollLoop, runLoop, sendReceived, txFrame, txFrameSeq } from './fwd';
export type { EngineOptions, ForwardEngine, ForwardMode, ForwardPort, LaneOptions, LanePath, LaneQueue, LoopOptions, TxConfig } from './fwd';
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
/**
 * Packet capture: `PcapWriter.open(file)` writes what a burst or a batch
 * received as pcap with nanosecond timestamps (what `afxdp fwd --pcap` uses).
 */
export { PcapWriter, PCAP_MAGIC_NS, PCAP_SNAPLEN, LINKTYPE_ETHERNET } from './pcap';
export type { PacketSlots, PacketTimestamps, PcapStats, PcapWriterOptions } from './pcap';
export { AfxdpError, codes } from './errors';
export type { AfxdpErrorCode } from './errors';
