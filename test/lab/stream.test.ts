// Ports as Node streams on a veth lab: a macswap pipeline forwards exactly,
// backpressure stops rx consumption (the kernel's counters rise, every frame
// is accounted for), abort/destroy/close mid-traffic leave no frame behind,
// the ownership rule is enforced, and tx-only and cross-port writes work.
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { createLab, Lab, withLab } from '../helpers/lab';
import { frameSeq, macBytes, sleep, testFrame } from '../helpers/frames';
import { openPort, macswap, batchTransform, Port, AfxdpError, Batch, FrameAccounting } from '../../lib/index';
import { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();

/** Reap until the frames are back where they started (bounded). */
async function settled(port: Port, initial: FrameAccounting): Promise<FrameAccounting> {
  let now = port.frames();
  for (let i = 0; i < 200 && (now.free !== initial.free || now.app !== 0); i++) {
    for (const q of port.queues) q.reap();
    await sleep(5);
    now = port.frames();
  }
  return now;
}

/**
 * The peer sends `total` frames keeping at most `window` unanswered, and
 * counts the macswapped echoes (dst = peer MAC). Bounded by `timeoutMs`.
 */
async function echo(lab: Lab, peer: PacketSocket, total: number, timeoutMs = 30_000, window = 256): Promise<number> {
  const peerMac = macBytes(lab.peerMac);
  let sent = 0;
  let echoed = 0;
  const deadline = Date.now() + timeoutMs;
  while (echoed < total && Date.now() < deadline) {
    if (sent - echoed < window && sent < total) {
      const n = Math.min(64, total - sent, window - (sent - echoed));
      sent += peer.send(Array.from({ length: n }, (_, i) => testFrame(lab.portMac, lab.peerMac, sent + i)));
    }
    await sleep(0);
    for (const f of peer.receive(256, 0)) {
      if (frameSeq(f) !== undefined && f.subarray(0, 6).equals(peerMac)) echoed++;
    }
  }
  return echoed;
}

function checkSum(t: ExecutionContext, f: FrameAccounting): void {
  t.is(f.free + f.fillRing + f.rxRing + f.app + f.txRing + f.completionRing + f.inKernel, f.total, JSON.stringify(f));
}

test.serial('pipeline(readable, macswap, writable) forwards every packet; abort mid-traffic leaks no frame', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const ac = new AbortController();
      const rx = port.readable();
      const tx = port.writable();
      const done = pipeline(rx, macswap(), tx, { signal: ac.signal });
      t.is(await echo(lab, peer, 20_000), 20_000);
      t.is(port.stats().rxPackets, 20_000);
      t.is(port.stats().txPackets, 20_000);
      // Abort while the peer keeps sending.
      peer.send(Array.from({ length: 200 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      ac.abort();
      peer.send(Array.from({ length: 200 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      const err = await t.throwsAsync(done);
      t.is(err?.name, 'AbortError');
      t.true(rx.destroyed && tx.destroyed);
      // Whatever was in flight is on a ring or back in the pool: nothing in the app.
      const after = await settled(port, initial);
      checkSum(t, after);
      t.is(after.app, 0, JSON.stringify(after));
      t.is(port.batchPool().outstanding, 0);
    } finally {
      port.close();
    }
  });
});

test.serial('port.duplex() as an echo: pipeline(duplex, macswap(), duplex) forwards every packet', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const ac = new AbortController();
      const d = port.duplex();
      const done = pipeline(d, macswap(), d, { signal: ac.signal }).catch((err: Error) => err);
      t.is(await echo(lab, peer, 5000), 5000);
      ac.abort();
      t.is(((await done) as Error).name, 'AbortError');
      const after = await settled(port, initial);
      t.is(after.app, 0);
      t.is(after.free, initial.free);
    } finally {
      port.close();
    }
  });
});

test.serial('for await over a port, release() each batch; break closes the stream and frames come back', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const N = 1000;
      const seen = new Set<number>();
      const sender = (async () => {
        for (let i = 0; i < N; i += 50) {
          peer.send(Array.from({ length: 50 }, (_, k) => testFrame(lab.portMac, lab.peerMac, i + k)));
          await sleep(1);
        }
      })();
      let batches = 0;
      const deadline = setTimeout(() => port.close(), 20_000);
      for await (const b of port) {
        batches++;
        for (let i = 0; i < b.length; i++) {
          const seq = frameSeq(b.packet(i));
          if (seq !== undefined) seen.add(seq);
        }
        t.true(b.length <= port.config.burstSize);
        b.release();
        if (seen.size === N) break;
      }
      clearTimeout(deadline);
      await sender;
      t.is(seen.size, N);
      t.true(batches < N, `${batches} batches for ${N} packets`);
      const after = await settled(port, initial);
      t.is(after.app, 0);
      t.is(after.free, initial.free);
    } finally {
      port.close();
    }
  });
});

test.serial('backpressure: a consumer that stops reading stops rx consumption; the kernel counts rx_ring_full; nothing leaks', async (t) => {
  await withLab({}, async (lab, peer) => {
    // rx ring (256) smaller than the frames lent to the fill ring (1024):
    // when nobody consumes, the rx ring fills up and the kernel drops.
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, rxSize: 256, fillSize: 2048, frameCount: 4096 });
    try {
      const initial = port.frames();
      const rx = port.readable({ highWaterMark: 2 });
      // Start it, take one batch, then stop reading.
      peer.send(Array.from({ length: 10 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      const [first] = (await once(rx, 'readable')) as unknown[];
      void first;
      const held = rx.read() as Batch;
      t.true(held instanceof Batch);
      const burst = port.config.burstSize;
      const N = 3000;
      for (let i = 0; i < N; i += 100) {
        peer.send(Array.from({ length: 100 }, (_, k) => testFrame(lab.portMac, lab.peerMac, 100 + i + k)));
        await sleep(1);
      }
      await sleep(100);
      const stats = port.stats();
      const frames = port.frames();
      checkSum(t, frames);
      // The stream holds at most highWaterMark batches (plus the one we read); the rest stayed on the ring.
      t.true(rx.readableLength <= 2, `buffered ${rx.readableLength}`);
      t.true(frames.app <= (rx.readableLength + 1) * burst, JSON.stringify(frames));
      t.is(frames.rxRing, 256, 'the rx ring is full');
      t.true(stats.xdp.rxRingFull > 0, JSON.stringify(stats.xdp));
      // Every packet is accounted for: received by the stream, waiting on the ring, or dropped by the kernel.
      t.is(stats.rxPackets + frames.rxRing + stats.xdp.rxRingFull + stats.xdp.rxDropped, N + 10,
        JSON.stringify({ stats, frames }));
      // Resume: everything waiting is delivered, then the stream waits again.
      held.release();
      let got = 0;
      rx.on('data', (b: Batch) => {
        got += b.length;
        b.release();
      });
      const deadline = Date.now() + 5000;
      while (port.frames().rxRing > 0 && Date.now() < deadline) await sleep(5);
      t.is(port.frames().rxRing, 0);
      t.true(got >= 256);
      rx.destroy();
      await once(rx, 'close');
      const after = await settled(port, initial);
      t.is(after.app, 0);
      t.is(after.free, initial.free);
    } finally {
      port.close();
    }
  });
});

test.serial('destroy() mid-traffic releases the batches still buffered; the consumer-held batch stays valid until released', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const rx = port.readable({ highWaterMark: 8 });
      peer.send(Array.from({ length: 1000 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      await once(rx, 'readable');
      const mine = rx.read() as Batch;
      await sleep(20);
      t.true(rx.readableLength > 0, 'batches are buffered');
      t.true(port.frames().app > mine.length);
      rx.destroy();
      await once(rx, 'close');
      t.true(mine.valid, 'a batch already read is still the reader\'s');
      t.is(port.frames().app, mine.length);
      mine.release();
      const after = await settled(port, initial);
      t.is(after.app, 0);
      t.is(after.free, initial.free);
      t.is(port.batchPool().outstanding, 0);
    } finally {
      port.close();
    }
  });
});

test.serial('ownership: a released or written batch throws ERR_AFXDP_FRAME_OWNERSHIP, never corrupts', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const rx = port.readable({ batches: 4, recycle: false });
      const tx = port.writable();
      peer.send(Array.from({ length: 200 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      await once(rx, 'readable');
      const a = rx.read() as Batch;
      const b = rx.read() as Batch;
      t.truthy(a && b);
      a.release();
      for (const use of [() => a.length, () => a.packet(0), () => a.macswap(), () => a.release(), () => a.addrs]) {
        const err = t.throws(use, { instanceOf: AfxdpError });
        t.is(err?.code, 'ERR_AFXDP_FRAME_OWNERSHIP');
        t.regex(err!.message, /released/);
      }
      t.is(t.throws(() => tx.write(a), { instanceOf: AfxdpError })?.code, 'ERR_AFXDP_FRAME_OWNERSHIP');
      b.macswap();
      tx.write(b);
      const written = t.throws(() => b.packet(0), { instanceOf: AfxdpError });
      t.is(written?.code, 'ERR_AFXDP_FRAME_OWNERSHIP');
      t.regex(written!.message, /written/);
      t.is(b.valid, false);
      t.is(t.throws(() => tx.write('nope'), { instanceOf: AfxdpError })?.code, 'ERR_AFXDP_INVALID_ARGUMENT');
      rx.destroy();
      tx.end();
      await once(tx, 'finish');
      const after = await settled(port, initial);
      t.is(after.app, 0);
      t.is(after.free, initial.free);
    } finally {
      port.close();
    }
  });
});

test.serial('port.close() mid-stream destroys its streams; batches die with the port', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const rx = port.readable();
    const tx = port.writable();
    peer.send(Array.from({ length: 300 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
    await once(rx, 'readable');
    const b = rx.read() as Batch;
    const closed = Promise.all([once(rx, 'close'), once(tx, 'close'), once(port, 'close')]);
    port.close();
    await closed;
    t.true(rx.destroyed && tx.destroyed);
    t.is(t.throws(() => b.length, { instanceOf: AfxdpError })?.code, 'ERR_AFXDP_FRAME_OWNERSHIP');
    t.is(t.throws(() => port.readable(), { instanceOf: AfxdpError })?.code, 'ERR_AFXDP_CLOSED');
  });
});

test.serial('tx-only: allocBatch() + writable() reaches the peer exactly; end() waits for the ring to drain', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const initial = port.frames();
      const tx = port.writable();
      const q = port.queues[0];
      const N = 5000;
      let seq = 0;
      const deadline = Date.now() + 20_000;
      while (seq < N && Date.now() < deadline) {
        const b = port.allocBatch(0, Math.min(port.config.burstSize, N - seq));
        if (b === null) {
          await q.writable({ frames: 1, timeoutMs: 100 });
          continue;
        }
        for (let i = 0; i < b.length; i++) {
          const f = testFrame(lab.peerMac, lab.portMac, seq++, 64);
          b.umem.set(f, b.addrs[i]);
          b.lengths[i] = f.length;
        }
        if (!tx.write(b)) await once(tx, 'drain');
      }
      tx.end();
      await once(tx, 'finish');
      const got = peer.receive(N, 5000).map(frameSeq).filter((s) => s !== undefined);
      t.is(peer.receive(10, 100).length, 0, 'nothing beyond the N frames');
      t.is(got.length, N);
      t.is(new Set(got).size, N);
      t.is(port.stats().txPackets, N);
      const after = await settled(port, initial);
      t.is(after.free, initial.free);
    } finally {
      port.close();
    }
  });
});

test.serial('a batch written to another port is copied there and its frames return to its own port', async (t) => {
  const labA = createLab();
  const labB = createLab();
  const peerA = new PacketSocket(labA.peerIf, { netns: labA.peerNs });
  const peerB = new PacketSocket(labB.peerIf, { netns: labB.peerNs });
  const a = await openPort({ iface: labA.portIf, netns: labA.portNs });
  const b = await openPort({ iface: labB.portIf, netns: labB.portNs });
  try {
    const initialA = a.frames();
    const initialB = b.frames();
    // A's traffic, rewritten for B's link, goes out of B.
    const rewrite = batchTransform((batch) => {
      const dst = macBytes(labB.peerMac);
      for (let i = 0; i < batch.length; i++) batch.umem.set(dst, batch.addrs[i]);
    });
    const ac = new AbortController();
    const done = pipeline(a.readable(), rewrite, b.writable(), { signal: ac.signal }).catch((e) => e);
    const N = 2000;
    for (let i = 0; i < N; i += 100) {
      peerA.send(Array.from({ length: 100 }, (_, k) => testFrame(labA.portMac, labA.peerMac, i + k)));
      await sleep(2);
    }
    const got = peerB.receive(N, 5000).map(frameSeq).filter((s) => s !== undefined);
    t.is(peerB.receive(10, 100).length, 0, 'nothing beyond the N frames');
    t.is(got.length, N);
    t.is(new Set(got).size, N);
    ac.abort();
    t.is((await done)?.name, 'AbortError');
    t.is((await settled(a, initialA)).free, initialA.free);
    t.is((await settled(b, initialB)).free, initialB.free);
  } finally {
    a.close();
    b.close();
    peerA.close();
    peerB.close();
    labA.destroy();
    labB.destroy();
  }
});

test.serial('readable options: spinChecks, minBatch and gatherChecks are validated; minBatch 1 and gatherChecks 0 still deliver every packet', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      for (const bad of [{ spinChecks: -1 }, { spinChecks: 1.5 }, { minBatch: 0 }, { minBatch: port.queues[0].burstSize + 1 }, { gatherChecks: -1 }]) {
        const e = t.throws(() => port.readable(bad), { instanceOf: AfxdpError });
        t.is(e!.code, 'ERR_AFXDP_INVALID_ARGUMENT', JSON.stringify(bad));
        t.regex(e!.message, new RegExp(Object.keys(bad)[0]!));
      }
      const rx = port.readable({ minBatch: 1, gatherChecks: 0, spinChecks: 0 });
      const N = 300;
      peer.send(Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i)));
      let got = 0;
      const deadline = Date.now() + 10_000;
      for await (const b of rx as AsyncIterable<Batch>) {
        got += b.length;
        b.release();
        if (got >= N || Date.now() > deadline) break;
      }
      t.is(got, N);
    } finally {
      port.close();
    }
  });
});
