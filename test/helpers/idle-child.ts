// A port that waits for traffic, in a process of its own so its CPU time is
// only the port's: argv[2] JSON {iface, netns, mode: 'uv'|'thread', seconds}.
// Subscribes a stream, a 'readable' listener and a Queue.readable() promise,
// prints {mode, waiting, cpuPct (whole process, exact runtime)} after `seconds` of idling, then
// {got, promise} once 10 packets have come through the stream.
import { cpuPercentDuring } from './cpu';
import { openPort, Batch } from '../../lib/index';
import { setDefaultWakeupMode } from '../../lib/port/waiter';

const o = JSON.parse(process.argv[2]!) as { iface: string; netns: string; mode: 'uv' | 'thread'; seconds: number };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

(async () => {
  setDefaultWakeupMode(o.mode);
  const port = await openPort({ iface: o.iface, netns: o.netns });
  const rx = port.readable();
  let got = 0;
  rx.on('data', (b: Batch) => {
    got += b.length;
    b.release();
  });
  port.on('readable', () => {});
  const promise = port.queues[0].readable({ timeoutMs: 60_000 }).catch((err: Error) => err.message);
  // Let the loader and V8 settle (lazy compilation of what just ran).
  await sleep(1000);
  // Every thread of the process counts, V8's and libuv's included.
  const cpuPct = await cpuPercentDuring(() => sleep(o.seconds * 1000));
  port.removeAllListeners('readable');
  process.stdout.write(`${JSON.stringify({ mode: port.waiter().mode, waiting: rx.waiting, cpuPct })}\n`);
  const deadline = Date.now() + 10_000;
  while (got < 10 && Date.now() < deadline) await sleep(1);
  process.stdout.write(`${JSON.stringify({ got, promise: await promise })}\n`);
  port.close();
})();
