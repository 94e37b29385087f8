// A port on a real veth pair, privileged mode (afxdp attaches its own
// redirect program): exact packet counts both ways, macswap, accounting,
// hugepages, busy queue, detach on close, use after close.
import { execFileSync } from 'node:child_process';
import { privileged } from '../helpers/privileged';
import { createLab, Lab } from '../helpers/lab';
import { frameSeq, sleep, testFrame } from '../helpers/frames';
import { openPort, Port, Queue, AfxdpError } from '../../lib/index';
import { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();

function xdpProgramOn(lab: Lab): number | undefined {
  const [link] = JSON.parse(execFileSync('ip', ['-n', lab.portNs, '-j', '-d', 'link', 'show', 'dev', lab.portIf], { encoding: 'utf8' }));
  return link.xdp?.prog?.id ?? link.xdp?.attached?.[0]?.prog?.id;
}

/** Receive until `n` packets arrived or `timeoutMs` passed; releases them. */
async function receiveExactly(queue: Queue, n: number, timeoutMs: number, check?: (pkt: Uint8Array) => void): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let got = 0;
  while (got < n && Date.now() < deadline) {
    const count = queue.receive();
    for (let i = 0; i < count; i++) check?.(queue.packet(i));
    if (count > 0) queue.release(count);
    got += count;
    if (count === 0) await sleep(1);
  }
  return got;
}

function withLab(fn: (lab: Lab) => Promise<void>) {
  return async () => {
    const lab = createLab();
    try {
      await fn(lab);
    } finally {
      lab.destroy();
    }
  };
}

test.serial('peer sends N frames, the port receives exactly N with the right bytes', async (t) => {
  await withLab(async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      // One spelling of the interface name in every TS surface (issue 14).
      t.is(port.info().iface, lab.portIf);
      t.is(peer.iface, lab.peerIf);
      const N = 1000;
      const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, 64 + (i % 200)));
      let sent = 0;
      for (let i = 0; i < N; i += 100) sent += peer.send(frames.slice(i, i + 100));
      t.is(sent, N);
      const seen = new Set<number>();
      let wrongBytes = 0;
      const got = await receiveExactly(port.queues[0], N, 5000, (pkt) => {
        const seq = frameSeq(pkt);
        if (seq === undefined || !Buffer.from(pkt).equals(frames[seq] ?? Buffer.alloc(0))) wrongBytes++;
        else seen.add(seq);
      });
      t.is(got, N);
      t.is(wrongBytes, 0);
      t.is(seen.size, N);
      await sleep(50);
      t.is(port.queues[0].receive(), 0, 'nothing beyond the N frames');
      t.is(port.stats().rxPackets, N);
      t.is(port.stats().rxBytes, frames.reduce((s, f) => s + f.length, 0));
    } finally {
      peer.close();
      port.close();
    }
  })();
});

test.serial('the port transmits N frames, the peer sees exactly N', async (t) => {
  await withLab(async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const N = 1000;
      const q = port.queues[0];
      let seq = 0;
      while (seq < N) {
        const n = q.alloc(Math.min(q.burstSize, N - seq));
        for (let i = 0; i < n; i++) {
          const f = testFrame(lab.peerMac, lab.portMac, seq + i, 100);
          q.umem.set(f, q.addrs[i]);
          q.lengths[i] = f.length;
        }
        let posted = 0;
        const deadline = Date.now() + 2000;
        while (posted < n && Date.now() < deadline) {
          posted += q.transmit(n - posted, posted);
          if (posted < n) await sleep(1);
        }
        t.is(posted, n);
        seq += n;
      }
      const received = peer.receive(N, 3000);
      t.is(peer.receive(10, 200).length, 0, 'nothing beyond the N frames');
      const seqs = received.map(frameSeq).filter((s) => s !== undefined);
      t.is(seqs.length, N);
      t.is(new Set(seqs).size, N);
      t.deepEqual(received[0], testFrame(lab.peerMac, lab.portMac, 0, 100));
      t.is(port.stats().txPackets, N);
    } finally {
      peer.close();
      port.close();
    }
  })();
});

async function macswap(t: import('ava').ExecutionContext, port: Port, lab: Lab, total: number) {
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  const q = port.queues[0];
  const before = port.frames();
  const window = 256;
  let sent = 0;
  let echoed = 0;
  const deadline = Date.now() + 60_000;
  try {
    while (echoed < total && Date.now() < deadline) {
      if (sent - echoed < window && sent < total) {
        const n = Math.min(window - (sent - echoed), total - sent, 64);
        sent += peer.send(Array.from({ length: n }, (_, i) => testFrame(lab.portMac, lab.peerMac, sent + i)));
      }
      // Forward: swap MACs in place and send the frames back out.
      const n = q.receive();
      for (let i = 0; i < n; i++) {
        const a = q.addrs[i]!; // i < n, what receive() returned
        const u = q.umem;
        for (let b = 0; b < 6; b++) {
          const tmp = u[a + b]!;
          u[a + b] = u[a + 6 + b]!;
          u[a + 6 + b] = tmp;
        }
      }
      if (n > 0) q.transmit(n, 0, true);
      const back = peer.receive(64, n > 0 ? 0 : 1);
      for (const f of back) if (frameSeq(f) !== undefined && f.subarray(0, 6).equals(Buffer.from(lab.peerMac.split(':').map((h) => parseInt(h, 16))))) echoed++;
    }
    t.is(echoed, total, `echoed ${echoed} of ${total} (sent ${sent})`);
    // Let completions land, then every frame is back where it started.
    for (let i = 0; i < 100 && port.frames().free !== before.free; i++) {
      q.reap();
      await sleep(5);
    }
    const after = port.frames();
    t.is(after.app, 0);
    t.is(after.total, before.total);
    t.is(after.free, before.free, JSON.stringify(after));
  } finally {
    peer.close();
  }
}

test.serial('macswap loop of 100000 packets; frame accounting returns to its initial free count', async (t) => {
  await withLab(async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      await macswap(t, port, lab, 100_000);
      t.is(port.stats().rxPackets, 100_000);
    } finally {
      port.close();
    }
  })();
});

test.serial('hugepage UMEM and ordinary-page UMEM both work', async (t) => {
  const nrPath = '/proc/sys/vm/nr_hugepages';
  const fs = await import('node:fs');
  const original = fs.readFileSync(nrPath, 'utf8').trim();
  await withLab(async (lab) => {
    try {
      fs.writeFileSync(nrPath, String(Math.max(Number(original), 64)));
      const huge = await openPort({ iface: lab.portIf, netns: lab.portNs, hugepages: 'require' });
      t.true(huge.info().hugepages);
      await macswap(t, huge, lab, 2000);
      huge.close();
      const plain = await openPort({ iface: lab.portIf, netns: lab.portNs, hugepages: 'never' });
      t.false(plain.info().hugepages);
      await macswap(t, plain, lab, 2000);
      plain.close();
    } finally {
      fs.writeFileSync(nrPath, original);
    }
  })();
});

test.serial('a second port on the same queue fails with ERR_AFXDP_QUEUE_BUSY', async (t) => {
  await withLab(async (lab) => {
    const first = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const err = await t.throwsAsync(openPort({ iface: lab.portIf, netns: lab.portNs }), { instanceOf: AfxdpError });
      t.is(err?.code, 'ERR_AFXDP_QUEUE_BUSY');
      t.regex(err!.message, new RegExp(`${lab.portIf}.*queue 0`));
    } finally {
      first.close();
    }
  })();
});

test.serial('close detaches the program the port attached, and only that', async (t) => {
  await withLab(async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const id = port.info().xdpProgramId;
    t.true(id > 0);
    t.is(xdpProgramOn(lab), id);
    port.close();
    t.is(xdpProgramOn(lab), undefined);
    port.close(); // idempotent
  })();
});

test.serial('use after close throws ERR_AFXDP_CLOSED, never crashes; views become empty', async (t) => {
  await withLab(async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    const q = port.queues[0];
    const view = q.umem;
    t.true(view.length > 0);
    let closed = false;
    port.on('close', () => { closed = true; });
    port.close();
    for (const op of [() => q.receive(), () => q.transmit(1), () => q.alloc(1), () => q.release(1), () => port.stats(), () => port.info(), () => port.frames()]) {
      const err = t.throws(op, { instanceOf: AfxdpError });
      t.is(err?.code, 'ERR_AFXDP_CLOSED');
    }
    t.is(view.length, 0, 'the UMEM view was detached');
    await sleep(0);
    t.true(closed);
  })();
});

test.serial('errors users hit carry a code and the fix', async (t) => {
  await withLab(async (lab) => {
    const missing = await t.throwsAsync(openPort({ iface: 'afxnope0', netns: lab.portNs }), { instanceOf: AfxdpError });
    t.is(missing?.code, 'ERR_AFXDP_NO_SUCH_INTERFACE');
    const range = await t.throwsAsync(openPort({ iface: lab.portIf, netns: lab.portNs, startQueue: 3 }), { instanceOf: AfxdpError });
    t.is(range?.code, 'ERR_AFXDP_QUEUE_OUT_OF_RANGE');
    t.regex(range!.message, /1 queue/);
    const frame = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      const q = frame.queues[0];
      q.addrs[0] = 12345;
      const err = t.throws(() => q.release(1), { instanceOf: AfxdpError });
      t.is(err?.code, 'ERR_AFXDP_FRAME_OWNERSHIP');
    } finally {
      frame.close();
    }
    t.is(xdpProgramOn(lab), undefined, 'failed opens leave nothing attached');
  })();
});
