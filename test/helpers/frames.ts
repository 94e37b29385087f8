// Test frames: Ethernet with the local-experimental ethertype 0x88b5 (no
// stack on the way reacts to it), a marker, and a sequence number.
export const TEST_ETHERTYPE = 0x88b5;
const MARKER = Buffer.from('AFXD');

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function testFrame(dst: string, src: string, seq: number, length = 64): Buffer {
  const f = Buffer.alloc(Math.max(60, length));
  macBytes(dst).copy(f, 0);
  macBytes(src).copy(f, 6);
  f.writeUInt16BE(TEST_ETHERTYPE, 12);
  MARKER.copy(f, 14);
  f.writeUInt32BE(seq, 42);
  for (let i = 46; i < f.length; i++) f[i] = (i ^ seq) & 0xff;
  return f;
}

/** The sequence number of a test frame, or undefined for anything else. */
export function frameSeq(f: Uint8Array): number | undefined {
  if (f.length < 46 || f[12] !== 0x88 || f[13] !== 0xb5) return undefined;
  if (f[14] !== 0x41 || f[15] !== 0x46 || f[16] !== 0x58 || f[17] !== 0x44) return undefined;
  return ((f[42]! << 24) | (f[43]! << 16) | (f[44]! << 8) | f[45]!) >>> 0; // length checked above
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
