// One forwarding thread of ThreadedForwarder (threads.ts): attach the
// queues it is sent, run the engine on them until told to stop, report.
import { parentPort, threadId } from 'node:worker_threads';
import { attachPort } from '../port/transfer';
import type { Port } from '../port/port';
import { Forwarder } from './forwarder';
import type { PollLoop } from './poll-loop';
import { threadCpuMs } from './threads';
import type { ThreadJob } from './threads';
import type { EngineOptions } from './engines';
import { PcapWriter } from '../pcap/writer';

// postMessage() turns Buffers into Uint8Arrays: make them Buffers again.
function asBuffer(u: Uint8Array | undefined): Buffer | undefined {
  return u === undefined ? undefined : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function engineOptions(job: ThreadJob): EngineOptions {
  const tx = job.engine.tx;
  if (tx === undefined) return job.engine;
  return {
    ...job.engine,
    tx: { ...tx, srcIp: asBuffer(tx.srcIp)!, dstIp: asBuffer(tx.dstIp)!, srcMac: asBuffer(tx.srcMac), dstMacs: tx.dstMacs.map(asBuffer) },
  };
}

function errorMessage(err: unknown): { type: 'error'; code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return { type: 'error', code: typeof e.code === 'string' ? e.code : undefined, message: String(e.message ?? err) };
}

const parent = parentPort;
if (parent !== null) {
  let loop: PollLoop | undefined;
  let stopped = false;
  parent.on('message', (msg: ThreadJob | 'stop') => {
    if (msg === 'stop') {
      stopped = true;
      loop?.stop();
      return;
    }
    let ports: Port[] = [];
    const writers: PcapWriter[] = [];
    // Write what is buffered and close the files: after the loop, also when it failed.
    const closeCaptures = () => Promise.all(writers.map((w) => w.close()));
    try {
      ports = msg.handles.map((h) => attachPort(h));
      const capture = msg.capture;
      if (capture !== undefined) {
        for (const f of capture.files) writers.push(PcapWriter.open(f, capture.options));
      }
      // The lanes count their drops where the main thread reads them.
      const fwd = new Forwarder(ports, msg.mode, { ...engineOptions(msg), txDropped: msg.drops.map((d) => new Float64Array(d)),
        capture: writers });
      const cpu0 = threadCpuMs();
      const t0 = performance.now();
      loop = fwd.run({ pollMode: msg.pollMode });
      if (stopped) loop.stop();
      parent.postMessage({ type: 'attached', threadId, path: fwd.path });
      loop.done.then(async () => {
        await fwd.drain();
        const cpuMs = threadCpuMs() - cpu0;
        const elapsedMs = performance.now() - t0;
        const pcap = await closeCaptures();
        const report = { type: 'done', threadId, cpuMs, elapsedMs,
          ...(capture === undefined ? {} : { pcap }) };
        for (const p of ports) p.close();
        parent.postMessage(report);
        parent.close();
      }, async (err: unknown) => {
        for (const p of ports) p.close();
        await closeCaptures();
        parent.postMessage(errorMessage(err));
        parent.close();
      });
    } catch (err) {
      for (const p of ports) p.close();
      void closeCaptures().finally(() => {
        parent.postMessage(errorMessage(err));
        parent.close();
      });
    }
  });
}
