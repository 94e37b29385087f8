// Poll policies (busy, adaptive, event) as a user meets them: `afxdp fwd
// --poll-mode X` forwards a timed trickle (a ping-pong, one frame in flight,
// 1-3 ms apart) from an AF_PACKET peer, and the round trip's p99 stays under a
// loose per-policy bound. Before the policies, the CLI napped 1 ms on
// setTimeout between packets at this rate (p50 ~0.5 ms, p99 ~1.1 ms).
// The real figures are the benchmark's (bench/run.js --mode latency).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { cpuPercentDuring } from '../helpers/cpu';
import { createLab, Lab } from '../helpers/lab';
import { frameSeq, macBytes, sleep, testFrame } from '../helpers/frames';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { POLL_MODES, PollMode } from '../../lib/fwd/poll-loop';
import { Running, runAfxdp } from '../cli/helpers';
import { attachedXdp } from '../helpers/faults';

const test = privileged();

const FRAMES = 500;
const ATTEMPTS = 3;
// Loose, for a loaded CI machine: the bounds must hold in one of ATTEMPTS
// runs of FRAMES frames. The 1 ms timer naps this replaced put the p50 at
// ~0.5 ms or more at this rate (a frame waits out the rest of a nap), which
// the p50 bound fails; a sleeping loop that misses its wakeup (it would
// wait for the 1 s health check or a timeout) fails the p99 bound. With
// both cores of a 2-vCPU machine saturated by other processes, the p50 was
// 150-270 µs and the p99 1.4-17 ms (the scheduler's time slices: every
// process here competes for a core); on a quieter machine 0.13-0.5 ms.
const P99_BOUND_US: Record<PollMode, number> = { busy: 50_000, adaptive: 50_000, event: 50_000 };
const P50_BOUND_US = 400;

async function withFwd<T>(t: ExecutionContext, lab: Lab, args: string[], fn: (run: Running, start: any) => Promise<T>): Promise<{ result: T; final: any }> {
  const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--json',
    '--forward-mode', 'macswap', '--stats-period', '0', ...args]);
  try {
    const start = await run.waitFor((o) => o.type === 'start');
    const result = await fn(run, start);
    const exit = await run.stop('SIGINT');
    t.is(exit.code, 0, run.stderr);
    const final = run.objects.find((o) => o.type === 'final');
    t.false(attachedXdp(lab.portNs, lab.portIf).length > 0, 'the XDP program was detached');
    return { result, final };
  } finally {
    run.kill();
  }
}

/**
 * Ping-pong `count` frames, one in flight, 1-3 ms apart (a random phase
 * against anything periodic in the forwarder); returns the round trips in
 * µs (frames not back within 100 ms are left out).
 */
async function pingPong(peer: PacketSocket, lab: Lab, count: number): Promise<number[]> {
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
    const until = Date.now() + 1 + Math.random() * 2;
    while (Date.now() < until) await sleep(1);
  }
  return rtts;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN; // NaN: no samples
}

for (const mode of POLL_MODES) {
  test.serial(`fwd --poll-mode ${mode}: a ~500 pps ping-pong comes back whole, p99 under ${P99_BOUND_US[mode]} µs`, async (t) => {
    const lab = createLab();
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const { result: runs, final } = await withFwd(t, lab, ['--poll-mode', mode], async (_run, start) => {
        t.is(start.pollMode, mode, '--json reports the policy');
        peer.drain();
        await pingPong(peer, lab, 50); // warm-up
        const out: { lost: number; p50: number; p99: number }[] = [];
        for (let a = 0; a < ATTEMPTS; a++) {
          const rtts = await pingPong(peer, lab, FRAMES);
          const sorted = [...rtts].sort((x, y) => x - y);
          const r = { lost: FRAMES - rtts.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
          t.log(`${mode}: round trip p50 ${r.p50.toFixed(1)} µs, p99 ${r.p99.toFixed(1)} µs, max ${sorted[sorted.length - 1]!.toFixed(1)} µs, lost ${r.lost}`);
          out.push(r);
          if (r.p50 < P50_BOUND_US && r.p99 < P99_BOUND_US[mode]) break;
        }
        return out;
      });
      t.is(final.pollMode, mode);
      t.true(runs.every((r) => r.lost === 0), 'no frame lost');
      const best = runs.at(-1);
      t.true(best !== undefined && best.p50 < P50_BOUND_US && best.p99 < P99_BOUND_US[mode],
        `in ${runs.length} runs of ${FRAMES} frames, none had p50 < ${P50_BOUND_US} µs and p99 < ${P99_BOUND_US[mode]} µs`);
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
      t.is((await pingPong(peer, lab, 20)).length, 20);
      await sleep(200);
      const used = await cpuPercentDuring(() => sleep(3000), undefined, run.child.pid!);
      t.log(`idle forwarder CPU (adaptive): ${used.toFixed(3)} % of a core`);
      t.true(used < 1, `idle CPU ${used.toFixed(3)} %`);
      t.is((await pingPong(peer, lab, 20)).length, 20, 'woke up for every frame');
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
      t.false(attachedXdp(lab.portNs, lab.portIf).length > 0);
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

// The same policies through the library: streams, port 'readable' and
// runLoop() (the port's pollMode option; the stream and the loop report it).
for (const api of ['stream', 'readable', 'runLoop'] as const) {
  for (const mode of POLL_MODES) {
    test.serial(`${api} with pollMode ${mode}: a ping-pong comes back whole, p50 under ${P50_BOUND_US} µs`, async (t) => {
      const lab = createLab();
      const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '../helpers/policy-forward-child.ts'),
        JSON.stringify({ iface: lab.portIf, netns: lab.portNs, api, pollMode: mode })], { stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        const [line] = (await Promise.race([once(readline.createInterface({ input: child.stdout }), 'line'),
          sleep(20_000).then(() => ['{}'])])) as [string];
        t.deepEqual(JSON.parse(line), { ready: true, pollMode: mode });
        peer.drain();
        await pingPong(peer, lab, 20); // warm-up
        let best = { lost: 0, p50: Infinity, p99: Infinity };
        for (let a = 0; a < ATTEMPTS && !(best.p50 < P50_BOUND_US && best.p99 < P99_BOUND_US[mode]); a++) {
          const rtts = (await pingPong(peer, lab, 200)).sort((x, y) => x - y);
          best = { lost: 200 - rtts.length, p50: quantile(rtts, 0.5), p99: quantile(rtts, 0.99) };
          t.log(`${api} ${mode}: p50 ${best.p50.toFixed(1)} µs, p99 ${best.p99.toFixed(1)} µs, lost ${best.lost}`);
          t.is(best.lost, 0, 'no frame lost');
        }
        t.true(best.p50 < P50_BOUND_US && best.p99 < P99_BOUND_US[mode]);
      } finally {
        child.stdin.end();
        await Promise.race([once(child, 'exit'), sleep(3000)]);
        child.kill('SIGKILL');
        peer.close();
        lab.destroy();
      }
    });
  }
}
