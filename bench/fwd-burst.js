'use strict';
// afxdp forwarder through the burst API (port.queues[0].receive/transmit/
// alloc/release over the shared addrs/lengths slots and the UMEM view).
// Same modes and protocol as bench/c/fwd.c: prints {"ready":true}, reads
// "T0 T1 TEND [MAC]" (epoch ms) from stdin, counts inside [T0, T1), prints
// one JSON line at TEND and exits.
//
// The loop runs up to TURN bursts (an empty ring polled SPIN times counts
// as one), then yields to the event loop with
// setImmediate (what a real application does so timers and I/O still run).
// After --idle-spin-us without packets it waits for the socket to become
// readable (see waitReadable in ./lib/common.js). Nothing in the loop
// allocates (the clock is read every 16 bursts: Date.now() allocates).
// That is its one poll policy, 'adaptive' (--poll-mode takes only that).
const { afxdp, parseArgs, pollMode, readWindow, GcMeter, waitReadable, waitMechanism, openBenchPort, buildFrame, FRAME_LEN, result } = require('./lib/common');

const { swapMacs } = afxdp();

const TURN = 256;
const SPIN = 64;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const policy = pollMode(args, ['adaptive']);
  const port = await openBenchPort(args);
  const q = port.queues[0];
  const { umem, addrs, lengths, burstSize } = q;
  const info = port.info();
  const mode = args.mode;
  const gc = new GcMeter();
  // The idle clock counts 10 µs ticks (Date.now()'s 1 ms would make a
  // 100 µs spin last 1 to 2 ms).
  const idleSpinTicks = Number(args['idle-spin-us'] ?? 100) / 10;

  process.stdout.write(JSON.stringify({ ready: true, xdpMode: info.xdpMode, zeroCopy: info.zeroCopy[0], busyPoll: info.busyPoll.enabled, wait: waitMechanism(q), pollMode: policy }) + '\n');
  const w = await readWindow();
  if (mode === 'txonly') {
    // Every frame carries the benchmark frame once; alloc() hands out frames
    // whose data starts at dataOffset.
    const frame = buildFrame(w.mac, info.mac);
    for (let a = info.dataOffset; a + FRAME_LEN <= umem.length; a += info.frameSize) umem.set(frame, a);
  }

  let rx = 0;
  let tx = 0;
  let rx0 = 0, tx0 = 0, rx1 = 0, tx1 = 0;
  let phase = 0;
  let idleSince = 0; // 10 µs ticks since `tick0`; 0: not idle
  const tick0 = performance.now() - 1;
  let empty = 0;
  let waits = 0;
  let emptyPolls = 0; // receive() calls that found nothing (each is a native call)

  const swap = mode === 'macswap';
  const drop = mode === 'rxdrop';

  await new Promise((resolve, reject) => {
    const turn = () => {
      try {
        gc.tick(Date.now());
        // A step is one burst, or SPIN polls of an empty ring.
        for (let i = 0; i < TURN; i++) {
          // Date.now() allocates a heap number (16 bytes) per call: read
          // the clock every 16 steps, not per poll.
          if ((i & 15) === 0) {
            const t = Date.now();
            if (phase === 0 && t >= w.t0) { phase = 1; rx0 = rx; tx0 = tx; gc.mark(0); }
            if (phase === 1 && t >= w.t1) { phase = 2; rx1 = rx; tx1 = tx; gc.mark(1); }
            if (t >= w.tend) { resolve(); return; }
          }
          if (mode === 'txonly') {
            const n = q.alloc(burstSize);
            for (let k = 0; k < n; k++) lengths[k] = FRAME_LEN;
            if (n > 0) tx += q.transmit(n, 0, true);
            continue;
          }
          let n = 0;
          for (let k = 0; k < SPIN && n === 0; k++) {
            n = q.receive(burstSize);
            if (n === 0) emptyPolls++;
          }
          if (n === 0) {
            if ((++empty & 15) !== 0) continue; // the idle clock every 16 × SPIN empty polls
            // Kept as an integer count of 10 µs ticks, a small integer: a
            // clock value stored in a closure variable would be a new heap
            // number each time.
            const t = Math.floor((performance.now() - tick0) * 100);
            if (idleSince === 0) idleSince = t;
            else if (t - idleSince > idleSpinTicks) {
              idleSince = 0;
              waits++;
              // Sleep until packets arrive or the next window edge.
              const next = phase === 0 ? w.t0 : phase === 1 ? w.t1 : w.tend;
              waitReadable(port, q, next - Date.now() + 1).then(turn, reject);
              return;
            }
            continue;
          }
          empty = 0;
          idleSince = 0;
          rx += n;
          if (drop) {
            q.release(n);
            continue;
          }
          if (swap) {
            swapMacs(umem, addrs, n);
            tx += q.transmit(n, 0, true);
          }
        }
        setImmediate(turn);
      } catch (err) {
        reject(err);
      }
    };
    turn();
  });
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
  process.stderr.write(`${err && err.stack || err}\n`);
  process.exit(2);
});
