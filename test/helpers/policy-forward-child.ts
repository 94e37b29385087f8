// A macswap forwarder under a poll policy, in a process of its own (the
// test's AF_PACKET peer blocks its own event loop while it waits).
// argv[2]: JSON {iface, netns, api: 'stream' | 'readable' | 'runLoop', pollMode}.
// Prints {"ready":true,"pollMode":...}; exits on stdin end.
import { pipeline } from 'node:stream';
import { openPort, macswap, runLoop, swapMacs, Queue } from '../../lib/index';
import type { PollMode } from '../../lib/index';

const o = JSON.parse(process.argv[2]!) as { iface: string; netns: string; api: 'stream' | 'readable' | 'runLoop'; pollMode: PollMode };

(async () => {
  const port = await openPort({ iface: o.iface, netns: o.netns, pollMode: o.pollMode });
  let pollMode: string = port.config.pollMode;
  const ac = new AbortController();
  if (o.api === 'stream') {
    const rx = port.readable();
    pollMode = rx.pollMode;
    pipeline(rx, macswap(), port.writable(), () => {});
  } else if (o.api === 'readable') {
    port.on('readable', (q: Queue) => {
      const n = q.receive();
      if (n === 0) return;
      swapMacs(q.umem, q.addrs, n);
      q.transmit(n, 0, true);
    });
  } else {
    const q = port.queues[0];
    const loop = runLoop(port.queues, () => {
      const n = q.receive();
      if (n > 0) {
        swapMacs(q.umem, q.addrs, n);
        q.transmit(n, 0, true);
      }
      return n;
    }, { pollMode: o.pollMode, signal: ac.signal });
    pollMode = loop.pollMode;
  }
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => {
    ac.abort();
    port.close();
    process.exit(0);
  });
  process.stdout.write(`${JSON.stringify({ ready: true, pollMode })}\n`);
})();
