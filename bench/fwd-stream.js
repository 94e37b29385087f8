'use strict';
// afxdp forwarder through the stream API (port.readable()/writable(),
// macswap(), allocBatch(); see lib/stream). Same modes and protocol as
// bench/c/fwd.c and bench/fwd-burst.js.
//
//   macswap  pipeline(port.readable(), macswap(), port.writable())
//   rxdrop   pipeline(port.readable(), a Writable that release()s each batch)
//   txonly   allocBatch() -> set lengths -> writable.write(batch), 'drain' on backpressure,
//            a setImmediate turn every 16 batches
//
// Counting costs nothing per packet: the port's own software counters
// (port.stats(): packets received / posted for transmit) are read by timers
// at T0 and T1. Waiting, wakeups and backpressure are the streams' own:
// --poll-mode is the port's pollMode, which the readable follows (busy:
// checks the rings every event-loop turn; event: sleeps until the socket
// is readable; adaptive: checks for --spin-us after the last packet, then
// sleeps).
const { pipeline, Writable } = require('node:stream');
const { once } = require('node:events');
const { afxdp, parseArgs, pollMode, libraryPollModes, readWindow, GcMeter, openBenchPort, buildFrame, FRAME_LEN, result } = require('./lib/common');

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const policy = pollMode(args, libraryPollModes());
  // The adaptive window (µs): --spin-us, or AFXDP_BENCH_SPIN_US to sweep it
  // through bench/run.js; default the library's.
  const spinArg = args['spin-us'] ?? process.env.AFXDP_BENCH_SPIN_US;
  const spinUs = spinArg === undefined ? undefined : Number(spinArg);
  const { macswap } = afxdp();
  const port = await openBenchPort(args);
  const q = port.queues[0];
  const info = port.info();
  const mode = args.mode;
  const gc = new GcMeter();

  process.stdout.write(JSON.stringify({ ready: true, xdpMode: info.xdpMode, zeroCopy: info.zeroCopy[0], busyPoll: info.busyPoll.enabled, wait: 'streams', pollMode: policy, spinUs }) + '\n');
  const w = await readWindow();
  if (mode === 'txonly') {
    const frame = buildFrame(w.mac, info.mac);
    for (let a = info.dataOffset; a + FRAME_LEN <= q.umem.length; a += info.frameSize) q.umem.set(frame, a);
  }

  const counts = [undefined, undefined];
  const snap = (i) => {
    const s = port.stats();
    counts[i] = { rx: s.rxPackets, tx: s.txPackets };
    gc.mark(i);
  };
  const timers = [
    setTimeout(() => snap(0), Math.max(0, w.t0 - Date.now())),
    setTimeout(() => snap(1), Math.max(0, w.t1 - Date.now())),
    setInterval(() => gc.tick(Date.now()), 250),
  ];

  let stopping = false;
  let batches = 0; // rxdrop: batches the sink got (packets per batch = rx / batches)
  const ended = new Promise((resolve) => setTimeout(resolve, Math.max(0, w.tend - Date.now())));

  let streams = [];
  let pipelineDone = Promise.resolve();
  const run = (...s) => {
    streams = s;
    pipelineDone = new Promise((resolve) => pipeline(...s, (err) => {
      if (err && !stopping) process.stderr.write(`pipeline: ${err.stack || err}\n`);
      resolve();
    }));
  };

  if (mode === 'macswap') {
    run(port.readable({ spinUs }), macswap(), port.writable());
  } else if (mode === 'rxdrop') {
    const sink = new Writable({
      objectMode: true,
      write(batch, _encoding, callback) {
        batches++;
        batch.release();
        callback();
      },
    });
    run(port.readable({ spinUs }), sink);
  } else {
    const out = port.writable();
    streams = [out];
    const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));
    pipelineDone = (async () => {
      for (let batches = 0; !stopping; batches++) {
        // The tx ring rarely pushes back in copy mode (each write kicks the
        // kernel, which sends synchronously), so yield to the event loop
        // every 16 batches as the readable does.
        if ((batches & 15) === 15) await yieldTurn();
        const b = port.allocBatch(0);
        if (b === null) {
          // No free frame (or batch object) right now: wait for completions.
          await Promise.race([q.writable({ frames: q.burstSize, timeoutMs: 100 }), ended]);
          continue;
        }
        const lengths = b.lengths;
        for (let i = 0, n = b.length; i < n; i++) lengths[i] = FRAME_LEN;
        if (!out.write(b)) await Promise.race([once(out, 'drain'), ended]);
      }
    })().catch((err) => {
      if (!stopping) process.stderr.write(`txonly: ${err.stack || err}\n`);
    });
  }

  await ended;
  stopping = true;
  if (counts[0] === undefined) snap(0);
  if (counts[1] === undefined) snap(1);
  for (const t of timers) clearTimeout(t);
  const stats = port.stats();
  for (const s of streams) s.destroy();
  await pipelineDone;
  port.close();
  await result({
    impl: 'stream', mode, rx: stats.rxPackets, tx: stats.txPackets,
    rxWindow: counts[1].rx - counts[0].rx, txWindow: counts[1].tx - counts[0].tx,
    batches, xdp: stats.xdp, gc: await gc.report(),
  });
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack || err}\n`);
  process.exit(2);
});
