// A port that waits for traffic, in a process of its own so its CPU time is
// only the port's: argv[2] JSON {iface, netns, mode: 'uv'|'thread', seconds}.
// Subscribes a stream, a 'readable' listener and a Queue.readable() promise,
// prints {mode, waiting, cpuPct} after `seconds` of idling, then
// {got, promise} once 10 packets have come through the stream.
import fs from 'node:fs';
import { openPort, Batch } from '../../lib/index';
import { setDefaultWakeupMode } from '../../lib/port/waiter';

const o = JSON.parse(process.argv[2]) as { iface: string; netns: string; mode: 'uv' | 'thread'; seconds: number };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cpuTicks(): number {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

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
  await sleep(300);
  const c0 = cpuTicks();
  const t0 = Date.now();
  await sleep(o.seconds * 1000);
  const cpuPct = (cpuTicks() - c0) / ((Date.now() - t0) / 1000);
  port.removeAllListeners('readable');
  process.stdout.write(`${JSON.stringify({ mode: port.waiter().mode, waiting: rx.waiting, cpuPct })}\n`);
  const deadline = Date.now() + 10_000;
  while (got < 10 && Date.now() < deadline) await sleep(1);
  process.stdout.write(`${JSON.stringify({ got, promise: await promise })}\n`);
  port.close();
})();
