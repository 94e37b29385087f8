// RX and TX metadata in the UMEM (issue 16): where a packet's metadata
// lives relative to its descriptor address, and the accessors that read or
// write it through one DataView per queue, created once. Nothing here
// allocates per packet except the bigint a 64-bit timestamp is returned as
// (rxTimestampMs/txTimestampMs give a number instead).
//
// RX, afxdp's program (rxMetadata; crates/afxdp-core/bpf/meta.bpf.c): a
// 24-byte struct ends where the packet starts:
//   addr - 24  u64 rx_timestamp (ns, the driver's clock; 0 = none)
//   addr - 16  u32 rx_hash
//   addr - 12  u32 hash_type (enum xdp_rss_hash_type)
//   addr -  8  u16 vlan_proto (network order), addr - 6 u16 vlan_tci
//   addr -  4  u32 valid (RX_META_* bits)
// RX, a custom xdp_prog (DPDK 26.11's xdp_meta_* devargs): the timestamp
// at addr - xdpMetaRxTsOffset; valid when the u32 at
// addr - xdpMetaValidHintOffset has a bit of xdpMetaRxTsValidMask (no
// hint offset: when the timestamp is not 0).
// TX (txMetadata): struct xsk_tx_metadata (linux/if_xdp.h), 24 bytes
// before the tx descriptor's address:
//   addr - 24  u64 flags (XDP_TXMD_FLAGS_*)
//   addr - 16  u16 csum_start, addr - 14 u16 csum_offset; addr - 8 u64 launch_time
//   (after completion) addr - 16 u64 tx_timestamp
import type { PortConfig } from '../config/options';

/** `valid` bits of afxdp's RX metadata. */
export const RX_META_TIMESTAMP = 1;
export const RX_META_HASH = 2;
export const RX_META_VLAN = 4;
/** sizeof(struct afxdp_rx_meta) = sizeof(struct xsk_tx_metadata). */
export const RX_META_LEN = 24;
export const TX_META_LEN = 24;
/** XDP_TX_METADATA: the tx descriptor option that makes the kernel read the request. */
export const XDP_TX_METADATA = 1 << 1;
export const XDP_TXMD_FLAGS_TIMESTAMP = 1 << 0;
export const XDP_TXMD_FLAGS_CHECKSUM = 1 << 1;
export const XDP_TXMD_FLAGS_LAUNCH_TIME = 1 << 2;

/** Where a queue finds RX metadata: afxdp's struct, a custom program's timestamp, or none. */
export type RxMetaLayout =
  | { kind: 'none' }
  | { kind: 'afxdp' }
  | { kind: 'custom'; tsOffset: number; hintOffset: number | undefined; mask: number };

export function rxMetaLayout(config: Pick<PortConfig, 'rxMetadata' | 'xdpMetaRxTsOffset' | 'xdpMetaValidHintOffset' |
  'xdpMetaRxTsValidMask'>): RxMetaLayout {
  if (config.rxMetadata) return { kind: 'afxdp' };
  if (config.xdpMetaRxTsOffset !== undefined) {
    return { kind: 'custom', tsOffset: config.xdpMetaRxTsOffset, hintOffset: config.xdpMetaValidHintOffset,
      mask: config.xdpMetaRxTsValidMask ?? 0 };
  }
  return { kind: 'none' };
}

/** What TX metadata this port can honour, and why not the rest. */
export interface TxMetadataSupport {
  /** How XDP_UMEM_REG took tx_metadata_len; undefined without txMetadata. */
  registration: string | undefined;
  checksum: boolean;
  timestamp: boolean;
  launchTime: boolean;
  /** For each unsupported feature, why (the error a request gets). */
  reasons: { checksum?: string; timestamp?: string; launchTime?: string };
}

/**
 * Copy mode builds an skb per packet (xsk_build_skb): the kernel itself
 * turns the checksum request into CHECKSUM_PARTIAL (computed in software
 * with txSoftwareChecksum, else by the device or validate_xmit_skb) and
 * stamps completion in software (ktime_get_tai_fast_ns at skb destruction);
 * launch time becomes skb->skb_mstamp_ns, which only an etf/fq qdisc
 * honours, so it counts as unsupported. Zero-copy: what the driver's
 * xsk-features say.
 */
export function txMetadataSupport(registration: string | undefined, zeroCopy: boolean,
  xskFeatures: readonly string[] | undefined): TxMetadataSupport {
  const none = 'txMetadata is off: open the port with txMetadata: true (tx_metadata_len, Linux >= 6.8)';
  if (registration === undefined) {
    return { registration, checksum: false, timestamp: false, launchTime: false,
      reasons: { checksum: none, timestamp: none, launchTime: none } };
  }
  if (!zeroCopy) {
    return { registration, checksum: true, timestamp: true, launchTime: false, reasons: {
      launchTime: 'copy mode hands the launch time to the qdisc as skb->skb_mstamp_ns, which only an etf or fq ' +
        'qdisc honours; afxdp cannot see one is there: use a zero-copy queue on a driver whose xsk-features ' +
        'include tx-launch-time-fifo (igc, stmmac)',
    } };
  }
  const f = new Set(xskFeatures ?? []);
  const need = (what: string) => `this zero-copy queue's driver does not report ${what} in its netdev xsk-features` +
    `${xskFeatures === undefined ? ' (the kernel cannot say: Linux >= 6.8)' : ` (it reports: ${[...f].join(', ') || 'none'})`}`;
  const reasons: TxMetadataSupport['reasons'] = {};
  if (!f.has('tx-checksum')) reasons.checksum = need('tx-checksum');
  if (!f.has('tx-timestamp')) reasons.timestamp = need('tx-timestamp');
  if (!f.has('tx-launch-time-fifo')) reasons.launchTime = need('tx-launch-time-fifo');
  return { registration, checksum: f.has('tx-checksum'), timestamp: f.has('tx-timestamp'),
    launchTime: f.has('tx-launch-time-fifo'), reasons };
}
