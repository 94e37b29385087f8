// Packet capture: a pcap writer for what bursts and batches received
// (writer.ts), and how `afxdp fwd --pcap` names its files (files.ts).
export { LINKTYPE_ETHERNET, PCAP_FILE_HEADER_BYTES, PCAP_MAGIC_NS, PCAP_RECORD_HEADER_BYTES, PCAP_SNAPLEN, PcapWriter } from './writer';
export type { PacketSlots, PacketTimestamps, PcapStats, PcapWriterOptions } from './writer';
export { captureFile } from './files';
