// Bounds afxdp enforces; where DPDK has none, they only keep numbers sane.
// The native core enforces the same numbers (crates/afxdp-core/src/limits.rs,
// which says why each is what it is; exported as the addon's limits()). They
// are repeated here so configs parse without the addon, and
// test/faults/port.test.ts fails when the two tables differ.

export const limits = Object.freeze({
  /** Queue ids and counts stay below 65536; the interface decides the real limit at open. */
  maxQueueId: 65_535,
  maxQueueCount: 65_535,
  /** DPDK: busy_budget 0..65535 (SO_BUSY_POLL_BUDGET is a u16 in the kernel). */
  maxBusyBudget: 65_535,
  /** IFNAMSIZ - 1. */
  ifnameMaxBytes: 15,
  /** sizeof(sun_path) - 1, for the Device Plugin socket. */
  socketPathMaxBytes: 107,
  /** PATH_MAX - 1. */
  pathMaxBytes: 4095,
  /** NAME_MAX: one directory name (the DPDK file prefix). */
  fileNameMaxBytes: 255,
  ringMinSize: 64,
  ringMaxSize: 16_384,
  frameSizes: Object.freeze([2048, 4096] as const),
  maxFrameCount: 1 << 20,
  /** One UMEM (frameCount × frameSize) stays below 4 GiB: frame addresses are u32 offsets. */
  maxUmemBytes: 2 ** 32 - 1,
  /** XDP_PACKET_HEADROOM, reserved by the kernel in every frame. */
  kernelHeadroom: 256,
  /** Room left for packet data after all headroom. */
  minFrameData: 64,
  maxBurstSize: 1024,
  /**
   * Farthest a custom program's RX metadata may start before the packet
   * (xdp_meta_* devargs): the XDP metadata area is at most 255 bytes
   * (skb_shared_info.meta_len is a u8) in 4-byte units. TS only: the
   * metadata accessors are in TS.
   */
  maxRxMetaOffset: 252,
  /** The DP reads 64-byte records: "/connect," leaves 55 bytes for the name. */
  podNameMaxBytes: 55,
  maxHandshakeTimeoutMs: 300_000,
});
