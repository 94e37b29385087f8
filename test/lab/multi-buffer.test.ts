// Jumbo frames through multi-buffer AF_XDP (XDP_USE_SG, issue 16) on a veth
// with MTU 9000 at both ends: 8,000-byte frames arrive as chains of frames
// (XDP_PKT_CONTD on all but the last), are forwarded whole and come back
// byte-exact; chains straddling the end of a burst; the frame ledger exact
// after thousands of chains; and with multi-buffer off the kernel drops them
// (rx_dropped) and info() says how to take them.
import { privileged } from '../helpers/privileged';
import { createLab, Lab, withLab } from '../helpers/lab';
import { frameSeq, sleep, testFrame } from '../helpers/frames';
import { pipeline } from 'node:stream/promises';
import { Forwarder, macswap, openPort, Port, XDP_PKT_CONTD } from '../../lib/index';
import type { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();
const JUMBO = 8000;

function withJumboLab(fn: (lab: Lab, peer: PacketSocket) => Promise<void>): Promise<void> {
  return withLab({ mtu: 9000 }, fn);
}

/** The frame with its Ethernet addresses swapped. */
function swapped(f: Buffer): Buffer {
  const w = Buffer.from(f);
  f.copy(w, 0, 6, 12);
  f.copy(w, 6, 0, 6);
  return w;
}

/** Every frame of the UMEM is back in the pool or lent for receive: none with the application, none in flight. */
async function ledgerSettled(port: Port): Promise<ReturnType<Port['frames']>> {
  const deadline = Date.now() + 2000;
  let f = port.frames();
  while (Date.now() < deadline) {
    for (const q of port.queues) q.reap();
    f = port.frames();
    if (f.txRing + f.completionRing === 0) break;
    await sleep(2);
  }
  return f;
}

/**
 * Send `frames` in groups of `group`, forwarding with `step` in between,
 * and collect what comes back (a peer's receive buffer holds a few MB: the
 * test never lets more than a group be in flight).
 */
async function pingPong(peer: PacketSocket, frames: Buffer[], group: number, step: () => number, timeoutMs = 5000): Promise<Buffer[]> {
  const back: Buffer[] = [];
  for (let i = 0; i < frames.length; i += group) {
    const chunk = frames.slice(i, i + group);
    let sent = 0;
    while (sent < chunk.length) sent += peer.send(chunk.slice(sent));
    const want = Math.min(frames.length, i + group);
    const deadline = Date.now() + timeoutMs;
    while (back.length < want && Date.now() < deadline) {
      for (let k = 0; k < 1000 && step() > 0; k++);
      back.push(...peer.receive(want - back.length, 1));
    }
    if (back.length < want) break;
  }
  for (let k = 0; k < 20; k++) {
    step();
    back.push(...peer.receive(100, 5));
  }
  return back;
}

test.serial('multi-buffer: 8,000-byte frames arrive as 3-frame chains, info() reports it', async (t) => {
  await withJumboLab(async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const info = port.info();
      t.is(info.mtu, 9000);
      t.true(info.multiBuffer, 'auto: on, since a 9000-byte MTU does not fit a 4096-byte frame');
      t.true(info.xdpFrags, 'the frags-aware program is attached');
      t.is(info.mtuWarning, undefined);
      const frames = Array.from({ length: 10 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, JUMBO));
      t.is(peer.send(frames), 10);
      const q = port.queues[0];
      const got: number[] = [];
      const options: number[] = [];
      const deadline = Date.now() + 3000;
      while (got.length < 30 && Date.now() < deadline) {
        const n = q.receive();
        for (let i = 0; i < n; i++) {
          got.push(q.lengths[i]!);
          options.push(q.options[i]!);
        }
        if (n > 0) q.release(n);
        else await sleep(1);
      }
      const room = info.frameSize - info.dataOffset;
      t.deepEqual(got, Array.from({ length: 10 }, () => [room, room, JUMBO - 2 * room]).flat());
      t.deepEqual(options, Array.from({ length: 10 }, () => [XDP_PKT_CONTD, XDP_PKT_CONTD, 0]).flat());
      const st = port.stats();
      t.like(st, { rxPackets: 10, rxDescs: 30, rxBytes: 10 * JUMBO });
      t.is(st.xdp.rxDropped, 0);
    } finally {
      await port.close();
    }
  });
});

test.serial('multi-buffer: macswap of 10,000 8,000-byte frames through the Forwarder, byte-exact, ledger exact', async (t) => {
  await withJumboLab(async (lab, peer) => {
    // Burst 4 with 3-fragment chains: every other chain straddles the end of a burst on the ring.
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, burstSize: 4 });
    try {
      const before = port.frames();
      const fwd = new Forwarder([port], 'macswap');
      const N = 10_000;
      const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, JUMBO));
      peer.drain();
      const back = await pingPong(peer, frames, 100, fwd.step);
      t.is(back.length, N, 'every frame came back');
      const seqs = new Set(back.map(frameSeq));
      t.is(seqs.size, N, 'each once');
      const wrong = back.filter((f) => {
        const sent = frames[frameSeq(f)!];
        return sent === undefined || !swapped(sent).equals(f);
      });
      t.is(wrong.length, 0, 'byte-exact, MACs swapped');
      const st = port.stats();
      t.like(st, { rxPackets: N, txPackets: N, rxDescs: 3 * N, txDescs: 3 * N, rxBytes: N * JUMBO, txBytes: N * JUMBO });
      t.is(st.xdp.rxDropped, 0, 'no frame dropped by the kernel');
      t.is(st.xdp.txInvalidDescs, 0);
      t.is(fwd.ports[0]!.txDropped[0], 0);
      const after = await ledgerSettled(port);
      t.is(after.app, 0, 'the application holds no frame');
      t.is(after.txRing + after.completionRing, 0);
      t.is(after.free + after.fillRing + after.rxRing + after.inKernel, after.total);
      t.is(after.total, before.total);
    } finally {
      await port.close();
    }
  });
});

test.serial('multi-buffer: a chain longer than the burst is delivered across bursts, XDP_PKT_CONTD on the last slot', async (t) => {
  await withJumboLab(async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, burstSize: 2 });
    try {
      t.is(peer.send([testFrame(lab.portMac, lab.peerMac, 7, JUMBO)]), 1);
      const q = port.queues[0];
      const seen: [number, number][] = [];
      const deadline = Date.now() + 3000;
      while (seen.length < 3 && Date.now() < deadline) {
        const n = q.receive();
        for (let i = 0; i < n; i++) seen.push([q.lengths[i]!, q.options[i]!]);
        if (n > 0) {
          // A batch ending inside a chain cannot be transmitted: the kernel would hold half a packet.
          if ((q.options[n - 1]! & XDP_PKT_CONTD) !== 0) {
            const err = t.throws(() => q.transmit(n));
            t.regex(err!.message, /ends inside a chain/);
          }
          q.release(n);
        } else {
          await sleep(1);
        }
      }
      t.deepEqual(seen.map(([, o]) => o), [XDP_PKT_CONTD, XDP_PKT_CONTD, 0]);
      t.is(seen.reduce((s, [l]) => s + l, 0), JUMBO);
      t.is(port.frames().app, 0);
      // Forwarding drops such a chain whole (counted), and the next ones still go through.
      const fwd = new Forwarder([port], 'io');
      const frames = [testFrame(lab.portMac, lab.peerMac, 1, JUMBO), testFrame(lab.portMac, lab.peerMac, 2, 100)];
      peer.drain();
      const back = await pingPong(peer, frames, 2, fwd.step, 500);
      t.deepEqual(back.map(frameSeq), [2], 'the small frame passes; the 3-fragment chain exceeds burst 2');
      t.is(fwd.ports[0]!.txDropped[0], 1, 'the chain counted once as dropped');
      t.is((await ledgerSettled(port)).app, 0);
    } finally {
      await port.close();
    }
  });
});

test.serial('multi-buffer off: jumbo frames are dropped by the kernel (rx_dropped) and info() says how to take them', async (t) => {
  await withJumboLab(async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, multiBuffer: 'off' });
    try {
      const info = port.info();
      t.false(info.multiBuffer);
      t.regex(info.mtuWarning ?? '', /MTU 9000 .* multiBuffer is off: the kernel drops larger packets \(stats xdp.rxDropped\); open the port with multiBuffer 'on' or 'auto'/);
      t.is(peer.send(Array.from({ length: 10 }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, JUMBO))), 10);
      const deadline = Date.now() + 3000;
      let received = 0;
      while (port.stats().xdp.rxDropped < 10 && Date.now() < deadline) {
        received += port.queues[0].receive();
        await sleep(5);
      }
      t.is(received, 0);
      t.is(port.stats().xdp.rxDropped, 10);
      // A chain cannot be sent either: the error names the option.
      const q = port.queues[0];
      t.is(q.alloc(2), 2);
      q.lengths[0] = 100;
      q.lengths[1] = 100;
      q.options[0] = XDP_PKT_CONTD;
      const err = t.throws(() => q.transmit(2));
      t.regex(err!.message, /needs a multi-buffer port; open it with multiBuffer: 'on'/);
      q.release(2);
    } finally {
      await port.close();
    }
  });
});

test.serial('multi-buffer: a 1500 MTU stays single-buffer under auto; on forces it', async (t) => {
  const lab = createLab();
  try {
    const auto = await openPort({ iface: lab.portIf, netns: lab.portNs });
    t.false(auto.info().multiBuffer);
    t.is(auto.info().mtuWarning, undefined);
    await auto.close();
    const on = await openPort({ iface: lab.portIf, netns: lab.portNs, multiBuffer: 'on', xdpMode: 'generic' });
    t.true(on.info().multiBuffer);
    t.true(on.info().xdpFrags, 'frags-aware program also in generic mode');
    t.is(on.info().xdpMode, 'generic');
    await on.close();
  } finally {
    lab.destroy();
  }
});

test.serial('multi-buffer: pipeline(readable, macswap, writable) forwards 8,000-byte chains whole and byte-exact', async (t) => {
  await withJumboLab(async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const ac = new AbortController();
    const done = pipeline(port.readable(), macswap(), port.writable(), { signal: ac.signal }).catch((e: Error) => e);
    try {
      const N = 2000;
      const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, JUMBO));
      peer.drain();
      const back: Buffer[] = [];
      for (let i = 0; i < N; i += 100) {
        let sent = 0;
        const chunk = frames.slice(i, i + 100);
        while (sent < chunk.length) sent += peer.send(chunk.slice(sent));
        const deadline = Date.now() + 5000;
        while (back.length < i + chunk.length && Date.now() < deadline) {
          back.push(...peer.receive(i + chunk.length - back.length, 1));
          await sleep(0);
        }
      }
      t.is(back.length, N);
      t.is(back.filter((f) => { const s = frames[frameSeq(f)!]; return s === undefined || !swapped(s).equals(f); }).length, 0);
      t.like(port.stats(), { rxPackets: N, txPackets: N, rxDescs: 3 * N, txDescs: 3 * N });
    } finally {
      ac.abort();
      t.is((await done as Error | undefined)?.name, 'AbortError');
      t.is((await ledgerSettled(port)).app, 0);
      await port.close();
    }
  });
});

test.serial('multi-buffer: two ports with their own UMEMs copy chains re-cut to the other frame size, byte-exact, both ledgers exact', async (t) => {
  await withJumboLab(async (a, peerA) => {
    await withJumboLab(async (b, peerB) => {
      const pa = await openPort({ iface: a.portIf, netns: a.portNs });
      const pb = await openPort({ iface: b.portIf, netns: b.portNs, frameSize: 2048 });
      try {
        const fwd = new Forwarder([pa, pb], 'io');
        t.is(fwd.path, 'copy');
        const N = 1000;
        // 3000, 4500 and 6000 bytes: 1, 2 and 2 fragments in A's 4 KiB frames, re-cut to 2, 3 and 4 in B's 2 KiB ones.
        const frames = Array.from({ length: N }, (_, i) => testFrame(b.peerMac, a.peerMac, i, 3000 + (i % 3) * 1500));
        peerB.drain();
        const back: Buffer[] = [];
        for (let i = 0; i < N; i += 50) {
          const chunk = frames.slice(i, i + 50);
          let sent = 0;
          while (sent < chunk.length) sent += peerA.send(chunk.slice(sent));
          const deadline = Date.now() + 5000;
          while (back.length < i + chunk.length && Date.now() < deadline) {
            for (let k = 0; k < 1000 && fwd.step() > 0; k++);
            back.push(...peerB.receive(i + chunk.length - back.length, 1));
          }
        }
        t.is(back.filter((f) => { const s = frames[frameSeq(f)!]; return s === undefined || !s.equals(f); }).length, 0, 'byte-exact');
        t.is(fwd.ports[1]!.txDropped[0], 0, 're-cut to B\'s 2 KiB frames: nothing dropped');
        t.is(back.length, N);
        t.like(pb.stats(), { txPackets: N, txDescs: frames.reduce((sum, f) => sum + Math.ceil(f.length / 1792), 0) });
        for (const p of [pa, pb]) t.is((await ledgerSettled(p)).app, 0);
      } finally {
        await pa.close();
        await pb.close();
      }
    });
  });
});
