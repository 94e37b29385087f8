// Poll policies (busy, adaptive, event) as a user meets them: `afxdp fwd
// --poll-mode X` forwards a timed trickle (a ping-pong, one frame in flight,
// ~1 kpps) from an AF_PACKET peer, and the round trip's p99 stays under a
// loose per-policy bound. Before the policies, the CLI napped 1 ms on
// setTimeout between packets at this rate (p50 ~0.5 ms, p99 ~1.1 ms).
// The real figures are the benchmark's (bench/run.js --mode latency).
import { execFileSync } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { cpuPercentDuring } from '../helpers/cpu';
import { createLab, Lab } from '../helpers/lab';
import { frameSeq, macBytes, sleep, testFrame } from '../helpers/frames';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { POLL_MODES, PollMode } from '../../lib/port/poll-loop';
import { Running, runAfxdp } from '../cli/helpers';

const test = privileged();

const FRAMES = 1000;
// Loose: the machine is shared and loaded in CI. The naps gave p99 ~1.1 ms
// at this rate and p50 ~0.5 ms; the bounds must fail that and pass a busy
// host.
const P99_BOUND_US: Record<PollMode, number> = { busy: 600, adaptive: 900, event: 900 };
const P50_BOUND_US = 250;

function xdpAttached(lab: Lab): boolean {
  const [link] = JSON.parse(execFileSync('ip', ['-n', lab.portNs, '-j', '-d', 'link', 'show', 'dev', lab.portIf], { encoding: 'utf8' }));
  return link.xdp !== undefined;
}

async function withFwd<T>(t: ExecutionContext, lab: Lab, args: string[], fn: (run: Running, start: any) => Promise<T>): Promise<{ result: T; final: any }> {
  const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--json',
    '--forward-mode', 'macswap', '--stats-period', '0', ...args]);
  try {
    const start = await run.waitFor((o) => o.type === 'start');
    const result = await fn(run, start);
    const exit = await run.stop('SIGINT');
    t.is(exit.code, 0, run.stderr);
    const final = run.objects.find((o) => o.type === 'final');
    t.false(xdpAttached(lab), 'the XDP program was detached');
    return { result, final };
  } finally {
    run.kill();
  }
}

/**
 * Ping-pong `count` frames, one in flight, one per `gapMs`; returns the
 * round trips in µs (frames not back within 100 ms are left out).
 */
async function pingPong(peer: PacketSocket, lab: Lab, count: number, gapMs: number): Promise<number[]> {
  const rtts: number[] = [];
  const mine = macBytes(lab.peerMac);
  for (let i = 0; i < count; i++) {
    const frame = testFrame(lab.portMac, lab.peerMac, i);
    const t0 = process.hrtime.bigint();
    peer.send([frame]);
    const deadline = t0 + 100_000_000n;
    for (let back = false; !back && process.hrtime.bigint() < deadline;) {
      for (const f of peer.receive(1, 20)) {
        // Our own outgoing frame is seen too: the echo has our MAC as destination.
        if (frameSeq(f) === i && f.subarray(0, 6).equals(mine)) {
          rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
          back = true;
        }
      }
    }
    await sleep(gapMs);
  }
  return rtts;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

for (const mode of POLL_MODES) {
  test.serial(`fwd --poll-mode ${mode}: a 1 kpps ping-pong comes back whole, p99 under ${P99_BOUND_US[mode]} µs`, async (t) => {
    const lab = createLab();
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const { result: rtts, final } = await withFwd(t, lab, ['--poll-mode', mode], async (_run, start) => {
        t.is(start.pollMode, mode, '--json reports the policy');
        peer.drain();
        await pingPong(peer, lab, 50, 1); // warm-up
        return pingPong(peer, lab, FRAMES, 1);
      });
      t.is(final.pollMode, mode);
      t.is(rtts.length, FRAMES, 'no frame lost');
      const sorted = [...rtts].sort((a, b) => a - b);
      const p50 = quantile(sorted, 0.5), p99 = quantile(sorted, 0.99), p999 = quantile(sorted, 0.999);
      t.log(`${mode}: round trip p50 ${p50.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs, p99.9 ${p999.toFixed(1)} µs, max ${sorted[sorted.length - 1].toFixed(1)} µs`);
      t.true(p50 < P50_BOUND_US, `p50 ${p50.toFixed(1)} µs`);
      t.true(p99 < P99_BOUND_US[mode], `p99 ${p99.toFixed(1)} µs`);
    } finally {
      peer.close();
      lab.destroy();
    }
  });
}

test.serial('fwd default policy is adaptive and idles below 1 % of a core, then wakes for the next frame', async (t) => {
  const lab = createLab();
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    await withFwd(t, lab, [], async (run, start) => {
      t.is(start.pollMode, 'adaptive');
      peer.drain();
      t.is((await pingPong(peer, lab, 20, 1)).length, 20);
      await sleep(200);
      const used = await cpuPercentDuring(() => sleep(3000), undefined, run.child.pid!);
      t.log(`idle forwarder CPU (adaptive): ${used.toFixed(3)} % of a core`);
      t.true(used < 1, `idle CPU ${used.toFixed(3)} %`);
      t.is((await pingPong(peer, lab, 20, 1)).length, 20, 'woke up for every frame');
    });
  } finally {
    peer.close();
    lab.destroy();
  }
});

test.serial('fwd --poll-mode busy stops within 1 s of SIGINT', async (t) => {
  const lab = createLab();
  try {
    const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--json', '--poll-mode', 'busy']);
    try {
      await run.waitFor((o) => o.type === 'start');
      await sleep(300);
      const t0 = Date.now();
      const exit = await run.stop('SIGINT');
      const ms = Date.now() - t0;
      t.is(exit.code, 0, run.stderr);
      t.true(ms < 1000, `stopped after ${ms} ms`);
      t.false(xdpAttached(lab));
    } finally {
      run.kill();
    }
  } finally {
    lab.destroy();
  }
});

test.serial('fwd --poll-mode rejects an unknown policy, naming the choices', (t) => {
  const r = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--poll-mode', 'spin']);
  t.is(r.status, 2);
  t.regex(r.stderr, /--poll-mode must be one of busy, adaptive, event/);
});
