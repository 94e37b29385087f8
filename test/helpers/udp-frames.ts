// IPv4/UDP test frames (192.0.2.2 → 192.0.2.1, UDP to port 9, "discard"):
// unlike the 0x88b5 frames, their flow hash depends on the source port, so
// a peer's transmissions spread over a multi-queue veth's queues.
import { macBytes } from './frames';

const MARKER = Buffer.from('AFXU');

export function udpFrame(dst: string, src: string, seq: number, sourcePort: number, length = 64): Buffer {
  const f = Buffer.alloc(Math.max(60, length));
  macBytes(dst).copy(f, 0);
  macBytes(src).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ipLength = f.length - 14;
  f[14] = 0x45;
  f.writeUInt16BE(ipLength, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([192, 0, 2, 2]).copy(f, 26);
  Buffer.from([192, 0, 2, 1]).copy(f, 30);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 24);
  f.writeUInt16BE(sourcePort & 0xffff, 34);
  f.writeUInt16BE(9, 36);
  f.writeUInt16BE(ipLength - 20, 38);
  MARKER.copy(f, 42);
  f.writeUInt32BE(seq, 46);
  return f;
}

/** The sequence number of a UDP test frame, or undefined. */
export function udpSeq(f: Uint8Array): number | undefined {
  if (f.length < 50 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) return undefined;
  if (f[42] !== 0x41 || f[43] !== 0x46 || f[44] !== 0x58 || f[45] !== 0x55) return undefined;
  return ((f[46]! << 24) | (f[47]! << 16) | (f[48]! << 8) | f[49]!) >>> 0; // length checked above
}
