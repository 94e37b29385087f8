// Measures the wakeup backends (docs/design.md, "Event-driven wakeups").
// As root, on a machine with >= 2 cores:
//   taskset -c 0 node --import tsx test/perf/wakeup-measure.ts [seconds-idle] [repeats]
// (the receiver on CPU 0; traffic sources are pinned to CPU 1).
//
// For each receiver — 'uv' (libuv uv_poll on Node's loop), 'thread' (poll
// thread + thread-safe function) and 'spin' (a setImmediate loop calling
// receive(), i.e. what a poll-mode driver does) — on a fresh veth lab with
// the traffic source in another process:
//   idle      CPU of this process over N s with the port open and armed
//   wakeup    cost of one wakeup: a packet left on the ring keeps the queue
//             readable, so the backend calls back as fast as it can (1 s)
//   latency   1 packet per ~1 ms: send stamp (CLOCK_MONOTONIC) → JS handler
//   paced     the benchmark's AF_XDP generator (bench/c/gen.c) at 20 kpps and
//             200 kpps: CPU %, µs CPU per packet, packets per wakeup, loss
//   flood     the generator flat out: pps received, CPU %
// Each cell is the median of `repeats` runs (default 3).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLab, Lab } from '../helpers/lab';
import { sleep, testFrame } from '../helpers/frames';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { openPort, Port, Queue } from '../../lib/index';
import { setDefaultWakeupMode } from '../../lib/port/waiter';

type Mode = 'uv' | 'thread' | 'spin';
const idleSeconds = Number(process.argv[2] ?? 10);
const repeats = Number(process.argv[3] ?? 3);
const SENDER = path.join(__dirname, 'sender.ts');
const GEN = path.join(os.tmpdir(), `afxdp-measure-gen-${process.pid}`);
execFileSync('cc', ['-O2', '-o', GEN, path.join(__dirname, '../../bench/c/gen.c')]);
process.on('exit', () => fs.rmSync(GEN, { force: true }));

/** The AF_XDP generator at `rate` pps (0: flat out) for `ms`; resolves its report. */
function gen(lab: Lab, rate: number, ms: number): Promise<{ sent: number }> {
  const now = Date.now();
  const args = ['-c', '1', GEN, '--netns', lab.peerNs, '--iface', lab.peerIf, '--mode', 'tx', '--peer-mac', lab.portMac,
    '--rate', String(rate), '--t0', String(now + 200), '--t1', String(now + 200 + ms), '--tend', String(now + 300 + ms)];
  return new Promise((resolve, reject) => {
    execFile('taskset', args, { timeout: ms + 30_000 }, (err, out) => {
      if (err) reject(err);
      else resolve(JSON.parse(out));
    });
  });
}

function cpuTicks(): number {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
}

function sender(lab: Lab, mode: 'paced' | 'flood', durationMs: number, perTick = 1): Promise<number> {
  const args = JSON.stringify({ iface: lab.peerIf, netns: lab.peerNs, dst: lab.portMac, src: lab.peerMac, mode, perTick, durationMs });
  return new Promise((resolve, reject) => {
    execFile('taskset', ['-c', '1', process.execPath, '--import', 'tsx', SENDER, args], { timeout: durationMs + 30_000 }, (err, out) => {
      if (err) reject(err);
      else resolve(JSON.parse(out).sent as number);
    });
  });
}

/** Start receiving (drop) with `mode`; `onPacket(q, i)` sees each packet. Returns stop(). */
function receiver(port: Port, mode: Mode, onPacket?: (q: Queue, i: number) => void): { stop(): void; wakeups(): number; packets(): number } {
  let wakeups = 0;
  let packets = 0;
  const drain = (q: Queue) => {
    wakeups++;
    for (let b = 0; b < 16; b++) {
      const n = q.receive();
      if (n === 0) break;
      if (onPacket) for (let i = 0; i < n; i++) onPacket(q, i);
      packets += n;
      q.release(n);
    }
  };
  if (mode === 'spin') {
    let on = true;
    const loop = () => {
      if (!on) return;
      for (const q of port.queues) drain(q);
      setImmediate(loop);
    };
    setImmediate(loop);
    return { stop: () => { on = false; }, wakeups: () => wakeups, packets: () => packets };
  }
  port.on('readable', drain);
  return { stop: () => port.off('readable', drain), wakeups: () => wakeups, packets: () => packets };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function measure(mode: Mode): Promise<Record<string, number | string>> {
  if (mode !== 'spin') setDefaultWakeupMode(mode);
  const lab = createLab();
  const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
  const row: Record<string, number | string> = { mode: mode === 'spin' ? 'spin' : port.waiter().mode };
  try {
    // idle
    let r = receiver(port, mode);
    await sleep(200);
    let c0 = cpuTicks();
    let t0 = Date.now();
    await sleep(idleSeconds * 1000);
    row.idleCpuPct = +((cpuTicks() - c0) / ((Date.now() - t0) / 1000)).toFixed(2);
    r.stop();

    // wakeup cost: an undrained packet keeps the queue ready
    if (mode !== 'spin') {
      const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
      peer.send([testFrame(lab.portMac, lab.peerMac, 0)]);
      peer.close();
      await sleep(20);
      let calls = 0;
      const w = port.waiter().watch(0, () => {
        calls++;
      });
      w.set(1);
      c0 = cpuTicks();
      t0 = Date.now();
      await sleep(1000);
      const secs = (Date.now() - t0) / 1000;
      const ticks = cpuTicks() - c0;
      w.close();
      row.wakeupsPerSec = Math.round(calls / secs);
      row.usCpuPerWakeup = +((ticks * 10_000) / Math.max(1, calls)).toFixed(2);
      const q = port.queues[0];
      q.release(q.receive());
    } else {
      row.wakeupsPerSec = 'n/a';
      row.usCpuPerWakeup = 'n/a';
    }

    // latency
    const lat: number[] = [];
    r = receiver(port, mode, (q, i) => {
      const a = q.addrs[i]!;
      const u = q.umem;
      let stamp = 0n;
      for (let k = 0; k < 8; k++) stamp = (stamp << 8n) | BigInt(u[a + 48 + k]!);
      lat.push(Number(process.hrtime.bigint() - stamp) / 1000);
    });
    await sender(lab, 'paced', 3000, 1);
    await sleep(50);
    r.stop();
    lat.sort((x, y) => x - y);
    row.latencyP50us = +pct(lat, 0.5).toFixed(1);
    row.latencyP99us = +pct(lat, 0.99).toFixed(1);
    row.latencySamples = lat.length;

    for (const [name, rate] of [['paced20k', 20_000], ['paced200k', 200_000], ['flood', 0]] as const) {
      r = receiver(port, mode);
      const base = port.stats().rxPackets;
      c0 = cpuTicks();
      t0 = Date.now();
      const report = await gen(lab, rate, 5000);
      await sleep(50);
      const secs = (Date.now() - t0) / 1000;
      const ticks = cpuTicks() - c0;
      r.stop();
      const got = port.stats().rxPackets - base;
      row[`${name}RxPps`] = Math.round(got / 5.3);
      if (rate > 0) row[`${name}Loss`] = report.sent - got;
      row[`${name}CpuPct`] = +(ticks / secs).toFixed(1);
      row[`${name}UsPerPkt`] = +((ticks * 10_000) / Math.max(1, got)).toFixed(2);
      row[`${name}PktsPerWakeup`] = +(got / Math.max(1, r.wakeups())).toFixed(1);
    }
  } finally {
    port.close();
    lab.destroy();
    setDefaultWakeupMode(undefined);
  }
  return row;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

(async () => {
  const table: Record<string, Record<string, number | string>> = {};
  for (const mode of ['uv', 'thread', 'spin'] as Mode[]) {
    const runs = [];
    for (let i = 0; i < repeats; i++) {
      runs.push(await measure(mode));
      console.error(JSON.stringify(runs[runs.length - 1]));
    }
    const row: Record<string, number | string> = {};
    const run0 = runs[0]!; // repeats >= 1
    for (const key of Object.keys(run0).filter((k) => k !== 'mode')) {
      row[key] = typeof run0[key] === 'number' ? median(runs.map((r) => r[key] as number)) : run0[key]!;
    }
    table[String(run0.mode)] = row;
  }
  // One column per mode, one row per metric.
  const metrics = Object.keys(Object.values(table)[0] ?? {});
  console.table(Object.fromEntries(metrics.map((m) => [m, Object.fromEntries(Object.entries(table).map(([k, v]) => [k, v[m]]))])));
})();
