// A pcap writer for what a burst received: classic pcap with nanosecond
// timestamps (magic 0xa1b23c4d, LINKTYPE_ETHERNET), the format tcpdump,
// Wireshark and libpcap read everywhere.
//
// Per packet: a 16-byte record header and one copy of the packet's bytes
// from the UMEM into a preallocated chunk; nothing is allocated per packet
// (nor per burst, unless the clock is read: one BigInt). Full chunks are
// written asynchronously (fs.write at an explicit position, one write in
// flight, in order) and come back to the free list when written. The memory
// is bounded (`chunks` × `chunkSize`): when every chunk waits for the disk,
// packets are counted as `dropped` instead of blocking the caller or
// growing memory.
//
// Timestamps: nanoseconds since the epoch from a clock read once per burst
// (process.hrtime.bigint(), anchored to Date.now() when the file is opened),
// or per packet from a `timestamps` array (RX metadata: ns since the epoch,
// by slot; 0 means "none for this packet" and takes the burst's clock).
import fs from 'node:fs';
import { AfxdpError, codes } from '../errors';

/** pcap's magic for nanosecond timestamps (written in the host's byte order, little-endian on x64 and arm64). */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** LINKTYPE_ETHERNET: frames start at the Ethernet header, without FCS. */
export const LINKTYPE_ETHERNET = 1;
/** The snapshot length tcpdump uses by default (and the largest libpcap accepts). */
export const PCAP_SNAPLEN = 262144;
export const PCAP_FILE_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

const NS_PER_S = 1_000_000_000n;
const DEFAULT_CHUNK = 1 << 20;
const DEFAULT_CHUNKS = 8;
const DEFAULT_FLUSH_MS = 1000;
/**
 * Packets up to this long are copied 4 bytes at a time: through Int32Arrays
 * when source, destination and length are multiples of 4 (60- and 64-byte
 * frames from aligned frames), else through DataViews; longer ones with
 * Buffer.copy. Buffer.copy makes a Uint8Array view per call (Node 20),
 * which costs more than the word loops below about 200 bytes (measured on
 * the benchmark machine, docs/design.md).
 */
const WORD_COPY_MAX = 192;

/** Per-slot receive timestamps, ns since the Unix epoch (0: none for that slot). */
export type PacketTimestamps = Float64Array | BigUint64Array;

export interface PcapWriterOptions {
  /** Capture at most this many packets, then ignore the rest (default: no limit). */
  limit?: number;
  /** Bytes of one buffer chunk (default 1 MiB); at least a record of `snaplen` bytes. */
  chunkSize?: number;
  /** Chunks (default 8): at most chunks × chunkSize bytes wait for the disk; beyond that packets are dropped. */
  chunks?: number;
  /** Bytes kept of each packet (default 262144, tcpdump's); the record keeps the original length. */
  snaplen?: number;
  /** A partly filled chunk is written after at most this many ms (default 1000; 0: only when full, on flush() and close()). */
  flushMs?: number;
}

/** What a writer did so far. */
export interface PcapStats {
  file: string;
  /** Packets written into the capture (on disk, or buffered and written by close()). */
  captured: number;
  /** Packets not captured because every buffer chunk was waiting for the disk (or after a write error). */
  dropped: number;
  /** Bytes written to the file so far. */
  bytesWritten: number;
  /** Whether `limit` packets were captured. */
  full: boolean;
  /** The write error that stopped the capture, if any. */
  error?: string;
}

/** A burst's packets in a UMEM: what a Queue's slots and a stream Batch have. */
export interface PacketSlots {
  readonly umem: Uint8Array;
  readonly addrs: Uint32Array;
  readonly lengths: Uint32Array;
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, `pcap ${name} must be an integer from ${min} to ${max}, not ${String(value)}`,
      { argument: name });
  }
  return value;
}

/** A UMEM as the writer reads it: a Buffer for Buffer.copy, a DataView and (when aligned) an Int32Array for the word copies. */
interface Source {
  bytes: Buffer;
  view: DataView;
  words: Int32Array | null;
}

/** 32-bit words over `u`, or null when `u` does not start on a multiple of 4. */
function wordsOf(u: Uint8Array): Int32Array | null {
  return u.byteOffset % 4 === 0 ? new Int32Array(u.buffer, u.byteOffset, u.byteLength >>> 2) : null;
}

function sourceOf(u: Uint8Array): Source {
  return {
    bytes: Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength),
    view: new DataView(u.buffer, u.byteOffset, u.byteLength),
    words: wordsOf(u),
  };
}

/**
 * Writes captured packets to one pcap file. Open with `PcapWriter.open()`,
 * call `write()`/`writeQueue()`/`writeBatch()` right after a receive (before
 * the frames are transmitted or released), `close()` at the end.
 */
export class PcapWriter {
  readonly file: string;
  readonly snaplen: number;
  readonly chunkSize: number;
  readonly limit: number;
  #fd: number;
  #captured = 0;
  #dropped = 0;
  #bytesWritten = 0;
  #error: Error | undefined;
  #closing = false;
  // The chunk being filled (null: none free) and its fill level.
  #chunk: Buffer | null;
  #view: DataView | null;
  #words: Int32Array | null;
  #used = 0;
  readonly #views = new Map<Buffer, { view: DataView; words: Int32Array | null }>();
  readonly #free: Buffer[] = [];
  // Full chunks waiting for the disk, oldest first (a ring of `chunks` entries).
  readonly #queue: (Buffer | null)[];
  readonly #queueLength: Uint32Array;
  #qHead = 0;
  #qCount = 0;
  // The write in flight: chunk, its length, how much is written, file position.
  #inFlight: Buffer | null = null;
  #inFlightLength = 0;
  #inFlightDone = 0;
  #position = 0;
  #idle: (() => void) | null = null;
  #timer: NodeJS.Timeout | undefined;
  #filledSince = 0;
  readonly #flushMs: number;
  // ns since the epoch = process.hrtime.bigint() + #clockOffset.
  readonly #clockOffset: bigint;
  // Views of the UMEMs written from (made once per UMEM), and the last one used.
  readonly #umems = new WeakMap<Uint8Array, Source>();
  #lastUmem: Uint8Array | null = null;
  #lastSource: Source | null = null;

  private constructor(file: string, fd: number, options: PcapWriterOptions) {
    this.file = file;
    this.#fd = fd;
    this.snaplen = checkInteger('snaplen', options.snaplen ?? PCAP_SNAPLEN, 1, PCAP_SNAPLEN);
    this.chunkSize = checkInteger('chunkSize', options.chunkSize ?? Math.max(DEFAULT_CHUNK, 2 * (PCAP_RECORD_HEADER_BYTES + this.snaplen)),
      PCAP_FILE_HEADER_BYTES + PCAP_RECORD_HEADER_BYTES + this.snaplen, 1 << 30);
    const chunks = checkInteger('chunks', options.chunks ?? DEFAULT_CHUNKS, 2, 1024);
    this.limit = options.limit === undefined ? Infinity : checkInteger('limit', options.limit, 0, Number.MAX_SAFE_INTEGER);
    this.#flushMs = checkInteger('flushMs', options.flushMs ?? DEFAULT_FLUSH_MS, 0, 3_600_000);
    this.#queue = new Array<Buffer | null>(chunks).fill(null);
    this.#queueLength = new Uint32Array(chunks);
    for (let i = 0; i < chunks; i++) {
      const b = Buffer.alloc(this.chunkSize);
      this.#views.set(b, { view: new DataView(b.buffer, b.byteOffset, b.byteLength), words: wordsOf(b) });
      this.#free.push(b);
    }
    this.#chunk = this.#free.pop()!;
    const views = this.#views.get(this.#chunk)!;
    this.#view = views.view;
    this.#words = views.words;
    this.#clockOffset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    // The file header: the first bytes of the first chunk.
    const h = this.#view;
    h.setUint32(0, PCAP_MAGIC_NS, true);
    h.setUint16(4, 2, true);
    h.setUint16(6, 4, true);
    h.setInt32(8, 0, true); // thiszone
    h.setUint32(12, 0, true); // sigfigs
    h.setUint32(16, this.snaplen, true);
    h.setUint32(20, LINKTYPE_ETHERNET, true);
    this.#used = PCAP_FILE_HEADER_BYTES;
    this.#filledSince = performance.now();
    if (this.#flushMs > 0) this.#timer = setInterval(this.#onTimer, this.#flushMs).unref();
  }

  /**
   * Create (or truncate) `file` and start a capture. Throws
   * ERR_AFXDP_SYSTEM with the path and errno when the file cannot be opened,
   * ERR_AFXDP_INVALID_ARGUMENT for a bad option.
   */
  static open(file: string, options: PcapWriterOptions = {}): PcapWriter {
    let fd: number;
    try {
      fd = fs.openSync(file, 'w', 0o644);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new AfxdpError(codes.SYSTEM, `cannot open the capture file ${file}: ${e.code ?? e.message}; give a path in a writable directory`,
        { path: file, ...(e.errno === undefined ? {} : { errno: -e.errno }), cause: err });
    }
    try {
      return new PcapWriter(file, fd, options);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Packets captured so far. */
  get captured(): number {
    return this.#captured;
  }

  /** Packets dropped so far (no free chunk, or after a write error). */
  get dropped(): number {
    return this.#dropped;
  }

  /** `limit` packets were captured: further writes are ignored. */
  get full(): boolean {
    return this.#captured >= this.limit;
  }

  /** The nanosecond clock of the records without a timestamp of their own (ns since the epoch). */
  now(): bigint {
    return process.hrtime.bigint() + this.#clockOffset;
  }

  stats(): PcapStats {
    return {
      file: this.file,
      captured: this.#captured,
      dropped: this.#dropped,
      bytesWritten: this.#bytesWritten,
      full: this.full,
      ...(this.#error === undefined ? {} : { error: this.#error.message }),
    };
  }

  /** A Queue's slots [start, start + n) right after `receive()` (capture before transmit or release). */
  writeQueue(q: PacketSlots, n: number, timestamps?: PacketTimestamps, start = 0): number {
    return this.write(q.umem, q.addrs, q.lengths, n, timestamps, start);
  }

  /** The packets of a stream Batch (slots [0, batch.length)). */
  writeBatch(batch: PacketSlots & { readonly length: number }, timestamps?: PacketTimestamps): number {
    return this.write(batch.umem, batch.addrs, batch.lengths, batch.length, timestamps, 0);
  }

  /**
   * Capture packets `umem[addrs[i] .. addrs[i] + lengths[i]]` for slots
   * i in [start, start + n). `timestamps[i]`, when given and not 0, is
   * packet i's receive time in ns since the epoch; otherwise the clock is
   * read once for the call. Returns the packets captured (the others were
   * dropped, or past `limit`).
   */
  write(umem: Uint8Array, addrs: Uint32Array, lengths: Uint32Array, n: number, timestamps?: PacketTimestamps, start = 0): number {
    let room = this.limit - this.#captured;
    if (room <= 0 || n <= 0 || this.#closing) return 0;
    if (this.#error !== undefined) {
      const lost = Math.min(n, room);
      this.#dropped += lost;
      return 0;
    }
    const source = umem === this.#lastUmem ? this.#lastSource! : this.#sourceOf(umem);
    const src = source.bytes;
    const srcView = source.view;
    const srcWords = source.words;
    // One clock read per call (allocates two BigInts), only when a record needs it.
    let sec = -1;
    let nsec = 0;
    let tsWords: Uint32Array | null = null;
    let tsFloat: Float64Array | null = null;
    if (timestamps instanceof BigUint64Array) {
      tsWords = new Uint32Array(timestamps.buffer, timestamps.byteOffset, timestamps.length * 2);
    } else if (timestamps !== undefined) {
      tsFloat = timestamps;
    }
    const snaplen = this.snaplen;
    let captured = 0;
    const end = start + n;
    for (let i = start; i < end && room > 0; i++) {
      const len = lengths[i]!;
      const incl = Math.min(len, snaplen);
      const need = PCAP_RECORD_HEADER_BYTES + incl;
      if (this.#chunk === null || this.#used + need > this.chunkSize) {
        if (!this.#nextChunk()) {
          this.#dropped += Math.min(end - i, room);
          break;
        }
      }
      // The timestamp: the slot's own, else the burst's clock.
      let s: number;
      let ns: number;
      if (tsWords !== null && (tsWords[2 * i]! !== 0 || tsWords[2 * i + 1]! !== 0)) {
        // hi * 2^32 + lo split into seconds and nanoseconds without BigInt or precision loss.
        const lo = tsWords[2 * i]!;
        const hi = tsWords[2 * i + 1]!;
        const a = Math.floor(hi / 65536);
        const b = hi - a * 65536;
        const x = a * 294967296; // 2^32 = 4e9 + 294967296
        const xq = Math.floor(x / 1e9);
        const rest = (x - xq * 1e9) * 65536 + b * 294967296 + lo;
        const rq = Math.floor(rest / 1e9);
        s = hi * 4 + xq * 65536 + rq;
        ns = rest - rq * 1e9;
      } else if (tsFloat !== null && tsFloat[i]! > 0) {
        const t = tsFloat[i]!;
        s = Math.floor(t / 1e9);
        ns = Math.min(999_999_999, Math.max(0, Math.round(t - s * 1e9)));
      } else {
        if (sec < 0) {
          const now = process.hrtime.bigint() + this.#clockOffset;
          const whole = now / NS_PER_S;
          sec = Number(whole);
          nsec = Number(now - whole * NS_PER_S);
        }
        s = sec;
        ns = nsec;
      }
      const chunk = this.#chunk!;
      const view = this.#view!;
      const words = this.#words;
      const at = this.#used;
      view.setUint32(at, s >>> 0, true);
      view.setUint32(at + 4, ns, true);
      view.setUint32(at + 8, incl, true);
      view.setUint32(at + 12, len, true);
      const from = addrs[i]!;
      const to = at + PCAP_RECORD_HEADER_BYTES;
      if (incl <= WORD_COPY_MAX) {
        if (srcWords !== null && words !== null && ((from | to | incl) & 3) === 0) {
          const fromWord = from >>> 2;
          const toWord = to >>> 2;
          const count = incl >>> 2;
          for (let k = 0; k < count; k++) words[toWord + k] = srcWords[fromWord + k]!;
        } else {
          let j = 0;
          for (; j + 4 <= incl; j += 4) view.setUint32(to + j, srcView.getUint32(from + j, true), true);
          for (; j < incl; j++) chunk[to + j] = src[from + j]!;
        }
      } else {
        src.copy(chunk, to, from, from + incl);
      }
      this.#used = at + need;
      captured++;
      room--;
    }
    this.#captured += captured;
    // The last packet: put what is buffered on its way to the disk.
    if (this.#captured >= this.limit) this.flush();
    return captured;
  }

  #sourceOf(umem: Uint8Array): Source {
    let s = this.#umems.get(umem);
    if (s === undefined) {
      s = sourceOf(umem);
      this.#umems.set(umem, s);
    }
    this.#lastUmem = umem;
    this.#lastSource = s;
    return s;
  }

  /** Queue the current chunk (if it has records) and take a free one; false when none is free. */
  #nextChunk(): boolean {
    if (this.#chunk !== null && this.#used > 0) this.#submit();
    if (this.#chunk === null) {
      const b = this.#free.pop();
      if (b === undefined) return false;
      this.#chunk = b;
      const views = this.#views.get(b)!;
      this.#view = views.view;
      this.#words = views.words;
      this.#used = 0;
      this.#filledSince = performance.now();
    }
    return true;
  }

  #submit(): void {
    const chunk = this.#chunk!;
    const tail = (this.#qHead + this.#qCount) % this.#queue.length;
    this.#queue[tail] = chunk;
    this.#queueLength[tail] = this.#used;
    this.#qCount++;
    this.#chunk = null;
    this.#view = null;
    this.#words = null;
    this.#used = 0;
    this.#pump();
  }

  /** Start the next write if none is in flight. */
  #pump(): void {
    if (this.#inFlight !== null) return;
    if (this.#qCount === 0) {
      const idle = this.#idle;
      this.#idle = null;
      idle?.();
      return;
    }
    const head = this.#qHead;
    this.#inFlight = this.#queue[head]!;
    this.#inFlightLength = this.#queueLength[head]!;
    this.#inFlightDone = 0;
    this.#queue[head] = null;
    this.#qHead = (head + 1) % this.#queue.length;
    this.#qCount--;
    fs.write(this.#fd, this.#inFlight, 0, this.#inFlightLength, this.#position, this.#onWritten);
  }

  readonly #onWritten = (err: NodeJS.ErrnoException | null, written: number): void => {
    const chunk = this.#inFlight!;
    if (err === null) {
      this.#inFlightDone += written;
      this.#position += written;
      this.#bytesWritten += written;
      if (this.#inFlightDone < this.#inFlightLength && written > 0) {
        // A short write: the rest of the chunk at the next position.
        fs.write(this.#fd, chunk, this.#inFlightDone, this.#inFlightLength - this.#inFlightDone, this.#position, this.#onWritten);
        return;
      }
      if (written === 0 && this.#inFlightDone < this.#inFlightLength) {
        err = Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      }
    }
    this.#inFlight = null;
    this.#free.push(chunk);
    if (err !== null) this.#fail(err);
    this.#pump();
  };

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#error !== undefined) return;
    this.#error = new AfxdpError(codes.SYSTEM, `writing the capture file ${this.file} failed: ${err.code ?? err.message}; ` +
      'the capture stopped (packets after it are counted as dropped)', { path: this.file, cause: err });
    // What waits for the disk is lost: its packets were counted as captured; the file ends before them.
    while (this.#qCount > 0) {
      this.#free.push(this.#queue[this.#qHead]!);
      this.#queue[this.#qHead] = null;
      this.#qHead = (this.#qHead + 1) % this.#queue.length;
      this.#qCount--;
    }
  }

  readonly #onTimer = (): void => {
    if (this.#chunk !== null && this.#used > 0 && performance.now() - this.#filledSince >= this.#flushMs) this.flush();
  };

  /** Put the partly filled chunk on its way to the disk now. */
  flush(): void {
    if (this.#error !== undefined || this.#chunk === null || this.#used === 0) return;
    this.#submit();
    // Take a free chunk for what comes next (none free: the next write() tries again).
    this.#nextChunk();
  }

  /**
   * Write what is buffered, close the file; resolves to the final stats
   * (a write error is in `stats.error`, not thrown). Later writes are ignored.
   */
  async close(): Promise<PcapStats> {
    if (this.#closing) {
      await this.#drained();
      return this.stats();
    }
    this.flush();
    this.#closing = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#drained();
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    }
    return this.stats();
  }

  #drained(): Promise<void> {
    if (this.#inFlight === null && this.#qCount === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const previous = this.#idle;
      this.#idle = () => {
        previous?.();
        resolve();
      };
    });
  }
}
