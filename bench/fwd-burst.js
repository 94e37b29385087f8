'use strict';
// afxdp forwarder through the burst API (port.queues[0].receive/transmit/
// alloc/release over the shared addrs/lengths slots and the UMEM view).
// Same modes and protocol as bench/c/fwd.c: prints {"ready":true}, reads
// "T0 T1 TEND [MAC]" (epoch ms) from stdin, counts inside [T0, T1), prints
// one JSON line at TEND and exits.
//
// The loop is the library's runLoop() under --poll-mode (busy, adaptive
// or event; lib/fwd/poll-loop.ts), what `afxdp fwd` runs: a step is one
// burst of the library's forward engine (macswap, or rxonly for rxdrop) on
// one lane, queue 0 back to itself; spinning yields to the event loop
// between turns, sleeping waits on the socket's readiness. The window
// edges are timers. Nothing in the step allocates. txonly sends the
// prebuilt benchmark frame as bench/c/fwd.c does (the txonly engine writes
// a sequence number into every frame, which the C side does not).
const { afxdp, parseArgs, pollMode, libraryPollModes, readWindow, GcMeter, openBenchPort, buildFrame, FRAME_LEN, result } = require('./lib/common');

const { ENGINES, Lane, runLoop } = afxdp();

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const policy = pollMode(args, libraryPollModes());
  // The adaptive window (µs): --spin-us, or AFXDP_BENCH_SPIN_US to sweep it
  // through bench/run.js; default the library's.
  const spinArg = args['spin-us'] ?? process.env.AFXDP_BENCH_SPIN_US;
  const spinUs = spinArg === undefined ? undefined : Number(spinArg);
  const port = await openBenchPort(args);
  const q = port.queues[0];
  const { umem, lengths, burstSize } = q;
  const info = port.info();
  const mode = args.mode;
  const gc = new GcMeter();

  process.stdout.write(JSON.stringify({ ready: true, xdpMode: info.xdpMode, zeroCopy: info.zeroCopy[0], busyPoll: info.busyPoll.enabled, wait: 'runLoop', pollMode: policy, spinUs }) + '\n');
  const w = await readWindow();
  if (mode === 'txonly') {
    // Every frame carries the benchmark frame once; alloc() hands out frames
    // whose data starts at dataOffset.
    const frame = buildFrame(w.mac, info.mac);
    for (let a = info.dataOffset; a + FRAME_LEN <= umem.length; a += info.frameSize) umem.set(frame, a);
  }

  let rx = 0;
  let sent = 0; // txonly
  let rx0 = 0, tx0 = 0, rx1 = 0, tx1 = 0;
  let phase = 0;
  let emptyPolls = 0; // receive() calls that found nothing (each is a native call)

  const txonly = mode === 'txonly';
  const engine = mode === 'macswap' ? ENGINES.macswap : ENGINES.rxonly;
  const lane = new Lane(q, q);
  // Sent: macswap posts what it received but for what the tx ring refused.
  const txCount = () => (txonly ? sent : mode === 'macswap' ? rx - lane.droppedCount : 0);

  const step = () => {
    if (txonly) {
      const n = q.alloc(burstSize);
      for (let k = 0; k < n; k++) lengths[k] = FRAME_LEN;
      if (n > 0) sent += q.transmit(n, 0, true);
      return n;
    }
    const n = engine.forward(lane);
    if (n === 0) {
      emptyPolls++;
      return 0;
    }
    rx += n;
    return n;
  };
  // txonly never waits on rx readiness: it is always busy.
  const loop = runLoop(txonly ? [] : [q], step, { pollMode: txonly ? 'busy' : policy, spinUs });
  const at = (t, fn) => setTimeout(fn, Math.max(0, t - Date.now()));
  const timers = [
    at(w.t0, () => { phase = 1; rx0 = rx; tx0 = txCount(); gc.mark(0); }),
    at(w.t1, () => { phase = 2; rx1 = rx; tx1 = txCount(); gc.mark(1); }),
    at(w.tend, () => loop.stop()),
    setInterval(() => gc.tick(Date.now()), 250),
  ];
  await loop.done;
  for (const t of timers) clearTimeout(t);
  const waits = loop.sleeps;
  const tx = txCount();
  if (phase < 2) { rx1 = rx; tx1 = tx; gc.mark(1); }
  if (phase < 1) { rx0 = rx; tx0 = tx; gc.mark(0); }
  const stats = port.stats();
  port.close();
  await result({
    impl: 'burst', mode, rx, tx, emptyPolls, rxWindow: rx1 - rx0, txWindow: tx1 - tx0, waits,
    xdp: stats.xdp, gc: await gc.report(),
  });
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack || err}\n`);
  process.exit(2);
});
