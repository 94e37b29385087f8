'use strict';
// The UMEM-sharing choice for queues on worker threads: two workers each
// take and give back 64 frames per burst (alloc + release: the frame
// ledger only, no syscall) on their own queue of a 2-queue port, for
// --seconds. With one UMEM per queue (afxdp's default) each thread locks
// its own ledger; with shared_umem=1 both lock one. Prints one JSON line:
// bursts per second per thread and the ns per burst, for each layout.
//
//   node bench/umem-sharing.js --iface veth0 [--netns ns] [--seconds 2] [--reps 3]
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { afxdp } = require('./lib/common');

const BURST = 64;

if (!isMainThread) {
  const port = afxdp().attachPort(workerData.handle);
  const q = port.queues[0];
  const until = performance.now() + workerData.seconds * 1000;
  let bursts = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 1000; i++) {
      const n = q.alloc(BURST);
      q.release(n);
    }
    bursts += 1000;
  }
  port.close();
  parentPort.postMessage({ bursts });
} else {
  main().catch((err) => {
    process.stderr.write(`${err?.stack || err}\n`);
    process.exit(2);
  });
}

async function run(args, shared) {
  const { openPort } = afxdp();
  const port = await openPort({ iface: args.iface, netns: args.netns, queueCount: 2, sharedUmem: shared, busyBudget: 0 });
  try {
    const seconds = Number(args.seconds ?? 2);
    const results = await Promise.all([0, 1].map((q) => new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { handle: port.transfer([q]), seconds } });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    const perThread = results.map((r) => Math.round(r.bursts / seconds));
    return { perThread, nsPerBurst: perThread.map((b) => Math.round(1e9 / b)) };
  } finally {
    port.close();
  }
}

async function main() {
  const args = {};
  for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
  if (!args.iface) throw new Error('--iface is required (a 2-queue interface)');
  const reps = Number(args.reps ?? 3);
  const out = { burst: BURST, ownUmem: [], sharedUmem: [] };
  for (let r = 0; r < reps; r++) {
    out.ownUmem.push(await run(args, false));
    out.sharedUmem.push(await run(args, true));
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
