// The forward engines over fake queues, without root: what each mode does
// to the frames, the three lane paths (same queue, shared UMEM, copy), the
// native calls per burst, and that backpressure loses no frame.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { AfxdpError } from '../../lib/errors';
import { DEFAULT_TX, ENGINES, engineOf, FORWARD_MODES, Forwarder, generatedOn, Lane } from '../../lib/fwd';
import type { ForwardPort, LaneQueue, TxConfig } from '../../lib/fwd';
import { txFrameSeq } from '../../lib/fwd/txframe';

const FRAME_SIZE = 2048;
const HEADROOM = 256;

/** One UMEM: frames, the free pool, and which frames the application holds. */
class FakeUmem {
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly free: number[] = [];
  readonly owned = new Set<number>();
  constructor(readonly frames = 64) {
    this.buffer = new ArrayBuffer(frames * FRAME_SIZE);
    this.bytes = new Uint8Array(this.buffer);
    for (let i = frames - 1; i >= 0; i--) this.free.push(i * FRAME_SIZE + HEADROOM);
  }
  take(): number {
    const addr = this.free.pop();
    if (addr === undefined) throw new Error('fake UMEM: no free frame');
    this.owned.add(addr);
    return addr;
  }
  give(addr: number): void {
    if (!this.owned.delete(addr)) throw new Error(`fake UMEM: frame ${addr} is not the application's (double free or foreign)`);
    this.free.push(addr);
  }
}

type Calls = Record<'receive' | 'transmit' | 'alloc' | 'release' | 'reap', number>;

/** A queue with Queue's burst API, its rings in arrays. */
class FakeQueue implements LaneQueue {
  readonly umem: Uint8Array;
  readonly addrs: Uint32Array;
  readonly lengths: Uint32Array;
  readonly options: Uint32Array;
  readonly rxWaiting: { addr: number; len: number; options: number }[] = [];
  readonly txRing: number[] = [];
  /** Every frame posted for transmission, copied at the time. */
  readonly sent: Buffer[] = [];
  readonly sentAddrs: number[] = [];
  readonly sentOptions: number[] = [];
  readonly calls: Calls = { receive: 0, transmit: 0, alloc: 0, release: 0, reap: 0 };

  constructor(readonly pool: FakeUmem, readonly index = 0, readonly burstSize = 8, public txCap = 32, readonly umemIndex = 0) {
    this.umem = pool.bytes;
    this.addrs = new Uint32Array(burstSize);
    this.lengths = new Uint32Array(burstSize);
    this.options = new Uint32Array(burstSize);
  }

  /** A packet arrives on the rx ring. */
  inject(packet: Uint8Array, options = 0): void {
    const addr = this.pool.take();
    this.pool.owned.delete(addr); // the kernel's until received
    this.pool.bytes.set(packet, addr);
    this.rxWaiting.push({ addr, len: packet.length, options });
  }

  /** A multi-buffer chain arrives: `fragments` in consecutive slots, XDP_PKT_CONTD on all but the last. */
  injectChain(fragments: Uint8Array[]): void {
    for (let i = 0; i < fragments.length; i++) this.inject(fragments[i]!, i < fragments.length - 1 ? 1 : 0);
  }

  receive(max = this.burstSize): number {
    this.calls.receive++;
    const limit = Math.min(max, this.burstSize);
    let n = Math.min(limit, this.rxWaiting.length);
    // As the core: never end inside a chain unless the chain fills the burst.
    if (n > 0 && (this.rxWaiting[n - 1]!.options & 1) !== 0) {
      let k = n - 1;
      while (k > 0 && (this.rxWaiting[k - 1]!.options & 1) !== 0) k--;
      n = k > 0 ? k : n === limit ? n : 0;
    }
    for (let i = 0; i < n; i++) {
      const { addr, len, options } = this.rxWaiting.shift()!;
      this.pool.owned.add(addr);
      this.addrs[i] = addr;
      this.lengths[i] = len;
      this.options[i] = options;
    }
    return n;
  }

  transmit(count: number, start = 0, dropUnsent = false): number {
    this.calls.transmit++;
    if (count > 0 && (this.options[start + count - 1]! & 1) !== 0) throw new Error('fake queue: the batch ends inside a chain');
    let posted = Math.min(count, this.txCap - this.txRing.length);
    // Whole chains only, as the core.
    while (posted > 0 && (this.options[start + posted - 1]! & 1) !== 0) posted--;
    for (let i = start; i < start + posted; i++) {
      const addr = this.addrs[i]!;
      if (!this.pool.owned.delete(addr)) throw new Error(`fake queue: transmit of frame ${addr} the application does not own`);
      this.txRing.push(addr);
      this.sentAddrs.push(addr);
      this.sentOptions.push(this.options[i]!);
      this.sent.push(Buffer.from(this.pool.bytes.subarray(addr, addr + this.lengths[i]!)));
    }
    if (dropUnsent) for (let i = start + posted; i < start + count; i++) this.pool.give(this.addrs[i]!);
    return posted;
  }

  release(count: number, start = 0): void {
    this.calls.release++;
    for (let i = start; i < start + count; i++) this.pool.give(this.addrs[i]!);
  }

  alloc(count: number, start = 0): number {
    this.calls.alloc++;
    const n = Math.min(count, this.burstSize - start, this.pool.free.length);
    for (let i = 0; i < n; i++) {
      this.addrs[start + i] = this.pool.take();
      this.lengths[start + i] = 0;
      this.options[start + i] = 0;
    }
    return n;
  }

  /** A kick and completions: as reap() here (the fake ring drains at once). */
  flushTx(): number {
    return this.reap();
  }

  /** Completions: every frame on the tx ring has left. */
  reap(): number {
    this.calls.reap++;
    const n = this.txRing.length;
    this.pool.free.push(...this.txRing.splice(0));
    return n;
  }
}

class FakePort implements ForwardPort {
  closed = false;
  constructor(readonly queues: FakeQueue[], readonly mac = '02:00:00:00:00:aa', readonly frameSize = FRAME_SIZE,
    readonly multiBuffer = true) {}
  info() {
    return { mac: this.mac, frameSize: this.frameSize, dataOffset: HEADROOM, multiBuffer: this.multiBuffer };
  }
  frames() {
    return { txRing: this.queues.reduce((s, q) => s + q.txRing.length, 0), completionRing: 0 };
  }
}

const DST = [0x02, 0, 0, 0, 0, 0x0d];
const SRC = [0x02, 0, 0, 0, 0, 0x05];

/** An Ethernet frame from SRC to DST whose payload says `id`. */
function packet(id: number, length = 60): Uint8Array {
  const p = new Uint8Array(length);
  p.set(DST, 0);
  p.set(SRC, 6);
  p[12] = 0x08;
  p.fill(id & 0xff, 14);
  return p;
}

/** Every frame is free, on a tx ring, or on an rx ring: none lost, none held. */
function conserved(t: ExecutionContext, pool: FakeUmem, queues: FakeQueue[]) {
  const onRings = queues.reduce((s, q) => s + q.txRing.length + q.rxWaiting.length, 0);
  t.is(pool.owned.size, 0, 'the application holds no frame after a step');
  t.is(pool.free.length + onRings, pool.frames, 'every frame is free or on a ring');
}

test('the table: one engine per mode, named as its key, io first (the default)', (t) => {
  t.deepEqual([...FORWARD_MODES] as string[], ['io', 'macswap', 'rxonly', 'txonly']);
  for (const mode of FORWARD_MODES) {
    t.is(ENGINES[mode].name, mode);
    t.is(engineOf(mode), ENGINES[mode]);
    t.is(typeof ENGINES[mode].summary, 'string');
  }
  t.is(ENGINES.txonly.receives, false);
  t.true(ENGINES.io.receives && ENGINES.macswap.receives && ENGINES.rxonly.receives);
  const err = t.throws(() => engineOf('csum'), { instanceOf: AfxdpError, message: /io, macswap, rxonly, txonly/ });
  t.is(err?.code, 'ERR_AFXDP_INVALID_ARGUMENT');
  t.throws(() => engineOf('toString'), { instanceOf: AfxdpError });
});

test('io on one port: the received frames go back out unchanged, one receive and one transmit per burst', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool);
  const fwd = new Forwarder([new FakePort([q])], 'io');
  t.is(fwd.path, 'none');
  t.is(fwd.lanes[0]!.path, 'same');
  for (let i = 0; i < 5; i++) q.inject(packet(i));
  t.is(fwd.step(), 5);
  t.deepEqual(q.sent.map((f) => Buffer.from(f)), [0, 1, 2, 3, 4].map((i) => Buffer.from(packet(i))));
  t.deepEqual(q.calls, { receive: 1, transmit: 1, alloc: 0, release: 0, reap: 0 });
  t.is(fwd.step(), 0, 'nothing waiting');
  t.is(q.calls.transmit, 1, 'an empty burst transmits nothing');
  q.reap();
  conserved(t, pool, [q]);
});

test('macswap swaps the Ethernet addresses and nothing else', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool);
  const fwd = new Forwarder([new FakePort([q])], 'macswap');
  for (let i = 0; i < 3; i++) q.inject(packet(i, 64 + i));
  t.is(fwd.step(), 3);
  t.is(q.sent.length, 3);
  q.sent.forEach((f, i) => {
    t.deepEqual([...f.subarray(0, 6)], SRC);
    t.deepEqual([...f.subarray(6, 12)], DST);
    t.deepEqual(f.subarray(12), Buffer.from(packet(i, 64 + i).subarray(12)));
  });
});

test('rxonly receives and releases every frame, sends nothing', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 4);
  const fwd = new Forwarder([new FakePort([q])], 'rxonly');
  for (let i = 0; i < 6; i++) q.inject(packet(i));
  t.is(fwd.step(), 4, 'one burst of burstSize');
  t.is(fwd.step(), 2);
  t.is(q.sent.length, 0);
  t.is(q.calls.release, 2);
  conserved(t, pool, [q]);
  t.is(pool.free.length, pool.frames);
});

test('two ports with their own UMEMs: the copy lane copies each packet and frees the received frame', (t) => {
  const pools = [new FakeUmem(), new FakeUmem()];
  const q0 = new FakeQueue(pools[0]!);
  const q1 = new FakeQueue(pools[1]!);
  const fwd = new Forwarder([new FakePort([q0]), new FakePort([q1], '02:00:00:00:00:bb')], 'io');
  t.is(fwd.path, 'copy');
  t.deepEqual(fwd.lanes.map((l) => [l.rx, l.tx]), [[q0, q1], [q1, q0]]);
  for (let i = 0; i < 4; i++) q0.inject(packet(i));
  q1.inject(packet(9));
  t.is(fwd.step(), 5);
  t.deepEqual(q1.sent.map((f) => [...f]), [0, 1, 2, 3].map((i) => [...packet(i)]));
  t.deepEqual(q0.sent.map((f) => [...f]), [[...packet(9)]]);
  // The copies live in the other UMEM; the received frames are free again.
  for (const addr of q1.sentAddrs) t.is(pools[1]!.bytes[addr + 14], q1.sent[q1.sentAddrs.indexOf(addr)]![14]);
  t.deepEqual(q0.calls, { receive: 1, transmit: 1, alloc: 1, release: 1, reap: 0 });
  conserved(t, pools[0]!, [q0]);
  conserved(t, pools[1]!, [q1]);
});

test('copy lane with macswap swaps the copies; a packet longer than the tx frame holds is dropped and counted', (t) => {
  const pools = [new FakeUmem(), new FakeUmem()];
  const q0 = new FakeQueue(pools[0]!);
  const q1 = new FakeQueue(pools[1]!);
  // Port 1 has 1024-byte frames: room for 768 bytes of packet.
  const fwd = new Forwarder([new FakePort([q0]), new FakePort([q1], '02:00:00:00:00:bb', 1024)], 'macswap');
  q0.inject(packet(1));
  q0.inject(packet(2, 1000));
  q0.inject(packet(3));
  t.is(fwd.step(), 3);
  t.deepEqual(q1.sent.map((f) => f[20]), [1, 3]);
  for (const f of q1.sent) t.deepEqual([...f.subarray(0, 6)], SRC);
  t.is(fwd.ports[1]!.txDropped[0], 1, 'the long one counts as dropped on the tx port');
  t.is(q1.calls.release, 1, 'its tx frame went back');
  conserved(t, pools[0]!, [q0]);
  conserved(t, pools[1]!, [q1]);
});

test('two ports on one UMEM: forwarded by descriptor, no copy', (t) => {
  const pool = new FakeUmem();
  const q0 = new FakeQueue(pool);
  const q1 = new FakeQueue(pool);
  const fwd = new Forwarder([new FakePort([q0]), new FakePort([q1])], 'macswap');
  t.is(fwd.path, 'descriptor');
  q0.inject(packet(7));
  const addr = q0.rxWaiting[0]!.addr;
  t.is(fwd.step(), 1);
  t.deepEqual(q1.sentAddrs, [addr], 'the received frame itself');
  t.deepEqual([...q1.sent[0]!.subarray(0, 6)], SRC);
  t.is(q0.calls.alloc + q1.calls.alloc, 0);
  conserved(t, pool, [q0, q1]);
});

test('backpressure: what a full tx ring refuses goes back to the pool and is counted, on every lane path', (t) => {
  // Same queue.
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 8, 2);
  const fwd = new Forwarder([new FakePort([q])], 'io');
  for (let i = 0; i < 5; i++) q.inject(packet(i));
  t.is(fwd.step(), 5);
  t.is(q.sent.length, 2);
  t.is(fwd.ports[0]!.txDropped[0], 3);
  t.is(fwd.lanes[0]!.droppedCount, 3);
  conserved(t, pool, [q]);

  // Shared UMEM, by descriptor.
  const shared = new FakeUmem();
  const a = new FakeQueue(shared);
  const b = new FakeQueue(shared, 0, 8, 1);
  const byDescriptor = new Forwarder([new FakePort([a]), new FakePort([b])], 'io');
  for (let i = 0; i < 4; i++) a.inject(packet(i));
  t.is(byDescriptor.step(), 4);
  t.is(b.sent.length, 1);
  t.is(byDescriptor.ports[1]!.txDropped[0], 3);
  conserved(t, shared, [a, b]);

  // Copy.
  const pools = [new FakeUmem(), new FakeUmem()];
  const c = new FakeQueue(pools[0]!);
  const d = new FakeQueue(pools[1]!, 0, 8, 1);
  const copy = new Forwarder([new FakePort([c]), new FakePort([d])], 'io');
  for (let i = 0; i < 3; i++) c.inject(packet(i));
  t.is(copy.step(), 3);
  t.is(d.sent.length, 1);
  t.is(copy.ports[1]!.txDropped[0], 2);
  conserved(t, pools[0]!, [c]);
  conserved(t, pools[1]!, [d]);
});

/** A fragment of a chain after the first: no Ethernet header, bytes `fill`. */
function fragment(fill: number, length = 100): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

test('chains, same queue: macswap swaps the first fragment only, the chain leaves whole with its options', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool);
  const fwd = new Forwarder([new FakePort([q])], 'macswap');
  q.injectChain([packet(1), fragment(0xaa), fragment(0xbb)]);
  q.inject(packet(2));
  t.is(fwd.step(), 4);
  t.deepEqual(q.sentOptions, [1, 1, 0, 0]);
  t.deepEqual([...q.sent[0]!.subarray(0, 6)], SRC, 'first fragment swapped');
  t.deepEqual([...q.sent[1]!], [...fragment(0xaa)], 'later fragments untouched');
  t.deepEqual([...q.sent[2]!], [...fragment(0xbb)]);
  t.deepEqual([...q.sent[3]!.subarray(0, 6)], SRC);
  conserved(t, pool, [q]);
});

test('chains: a burst never ends inside one; a full tx ring drops whole chains, counted once each', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 4, 2); // burst 4, tx ring of 2
  const fwd = new Forwarder([new FakePort([q])], 'io');
  q.injectChain([packet(1), fragment(1), fragment(1)]);
  q.injectChain([packet(2), fragment(2), fragment(2)]);
  t.is(q.receive(), 3, 'the second chain straddles the burst end: it stays on the ring');
  q.release(3);
  t.is(fwd.step(), 3);
  t.is(q.sent.length, 0, 'a 3-fragment chain does not fit a 2-slot ring: none of it is posted');
  t.is(fwd.ports[0]!.txDropped[0], 1, 'one packet dropped');
  conserved(t, pool, [q]);
});

test('chains longer than the burst: received across bursts, dropped whole by the lane and counted once', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 2);
  const fwd = new Forwarder([new FakePort([q])], 'io');
  q.injectChain([packet(1), fragment(1), fragment(1)]);
  q.inject(packet(2));
  t.is(fwd.step(), 2, 'the burst holds the chain\'s first two fragments');
  t.is(q.sent.length, 0);
  t.is(fwd.step(), 2, 'its last fragment, then the next packet');
  t.deepEqual(q.sent.map((f) => f[20]), [2]);
  t.is(fwd.ports[0]!.txDropped[0], 1);
  conserved(t, pool, [q]);
});

test('chains, copy lane: copied fragment by fragment with their options; a chain that cannot go is dropped whole', (t) => {
  const pools = [new FakeUmem(), new FakeUmem()];
  const q0 = new FakeQueue(pools[0]!);
  const q1 = new FakeQueue(pools[1]!);
  // Port 1: 1024-byte frames (768 bytes of room).
  const fwd = new Forwarder([new FakePort([q0]), new FakePort([q1], '02:00:00:00:00:bb', 1024)], 'macswap');
  q0.injectChain([packet(1), fragment(0xaa), fragment(0xbb)]);
  q0.injectChain([packet(2), fragment(0xcc, 1000)]); // a fragment longer than port 1's room
  q0.inject(packet(3));
  t.is(fwd.step(), 6);
  t.deepEqual(q1.sentOptions, [1, 1, 0, 0]);
  t.deepEqual(q1.sent.map((f) => f.length), [60, 100, 100, 60]);
  t.deepEqual([...q1.sent[0]!.subarray(0, 6)], SRC);
  t.deepEqual([...q1.sent[1]!], [...fragment(0xaa)]);
  t.deepEqual(q1.sent[3]![20], 3);
  t.is(fwd.ports[1]!.txDropped[0], 1, 'the chain with the long fragment, once');
  conserved(t, pools[0]!, [q0]);
  conserved(t, pools[1]!, [q1]);

  // To a port that is not multi-buffer, chains cannot go: dropped whole, single packets pass.
  const other = [new FakeUmem(), new FakeUmem()];
  const q2 = new FakeQueue(other[0]!);
  const q3 = new FakeQueue(other[1]!);
  const plain = new Forwarder([new FakePort([q2]), new FakePort([q3], '02:00:00:00:00:cc', FRAME_SIZE, false)], 'io');
  q2.injectChain([packet(4), fragment(4)]);
  q2.inject(packet(5));
  t.is(plain.step(), 3);
  t.deepEqual(q3.sent.map((f) => f[20]), [5]);
  t.is(plain.ports[1]!.txDropped[0], 1);
  conserved(t, other[0]!, [q2]);
  conserved(t, other[1]!, [q3]);
});

test('txonly: a frame longer than a UMEM frame goes out as a chain on a multi-buffer port, and is refused on another', (t) => {
  const pool = new FakeUmem(64);
  const q = new FakeQueue(pool, 0, 8);
  const tx: TxConfig = { ...DEFAULT_TX, dstMacs: [undefined], length: 4000, count: 2 };
  const fwd = new Forwarder([new FakePort([q])], 'txonly', { tx });
  t.is(fwd.step(), 2);
  const room = FRAME_SIZE - HEADROOM;
  t.deepEqual(q.sent.map((f) => f.length), [room, room, 4000 - 2 * room, room, room, 4000 - 2 * room]);
  t.deepEqual(q.sentOptions, [1, 1, 0, 1, 1, 0]);
  t.deepEqual([txFrameSeq(q.sent[0]!), txFrameSeq(q.sent[3]!)], [0, 1]);
  const e = t.throws(() => new Forwarder([new FakePort([new FakeQueue(new FakeUmem())], undefined, FRAME_SIZE, false)], 'txonly', { tx }));
  t.regex(e!.message, /not multi-buffer/);
});

const TX: TxConfig = { ...DEFAULT_TX, dstMacs: [undefined] };

test('txonly builds UDP frames with consecutive sequence numbers from the port MAC', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 8);
  const fwd = new Forwarder([new FakePort([q], '02:00:00:00:00:aa')], 'txonly', { tx: { ...TX, length: 80 } });
  t.deepEqual(fwd.wakeOn, [], 'a generator waits on no rx ring');
  t.is(fwd.step(), 8);
  t.is(fwd.step(), 8);
  t.deepEqual(q.sent.map((f) => txFrameSeq(f)), [...Array(16).keys()]);
  for (const f of q.sent) {
    t.is(f.length, 80);
    t.is(f.toString('hex', 0, 12), '020000000001' + '0200000000aa');
  }
  t.deepEqual(q.calls, { receive: 0, transmit: 2, alloc: 2, release: 0, reap: 0 });
});

test('txonly under backpressure: unsent frames go back, their sequence numbers are reused, no gap', (t) => {
  const pool = new FakeUmem(16);
  const q = new FakeQueue(pool, 0, 8, 5);
  const fwd = new Forwarder([new FakePort([q])], 'txonly', { tx: TX });
  t.is(fwd.step(), 5, 'the ring takes 5');
  t.is(pool.owned.size, 0, 'the 3 refused frames were released');
  t.is(fwd.step(), 0, 'ring full');
  q.reap();
  t.is(fwd.step(), 5);
  t.deepEqual(q.sent.map((f) => txFrameSeq(f)), [...Array(10).keys()]);
  t.is(generatedOn(fwd.lanes[0]!), 10);
  // No free frame: alloc finds none, the engine reaps.
  const tight = new FakeUmem(2);
  const r = new FakeQueue(tight, 0, 8, 32);
  const starved = new Forwarder([new FakePort([r])], 'txonly', { tx: TX });
  t.is(starved.step(), 2);
  t.is(starved.step(), 0);
  t.is(r.calls.reap, 1, 'an empty alloc reaps completions');
  t.is(starved.step(), 2, 'and the reaped frames are used on the next step');
});

test('txonly --tx-count stops after N frames per port; each port of two generates on its own queues with its own peer MAC', (t) => {
  const pools = [new FakeUmem(), new FakeUmem()];
  const q0 = new FakeQueue(pools[0]!, 0, 8);
  const q1 = new FakeQueue(pools[1]!, 0, 8);
  const dstMacs = [Buffer.from([2, 0, 0, 0, 0, 0x10]), Buffer.from([2, 0, 0, 0, 0, 0x11])];
  const fwd = new Forwarder([new FakePort([q0], '02:00:00:00:00:a0'), new FakePort([q1], '02:00:00:00:00:a1')], 'txonly',
    { tx: { ...TX, count: 12, dstMacs } });
  t.deepEqual(fwd.lanes.map((l) => [l.rx, l.tx]), [[q0, q0], [q1, q1]]);
  let total = 0;
  for (let i = 0; i < 5; i++) {
    total += fwd.step();
    q0.reap();
    q1.reap();
  }
  t.is(total, 24);
  t.is(q0.sent.length, 12);
  t.is(q1.sent[0]!.toString('hex', 0, 12), '020000000011' + '0200000000a1');
  t.is(q0.sent[0]!.toString('hex', 0, 12), '020000000010' + '0200000000a0');
});

test('txonly refuses frames longer than a frame holds on a port that is not multi-buffer, naming the room', (t) => {
  const q = new FakeQueue(new FakeUmem());
  t.throws(() => new Forwarder([new FakePort([q], '02:00:00:00:00:aa', 1024, false)], 'txonly', { tx: { ...TX, length: 1000 } }),
    { instanceOf: AfxdpError, message: /room for 768 bytes/ });
});

test('a lane can be driven directly: one engine, one queue back to itself, as bench/fwd-burst.js does', (t) => {
  const pool = new FakeUmem();
  const q = new FakeQueue(pool, 0, 8, 3);
  const lane = new Lane(q, q);
  for (let i = 0; i < 4; i++) q.inject(packet(i));
  t.is(ENGINES.macswap.forward(lane), 4);
  t.is(lane.droppedCount, 1);
  t.is(q.sent.length, 3);
  conserved(t, pool, [q]);
});

test('several queues: queue k of one port forwards to queue k mod n of the other', (t) => {
  const pools = [new FakeUmem(), new FakeUmem()];
  const p0 = [new FakeQueue(pools[0]!, 0), new FakeQueue(pools[0]!, 1)];
  const p1 = [new FakeQueue(pools[1]!, 0)];
  const fwd = new Forwarder([new FakePort(p0), new FakePort(p1)], 'io');
  t.deepEqual(fwd.lanes.map((l) => [l.rx, l.tx]), [[p0[0], p1[0]], [p0[1], p1[0]], [p1[0], p0[0]]]);
  t.deepEqual(fwd.wakeOn, [...p0, ...p1]);
  p0[1]!.inject(packet(5));
  t.is(fwd.step(), 1);
  t.is(p1[0]!.sent.length, 1);
});
