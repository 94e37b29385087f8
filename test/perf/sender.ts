// Traffic source for the wakeup measurements (test/perf/wakeup-measure.ts),
// run as its own process so the receiver's CPU and GC are its own.
// argv[2]: JSON {iface, netns, dst, src, mode: 'paced'|'flood', perTick, durationMs}
// paced: `perTick` frames every ~1 ms, each stamped with process.hrtime
// (CLOCK_MONOTONIC, comparable across processes) at bytes 48..55.
// flood: batches of 64 as fast as the socket takes them.
// Prints {sent} as JSON when done.
import { PacketSocket } from '../../lib/peer/packet-socket';
import { testFrame } from '../helpers/frames';

const o = JSON.parse(process.argv[2]!) as {
  iface: string; netns: string; dst: string; src: string; mode: 'paced' | 'flood'; perTick?: number; durationMs: number;
};
const peer = new PacketSocket(o.iface, { netns: o.netns });
const frames = Array.from({ length: 64 }, (_, i) => testFrame(o.dst, o.src, i, 64));
let sent = 0;
const end = Date.now() + o.durationMs;

function paced(): void {
  if (Date.now() >= end) return done();
  const n = o.perTick ?? 1;
  const batch = frames.slice(0, n);
  const now = process.hrtime.bigint();
  for (const f of batch) {
    f.writeUInt32BE(sent++ >>> 0, 42);
    f.writeBigUInt64BE(now, 48);
  }
  peer.send(batch);
  setTimeout(paced, 1);
}

function flood(): void {
  const until = Date.now() + 20;
  while (Date.now() < until) sent += peer.send(frames);
  if (Date.now() >= end) return done();
  setImmediate(flood);
}

function done(): void {
  peer.close();
  process.stdout.write(JSON.stringify({ sent }));
}

if (o.mode === 'paced') paced();
else flood();
