// A worker thread for the queue-transfer tests: attaches the queues it is
// sent and serves them with a forward engine until told to stop, then
// reports what it did. Messages in: { handle, mode, pollMode }, 'stop',
// 'throw' (an uncaught exception mid-traffic). Out: 'attached', then
// { done: true, ... } or { error }, and the thread ends.
import { parentPort, threadId } from 'node:worker_threads';
import { attachPort, Forwarder, TransferHandle, PollLoop } from '../../lib/index';
import type { ForwardMode, PollMode } from '../../lib/index';
import { threadCpuMs } from '../../lib/fwd/threads';

if (parentPort !== null) {
  const port = parentPort;
  let loop: PollLoop | undefined;
  port.on('message', (msg: unknown) => {
    if (msg === 'stop') {
      loop?.stop();
      return;
    }
    if (msg === 'throw') {
      setImmediate(() => {
        throw new Error('worker failed on purpose');
      });
      return;
    }
    const { handle, mode, pollMode } = msg as { handle: TransferHandle; mode: ForwardMode; pollMode?: PollMode };
    try {
      const attached = attachPort(handle);
      const fwd = new Forwarder([attached], mode);
      const cpu0 = threadCpuMs();
      loop = fwd.run({ pollMode: pollMode ?? 'busy' });
      port.postMessage({ attached: true, threadId, queueIds: attached.info().queues });
      loop.done.then(() => {
        const stats = attached.stats();
        const cpuMs = threadCpuMs() - cpu0;
        attached.close();
        port.postMessage({ done: true, threadId, cpuMs, rxPackets: stats.rxPackets, txPackets: stats.txPackets,
          perQueue: stats.queues.map((q) => ({ queueId: q.queueId, rx: q.rxPackets, tx: q.txPackets })) });
        port.close(); // the thread ends
      }, (err: unknown) => {
        const e = err as { code?: string; message?: string };
        port.postMessage({ error: { code: e.code, message: e.message }, threadId });
        port.close();
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      port.postMessage({ error: { code: e.code, message: e.message }, threadId });
    }
  });
}
