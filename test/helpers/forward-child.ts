// A forwarding process for GC/heap measurements: the port under test in its
// own process, so the test's traffic generator (which allocates a Buffer
// per frame) does not pollute the counts. argv[2]: JSON
// {iface, netns, api: 'stream' | 'burst', mode?: 'uv' | 'thread'}.
// stdin lines: 'mark' → {rx, tx, gcs, scavenges, heapUsed} on stdout; 'exit'.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import readline from 'node:readline';
import { pipeline } from 'node:stream';
import { openPort, macswap, Queue } from '../../lib/index';
import { setDefaultWakeupMode } from '../../lib/port/waiter';

const o = JSON.parse(process.argv[2]!) as { iface: string; netns: string; api: 'stream' | 'burst'; mode?: 'uv' | 'thread' };
// Scavenges measure allocation; major GCs come from V8's own old-generation
// heuristics (a few early in a process's life), so they are counted apart.
let gcs = 0;
let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcs++;
    if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  }
}).observe({ entryTypes: ['gc'] });

(async () => {
  setDefaultWakeupMode(o.mode);
  const port = await openPort({ iface: o.iface, netns: o.netns });
  if (o.api === 'stream') {
    pipeline(port.readable(), macswap(), port.writable(), () => {});
  } else {
    port.on('readable', (q: Queue) => {
      for (let k = 0; k < 16; k++) {
        const n = q.receive();
        if (n === 0) return;
        const u = q.umem;
        for (let i = 0; i < n; i++) {
          const a = q.addrs[i]!; // i < n, what receive() returned
          for (let b = 0; b < 6; b++) {
            const t = u[a + b]!;
            u[a + b] = u[a + 6 + b]!;
            u[a + 6 + b] = t;
          }
        }
        q.transmit(n, 0, true);
      }
    });
  }
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'mark') {
      const s = port.stats();
      process.stdout.write(`${JSON.stringify({ rx: s.rxPackets, tx: s.txPackets, gcs, scavenges, heapUsed: process.memoryUsage().heapUsed })}\n`);
    } else if (line === 'exit') {
      port.close();
      process.exit(0);
    }
  });
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
})();
