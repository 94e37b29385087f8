'use strict';
// What one native call costs: afxdp's burst calls on an idle port (nothing
// to receive, nothing to release), and, when bench/run.js could build it,
// a plain Node-API function with the same kind of arguments
// (bench/c/napi-baseline.c). Prints one JSON line, ns per call.
const { afxdp } = require('./lib/common');

function time(fn) {
  for (let i = 0; i < 100_000; i++) fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const n = 200_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / n);
  }
  return Math.round(best * 10) / 10;
}

async function main() {
  const args = {};
  for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
  const { openPort } = afxdp();
  // busyBudget 0: an empty receive() must not make a busy-polling syscall.
  const port = await openPort({ iface: args.iface, netns: args.netns, busyBudget: 0 });
  const q = port.queues[0];
  const out = {
    receiveEmpty: time(() => q.receive(64)),
    release0: time(() => q.release(0)),
  };
  port.close();
  if (args.baseline) {
    const { burst } = require(args.baseline);
    out.napiBaseline = time(() => burst(0, 0, 64));
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err?.stack || err}\n`);
  process.exit(2);
});
