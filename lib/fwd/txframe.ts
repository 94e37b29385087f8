// The frame `fwd --forward-mode txonly` sends: Ethernet + IPv4 + UDP, like
// testpmd's txonly (64 bytes by default, addresses configurable). The
// payload starts with "AFXT" and a 32-bit sequence number, so a receiver
// can count distinct frames; the UDP checksum is 0 (allowed for IPv4).

export interface TxFrameOptions {
  /** Frame length without the FCS (testpmd's --txpkts). */
  length: number;
  srcMac: Buffer;
  dstMac: Buffer;
  srcIp: Buffer;
  dstIp: Buffer;
  srcPort: number;
  dstPort: number;
}

export const TX_MIN_LENGTH = 50;
/** Longest frame txonly builds: a 9000-byte jumbo frame (a multi-buffer chain when it does not fit a frame). */
export const TX_MAX_LENGTH = 9000;
export const TX_MARKER = Buffer.from('AFXT');
/** Offset of the sequence number in the frame. */
export const TX_SEQ_OFFSET = 46;

export function txFrame(o: TxFrameOptions): Buffer {
  const f = Buffer.alloc(o.length);
  o.dstMac.copy(f, 0);
  o.srcMac.copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ipLength = o.length - 14;
  f[14] = 0x45;
  f.writeUInt16BE(ipLength, 16);
  f[22] = 64; // TTL
  f[23] = 17; // UDP
  o.srcIp.copy(f, 26);
  o.dstIp.copy(f, 30);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 24);
  f.writeUInt16BE(o.srcPort, 34);
  f.writeUInt16BE(o.dstPort, 36);
  f.writeUInt16BE(ipLength - 20, 38);
  TX_MARKER.copy(f, 42);
  return f;
}

/** The sequence number of a txonly frame, or undefined for anything else. */
export function txFrameSeq(f: Uint8Array): number | undefined {
  if (f.length < TX_MIN_LENGTH || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) return undefined;
  if (f[42] !== 0x41 || f[43] !== 0x46 || f[44] !== 0x58 || f[45] !== 0x54) return undefined;
  return ((f[46]! << 24) | (f[47]! << 16) | (f[48]! << 8) | f[49]!) >>> 0;
}
