// One UMEM shared by two ports on two interfaces (openPorts with
// shared_umem=1 on both, or shareUmemWith): frames received on one port
// leave through the other by descriptor, the accounting is exact, either
// port can close first, and `afxdp fwd` forwards between them without
// copying. Two veth labs; every loop is bounded.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { privileged } from '../helpers/privileged';
import { createLab, Lab, leftoverNamespaces } from '../helpers/lab';
import { sleep } from '../helpers/frames';
import { pair } from '../helpers/tuple';
import { udpFrame, udpSeq } from '../helpers/udp-frames';
import { openPort, openPorts, Port, FrameAccounting } from '../../lib/index';
import { devargsToOptions } from '../../lib/config/port-config';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { Running } from '../cli/helpers';

const test = privileged();

function sum(f: FrameAccounting): number {
  return f.free + f.fillRing + f.rxRing + f.app + f.txRing + f.completionRing + f.inKernel;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function frames(to: Lab, from: string, base: number, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => udpFrame(to.portMac, from, base + i, 1000 + i, 64 + (i % 100)));
}

function sendAll(peer: PacketSocket, list: Buffer[]): number {
  let sent = 0;
  for (let i = 0; i < list.length; i += 100) sent += peer.send(list.slice(i, i + 100));
  return sent;
}

/** Close ports, then peers, then remove the labs (ports first: their programs sit on the labs' links). */
function teardown(ports: Port[], peers: PacketSocket[], labs: Lab[]): void {
  for (const p of ports) p.close();
  for (const peer of peers) peer.close();
  for (const lab of labs) lab.destroy();
}

/** Receive on `rx` and transmit the same frames (by address) on `tx`, dst MAC rewritten; until `n` or 10 s. */
async function forwardByDescriptor(rx: Port, tx: Port, dstMac: string, n: number, addresses?: Set<number>): Promise<number> {
  const r = rx.queues[0];
  const q = tx.queues[0];
  const mac = Buffer.from(dstMac.split(':').map((h) => parseInt(h, 16)));
  let done = 0;
  const deadline = Date.now() + 10_000;
  while (done < n && Date.now() < deadline) {
    const k = r.receive();
    if (k === 0) {
      await r.readable({ timeoutMs: 10 });
      continue;
    }
    for (let i = 0; i < k; i++) {
      const addr = r.addrs[i]!; // i < k, what receive() returned
      q.addrs[i] = addr;
      q.lengths[i] = r.lengths[i]!;
      q.umem.set(mac, addr);
      addresses?.add(addr);
    }
    let posted = 0;
    for (let tries = 0; posted < k && tries < 1000; tries++) {
      posted += q.transmit(k - posted, posted);
      if (posted < k) await q.writable({ timeoutMs: 10 });
    }
    done += posted;
  }
  return done;
}

/** Reap on `port` until its view of UMEM 0 has `free` frames again (bounded). */
async function settle(port: Port, free: number): Promise<FrameAccounting> {
  let f = port.frames(0);
  for (let i = 0; i < 200 && f.free !== free; i++) {
    port.queues[0].reap();
    await sleep(5);
    f = port.frames(0);
  }
  return f;
}

test.serial('openPorts with shared_umem=1 on two interfaces: one UMEM, 1000 packets forwarded by descriptor, exact accounting; A closes first, B goes on; nothing leaks', async (t) => {
  const fdsBefore = openFds();
  const [la, lb] = [createLab(), createLab()];
  const [peerA, peerB] = [new PacketSocket(la.peerIf, { netns: la.peerNs }), new PacketSocket(lb.peerIf, { netns: lb.peerNs })];
  let ports: Port[] = [];
  try {
    ports = await openPorts([
      { ...devargsToOptions(`net_af_xdp0,iface=${la.portIf},shared_umem=1`), netns: la.portNs },
      { ...devargsToOptions(`net_af_xdp1,iface=${lb.portIf},shared_umem=1`), netns: lb.portNs },
    ]);
    const [a, b] = pair(ports);
    t.deepEqual(a.info().umemSharedWith, [lb.portIf]);
    t.deepEqual(b.info().umemSharedWith, [la.portIf]);
    t.is(a.queues[0].umem.buffer, b.queues[0].umem.buffer, 'one ArrayBuffer over the one UMEM');
    const initial = a.frames(0);
    t.is(sum(initial), initial.total);
    t.is(b.frames(0).free, initial.free, 'one ledger seen from both ports');

    const N = 1000;
    t.is(sendAll(peerA, frames(la, la.peerMac, 0, N)), N);
    const sentAddrs = new Set<number>();
    t.is(await forwardByDescriptor(a, b, lb.peerMac, N, sentAddrs), N);
    const got = new Set<number>();
    const deadline = Date.now() + 10_000;
    while (got.size < N && Date.now() < deadline) {
      for (const f of peerB.receive(N, 100)) {
        const seq = udpSeq(f);
        if (seq !== undefined && seq < N) got.add(seq);
      }
    }
    t.is(got.size, N, 'all 1000 arrive at B\'s peer');
    t.is(a.stats().rxPackets, N);
    t.is(b.stats().txPackets, N);
    t.is(a.stats().txPackets, 0);
    t.true(sentAddrs.size > 0 && [...sentAddrs].every((x) => x < initial.total * a.info().frameSize));
    const after = await settle(b, initial.free);
    t.is(sum(after), after.total);
    t.is(after.free, initial.free, JSON.stringify(after));
    t.is(after.app, 0);
    t.deepEqual(await settle(a, initial.free), initial);

    // A closes first: B keeps receiving and transmitting on the same view.
    const view = b.queues[0].umem;
    a.close();
    a.close();
    t.is(view.byteLength, initial.total * b.info().frameSize, 'B\'s UMEM view stays valid');
    t.deepEqual(b.info().umemSharedWith, []);
    const alone = b.frames(0);
    t.is(sum(alone), alone.total);
    peerB.drain();
    t.is(sendAll(peerB, frames(lb, lb.peerMac, N, 200)), 200);
    t.is(await forwardByDescriptor(b, b, lb.peerMac, 200), 200);
    const back = new Set<number>();
    const until = Date.now() + 10_000;
    while (back.size < 200 && Date.now() < until) {
      for (const f of peerB.receive(400, 100)) {
        const seq = udpSeq(f);
        if (seq !== undefined && seq >= N && f.subarray(0, 6).equals(Buffer.from(lb.peerMac.split(':').map((h) => parseInt(h, 16))))) back.add(seq);
      }
    }
    t.is(back.size, 200, 'B still forwards after A closed');
    t.is((await settle(b, alone.free)).free, alone.free);
    b.close();
    t.is(view.byteLength, 0, 'the last close detaches the shared buffer');
  } finally {
    teardown(ports, [peerA, peerB], [la, lb]);
  }
  t.deepEqual(leftoverNamespaces(), []);
  await sleep(50);
  // At most what was open before (the test runner may close some of its own meanwhile).
  t.true(openFds() <= fdsBefore, `no fd left open: ${openFds()} now, ${fdsBefore} before`);
});

test.serial('shareUmemWith: mismatched frame settings are refused with the setting named; a closed port is refused', async (t) => {
  const [la, lb] = [createLab(), createLab()];
  try {
    const a = await openPort({ iface: la.portIf, netns: la.portNs, frameSize: 2048, frameCount: 2048 });
    try {
      const e = await t.throwsAsync(openPort({ iface: lb.portIf, netns: lb.portNs, frameSize: 2048, frameCount: 4096, shareUmemWith: a }),
        { code: 'ERR_AFXDP_INVALID_ARGUMENT' } as never);
      t.regex(e!.message, /frameCount is 4096 here but 2048 there/);
      t.regex(e!.message, /same frame settings/);
      const b = await openPort({ iface: lb.portIf, netns: lb.portNs, frameSize: 2048, frameCount: 2048, shareUmemWith: a });
      t.deepEqual(b.info().umemSharedWith, [la.portIf]);
      t.is(b.queues[0].umem.buffer, a.queues[0].umem.buffer);
      b.close();
      t.true(a.queues[0].umem.byteLength > 0, 'the owner\'s view survives the joiner\'s close');
    } finally {
      a.close();
    }
    await t.throwsAsync(openPort({ iface: lb.portIf, netns: lb.portNs, frameSize: 2048, frameCount: 2048, shareUmemWith: a }),
      { code: 'ERR_AFXDP_CLOSED' } as never);
  } finally {
    la.destroy();
    lb.destroy();
  }
});

test.serial('afxdp fwd with two shared_umem=1 vdevs forwards exactly N without copying (io)', async (t) => {
  const [la, lb] = [createLab(), createLab()];
  const peerA = new PacketSocket(la.peerIf, { netns: la.peerNs });
  const peerB = new PacketSocket(lb.peerIf, { netns: lb.peerNs });
  const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${la.portIf},shared_umem=1`, '--vdev', `net_af_xdp1,iface=${lb.portIf},shared_umem=1`,
    '--netns', la.portNs, '--netns', lb.portNs, '--json', '--stats-period', '0.2', '--forward-mode', 'io']);
  try {
    const start = await run.waitFor((o) => o.type === 'start');
    t.is(start.forwarding, 'descriptor');
    t.deepEqual(start.ports[0].umemSharedWith, [lb.portIf]);
    const N = 1000;
    peerB.drain();
    t.is(sendAll(peerA, frames(la, la.peerMac, 0, N)), N);
    const got = new Set<number>();
    const deadline = Date.now() + 10_000;
    while (got.size < N && Date.now() < deadline) {
      for (const f of peerB.receive(N, 100)) {
        const seq = udpSeq(f);
        if (seq !== undefined) got.add(seq);
      }
    }
    t.is(got.size, N);
    t.is(peerB.receive(100, 200).filter((f) => udpSeq(f) !== undefined).length, 0, 'exactly N');
    const exit = await run.stop('SIGINT');
    t.is(exit.code, 0, run.stderr);
    const final = run.objects.find((o) => o.type === 'final');
    t.like(final.ports[0], { rxPackets: N });
    t.like(final.ports[1], { txPackets: N, txDropped: 0 });
  } finally {
    run.kill();
    teardown([], [peerA, peerB], [la, lb]);
  }
});

test.serial('streams: a batch received on A and written to B\'s writable leaves by descriptor when the two share a UMEM', async (t) => {
  const [la, lb] = [createLab(), createLab()];
  const [peerA, peerB] = [new PacketSocket(la.peerIf, { netns: la.peerNs }), new PacketSocket(lb.peerIf, { netns: lb.peerNs })];
  let ports: Port[] = [];
  try {
    ports = await openPorts([
      { iface: la.portIf, netns: la.portNs, sharedUmem: true },
      { iface: lb.portIf, netns: lb.portNs, sharedUmem: true },
    ]);
    const [a, b] = pair(ports);
    const initial = a.frames(0);
    // A copy would draw frames of B's own with alloc(): count the calls.
    const bq = b.queues[0];
    const alloc = bq.alloc.bind(bq);
    let allocs = 0;
    bq.alloc = (count: number, start?: number) => {
      allocs++;
      return alloc(count, start);
    };
    const N = 500;
    const ac = new AbortController();
    const received = new Set<number>();
    const peerBMac = Buffer.from(lb.peerMac.split(':').map((h) => parseInt(h, 16)));
    let forwarded = 0;
    const done = pipeline(a.readable({ signal: ac.signal }), async function* (batches: AsyncIterable<import('../../lib/index').Batch>) {
      for await (const batch of batches) {
        for (let i = 0; i < batch.length; i++) {
          received.add(batch.addrs[i]!);
          batch.packet(i).set(peerBMac, 0);
        }
        forwarded += batch.length;
        yield batch;
      }
    }, b.writable()).catch((err: Error) => err);
    t.is(sendAll(peerA, frames(la, la.peerMac, 0, N)), N);
    const got = new Set<number>();
    const deadline = Date.now() + 10_000;
    while (got.size < N && Date.now() < deadline) {
      await sleep(5); // the streams run in this event loop: receive without blocking it
      for (const f of peerB.receive(N, 0)) {
        const seq = udpSeq(f);
        if (seq !== undefined && seq < N) got.add(seq);
      }
    }
    t.is(got.size, N, 'all arrive at B\'s peer');
    t.is(forwarded, N);
    // By descriptor: B never drew frames of its own for copies, and what
    // its queue last posted are frames A received.
    t.is(allocs, 0, 'no frame allocated on B for a copy');
    t.true(received.has(bq.addrs[0]!), 'B transmitted one of the frames A received');
    ac.abort();
    t.is(((await done) as Error | undefined)?.name, 'AbortError');
    const after = await settle(b, initial.free);
    t.is(sum(after), after.total);
    t.is(after.free, initial.free, JSON.stringify(after));
  } finally {
    teardown(ports, [peerA, peerB], [la, lb]);
  }
});
