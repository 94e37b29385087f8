// The pcap writer without root: the file header's fields, each record's
// header (nanosecond timestamps from the clock, from BigUint64Array and
// Float64Array slots), the bytes, snaplen, the capture limit, bounded
// buffering (drops counted, never more memory), open errors, file names.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AfxdpError } from '../../lib/errors';
import { captureFile, LINKTYPE_ETHERNET, PCAP_MAGIC_NS, PCAP_SNAPLEN, PcapWriter } from '../../lib/pcap';
import { readPcap } from '../helpers/pcap';

const FRAME = 2048;

/** A fake UMEM with `count` packets: packet i at frame i, `lengthOf(i)` bytes, byte j = (i * 7 + j) & 0xff. */
function burst(count: number, lengthOf: (i: number) => number = (i) => 60 + i) {
  const umem = new Uint8Array(FRAME * count);
  const addrs = new Uint32Array(count);
  const lengths = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    addrs[i] = i * FRAME + 256;
    lengths[i] = lengthOf(i);
    for (let j = 0; j < lengths[i]!; j++) umem[addrs[i]! + j] = (i * 7 + j) & 0xff;
  }
  const packet = (i: number) => Buffer.from(umem.subarray(addrs[i]!, addrs[i]! + lengths[i]!));
  return { umem, addrs, lengths, packet };
}

function tmpFile(t: { title: string }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-pcap-'));
  return path.join(dir, `${t.title.replace(/\W+/g, '-').slice(0, 40)}.pcap`);
}

test.afterEach.always((t) => {
  const file = (t.context as { file?: string }).file;
  if (file !== undefined) fs.rmSync(path.dirname(file), { recursive: true, force: true });
});

test('the file header: nanosecond magic, version 2.4, snaplen 262144, LINKTYPE_ETHERNET, little-endian', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const w = PcapWriter.open(file);
  const stats = await w.close();
  const bytes = fs.readFileSync(file);
  t.is(bytes.length, 24, 'an empty capture is the header alone');
  t.deepEqual([...bytes.subarray(0, 4)], [0x4d, 0x3c, 0xb2, 0xa1], '0xa1b23c4d written little-endian');
  const f = readPcap(file);
  t.is(f.magic, PCAP_MAGIC_NS);
  t.is(f.magic, 0xa1b23c4d);
  t.is(f.versionMajor, 2);
  t.is(f.versionMinor, 4);
  t.is(f.thiszone, 0);
  t.is(f.sigfigs, 0);
  t.is(f.snaplen, 262144);
  t.is(f.snaplen, PCAP_SNAPLEN);
  t.is(f.linktype, 1);
  t.is(f.linktype, LINKTYPE_ETHERNET);
  t.deepEqual(stats, { file, captured: 0, dropped: 0, bytesWritten: 24, full: false });
});

test('records: ts from the clock read once per burst (ns within the call), lengths and bytes exact', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths, packet } = burst(5);
  const w = PcapWriter.open(file);
  const before = BigInt(Date.now()) * 1_000_000n;
  t.is(w.write(umem, addrs, lengths, 3), 3);
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  // A Queue's slots: the writer takes slots [start, start + n).
  t.is(w.writeQueue({ umem, addrs, lengths }, 2, undefined, 3), 2);
  const stats = await w.close();
  t.is(stats.captured, 5);
  t.is(stats.dropped, 0);
  const f = readPcap(file);
  t.is(f.records.length, 5);
  f.records.forEach((r, i) => {
    t.is(r.inclLen, 60 + i);
    t.is(r.origLen, 60 + i);
    t.true(r.data.equals(packet(i)), `packet ${i} byte for byte`);
    t.true(r.frac < 1e9, 'nanoseconds below one second');
  });
  const ns = (r: { sec: number; frac: number }) => BigInt(r.sec) * 1_000_000_000n + BigInt(r.frac);
  const first = ns(f.records[0]!);
  // The clock anchors hrtime to Date.now() (ms) at open: allow its ms of resolution on each side.
  t.true(first >= before - 2_000_000n && first <= after + 2_000_000n, `${first} within [${before}, ${after}]`);
  t.is(ns(f.records[1]!), first, 'one clock read for the burst');
  t.is(ns(f.records[2]!), first);
  t.true(ns(f.records[3]!) >= first, 'a later burst is not earlier');
  t.is(stats.bytesWritten, 24 + 5 * 16 + (60 + 61 + 62 + 63 + 64));
});

test('per-packet timestamps: BigUint64Array ns exact to the nanosecond, Float64Array, 0 takes the clock', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths } = burst(4);
  const w = PcapWriter.open(file);
  const big = new BigUint64Array([1_764_990_123_456_789_012n, 0n, 4_294_967_295_999_999_999n, 1n]);
  t.is(w.write(umem, addrs, lengths, 4, big), 4);
  const float = new Float64Array([1_700_000_000_000_000_000, 0, 0, 5_000_000_123]);
  t.is(w.write(umem, addrs, lengths, 4, float), 4);
  await w.close();
  const r = readPcap(file).records;
  t.is(r.length, 8);
  t.deepEqual([r[0]!.sec, r[0]!.frac], [1_764_990_123, 456_789_012]);
  t.deepEqual([r[2]!.sec, r[2]!.frac], [4_294_967_295, 999_999_999], 'the last second pcap can hold, exact');
  t.deepEqual([r[3]!.sec, r[3]!.frac], [0, 1]);
  const now = Date.now() / 1000;
  t.true(Math.abs(r[1]!.sec - now) < 60, 'slot 1 had 0: the clock');
  t.deepEqual([r[4]!.sec, r[4]!.frac], [1_700_000_000, 0]);
  t.deepEqual([r[7]!.sec, r[7]!.frac], [5, 123]);
  t.true(Math.abs(r[5]!.sec - now) < 60);
  t.deepEqual([r[5]!.sec, r[5]!.frac], [r[6]!.sec, r[6]!.frac], 'slots without a timestamp share the clock read');
});

test('a Batch-shaped object: its slots [0, length)', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths, packet } = burst(3);
  const w = PcapWriter.open(file);
  t.is(w.writeBatch({ umem, addrs, lengths, length: 2 }), 2);
  await w.close();
  const r = readPcap(file).records;
  t.deepEqual(r.map((x) => x.data), [packet(0), packet(1)]);
});

test('every copy path gives the bytes as they are: aligned words, unaligned words and tail, Buffer.copy; UMEM at any offset', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const lengths = new Uint32Array([60, 64, 61, 63, 62, 192, 193, 1500, 4, 1, 3, 188]);
  const n = lengths.length;
  const w = PcapWriter.open(file);
  const expected: Buffer[] = [];
  // UMEMs starting at byte offsets 0 (aligned) and 1..3 (no Int32Array view); frame addresses aligned and not.
  for (const offset of [0, 1, 2, 3]) {
    const backing = new ArrayBuffer(offset + n * FRAME);
    const umem = new Uint8Array(backing, offset, n * FRAME);
    for (let j = 0; j < umem.length; j++) umem[j] = (j * 31 + offset) & 0xff;
    for (const shift of [0, 1, 2, 4]) {
      const addrs = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        addrs[i] = i * FRAME + 256 + shift;
        expected.push(Buffer.from(umem.subarray(addrs[i]!, addrs[i]! + lengths[i]!)));
      }
      t.is(w.write(umem, addrs, lengths, n), n);
    }
  }
  await w.close();
  const records = readPcap(file).records;
  t.is(records.length, expected.length);
  for (const [i, r] of records.entries()) {
    if (!r.data.equals(expected[i]!) || r.origLen !== expected[i]!.length) {
      t.fail(`record ${i} (${r.inclLen} bytes) differs from its packet`);
      break;
    }
  }
});

test('snaplen: a longer packet keeps snaplen bytes and its original length', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths, packet } = burst(2, (i) => (i === 0 ? 150 : 80));
  const w = PcapWriter.open(file, { snaplen: 100 });
  w.write(umem, addrs, lengths, 2);
  await w.close();
  const f = readPcap(file);
  t.is(f.snaplen, 100);
  t.deepEqual([f.records[0]!.inclLen, f.records[0]!.origLen], [100, 150]);
  t.true(f.records[0]!.data.equals(packet(0).subarray(0, 100)));
  t.deepEqual([f.records[1]!.inclLen, f.records[1]!.origLen], [80, 80]);
});

test('limit: exactly that many packets, then writes are ignored (not dropped)', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths, packet } = burst(6);
  const w = PcapWriter.open(file, { limit: 4 });
  t.is(w.write(umem, addrs, lengths, 3), 3);
  t.false(w.full);
  t.is(w.write(umem, addrs, lengths, 3, undefined, 3), 1, 'one more fits the limit');
  t.true(w.full);
  t.is(w.write(umem, addrs, lengths, 6), 0);
  const stats = await w.close();
  t.like(stats, { captured: 4, dropped: 0, full: true });
  const r = readPcap(file).records;
  t.deepEqual(r.map((x) => x.data), [0, 1, 2, 3].map(packet));
});

test('bounded buffering: with the chunks all waiting for the disk, packets are dropped and counted, the file is whole', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const size = 1500;
  const { umem, addrs, lengths, packet } = burst(64, () => size);
  // Two chunks of 8 records each; no timer flush. Nothing is written before
  // this synchronous loop yields, so at most two chunks' worth is captured.
  const chunkSize = 24 + 16 + size + 7 * (16 + size);
  const w = PcapWriter.open(file, { chunks: 2, chunkSize, snaplen: size, flushMs: 0 });
  let captured = 0;
  for (let b = 0; b < 50; b++) captured += w.write(umem, addrs, lengths, 64);
  t.true(captured <= 2 * 8, `at most what two chunks hold (${captured})`);
  t.true(captured >= 8, 'the first chunk fills');
  t.is(w.captured, captured);
  t.is(w.dropped, 50 * 64 - captured, 'every packet not captured is counted as dropped');
  const stats = await w.close();
  const r = readPcap(file).records;
  t.is(r.length, stats.captured);
  for (const [i, x] of r.entries()) t.true(x.data.equals(packet(i % 64)), `record ${i}`);
  t.is(w.write(umem, addrs, lengths, 1), 0, 'closed: later writes are ignored');
});

test('capture resumes once the disk catches up', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const size = 1000;
  const { umem, addrs, lengths } = burst(16, () => size);
  const chunkSize = 24 + 4 * (16 + size);
  const w = PcapWriter.open(file, { chunks: 2, chunkSize, snaplen: size, flushMs: 0 });
  w.write(umem, addrs, lengths, 16);
  const dropped = w.dropped;
  t.true(dropped > 0);
  // Let the writes complete (bounded).
  for (let i = 0; i < 200 && w.stats().bytesWritten < 24 + 4 * (16 + size); i++) await new Promise((r) => setTimeout(r, 5));
  t.is(w.write(umem, addrs, lengths, 2), 2, 'chunks are free again');
  const stats = await w.close();
  t.is(stats.dropped, dropped);
  t.is(readPcap(file).records.length, stats.captured);
});

test('the flush timer writes a partly filled chunk', async (t) => {
  const file = tmpFile(t);
  (t.context as { file?: string }).file = file;
  const { umem, addrs, lengths } = burst(2);
  const w = PcapWriter.open(file, { flushMs: 20 });
  w.write(umem, addrs, lengths, 2);
  t.is(fs.statSync(file).size, 0);
  for (let i = 0; i < 100 && fs.statSync(file).size === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(readPcap(file).records.length, 2, 'on disk before close()');
  await w.close();
});

test('an unopenable file: ERR_AFXDP_SYSTEM with the path; bad options: ERR_AFXDP_INVALID_ARGUMENT', (t) => {
  const missing = path.join(os.tmpdir(), `afxdp-no-such-dir-${process.pid}`, 'x.pcap');
  const err = t.throws(() => PcapWriter.open(missing), { instanceOf: AfxdpError, message: /ENOENT/ });
  t.is(err?.code, 'ERR_AFXDP_SYSTEM');
  t.is(err?.path, missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-pcap-'));
  try {
    for (const options of [{ chunks: 1 }, { snaplen: 0 }, { snaplen: PCAP_SNAPLEN + 1 }, { limit: -1 }, { chunkSize: 100 }]) {
      const e = t.throws(() => PcapWriter.open(path.join(dir, 'y.pcap'), options), { instanceOf: AfxdpError });
      t.is(e?.code, 'ERR_AFXDP_INVALID_ARGUMENT', JSON.stringify(options));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('afxdp fwd --pcap file names: FILE alone, else -p<port> and -t<thread> before the extension', (t) => {
  t.is(captureFile('cap.pcap', 0, 1, 0, 1), 'cap.pcap');
  t.is(captureFile('/tmp/cap.pcap', 1, 2, 0, 1), '/tmp/cap-p1.pcap');
  t.is(captureFile('cap.pcap', 0, 1, 1, 2), 'cap-t1.pcap');
  t.is(captureFile('dir.d/cap', 1, 2, 0, 2), 'dir.d/cap-p1-t0');
});
