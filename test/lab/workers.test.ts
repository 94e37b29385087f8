// Queues on worker threads (port.transfer() / attachPort()) and
// `afxdp fwd --nb-cores`, on 2-queue veth labs: each queue's packets are
// handled in its own thread, counts are exact, frames come back, and a
// worker's end (stop, terminate, throw) or the port's close under running
// workers never crashes and leaves no fd behind.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { Lab, withLab } from '../helpers/lab';
import { fdCount, fdsSettle } from '../helpers/faults';
import { udpFrame } from '../helpers/udp-frames';
import { openPort, Port, TransferHandle } from '../../lib/index';
import type { PacketSocket } from '../../lib/peer/packet-socket';

const test = privileged();
const WORKER = path.join(__dirname, '../helpers/queue-worker.ts');
const BIN = path.join(__dirname, '../../bin/afxdp.js');
const ROOM = { frameCount: 8192, frameSize: 2048, fillSize: 4096, rxSize: 4096 } as const;

interface Done { done: true; threadId: number; cpuMs: number; rxPackets: number; txPackets: number; perQueue: { queueId: number; rx: number }[] }
interface Failed { error: { code?: string; message?: string }; threadId: number }

class QueueWorker {
  readonly worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(WORKER)});`, { eval: true });
  readonly messages: unknown[] = [];
  /** Resolves when the thread has ended (listened from the start: no exit is missed). */
  readonly exited = new Promise<number>((resolve) => this.worker.on('exit', resolve));
  #waiters: (() => void)[] = [];

  constructor() {
    this.worker.on('message', (m) => {
      this.messages.push(m);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.worker.on('error', () => { /* recorded by the tests that expect it */ });
  }

  /** The first message matching `pred`, within `ms`. */
  async next<T>(pred: (m: unknown) => boolean, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(pred);
      if (found !== undefined) return found as T;
      if (Date.now() > deadline) throw new Error(`no matching worker message in ${ms} ms: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async start(handle: TransferHandle, pollMode: 'busy' | 'event' = 'busy'): Promise<{ threadId: number; queueIds: number[] }> {
    this.worker.postMessage({ handle, mode: 'macswap', pollMode });
    return this.next((m) => (m as { attached?: boolean }).attached === true || (m as Failed).error !== undefined);
  }

  async stop(): Promise<Done | Failed> {
    this.worker.postMessage('stop');
    return this.next((m) => (m as Done).done === true || (m as Failed).error !== undefined);
  }
}

/** Peer frames spread over both queues (UDP source ports vary); bounded waits for the echoes. */
async function pingPong(lab: Lab, peer: PacketSocket, n: number, base = 0): Promise<{ sent: number; back: number }> {
  let sent = 0;
  let back = 0;
  const deadline = Date.now() + 60_000;
  while (sent < n && Date.now() < deadline) {
    const k = Math.min(200, n - sent);
    sent += peer.send(Array.from({ length: k }, (_, j) => udpFrame(lab.portMac, lab.peerMac, base + sent + j, 1000 + ((sent + j) % 512))));
    back += peer.drain();
    // Keep at most ~2000 in flight: the rings never overflow.
    while (sent - back > 2000 && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r));
      back += peer.drain();
    }
  }
  while (back < sent && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    back += peer.drain();
  }
  return { sent, back };
}

/** Reap until nothing is in flight, then the frames of every UMEM. */
async function settledFrames(port: Port): Promise<{ free: number; fillRing: number; app: number }[]> {
  const deadline = Date.now() + 2000;
  for (;;) {
    for (const q of port.queues) q.flushTx();
    const all = port.queues.map((q) => port.frames(q.umemIndex));
    if (all.every((f) => f.txRing + f.completionRing === 0) || Date.now() > deadline) {
      return all.map((f) => ({ free: f.free, fillRing: f.fillRing, app: f.app }));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

function kernelRedirects(lab: Lab): number[] {
  const out = execFileSync('ip', ['netns', 'exec', lab.portNs, 'ethtool', '-S', lab.portIf], { encoding: 'utf8' });
  return [0, 1].map((q) => Number(new RegExp(`rx_queue_${q}_xdp_redirect: (\\d+)`).exec(out)![1]));
}

async function withWorkers(t: ExecutionContext, fn: (lab: Lab, peer: PacketSocket, port: Port) => Promise<void>): Promise<void> {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, queueCount: 2, ...ROOM });
    try {
      await fn(lab, peer, port);
    } finally {
      port.close();
    }
  });
  t.pass();
}

test.serial('2 queues in 2 workers: each queue served in its own thread, 100,000 packets exact, the ledger back at its start', async (t) => {
  await withWorkers(t, async (lab, peer, port) => {
    const start = await settledFrames(port);
    const workers = [new QueueWorker(), new QueueWorker()];
    try {
      const attached = await Promise.all(workers.map((w, q) => w.start(port.transfer([q]))));
      t.deepEqual(attached.map((a) => a.queueIds), [[0], [1]]);
      t.not(attached[0]!.threadId, attached[1]!.threadId);
      t.false(port.queueHere(0));
      t.throws(() => port.queues[0].receive(), { code: 'ERR_AFXDP_TRANSFERRED' });
      const N = 100_000;
      const { sent, back } = await pingPong(lab, peer, N);
      t.is(sent, N);
      t.is(back, N, "every frame came back");
      const done = await Promise.all(workers.map((w) => w.stop())) as Done[];
      for (const d of done) t.true(d.done, JSON.stringify(d));
      const kernel = kernelRedirects(lab);
      done.forEach((d, q) => {
        t.is(d.perQueue.length, 1);
        t.is(d.perQueue[0]!.queueId, q, 'the worker served its own queue');
        t.is(d.rxPackets, kernel[q] ?? -1, `queue ${q}: what the kernel redirected is what its thread received`);
        t.is(d.txPackets, d.rxPackets);
        t.true(d.cpuMs > 0, `thread ${d.threadId} used CPU`);
      });
      t.true(done.every((d) => d.rxPackets > 0), `both queues carried traffic: ${done.map((d) => d.rxPackets).join(', ')}`);
      t.is(done[0]!.rxPackets + done[1]!.rxPackets, N);
      await Promise.all(workers.map((w) => w.exited));
      t.true(port.queueHere(0) && port.queueHere(1), 'both queues are back at the port');
      t.deepEqual(await settledFrames(port), start, 'every frame is back where it started');
      t.is(port.queues[1]!.receive(), 0, 'the port uses its queue again');
    } finally {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    }
  });
});

for (const end of ['terminate', 'throw'] as const) {
  test.serial(`a worker's ${end === 'terminate' ? 'terminate()' : 'uncaught exception'} mid-traffic: the queue goes back to the port, the process lives, fds back at their start`, async (t) => {
    const fds0 = fdCount();
    await withWorkers(t, async (lab, peer, port) => {
      const w = new QueueWorker();
      await w.start(port.transfer([1]));
      // Traffic on both queues while the worker dies (no echo is awaited).
      for (let i = 0; i < 20; i++) {
        peer.send(Array.from({ length: 100 }, (_, j) => udpFrame(lab.portMac, lab.peerMac, i * 100 + j, 1000 + j)));
        peer.drain();
      }
      if (end === 'terminate') {
        await w.worker.terminate();
      } else {
        const [err] = await Promise.all([once(w.worker, 'error'), w.worker.postMessage('throw')]);
        t.regex(String((err as Error[])[0]?.message ?? err), /on purpose/);
        await w.exited;
      }
      const deadline = Date.now() + 2000;
      while (!port.queueHere(1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      t.true(port.queueHere(1), 'the queue came back to the port');
      const q1 = port.queues[1]!;
      t.notThrows(() => q1.release(q1.receive()));
    });
    t.is(await fdsSettle(fds0), fds0, 'fds back at their start');
  });
}

for (const pollMode of ['busy', 'event'] as const) {
  test.serial(`port.close() on the main thread while 2 workers run (${pollMode}): their loops fail with ERR_AFXDP_CLOSED, nothing crashes, fds back`, async (t) => {
    const fds0 = fdCount();
    await withLab({ queues: 2 }, async (lab, peer) => {
      const port = await openPort({ iface: lab.portIf, netns: lab.portNs, queueCount: 2, ...ROOM });
      const workers = [new QueueWorker(), new QueueWorker()];
      try {
        await Promise.all(workers.map((w, q) => w.start(port.transfer([q]), pollMode)));
        await pingPong(lab, peer, 2000);
        port.close();
        const ended = await Promise.all(workers.map((w) =>
          w.next<Failed>((m) => (m as Failed).error !== undefined || (m as Done).done === true, 5000)));
        for (const e of ended) t.is(e.error?.code, 'ERR_AFXDP_CLOSED', JSON.stringify(e));
        t.throws(() => port.queues[0].receive(), { code: 'ERR_AFXDP_CLOSED' });
      } finally {
        port.close();
        await Promise.all(workers.map((w) => w.worker.terminate()));
      }
    });
    t.is(await fdsSettle(fds0), fds0, 'fds back at their start');
  });
}

test.serial('afxdp fwd --nb-cores 2 forwards on both queues in two threads; its JSON totals equal the sum over queues', async (t) => {
  await withLab({ queues: 2 }, async (lab, peer) => {
    const child = spawn(process.execPath, [BIN, 'fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf},queue_count=2`, '--netns', lab.portNs,
      '--forward-mode', 'macswap', '--nb-cores', '2', '--json', '--stats-period', '0', '--frame-count', '8192', '--frame-size', '2048'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('"type":"start"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      const start = JSON.parse(out.split('\n')[0]!);
      t.is(start.nbCores, 2, err);
      const N = 20_000;
      const { sent, back } = await pingPong(lab, peer, N);
      t.is(back, sent);
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      t.is(code, 0, err);
      const final = JSON.parse(out.trim().split('\n').at(-1)!);
      t.is(final.type, 'final');
      const p = final.ports[0];
      t.is(p.rxPackets, N);
      t.is(p.rxPackets, p.queues.reduce((s: number, q: { rxPackets: number }) => s + q.rxPackets, 0));
      t.is(p.txPackets, p.queues.reduce((s: number, q: { txPackets: number }) => s + q.txPackets, 0));
      t.true(p.queues.every((q: { rxPackets: number }) => q.rxPackets > 0), 'both queues forwarded');
      t.is(final.threads.length, 2);
      t.deepEqual(final.threads.map((x: { queues: number[][] }) => x.queues), [[[0]], [[1]]]);
      t.not(final.threads[0].threadId, final.threads[1].threadId);
      t.true(final.threads.every((x: { cpuMs: number }) => x.cpuMs > 0));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
