// A pod-like client process for the Device Plugin lab tests: it runs with
// reduced privileges (the parent starts it under setpriv) and obeys JSON
// commands, one per stdin line, answering one JSON line each on stdout.
//
//   {op:'fds'}                                   → {fds}
//   {op:'open', specs, warmup?}                  → {ok, info[], fdsBefore, fdsAfter, elapsedMs} | {ok:false, code, message, ...}
//   {op:'receive', port, n, timeoutMs}           → {got, perQueue, wrong}
//   {op:'transmit', port, n, dst, src, udp?}     → {sent, perQueue}
//   {op:'workers', port, mode, pollMode?}        → {threads, queueIds} once every queue of the port
//                                                  is attached in its own worker (queue-worker.ts)
//   {op:'stopWorkers'}                           → {workers: [{threadId, rxPackets, txPackets, cpuMs, queueIds}]}
//                                                  (each worker stopped, its queue given back, the thread ended)
//   {op:'close'}                                 → {fds}
//   {op:'exit'}
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { Worker } from 'node:worker_threads';
import { openPorts, Port } from '../../lib/index';
import type { ForwardMode, PollMode } from '../../lib/index';
import { native } from '../../lib/native';
import { frameSeq, testFrame } from './frames';
import { udpFrame, udpSeq } from './udp-frames';

const ports: Port[] = [];

function countFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function open(specs: object[], warmup: boolean): Promise<object> {
  if (warmup) {
    // Load everything lazily loaded on the failure path before counting fds.
    native();
    try {
      await openPorts([{ iface: 'lo', useCni: true, dpPath: '/nonexistent/afxdp.sock', handshakeTimeoutMs: 100 }]);
    } catch {
      // expected
    }
    await sleep(20);
  }
  const fdsBefore = countFds();
  const started = Date.now();
  try {
    const opened = await openPorts(specs as never);
    ports.push(...opened);
    return { ok: true, info: opened.map((p) => p.info()), elapsedMs: Date.now() - started, fdsBefore, fdsAfter: countFds() };
  } catch (err) {
    const elapsedMs = Date.now() - started;
    await sleep(20);
    const e = err as { code?: string; message?: string; path?: string; name?: string };
    return { ok: false, code: e.code, message: e.message, path: e.path, name: e.name, elapsedMs, fdsBefore, fdsAfter: countFds() };
  }
}

function portAt(index: number): Port {
  const port = ports[index];
  if (port === undefined) throw new Error(`no port ${index} (${ports.length} open)`);
  return port;
}

async function receive(index: number, n: number, timeoutMs: number): Promise<object> {
  const port = portAt(index);
  const perQueue = port.queues.map(() => 0);
  let wrong = 0;
  const deadline = Date.now() + timeoutMs;
  let got = 0;
  while (got < n && Date.now() < deadline) {
    let any = 0;
    for (const q of port.queues) {
      const count = q.receive();
      for (let i = 0; i < count; i++) if (frameSeq(q.packet(i)) === undefined && udpSeq(q.packet(i)) === undefined) wrong++;
      if (count > 0) q.release(count);
      perQueue[q.index]! += count;
      got += count;
      any += count;
    }
    if (any === 0) await sleep(1);
  }
  // Anything beyond n?
  await sleep(50);
  for (const q of port.queues) {
    const count = q.receive();
    if (count > 0) q.release(count);
    perQueue[q.index]! += count;
    got += count;
  }
  return { got, perQueue, wrong };
}

async function transmit(index: number, n: number, dst: string, src: string, udp: boolean): Promise<object> {
  const port = portAt(index);
  const perQueue = port.queues.map(() => 0);
  let sent = 0;
  const deadline = Date.now() + 5000;
  while (sent < n && Date.now() < deadline) {
    // Alternate queues: every socket of the port transmits.
    const q = port.queues[sent % port.queues.length]!;
    const k = q.alloc(1);
    if (k === 1) {
      const frame = udp ? udpFrame(dst, src, sent, 1000 + sent) : testFrame(dst, src, sent);
      q.umem.set(frame, q.addrs[0]!); // alloc(1) returned 1
      q.lengths[0] = frame.length;
      const posted = q.transmit(1, 0, false);
      if (posted === 1) {
        perQueue[q.index]!++;
        sent++;
        continue;
      }
      q.release(1);
    }
    q.reap();
    await sleep(1);
  }
  for (let i = 0; i < 20; i++) {
    for (const q of port.queues) q.reap();
    await sleep(5);
  }
  return { sent, perQueue };
}

const QUEUE_WORKER = path.join(__dirname, 'queue-worker.ts');

/** A worker thread serving queues of a port, and the messages it posted. */
interface QueueWorker {
  worker: Worker;
  threadId: number;
  queueIds: number[];
  next(timeoutMs: number): Promise<any>;
}

const workers: QueueWorker[] = [];

function startWorker(): Omit<QueueWorker, 'queueIds'> {
  const worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(QUEUE_WORKER)});`, { eval: true });
  const messages: unknown[] = [];
  let waiting: ((m: unknown) => void) | undefined;
  const deliver = (m: unknown) => {
    if (waiting === undefined) {
      messages.push(m);
    } else {
      const w = waiting;
      waiting = undefined;
      w(m);
    }
  };
  worker.on('message', deliver);
  worker.on('error', (err: Error) => deliver({ error: { message: `uncaught in the worker: ${err.message}` } }));
  worker.on('exit', (code) => deliver({ error: { message: `the worker exited (${code})` } }));
  const next = (timeoutMs: number) => {
    if (messages.length > 0) return Promise.resolve(messages.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting = undefined;
        reject(new Error(`no message from worker ${worker.threadId} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
  };
  return { worker, threadId: worker.threadId, next };
}

/** Each queue of port `index` to its own worker, running `mode` there. */
async function startWorkers(index: number, mode: ForwardMode, pollMode: PollMode | undefined): Promise<object> {
  const port = portAt(index);
  for (const q of port.queues) {
    const handle = q.transfer();
    const w = startWorker();
    w.worker.postMessage({ handle, mode, pollMode });
    const attached = await w.next(20_000);
    if (!attached.attached) {
      port.cancelTransfer(q.index);
      await w.worker.terminate();
      throw Object.assign(new Error(`worker for queue ${q.id}: ${JSON.stringify(attached)}`), { code: attached.error?.code });
    }
    workers.push({ ...w, threadId: attached.threadId, queueIds: attached.queueIds });
  }
  return { threads: workers.map((w) => w.threadId), queueIds: workers.map((w) => w.queueIds) };
}

/** Stop every worker: each reports, gives its queues back and ends. */
async function stopWorkers(): Promise<object> {
  const reports: object[] = [];
  for (const w of workers.splice(0)) {
    w.worker.postMessage('stop');
    const done = await w.next(10_000);
    await w.worker.terminate();
    if (!done.done) throw new Error(`worker ${w.threadId} did not finish: ${JSON.stringify(done)}`);
    reports.push({ threadId: done.threadId, rxPackets: done.rxPackets, txPackets: done.txPackets, cpuMs: done.cpuMs,
      queueIds: w.queueIds, perQueue: done.perQueue });
  }
  return { workers: reports };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.op) {
      case 'fds':
        reply({ fds: countFds() });
        break;
      case 'open':
        reply(await open(cmd.specs, cmd.warmup ?? false));
        break;
      case 'receive':
        reply(await receive(cmd.port, cmd.n, cmd.timeoutMs));
        break;
      case 'transmit':
        reply(await transmit(cmd.port, cmd.n, cmd.dst, cmd.src, cmd.udp ?? false));
        break;
      case 'workers':
        reply(await startWorkers(cmd.port, cmd.mode, cmd.pollMode));
        break;
      case 'stopWorkers':
        reply(await stopWorkers());
        break;
      case 'close':
        for (const port of ports.splice(0)) port.close();
        await sleep(20);
        reply({ fds: countFds() });
        break;
      case 'exit':
        rl.close();
        process.exit(0);
    }
  } catch (err) {
    const e = err as { code?: string; message?: string };
    reply({ error: true, code: e.code, message: e.message });
  }
});
reply({ ready: true, uid: process.getuid?.(), pid: process.pid });
