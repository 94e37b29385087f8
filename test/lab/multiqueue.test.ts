// Multi-queue ports, shared UMEM and busy polling on veth labs.
// A 2-queue veth delivers what the peer transmits on its tx queue q to the
// port's rx queue q (veth_xmit keeps the queue mapping); UDP test frames
// with varying source ports spread the peer's flows over both queues. The
// kernel's own per-queue counters (ethtool -S: rx_queue_<q>_xdp_redirect)
// must equal each socket's receive count.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { createLab, Lab, withLab } from '../helpers/lab';
import { sleep } from '../helpers/frames';
import { pair } from '../helpers/tuple';
import { udpFrame, udpSeq } from '../helpers/udp-frames';
import { openPort, Port, Batch, FrameAccounting, batchTransform } from '../../lib/index';
import { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();
const ROOT = path.join(__dirname, '../..');

function sum(f: FrameAccounting): number {
  return f.free + f.fillRing + f.rxRing + f.app + f.txRing + f.completionRing + f.inKernel;
}

/** The kernel's XDP_REDIRECT count per rx queue of the port's veth. */
function kernelRedirects(lab: Lab, queues: number): number[] {
  const out = execFileSync('ip', ['netns', 'exec', lab.portNs, 'ethtool', '-S', lab.portIf], { encoding: 'utf8' });
  return Array.from({ length: queues }, (_, q) => Number(new RegExp(`rx_queue_${q}_xdp_redirect: (\\d+)`).exec(out)![1]));
}

function sendUdp(lab: Lab, peer: PacketSocket, n: number, base = 0): number {
  let sent = 0;
  for (let i = 0; i < n; i += 100) {
    const k = Math.min(100, n - i);
    sent += peer.send(Array.from({ length: k }, (_, j) => udpFrame(lab.portMac, lab.peerMac, base + i + j, 1000 + base + i + j)));
  }
  return sent;
}

/** Receive on every queue until `n` packets or the deadline; counts per queue and checks seqs. */
async function receiveAll(t: ExecutionContext, port: Port, n: number): Promise<number[]> {
  const perQueue = port.queues.map(() => 0);
  const seen = new Set<number>();
  const deadline = Date.now() + 5000;
  let got = 0;
  while (got < n && Date.now() < deadline) {
    let any = 0;
    for (const q of port.queues) {
      const k = q.receive();
      for (let i = 0; i < k; i++) seen.add(udpSeq(q.packet(i))!);
      if (k > 0) q.release(k);
      perQueue[q.index]! += k;
      any += k;
    }
    got += any;
    if (any === 0) await port.queues[0].readable({ timeoutMs: 5 });
  }
  t.is(seen.size, n, 'every packet once');
  return perQueue;
}

// The veth picks a packet's queue by a hash that changes per boot: one queue
// may get most of a 2000-packet burst, so each lends the kernel more frames
// than that (4096 of 8192) and its rx ring holds it all.
const ROOM_FOR_ALL = { frameCount: 8192, frameSize: 2048, fillSize: 4096, rxSize: 4096 } as const;

test.serial('queue_count=2: each socket receives exactly what arrives on its queue (kernel per-queue counters agree)', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, startQueue: 0, queueCount: 2, ...ROOM_FOR_ALL });
    try {
      t.deepEqual(port.info().queues, [0, 1]);
      t.is(port.info().interfaceQueues, 2);
      const N = 2000;
      t.is(sendUdp(lab, peer, N), N);
      const perQueue = await receiveAll(t, port, N);
      const [on0, on1] = pair(perQueue);
      t.is(on0 + on1, N);
      t.true(on0 > 0 && on1 > 0, `both queues carry traffic: ${perQueue}`);
      t.deepEqual(kernelRedirects(lab, 2), perQueue, 'rx queue q of the veth went to socket q');
      const stats = port.stats();
      t.deepEqual(stats.queues.map((q) => q.rxPackets), perQueue);
      t.deepEqual(stats.queues.map((q) => q.queueId), [0, 1]);
      t.is(stats.rxPackets, N);
      // Separate UMEMs by default: each adds up on its own.
      const [q0, q1] = pair(port.queues);
      t.is(q0.umemIndex, 0);
      t.is(q1.umemIndex, 1);
      for (const u of [0, 1]) t.is(sum(port.frames(u)), port.frames(u).total);
    } finally {
      port.close();
    }
  });
});

test.serial('start_queue=1, queue_count=1 on a 2-queue veth receives only queue 1\'s share', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, startQueue: 1 });
    try {
      t.deepEqual(port.info().queues, [1]);
      sendUdp(lab, peer, 1000);
      await sleep(50);
      const [, onQueue1] = pair(kernelRedirects(lab, 2));
      let got = 0;
      const deadline = Date.now() + 3000;
      while (got < onQueue1 && Date.now() < deadline) {
        const k = port.queues[0].receive();
        port.queues[0].release(k);
        got += k;
        if (k === 0) await port.queues[0].readable({ timeoutMs: 10 });
      }
      t.true(onQueue1 > 0 && onQueue1 < 1000, `${onQueue1}`);
      t.is(got, onQueue1);
      t.is(port.stats().queues[0]?.queueId, 1);
    } finally {
      port.close();
    }
  });
});

test.serial('a stream over both queues delivers batches from each; a writable sends on both', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, queueCount: 2, ...ROOM_FOR_ALL });
    try {
      const rx = port.readable();
      const N = 2000;
      const fromQueue = [0, 0];
      const seen = new Set<number>();
      const done = new Promise<void>((resolve) => {
        rx.on('data', (b: Batch) => {
          fromQueue[b.queue.index]! += b.length;
          for (let i = 0; i < b.length; i++) seen.add(udpSeq(b.packet(i))!);
          b.release();
          if (seen.size === N) resolve();
        });
      });
      sendUdp(lab, peer, N);
      await Promise.race([done, sleep(5000)]);
      t.is(seen.size, N);
      t.deepEqual(fromQueue, kernelRedirects(lab, 2));
      rx.destroy();
      await once(rx, 'close');

      // Transmit: a batch per queue, each on its own socket.
      peer.drain();
      const tx = port.writable();
      for (const q of [0, 1]) {
        const b = port.allocBatch(q, 50)!;
        for (let i = 0; i < b.length; i++) {
          const f = udpFrame(lab.peerMac, lab.portMac, q * 50 + i, 5000 + i);
          b.umem.set(f, b.addrs[i]);
          b.lengths[i] = f.length;
        }
        tx.write(b);
      }
      tx.end();
      await once(tx, 'finish');
      const got = new Set(peer.receive(100, 3000).map(udpSeq).filter((s) => s !== undefined));
      t.is(got.size, 100);
      t.deepEqual(port.stats().queues.map((q) => q.txPackets), [50, 50]);
    } finally {
      port.close();
    }
  });
});

test.serial('shared_umem: one UMEM for both queues with exact frame accounting; a batch from queue 1 goes out of queue 0 zero-copy', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const frameCount = 4096;
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, queueCount: 2, sharedUmem: true, frameCount, frameSize: 2048 });
    try {
      const [q0, q1] = pair(port.queues);
      t.is(q0.umemIndex, 0);
      t.is(q1.umemIndex, 0);
      t.is(q0.umem.buffer, q1.umem.buffer, 'one ArrayBuffer over the one UMEM');
      t.throws(() => port.frames(1), { code: 'ERR_AFXDP_INVALID_ARGUMENT' } as never);
      const initial = port.frames(0);
      t.is(initial.total, frameCount);
      t.is(sum(initial), frameCount);
      // Both queues lend the kernel frames of the one pool.
      t.true(initial.fillRing > 0 && initial.free > 0);

      // Receive and hold everything: the app holds exactly N frames.
      const N = 600;
      sendUdp(lab, peer, N);
      await sleep(50);
      const held: Batch[] = [];
      const rx = port.readable({ highWaterMark: 64, batches: 64 });
      rx.on('data', (b: Batch) => held.push(b));
      const deadline = Date.now() + 3000;
      while (held.reduce((s, b) => s + b.length, 0) < N && Date.now() < deadline) await sleep(5);
      rx.pause();
      const holding = held.reduce((s, b) => s + b.length, 0);
      t.is(holding, N);
      const during = port.frames(0);
      t.is(during.app, N, JSON.stringify(during));
      t.is(sum(during), frameCount);
      const fromQueue1 = held.filter((b) => b.queue.index === 1);
      t.true(fromQueue1.length > 0, 'queue 1 received some');

      // Queue 1's frames leave through queue 0: same UMEM, no copy.
      peer.drain();
      const tx = port.writable({ queue: 0 });
      let forwarded = 0;
      const rewrite = batchTransform((b) => {
        for (let i = 0; i < b.length; i++) {
          const a = b.addrs[i];
          b.umem.set(lab.peerMac.split(':').map((h) => parseInt(h, 16)), a);
        }
        forwarded += b.length;
      });
      const source = (async function* () {
        for (const b of held) yield b;
      })();
      await pipeline(source, rewrite, tx);
      t.is(forwarded, N);
      const [s0, s1] = pair(port.stats().queues);
      t.is(s0.txPackets, N, 'all of it went out of queue 0');
      t.is(s1.txPackets, 0);
      const got = new Set(peer.receive(N, 3000).map(udpSeq).filter((s) => s !== undefined));
      t.is(got.size, N);
      rx.destroy();
      // Everything is back: free + lent exactly as at the start.
      let after = port.frames(0);
      for (let i = 0; i < 100 && after.free !== initial.free; i++) {
        for (const q of port.queues) q.reap();
        await sleep(5);
        after = port.frames(0);
      }
      t.deepEqual(after, initial);
    } finally {
      port.close();
    }
  });
});

// ------------------------------------------------------------- busy polling

test.serial('busy_budget as root: preferred busy polling on every socket with DPDK\'s defaults; traffic still exact', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, queueCount: 2, busyBudget: 64 });
    try {
      t.deepEqual(port.info().busyPoll, { enabled: true, timeoutUs: 20, budget: 64, via: 'socket-options' });
      const N = 1000;
      sendUdp(lab, peer, N);
      const [on0, on1] = pair(await receiveAll(t, port, N));
      t.is(on0 + on1, N);
    } finally {
      port.close();
    }
    // The default for a privileged port is busy_budget=64 as well.
    const dflt = await openPort({ iface: lab.portIf, netns: lab.portNs });
    t.true(dflt.info().busyPoll.enabled);
    dflt.close();
    const off = await openPort({ iface: lab.portIf, netns: lab.portNs, busyBudget: 0 });
    t.deepEqual(off.info().busyPoll, { enabled: false, reason: 'busy_budget is 0' });
    off.close();
  });
});

test.serial('busy_budget without CAP_NET_ADMIN (uid 65534 on a pinned map): the port opens, busy polling is off and says why', async (t) => {
  const lab = createLab();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-busy-'));
  fs.chmodSync(dir, 0o755);
  const { NativeDpServer } = require('../../index.js') as { NativeDpServer: { start(o: object): { stop(): void; info(): { pinPaths: string[] } } } };
  const server = NativeDpServer.start({
    devices: [{ iface: lab.portIf, netns: lab.portNs }],
    uds: false,
    podDir: '',
    pinDir: path.join(dir, 'bpf'),
    ownerUid: 65534,
    ownerGid: 65534,
  });
  try {
    const pin = server.info().pinPaths[0];
    const caps = '-all,+net_raw,+ipc_lock';
    const out = execFileSync('ip', ['netns', 'exec', lab.portNs, 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
      `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`,
      process.execPath, '--import', 'tsx', path.join(__dirname, '../helpers/open-port-child.ts'),
      JSON.stringify({ iface: lab.portIf, usePinnedMap: true, dpPath: pin, busyBudget: 64, frameCount: 1024, fillSize: 512, compSize: 512, rxSize: 512, txSize: 512, frameSize: 2048 })],
    { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    const result = JSON.parse(out) as { ok: boolean; info: { busyPoll: { enabled: boolean; reason: string; via: string } }; message?: string };
    t.true(result.ok, out);
    t.false(result.info.busyPoll.enabled);
    t.is(result.info.busyPoll.via, 'socket-options');
    t.regex(result.info.busyPoll.reason, /CAP_NET_ADMIN/);
    t.regex(result.info.busyPoll.reason, /use_cni=1/, 'names the way to get it in a pod');
  } finally {
    server.stop();
    lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
