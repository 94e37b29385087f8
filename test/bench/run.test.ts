// The benchmark as a user runs it (`npm run bench`), cut to one short
// repetition of rxdrop and idle: it builds its C programs, runs the C
// reference and both afxdp forwarders against the generator, prints the
// table, writes the JSON that `--from` prints again, and leaves no namespace
// behind. The figures themselves are the benchmark's business; here only
// their accounting is checked. --retries 0 --foreign-max 1000: cells
// disturbed by other processes are marked, not waited for or repeated, so
// the test stays short on a loaded machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privileged } from '../helpers/privileged';

const test = privileged();
const RUN = path.join(__dirname, '../../bench/run.js');

// The bench's own (bench/lib/harness.js names them afxb-...): other tests may run at the same time.
const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '')
  .filter((n) => n.startsWith('afxb-'));

interface Run {
  impl: string;
  mode: string;
  pps: number;
  cpuPct: number;
  busyPoll?: boolean;
  fwd: { rx: number; rxWindow: number; emptyPolls?: number; xdp: { rxDropped: number } };
  gen?: { sent: number };
}

test.serial('npm run bench: C reference, burst and stream forwarders each measured; the table and the JSON agree; nothing left behind', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bench-test-'));
  const json = path.join(dir, 'run.json');
  const before = namespaces();
  try {
    const out = execFileSync(process.execPath, [RUN, '--reps', '1', '--window', '1', '--idle', '1', '--idle-reps', '1',
      '--gc', '0', '--mode', 'rxdrop,idle', '--impl', 'c,burst,stream', '--retries', '0', '--foreign-max', '1000', '--verbose', '--json', json],
    { encoding: 'utf8', timeout: 100_000 });
    t.regex(out, /\| cell +\| C reference +\| afxdp burst +\| afxdp stream +\|/);
    const row = out.split('\n').find((l) => l.startsWith('| rxdrop, kpps (ratio)'));
    t.truthy(row, out);
    // Three numbers, the afxdp ones with a ratio to the C reference ('*': disturbed).
    t.regex(row!, /\| \d+\*? +\| \d+ \(\d+\.\d{3}×.*\| \d+ \(\d+\.\d{3}×/);
    t.regex(out, /\| idle CPU, % of a core/);
    t.regex(out, /busy polling: off in every forwarder/);

    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as { runs: Run[] };
    for (const impl of ['c', 'burst', 'stream']) {
      const rxdrop = result.runs.find((r) => r.impl === impl && r.mode === 'rxdrop');
      t.truthy(rxdrop, `${impl} rxdrop measured`);
      t.true(rxdrop!.pps > 0 && rxdrop!.fwd.rxWindow > 0, `${impl} received packets`);
      // Whatever the forwarder received or the kernel dropped for it, the generator sent.
      t.true(rxdrop!.fwd.rx + rxdrop!.fwd.xdp.rxDropped <= rxdrop!.gen!.sent, `${impl}: ${JSON.stringify(rxdrop!.fwd)} vs ${rxdrop!.gen!.sent} sent`);
      t.truthy(result.runs.find((r) => r.impl === impl && r.mode === 'idle'), `${impl} idle measured`);
      // Like with like: by default no forwarder busy-polls.
      t.false(rxdrop!.busyPoll, `${impl} busy polling`);
    }
    t.is(typeof result.runs.find((r) => r.impl === 'burst' && r.mode === 'rxdrop')!.fwd.emptyPolls, 'number');

    const again = execFileSync(process.execPath, [RUN, '--from', json], { encoding: 'utf8' });
    t.true(again.includes(row!), 'bench --from prints the same table');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(namespaces().filter((n) => !before.includes(n)), [], 'the bench removed its namespaces');
});

interface LoadRun {
  impl: string;
  policy: string;
  target: string | number;
  rate: number;
  windowS: number;
  na?: string;
  sent: number;
  back: number;
  lost: number;
  cpuPct: number;
  lat: { samples: number; minNs: number; p50Ns: number; p90Ns: number; p99Ns: number; p999Ns: number; maxNs: number };
}

test.serial('npm run bench -- --mode latency: every forwarder measured; percentiles ordered, lost = sent - back; the table and the JSON agree', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bench-test-'));
  const json = path.join(dir, 'run.json');
  const before = namespaces();
  const testpmd = execFileSync('sh', ['-c', 'command -v dpdk-testpmd || true'], { encoding: 'utf8' }).trim() !== '';
  try {
    // 1 kpps, and half of a given maximum of 2 kpps: both rows at 1 kpps, 1 s windows.
    // --foreign-max 1000 and --retries 0 (as above): on a loaded machine the
    // cells are marked disturbed rather than waited for or repeated.
    const out = execFileSync(process.execPath, [RUN, '--mode', 'latency', '--window', '1', '--load-reps', '1', '--lat-rate', '1000',
      '--max-pps', '2000', '--retries', '0', '--foreign-max', '1000', '--json', json], { encoding: 'utf8', timeout: 100_000 });
    t.regex(out, /\| policy, rate +\| C reference +\| afxdp burst +\| afxdp stream +\| afxdp fwd \(CLI\) +\| DPDK testpmd +\|/);
    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as { load: { runs: LoadRun[] } };
    const runs = result.load.runs;
    const rows = { 'lat-rate': out.split('\n').find((l) => l.startsWith('| default, 1 kpps ')), 0.5: out.split('\n').find((l) => l.startsWith('| default, 50 % of max ')) };
    for (const [target, row] of Object.entries(rows)) {
      t.truthy(row, out);
      const cells = row!.split('|').slice(2, -1).map((c) => c.trim());
      const impls = ['c', 'burst', 'stream', 'cli', ...(testpmd ? ['testpmd'] : [])];
      impls.forEach((impl, k) => {
        const r = runs.find((x) => x.impl === impl && String(x.target) === target);
        t.truthy(r && !r.na, `${impl} at ${target} measured: ${r?.na}`);
        if (!r || r.na) return;
        t.is(r.rate, 1000);
        // The generator offered the rate: about 1000 frames in the 1 s window.
        t.true(Math.abs(r.sent - r.rate * r.windowS) <= 0.02 * r.rate * r.windowS + 2, `${impl}: sent ${r.sent}`);
        t.is(r.lost, r.sent - r.back, `${impl}: lost = sent - back`);
        t.true(r.lost >= 0 && r.back > 0, `${impl}: back ${r.back} of ${r.sent}`);
        t.is(r.lat.samples, r.back);
        const l = r.lat;
        t.true(l.minNs > 0 && l.minNs <= l.p50Ns && l.p50Ns <= l.p90Ns && l.p90Ns <= l.p99Ns && l.p99Ns <= l.p999Ns && l.p999Ns <= l.maxNs,
          `${impl}: ${JSON.stringify(l)}`);
        t.true(r.cpuPct > 0, `${impl}: forwarder CPU ${r.cpuPct}`);
        // The cell: "p50 / p99 / p99.9 / max, lost N", µs rounded to 0.1 below 10 µs, else to 1.
        const m = /^([\d.]+) \/ ([\d.]+) \/ ([\d.]+) \/ ([\d.]+), lost (\d+)/.exec(cells[k] ?? '');
        t.truthy(m, `${impl} cell ${cells[k]}`);
        if (!m) return;
        [l.p50Ns, l.p99Ns, l.p999Ns, l.maxNs].forEach((ns, j) => {
          t.true(Math.abs(Number(m[j + 1]) - ns / 1000) <= 0.51, `${impl}: ${m[j + 1]} µs vs ${ns} ns`);
        });
        t.is(Number(m[5]), r.lost);
      });
      if (!testpmd) t.regex(cells[4] ?? '', /^n\/a \(dpdk-testpmd not on PATH\)/);
    }
    const again = execFileSync(process.execPath, [RUN, '--from', json], { encoding: 'utf8' });
    for (const row of Object.values(rows)) t.true(again.includes(row!), 'bench --from prints the same table');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(namespaces().filter((n) => !before.includes(n)), [], 'the bench removed its namespaces');
});

interface ScaleRun {
  impl: string;
  mode: string;
  threads: number;
  na?: string;
  pps: number;
  packets: number;
  perQueue: { queue: number; pps: number }[];
  threadsCpu?: { tid: number; queues: number[]; cpuPct: number; ownCpuPct: number }[];
  tasks: { tid: number; name: string; cpuPct: number }[];
  fwd: { perQueue?: { queue: number; rxWindow: number; txWindow: number }[] } | null;
  gen: { rxWindow: number; perQueue: { queue: number; rxWindow: number }[] };
}

test.serial('npm run bench -- --mode scaling: both queues carry traffic, per-queue and per-thread counts add up; afxdp without --nb-cores is marked, not fatal', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bench-test-'));
  const json = path.join(dir, 'run.json');
  const before = namespaces();
  try {
    const out = execFileSync(process.execPath, [RUN, '--mode', 'scaling', '--window', '1', '--scale-reps', '1', '--retries', '0',
      '--foreign-max', '1000', '--json', json], { encoding: 'utf8', timeout: 150_000 });
    t.regex(out, /\| cell +\| C reference +\| afxdp fwd +\| afxdp \/ C +\|/);
    const result = JSON.parse(fs.readFileSync(json, 'utf8')) as { scale: { nbCores: boolean; runs: ScaleRun[] } };
    const { runs, nbCores } = result.scale;
    t.is(runs.length, 8, 'txonly and macswap × C and afxdp × 1 and 2 threads');
    for (const r of runs) {
      const what = `${r.impl} ${r.mode} ${r.threads}`;
      if (r.impl === 'cli' && r.threads === 2 && !nbCores) {
        t.is(r.na, 'not supported by this build (afxdp fwd has no --nb-cores)', what);
        continue;
      }
      t.falsy(r.na, `${what} measured: ${r.na}`);
      if (r.na) continue;
      // Both queues carry traffic, and the generator's queues sum to its total.
      t.is(r.gen.perQueue.length, 2, what);
      for (const q of r.gen.perQueue) t.true(q.rxWindow > 0, `${what}: queue ${q.queue} carried nothing`);
      t.is(r.gen.perQueue.reduce((s, q) => s + q.rxWindow, 0), r.gen.rxWindow, what);
      t.is(r.packets, r.gen.rxWindow, what);
      if (r.impl === 'c') {
        // One entry per thread, queue k on thread k mod N, every queue once.
        t.is(r.threadsCpu?.length, r.threads, what);
        t.deepEqual(r.threadsCpu!.flatMap((x) => x.queues).sort(), [0, 1], what);
        for (const x of r.threadsCpu!) t.true(x.cpuPct > 0 && x.ownCpuPct > 0, `${what}: thread ${x.tid} CPU ${x.cpuPct} (own ${x.ownCpuPct})`);
        // Both forwarder queues moved packets in the window.
        for (const q of r.fwd!.perQueue!) t.true((r.mode === 'txonly' ? q.txWindow : q.rxWindow) > 0, `${what}: forwarder queue ${q.queue}`);
      } else {
        t.true(r.tasks.length > 0 && r.tasks[0]!.cpuPct > 0, `${what}: afxdp threads ${JSON.stringify(r.tasks)}`);
      }
    }
    const row = out.split('\n').find((l) => l.startsWith('| macswap, scaling 2/1'));
    t.truthy(row, out);
    const again = execFileSync(process.execPath, [RUN, '--from', json], { encoding: 'utf8' });
    t.true(again.includes(row!), 'bench --from prints the same table');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(namespaces().filter((n) => !before.includes(n)), [], 'the bench removed its namespaces');
});
