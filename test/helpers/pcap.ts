// Reads a classic pcap file (either timestamp resolution, little-endian as
// afxdp writes it), independently of lib/pcap: the tests check the writer
// against this, and the lab test checks it against tcpdump as well.
import fs from 'node:fs';

export interface PcapFile {
  magic: number;
  versionMajor: number;
  versionMinor: number;
  thiszone: number;
  sigfigs: number;
  snaplen: number;
  linktype: number;
  records: PcapRecord[];
}

export interface PcapRecord {
  sec: number;
  /** Nanoseconds (or microseconds with magic 0xa1b2c3d4). */
  frac: number;
  inclLen: number;
  origLen: number;
  data: Buffer;
}

export function parsePcap(bytes: Buffer): PcapFile {
  if (bytes.length < 24) throw new Error(`a pcap file has a 24-byte header; this one has ${bytes.length} bytes`);
  const file: PcapFile = {
    magic: bytes.readUInt32LE(0),
    versionMajor: bytes.readUInt16LE(4),
    versionMinor: bytes.readUInt16LE(6),
    thiszone: bytes.readInt32LE(8),
    sigfigs: bytes.readUInt32LE(12),
    snaplen: bytes.readUInt32LE(16),
    linktype: bytes.readUInt32LE(20),
    records: [],
  };
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new Error(`a truncated record header at byte ${at}`);
    const inclLen = bytes.readUInt32LE(at + 8);
    if (at + 16 + inclLen > bytes.length) throw new Error(`a truncated record at byte ${at} (${inclLen} bytes)`);
    file.records.push({
      sec: bytes.readUInt32LE(at),
      frac: bytes.readUInt32LE(at + 4),
      inclLen,
      origLen: bytes.readUInt32LE(at + 12),
      data: bytes.subarray(at + 16, at + 16 + inclLen),
    });
    at += 16 + inclLen;
  }
  return file;
}

export function readPcap(file: string): PcapFile {
  return parsePcap(fs.readFileSync(file));
}
