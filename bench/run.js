#!/usr/bin/env node
'use strict';
// afxdp benchmark: `npm run bench` (as root). bench/README.md says what it measures.
// Over 600 lines: one lab, one scheduler of cells and one table printer shared
// by the throughput, GC, latency and partial-load measurements.
//
// Two network namespaces joined by a veth pair. The generator (bench/c/gen.c,
// raw AF_XDP rings) runs in one, pinned to CPU 0; in the other, pinned to
// CPU 1, one after another: the C reference forwarder (bench/c/fwd.c), afxdp
// through the burst API (bench/fwd-burst.js) and through the stream API
// (bench/fwd-stream.js). Cells: macswap, rxdrop, txonly, idle, plus a V8
// GC/heap check for the afxdp forwarders. Each cell is repeated (implementations
// interleaved within a repetition) and the median is reported.
//
// Latency and partial load (modes latency, cpuload): macswap at a fixed rate
// offered by the generator's latency mode (gen --mode lat: it timestamps
// each frame as it posts it and spins on its rx ring), through the same
// three forwarders plus `afxdp fwd --forward-mode macswap` (cli) and
// dpdk-testpmd when installed, for each --poll-modes policy: round trip
// percentiles at --lat-rate and at half the forwarder's maximum rate, and
// forwarder CPU at 10 %, 50 % and 100 % of it.
//
// Scaling (mode scaling): a second lab whose veth has 2 queues a side; the
// generator sends on (or, for txonly, receives on) both queues from one
// thread on CPU 0; txonly and macswap through the C reference with 1 and 2
// threads (bench/c/fwd.c --queues 2 --threads N) and `afxdp fwd
// --nb-cores N` on a queue_count=2 port; per-queue rates, each thread's CPU
// (/proc/<pid>/task/*/stat) and the 2/1 scaling ratios.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { sh, safe, sleep, sleepUntil, machine, cleanup, removeStaleLabs, createLab, startProc, waitLine, waitText, stop, finish, build, preflightLab } = require('./lib/harness');
const procstat = require('./lib/procstat');

const { TICK_NS, procTicks, sysTicks, kernelSoftirqPids } = procstat;

const ROOT = path.join(__dirname, '..');
const USAGE = `usage: node bench/run.js [options]      (as root; npm run bench -- [options])
  --quick            1 repetition, 2 s windows, 5 s idle, 3 s GC runs (about 3 minutes)
                     (default: about 13 minutes)
  --reps N           repetitions of each traffic cell (default 7)
  --idle-reps N      repetitions of each idle cell (default 3)
  --window S         measurement window of a traffic cell in seconds (default 3)
  --idle S           idle window in seconds (default 10)
  --gc S             window of each GC check run in seconds (default 10; 0 skips)
  --impl LIST        among c,burst,stream,cli,testpmd (default all; the throughput cells run
                     c,burst,stream; cli is \`afxdp fwd --forward-mode macswap\`, testpmd is
                     dpdk-testpmd when it is on PATH, else n/a)
  --mode LIST        among macswap,rxdrop,txonly,idle,latency,cpuload,scaling (default all)
  --poll-modes LIST  latency and cpuload: the forwarders' poll policies to measure, a row each,
                     among default,busy,adaptive,event (default: default, each forwarder's own,
                     no --poll-mode passed); a forwarder without a policy shows n/a; the CLI
                     gets --poll-mode only for the rows other than default
  --lat-rate PPS     the fixed low rate of the latency table (default 10000)
  --max-pps PPS      the maximum rate the partial loads are fractions of, for every forwarder
                     (default: each forwarder's macswap rate, the median of this run's macswap
                     cells or of up to 3 runs at full rate)
  --load-reps N      repetitions of each latency and cpuload cell (default 3)
  --scale-reps N     repetitions of each scaling cell (default 3)
  --scale-threads L  scaling: forwarding thread counts, C reference threads and afxdp fwd
                     --nb-cores alike (default 1,2; at most 2, the veth's queues)
  --scale-poll-mode P  scaling: --poll-mode for both forwarders, busy, adaptive or event (default:
                     each forwarder's own: adaptive)
  --scale-pin        scaling: pin the C reference's thread k to CPU (1 + k) mod nproc (thread 1
                     then shares CPU 0 with the generator); afxdp's threads stay unpinned
  --retries N        re-run a cell disturbed by other processes up to N times (default 2)
  --foreign-max PCT  CPU of other processes (% of a core) above which a cell counts as disturbed (default 15)
  --slow-max PCT     how much slower than their best the CPUs may run (bench/c/probe.c before and
                     after the window) before a cell counts as disturbed (default 8)
  --busy-budget N    preferred busy polling with budget N (20 us) in every forwarder, afxdp and the
                     C reference alike; 0 turns it off (default 0: on veth it costs a recvfrom() per
                     empty poll with no gain measured, see bench/README.md)
  --no-nice          do not run generator and forwarders at nice -20 (process and autogroup)
  --json FILE        write every measurement to FILE (default bench/results/last-run.json)
  --verbose          print every run as it finishes
  --from FILE        only print the tables of an earlier run's JSON file`;

// ------------------------------------------------------------------ options

/** Every implementation; the throughput cells (MODES) run the first three. */
const IMPLS = ['c', 'burst', 'stream', 'cli', 'testpmd'];
const THROUGHPUT_IMPLS = ['c', 'burst', 'stream'];
const MODES = ['macswap', 'rxdrop', 'txonly', 'idle'];
const LOAD_MODES = ['latency', 'cpuload'];
const SCALE_MODES = ['scaling'];
/** 'default': each forwarder's own, no --poll-mode passed. */
const POLL_MODES = ['default', 'busy', 'adaptive', 'event'];
const NAMES = { c: 'C reference', burst: 'afxdp burst', stream: 'afxdp stream', cli: 'afxdp fwd (CLI)', testpmd: 'DPDK testpmd' };

function parseOptions(argv) {
  const o = {
    reps: 7, idleReps: 3, window: 3, idle: 10, gc: 10, retries: 2, foreignMax: 15, slowMax: 0.08, nice: true, verbose: false, busyBudget: 0,
    impls: [...IMPLS], modes: [...MODES, ...LOAD_MODES, ...SCALE_MODES], pollModes: ['default'], latRate: 10_000, maxPps: 0, loadReps: 3,
    scaleReps: 3, scaleThreads: [1, 2], scalePollMode: 'default', scalePin: false,
    json: path.join(__dirname, 'results', 'last-run.json'), quick: false,
  };
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} needs a non-negative number, not ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--quick': Object.assign(o, { quick: true, reps: 1, idleReps: 1, loadReps: 1, scaleReps: 1, window: 2, idle: 5, gc: 3 }); break;
      case '--scale-reps': o.scaleReps = Math.max(1, Math.floor(num(next(), a))); break;
      case '--scale-poll-mode': o.scalePollMode = next(); break;
      case '--scale-pin': o.scalePin = true; break;
      case '--scale-threads': o.scaleThreads = next().split(',').map((v) => Math.floor(num(v, a))); break;
      case '--reps': o.reps = Math.max(1, Math.floor(num(next(), a))); break;
      case '--idle-reps': o.idleReps = Math.max(1, Math.floor(num(next(), a))); break;
      case '--window': o.window = num(next(), a); break;
      case '--idle': o.idle = num(next(), a); break;
      case '--gc': o.gc = num(next(), a); break;
      case '--retries': o.retries = Math.floor(num(next(), a)); break;
      case '--foreign-max': o.foreignMax = num(next(), a); break;
      case '--slow-max': o.slowMax = num(next(), a) / 100; break;
      case '--impl': o.impls = next().split(','); break;
      case '--mode': o.modes = next().split(','); break;
      case '--busy-budget': o.busyBudget = Math.floor(num(next(), a)); break;
      case '--poll-modes': o.pollModes = next().split(','); break;
      case '--lat-rate': o.latRate = Math.round(num(next(), a)); break;
      case '--max-pps': o.maxPps = Math.round(num(next(), a)); break;
      case '--load-reps': o.loadReps = Math.max(1, Math.floor(num(next(), a))); break;
      case '--no-nice': o.nice = false; break;
      case '--json': o.json = path.resolve(next()); break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  for (const i of o.impls) if (!IMPLS.includes(i)) throw new Error(`unknown implementation ${i}`);
  for (const m of o.modes) if (![...MODES, ...LOAD_MODES, ...SCALE_MODES].includes(m)) throw new Error(`unknown mode ${m}`);
  if (!POLL_MODES.includes(o.scalePollMode)) throw new Error(`unknown poll mode ${o.scalePollMode} (default, busy, adaptive or event)`);
  if (o.scaleReps > 10) throw new Error('--scale-reps must be at most 10');
  for (const t of o.scaleThreads) if (t < 1 || t > SCALE_QUEUES) throw new Error(`--scale-threads: each count must be 1..${SCALE_QUEUES} (the veth's queues)`);
  for (const p of o.pollModes) if (!POLL_MODES.includes(p)) throw new Error(`unknown poll mode ${p} (default, busy, adaptive or event)`);
  if (o.latRate < 1) throw new Error('--lat-rate must be at least 1');
  if (o.loadReps > 10) throw new Error('--load-reps must be at most 10');
  if (o.window < 0.5 || o.window > 60) throw new Error('--window must be between 0.5 and 60 seconds');
  if (o.idle < 1 || o.idle > 60) throw new Error('--idle must be between 1 and 60 seconds');
  if (o.gc > 60) throw new Error('--gc must be at most 60 seconds');
  if (o.reps > 10) throw new Error('--reps must be at most 10');
  return o;
}

// ------------------------------------------------------------------ helpers

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

// ------------------------------------------------------------------ cells

const WARMUP_MS = 1000;

let bins;
let lab;
let softirqPids = [];

function forwarderCmd(o, impl, mode) {
  const m = mode === 'idle' ? 'macswap' : mode;
  const common = ['--netns', lab.fwdNs, '--iface', lab.fwdIf, '--mode', m, '--busy-budget', String(o.busyBudget)];
  if (impl === 'c') return [bins.fwd, ...common];
  return [process.execPath, path.join(__dirname, impl === 'burst' ? 'fwd-burst.js' : 'fwd-stream.js'), ...common];
}

/** The bench's reading of its forwarder and generator (and of the machine) now. */
const snapshot = (pids) => procstat.snapshot(pids, softirqPids, [process.pid]);

/** One run of one cell. `rate` 0 = as fast as the generator can. */
async function runOnce(o, impl, mode, windowMs, rate = 0) {
  const fwd = startProc(`${impl} forwarder`, 1, forwarderCmd(o, impl, mode), o.nice);
  let gen = null;
  try {
    const ready = await waitLine(fwd, (l) => l.ready, 30_000);
    const t0 = Date.now() + WARMUP_MS;
    const t1 = t0 + windowMs;
    const tend = t1 + 400;
    fwd.child.stdin.write(`${t0} ${t1} ${tend} ${lab.genMac}\n`);
    if (mode !== 'idle') {
      gen = startProc('generator', 0, [bins.gen, '--netns', lab.genNs, '--iface', lab.genIf,
        '--mode', mode === 'txonly' ? 'rx' : 'tx', '--peer-mac', lab.fwdMac, '--rate', String(Math.round(rate)),
        '--t0', String(t0), '--t1', String(t1), '--tend', String(t1 + 250)], o.nice);
    }
    const pids = { fwd: fwd.pid, gen: gen?.pid };
    await sleepUntil(t0);
    const s0 = snapshot(pids);
    await sleepUntil(t1);
    const s1 = snapshot(pids);
    const fr = await finish(fwd, tend - Date.now() + 15_000);
    const gr = gen ? await finish(gen, 15_000) : null;
    return measure(impl, mode, ready, fr, gr, s0, s1, windowMs);
  } finally {
    for (const p of [fwd, gen]) if (p && !p.exited) try { p.child.kill('SIGKILL'); } catch { /* gone */ }
    await Promise.all([fwd.done, gen?.done]);
    // A forwarder that was killed leaves afxdp's netlink-attached program
    // behind (the C programs use bpf_links, which go with the process).
    for (const [ns, dev] of [[lab.fwdNs, lab.fwdIf], [lab.genNs, lab.genIf]]) {
      safe(() => sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'xdp', 'off']));
    }
  }
}

/** CPU over the window between two snapshots, % of a core: the forwarder's, the generator's, everyone else's. */
function cpuShares(s0, s1, withGen) {
  const d = (k) => s1.ticks[k] - s0.ticks[k];
  const elapsedTicks = ((s1.at - s0.at) * 1e6) / TICK_NS;
  const fwdTicks = d('fwd');
  const busy = s1.sys.busy - s0.sys.busy;
  return {
    fwdTicks,
    fwdUserTicks: d('fwdUser'),
    cpuPct: (100 * fwdTicks) / elapsedTicks,
    // Clamped: a tick sampled just outside one reading and inside the other can push the difference below 0.
    foreignPct: Math.max(0, (100 * (busy - fwdTicks - d('gen') - d('softirqd') - d('self'))) / elapsedTicks),
    userPct: (100 * d('fwdUser')) / elapsedTicks,
    genCpuPct: withGen ? (100 * d('gen')) / elapsedTicks : 0,
    softirqdPct: (100 * d('softirqd')) / elapsedTicks,
    stealPct: (100 * (s1.sys.steal - s0.sys.steal)) / elapsedTicks,
  };
}

function measure(impl, mode, ready, fr, gr, s0, s1, windowMs) {
  const secs = windowMs / 1000;
  const { fwdTicks, fwdUserTicks, ...shares } = cpuShares(s0, s1, Boolean(gr));
  const r = {
    impl, mode, windowS: secs, xdpMode: ready.xdpMode, busyPoll: ready.busyPoll, wait: ready.wait, ...shares,
    fwd: fr, gen: gr,
  };
  if (mode === 'macswap') {
    r.packets = gr.rxWindow;
    r.offeredPps = gr.sentWindow / secs;
  } else if (mode === 'rxdrop') {
    r.packets = fr.rxWindow;
    r.offeredPps = gr.sentWindow / secs;
  } else if (mode === 'txonly') {
    r.packets = gr.rxWindow;
    r.postedPps = fr.txWindow / secs;
  } else {
    r.packets = 0;
  }
  r.pps = r.packets / secs;
  r.nsPerPacket = r.packets > 0 ? (fwdTicks * TICK_NS) / r.packets : NaN;
  r.userNsPerPacket = r.packets > 0 ? (fwdUserTicks * TICK_NS) / r.packets : NaN;
  return r;
}

/**
 * Wait (bounded by the run's budget) until other processes use less than
 * --foreign-max of a core, sampled over 300 ms while nothing of ours runs.
 */
async function awaitQuiet(o) {
  let waited = 0;
  while (canSpend()) {
    const a = sysTicks();
    const self0 = procTicks(process.pid);
    await sleep(300);
    const b = sysTicks();
    const others = (100 * (b.busy - a.busy - (procTicks(process.pid) - self0))) / ((300 * 1e6) / TICK_NS);
    if (others <= o.foreignMax) break;
    if (waited === 0 && o.verbose) console.log(`    (other processes use ${others.toFixed(0)} % of a core; waiting for quiet)`);
    waited += 300;
    if (waited >= 20_000) break;
  }
  return waited;
}

/**
 * Retries and quiet-waits only while the rest of the plan still fits before
 * `limitAt`: the whole run stays bounded.
 */
const plan = { limitAt: Infinity, remainingMs: 0 };
const CELL_OVERHEAD_MS = 2500; // forwarder start, warm-up, wind-down
const cellCost = (windowMs) => windowMs + CELL_OVERHEAD_MS;
const canSpend = () => Date.now() + plan.remainingMs < plan.limitAt;

/**
 * How much slower than its fastest this run both CPUs are now (1 = as fast
 * as ever): bench/c/probe.c on CPU 0 and 1 at once. On a VM the host's load
 * slows everything without showing in /proc/stat.
 */
const fastestProbeNs = [Infinity, Infinity];
async function hostSlowdown(o) {
  const ns = await Promise.all([0, 1].map(async (cpu) => {
    try {
      return (await finish(startProc('speed probe', cpu, [bins.probe], o.nice), 10_000)).ns;
    } catch {
      return NaN;
    }
  }));
  let worst = 1;
  ns.forEach((x, cpu) => {
    if (!Number.isFinite(x)) return;
    fastestProbeNs[cpu] = Math.min(fastestProbeNs[cpu], x);
    worst = Math.max(worst, x / fastestProbeNs[cpu]);
  });
  return worst;
}

/**
 * A run, repeated while other processes or a slow host disturbed it
 * (bounded); the least disturbed attempt wins.
 */
async function runCell(o, impl, mode, windowMs, rate = 0, once = () => runOnce(o, impl, mode, windowMs, rate)) {
  let best = null;
  // Idle CPU is not disturbed by others using the idle CPUs: no retry.
  const retries = mode === 'idle' ? 0 : o.retries;
  const badness = (r) => Math.max(r.foreignPct / o.foreignMax, (r.slowdown - 1) / o.slowMax);
  for (let attempt = 0; attempt <= retries; attempt++) {
    const waited = mode === 'idle' ? 0 : await awaitQuiet(o);
    const before = mode === 'idle' ? 1 : await hostSlowdown(o);
    const r = await once();
    if (r.na) {
      // The forwarder could not run this cell (no such policy, not installed): nothing to retry.
      plan.remainingMs = Math.max(0, plan.remainingMs - cellCost(windowMs));
      return r;
    }
    r.slowdown = mode === 'idle' ? 1 : Math.max(before, await hostSlowdown(o));
    r.attempts = attempt + 1;
    r.quietWaitMs = waited;
    if (best === null || badness(r) < badness(best)) best = r;
    if (badness(r) <= 1 || mode === 'idle') break;
    if (!canSpend()) break;
    if (o.verbose) {
      console.log(`    (disturbed: other processes used ${r.foreignPct.toFixed(0)} % of a core, CPUs ${((r.slowdown - 1) * 100).toFixed(0)} % slower than their best; again)`);
    }
  }
  best.disturbed = mode !== 'idle' && badness(best) > 1;
  plan.remainingMs = Math.max(0, plan.remainingMs - cellCost(windowMs));
  if (o.verbose) console.log(`  ${describe(best)}`);
  return best;
}

function describe(r) {
  if (r.load) return describeLoad(r);
  if (r.scale) return describeScale(r);
  const base = `${r.impl.padEnd(6)} ${r.mode.padEnd(8)}`;
  const extra = `cpu ${r.cpuPct.toFixed(1)} %, others ${r.foreignPct.toFixed(1)} %${r.disturbed ? ' DISTURBED' : ''}`;
  if (r.mode === 'idle') return `${base} ${extra}`;
  const offered = r.offeredPps ? `, offered ${(r.offeredPps / 1e3).toFixed(0)} kpps` : '';
  const gc = r.fwd.gc ? `, GCs ${r.fwd.gc.count}` : '';
  // Empty polls per packet: how much of the burst forwarder's native-call cost is spent finding nothing.
  const empty = r.fwd.emptyPolls !== undefined && r.fwd.rx > 0 ? `, empty polls/pkt ${(r.fwd.emptyPolls / r.fwd.rx).toFixed(3)}` : '';
  return `${base} ${(r.pps / 1e3).toFixed(1)} kpps${offered}, ${r.nsPerPacket.toFixed(0)} ns/pkt, ${extra}${gc}${empty}`;
}

// ------------------------------------------------------------------ latency and partial load

const BIN = path.join(ROOT, 'bin', 'afxdp.js');

/** What each forwarder does by default when its rx ring is empty (the 'default' row). */
const DEFAULT_POLICY = {
  c: ['adaptive', 'spins 100 µs, then sleeps in poll()'],
  burst: ['adaptive', "runLoop(): spins 50 µs after the last packet, then sleeps on the sockets' readiness"],
  stream: ['adaptive', 'the port\'s pollMode: spins 50 µs after the last packet, then sleeps until readable'],
  cli: ['adaptive', 'afxdp fwd --poll-mode adaptive: spins 50 µs after the last packet, then sleeps until readable'],
  testpmd: ['busy', 'spins'],
};

/**
 * A forwarder of a latency/cpuload cell: its command, CPU, how it says it is
 * ready and whether it reads the window from stdin (bench/c/fwd.c and the
 * bench's afxdp forwarders do; the CLI and testpmd run until a signal).
 */
function loadForwarder(o, impl, policy) {
  const given = policy === 'default' ? [] : ['--poll-mode', policy];
  switch (impl) {
    case 'c': case 'burst': case 'stream':
      return { cpu: 1, cmd: [...forwarderCmd(o, impl, 'macswap'), ...given], ready: (p) => waitLine(p, (l) => l.ready, 30_000), window: true };
    case 'cli':
      return {
        cpu: 1,
        cmd: [process.execPath, BIN, 'fwd', '--vdev', `net_af_xdp0,iface=${lab.fwdIf},busy_budget=${o.busyBudget}`, '--netns', lab.fwdNs,
          '--forward-mode', 'macswap', '--json', '--stats-period', '0', ...given],
        ready: (p) => waitLine(p, (l) => l.type === 'start', 30_000),
        window: false,
      };
    case 'testpmd': {
      // EAL pins its own lcores: the main one (waiting on stdin) on CPU 0, forwarding on CPU 1.
      const huge = Number(safe(() => fs.readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'), '0')) > 0;
      return {
        cpu: null,
        // stdbuf: testpmd printf()s its prompt into a pipe, block-buffered otherwise.
        cmd: ['ip', 'netns', 'exec', lab.fwdNs, 'stdbuf', '-oL', 'dpdk-testpmd', '-l', '0,1', '--main-lcore', '0', '--no-pci',
          ...(huge ? ['--in-memory'] : ['--no-huge', '-m', '512']), '--vdev', `net_af_xdp0,iface=${lab.fwdIf},start_queue=0,queue_count=1`,
          '--', '--forward-mode=macswap', '--nb-cores=1', '--auto-start', '--total-num-mbufs=16384'],
        ready: (p) => waitText(p, /Press enter to exit/, 60_000),
        window: false,
      };
    }
    default: throw new Error(`no forwarder ${impl}`);
  }
}

/** Why a forwarder that exited before it was ready could not run: its first words on stderr. */
function naReason(proc) {
  const lines = proc.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^\s*at /.test(l));
  // EAL logs its start-up first; its reason follows "Cause:".
  const line = lines.find((l) => /Cause:/.test(l))?.replace(/^.*Cause:\s*/, '') ?? lines[0] ?? `exited ${proc.exited?.code ?? proc.exited?.signal}`;
  // The first sentence is enough for a table cell.
  return line.replace(/^(Error|AfxdpError|UsageError): /, '').replace(/\. .*/, '').slice(0, 100);
}

/**
 * One latency/cpuload run: macswap at `rate` pps offered by the latency
 * generator (rate 0: as fast as the tx generator can, to find the maximum).
 */
async function runLoadOnce(o, impl, policy, target, rate, windowMs) {
  const f = loadForwarder(o, impl, policy);
  const fwd = startProc(`${NAMES[impl]} forwarder`, f.cpu, f.cmd, o.nice);
  let gen = null;
  try {
    let ready;
    try {
      ready = await f.ready(fwd);
    } catch (err) {
      if (!fwd.exited) throw err;
      return { load: true, impl, policy, target, rate, na: naReason(fwd) };
    }
    const t0 = Date.now() + WARMUP_MS;
    const t1 = t0 + windowMs;
    const tend = t1 + 400;
    if (f.window) fwd.child.stdin.write(`${t0} ${t1} ${tend} ${lab.genMac}\n`);
    gen = startProc('generator', 0, [bins.gen, '--netns', lab.genNs, '--iface', lab.genIf, '--mode', rate > 0 ? 'lat' : 'tx',
      '--peer-mac', lab.fwdMac, '--rate', String(Math.round(rate)), '--t0', String(t0), '--t1', String(t1), '--tend', String(t1 + 250)], o.nice);
    const pids = { fwd: fwd.pid, gen: gen.pid };
    await sleepUntil(t0);
    const s0 = snapshot(pids);
    await sleepUntil(t1);
    const s1 = snapshot(pids);
    const gr = await finish(gen, 15_000);
    let fr = null;
    if (f.window) {
      fr = await finish(fwd, tend - Date.now() + 15_000);
    } else {
      await sleepUntil(tend);
      await stop(fwd, 'SIGINT', 10_000);
      fr = fwd.lines.find((l) => l.type === 'final') ?? null;
    }
    const { fwdTicks, fwdUserTicks, ...shares } = cpuShares(s0, s1, true);
    const secs = windowMs / 1000;
    const back = rate > 0 ? gr.backWindow : gr.rxWindow;
    return {
      load: true, impl, policy, target, rate, windowS: secs, xdpMode: ready.xdpMode,
      ranPolicy: ready.pollMode ?? (policy === 'default' ? DEFAULT_POLICY[impl][0] : policy), ...shares,
      sent: gr.sentWindow, back, lost: rate > 0 ? gr.lost : undefined, pps: back / secs, offeredPps: gr.sentWindow / secs,
      nsPerPacket: back > 0 ? (fwdTicks * TICK_NS) / back : NaN, lat: gr.lat, gen: gr, fwd: fr,
    };
  } finally {
    for (const p of [fwd, gen]) if (p && !p.exited) try { p.child.kill('SIGKILL'); } catch { /* gone */ }
    await Promise.all([fwd.done, gen?.done]);
    for (const [ns, dev] of [[lab.fwdNs, lab.fwdIf], [lab.genNs, lab.genIf]]) {
      safe(() => sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'xdp', 'off']));
    }
  }
}

/** The rates of the load cells, as fractions of the maximum (or the fixed --lat-rate). */
function loadTargets(o) {
  const t = [];
  if (o.modes.includes('latency')) t.push('lat-rate');
  if (o.modes.includes('cpuload')) t.push(0.1);
  t.push(0.5); // both tables
  if (o.modes.includes('cpuload')) t.push(1);
  return t;
}

const targetLabel = (target, latRate) => (target === 'max' ? 'max rate' : target === 'lat-rate' ? `${fmtK(latRate)} kpps` : `${Math.round(target * 100)} % of max`);

function describeLoad(r) {
  const base = `${r.impl.padEnd(7)} ${r.policy.padEnd(8)} ${targetLabel(r.target, r.rate).padEnd(12)}`;
  if (r.na) return `${base} n/a (${r.na})`;
  const lat = r.lat ? `, p50 ${fmtUs(r.lat.p50Ns)} p99 ${fmtUs(r.lat.p99Ns)} p99.9 ${fmtUs(r.lat.p999Ns)} max ${fmtUs(r.lat.maxNs)} µs, lost ${r.lost}` : '';
  return `${base} ${(r.pps / 1e3).toFixed(1)} kpps (offered ${(r.offeredPps / 1e3).toFixed(1)})${lat}, cpu ${r.cpuPct.toFixed(1)} %, others ${r.foreignPct.toFixed(1)} %${r.disturbed ? ' DISTURBED' : ''}`;
}

const fmtUs = (ns) => (!Number.isFinite(ns) ? '-' : ns < 10_000 ? (ns / 1000).toFixed(1) : (ns / 1000).toFixed(0));

/**
 * The maximum rate of each forwarder: --max-pps, else the macswap cells of
 * this run, else the median of macswap runs at full rate in the forwarder's default policy.
 */
async function maxRates(o, impls, runs) {
  const max = {};
  for (const impl of impls) {
    if (o.maxPps > 0) {
      max[impl] = { pps: o.maxPps, source: '--max-pps' };
      continue;
    }
    const cells = runs.filter((r) => r.impl === impl && r.mode === 'macswap' && !r.gcCheck);
    if (cells.length > 0) {
      max[impl] = { pps: median(cells.map((r) => r.pps)), source: 'macswap cells' };
      continue;
    }
    // A median, as the macswap cells': one run on a busy machine can be far off either way.
    const rs = [];
    for (let k = 0; k < maxReps(o); k++) {
      const r = await runCell(o, impl, 'macswap', o.window * 1000, 0, () => runLoadOnce(o, impl, 'default', 'max', 0, o.window * 1000));
      if (r.na) {
        max[impl] = { na: r.na };
        break;
      }
      rs.push(r);
    }
    if (rs.length === maxReps(o)) max[impl] = { pps: median(rs.map((r) => r.pps)), source: rs.length > 1 ? `median of ${rs.length} runs` : 'measured', runs: rs };
  }
  return max;
}

const maxReps = (o) => Math.min(3, o.loadReps);

async function runLoad(o, impls, skipped, throughputRuns) {
  const max = await maxRates(o, impls.filter((i) => !skipped[i]), throughputRuns);
  const targets = loadTargets(o);
  const runs = [];
  for (let rep = 1; rep <= o.loadReps; rep++) {
    for (const policy of o.pollModes) {
      for (const target of targets) {
        const order = impls.map((_, k) => impls[(k + rep - 1) % impls.length]);
        for (const impl of order) {
          // testpmd has one behaviour (it spins): measured once, in the first row.
          if (skipped[impl] || max[impl].na || (impl === 'testpmd' && policy !== o.pollModes[0])) continue;
          const rate = target === 'lat-rate' ? o.latRate : Math.max(1, Math.round(target * max[impl].pps));
          const r = await runCell(o, impl, 'macswap', o.window * 1000, rate, () => runLoadOnce(o, impl, policy, target, rate, o.window * 1000));
          r.rep = rep;
          runs.push(r);
          if (!o.verbose) process.stdout.write('.');
        }
      }
    }
  }
  return { max, runs };
}

/** Medians over repetitions of one (implementation, policy, rate) cell; sent and lost are summed. */
function summarizeLoad(runs) {
  const cells = {};
  for (const r of runs) {
    const key = `${r.impl}/${r.policy}/${r.target}`;
    if (cells[key] === undefined) cells[key] = [];
    cells[key].push(r);
  }
  const out = {};
  for (const [key, rs] of Object.entries(cells)) {
    const ok = rs.filter((r) => !r.na);
    if (ok.length === 0) {
      out[key] = { na: rs[0].na };
      continue;
    }
    const m = (f) => median(ok.map(f));
    out[key] = {
      runs: ok.length, rate: ok[0].rate,
      cpuPct: m((r) => r.cpuPct), pps: m((r) => r.pps),
      sent: ok.reduce((t, r) => t + r.sent, 0),
      lost: ok.every((r) => r.lost !== undefined) ? ok.reduce((t, r) => t + r.lost, 0) : undefined,
      disturbed: ok.filter((r) => r.disturbed).length,
      lat: ok[0].lat ? Object.fromEntries(['p50Ns', 'p90Ns', 'p99Ns', 'p999Ns', 'maxNs'].map((k) => [k, m((r) => r.lat[k])])) : undefined,
    };
  }
  return out;
}

function markdown(header, rows) {
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => String(r[k]).length)));
  const line = (r) => `| ${r.map((v, k) => String(v).padEnd(widths[k])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** A cell that did not run: why. */
function missing(load, impl, cell) {
  if (load.skipped[impl]) return load.skipped[impl];
  if (load.max[impl]?.na) return `n/a (${load.max[impl].na})`;
  if (cell?.na) return `n/a (${cell.na})`;
  return impl === 'testpmd' ? 'spins: row 1' : '-';
}

/** The latency table (--lat-rate and half the maximum) and the CPU table (10, 50, 100 % of it). */
function loadTables(load) {
  const { options: o, impls } = load;
  const cells = summarizeLoad(load.runs);
  const targets = loadTargets(o);
  const header = (what) => [what, ...impls.map((i) => NAMES[i])];
  const maxRow = ['maximum rate, kpps (from)', ...impls.map((i) => {
    const m = load.max[i];
    return m && !m.na ? `${fmtK(m.pps)} (${m.source})` : missing(load, i);
  })];
  const out = [];
  const note = (c) => (c.disturbed ? '*' : '');
  if (o.modes.includes('latency')) {
    const rows = [maxRow];
    for (const policy of o.pollModes) {
      for (const target of targets.filter((t) => t === 'lat-rate' || t === 0.5)) {
        rows.push([`${policy}, ${targetLabel(target, o.latRate)}`, ...impls.map((i) => {
          const c = cells[`${i}/${policy}/${target}`];
          if (!c || c.na) return missing(load, i, c);
          return `${fmtUs(c.lat.p50Ns)} / ${fmtUs(c.lat.p99Ns)} / ${fmtUs(c.lat.p999Ns)} / ${fmtUs(c.lat.maxNs)}, lost ${c.lost}${note(c)}`;
        })]);
      }
    }
    out.push('Latency: round trip through the forwarder (macswap), µs: p50 / p99 / p99.9 / max, frames lost');
    out.push(markdown(header('policy, rate'), rows));
  }
  if (o.modes.includes('cpuload')) {
    const rows = [maxRow];
    for (const policy of o.pollModes) {
      for (const target of targets.filter((t) => t !== 'lat-rate')) {
        rows.push([`${policy}, ${targetLabel(target, o.latRate)}`, ...impls.map((i) => {
          const c = cells[`${i}/${policy}/${target}`];
          if (!c || c.na) return missing(load, i, c);
          return `${c.cpuPct.toFixed(1)} % at ${fmtK(c.pps)} kpps, p99 ${fmtUs(c.lat.p99Ns)} µs${note(c)}`;
        })]);
      }
    }
    if (out.length) out.push('');
    out.push('CPU at partial load: forwarder CPU, % of a core (macswap at a fraction of its maximum rate; delivered rate; p99 round trip)');
    out.push(markdown(header('policy, load'), rows));
  }
  out.push('');
  out.push(`Medians of ${o.loadReps} run(s) of ${o.window} s per cell; lost = frames sent in the window and not back 250 ms after it, summed over the runs. ` +
    'The generator (bench/c/gen.c --mode lat) stamps each frame with a sequence number and its send time (CLOCK_MONOTONIC, just before the tx ring is published and kicked) and spins on its rx ring.');
  const defaults = impls.filter((i) => !load.skipped[i]).map((i) => `${NAMES[i]} ${DEFAULT_POLICY[i][0]} (${DEFAULT_POLICY[i][1]})`).join('; ');
  if (o.pollModes.includes('default')) out.push(`default = each forwarder's own policy: ${defaults}.`);
  const disturbed = load.runs.filter((r) => r.disturbed).length;
  if (disturbed) out.push(`* ${disturbed} run(s) stayed disturbed by other processes or a slow host (see the JSON).`);
  return out.join('\n');
}

// ------------------------------------------------------------------ scaling

/** The scaling lab's queues a side; the forwarders it runs and their names in the table. */
const SCALE_QUEUES = 2;
const SCALE_IMPLS = ['c', 'cli'];
const SCALE_NAMES = { c: 'C reference', cli: 'afxdp fwd' };
const SCALE_FWD_MODES = ['txonly', 'macswap'];
const NB_CORES_NA = 'not supported by this build (afxdp fwd has no --nb-cores)';

let scaleLab;
/** Whether this build's `afxdp fwd` has --nb-cores (set once per run by nbCoresSupport()). */
let nbCores = false;

/**
 * --nb-cores as an option of its own in `afxdp fwd --help` (an indented
 * option line), not only among the pasted testpmd words it accepts and ignores.
 */
function nbCoresSupport() {
  const help = safe(() => sh(process.execPath, [BIN, 'fwd', '--help']), '');
  return /^\s+--nb-cores\b/m.test(help);
}

/** Each thread's CPU between two taskTimes() readings, % of a core, busiest first (threads that ran only). */
function taskShares(k0, k1, elapsedMs) {
  const elapsedTicks = (elapsedMs * 1e6) / TICK_NS;
  return Object.entries(k1).map(([tid, b]) => {
    const a = k0[tid] ?? { user: 0, sys: 0 };
    return {
      tid: Number(tid), name: b.name, lastCpu: b.cpu,
      cpuPct: (100 * (b.user + b.sys - a.user - a.sys)) / elapsedTicks,
      userPct: (100 * (b.user - a.user)) / elapsedTicks,
    };
  }).filter((t) => t.cpuPct > 0).sort((x, y) => y.cpuPct - x.cpuPct);
}

/**
 * A forwarder of a scaling cell. One thread runs on CPU 1 (as in the other
 * modes); more threads get every CPU the machine has, the generator's CPU 0
 * included: on 2 vCPUs, 2 forwarding threads and the generator share 2 cores.
 */
function scaleForwarder(o, impl, mode, threads) {
  const l = scaleLab;
  const cpu = threads > 1 ? `0-${os.cpus().length - 1}` : 1;
  const policy = o.scalePollMode === 'default' ? [] : ['--poll-mode', o.scalePollMode];
  if (impl === 'c') {
    return {
      cpu, window: true, ready: (p) => waitLine(p, (x) => x.ready, 30_000),
      cmd: [bins.fwd, '--netns', l.fwdNs, '--iface', l.fwdIf, '--mode', mode, '--busy-budget', String(o.busyBudget),
        '--queues', String(SCALE_QUEUES), '--threads', String(threads), ...policy,
        ...(o.scalePin && threads > 1 ? ['--cpus', Array.from({ length: threads }, (_, k) => (1 + k) % os.cpus().length).join(',')] : [])],
    };
  }
  return {
    cpu, window: false, ready: (p) => waitLine(p, (x) => x.type === 'start', 30_000),
    cmd: [process.execPath, BIN, 'fwd', '--vdev', `net_af_xdp0,iface=${l.fwdIf},queue_count=${SCALE_QUEUES},busy_budget=${o.busyBudget}`,
      '--netns', l.fwdNs, '--forward-mode', mode, '--json', '--stats-period', '0', ...policy,
      // Without --nb-cores in this build, one thread serves both queues: what --nb-cores 1 means.
      ...(nbCores ? ['--nb-cores', String(threads)] : []),
      ...(mode === 'txonly' ? ['--eth-peer', l.genMac] : [])],
  };
}

/** One scaling run: `impl` with `threads` forwarding threads over both queues, the generator on both queues at full rate. */
async function runScaleOnce(o, impl, mode, threads, windowMs) {
  const base = { scale: true, impl, mode, threads };
  const l = scaleLab;
  const f = scaleForwarder(o, impl, mode, threads);
  const fwd = startProc(`${SCALE_NAMES[impl]} forwarder`, f.cpu, f.cmd, o.nice);
  let gen = null;
  try {
    let ready;
    try {
      ready = await f.ready(fwd);
    } catch (err) {
      if (!fwd.exited) throw err;
      return { ...base, na: naReason(fwd) };
    }
    const t0 = Date.now() + WARMUP_MS;
    const t1 = t0 + windowMs;
    const tend = t1 + 400;
    if (f.window) fwd.child.stdin.write(`${t0} ${t1} ${tend} ${l.genMac}\n`);
    gen = startProc('generator', 0, [bins.gen, '--netns', l.genNs, '--iface', l.genIf, '--queues', String(SCALE_QUEUES),
      '--mode', mode === 'txonly' ? 'rx' : 'tx', '--match', mode === 'txonly' ? 'any' : 'bench', '--peer-mac', l.fwdMac,
      '--rate', '0', '--t0', String(t0), '--t1', String(t1), '--tend', String(t1 + 250)], o.nice);
    // The readings at T0 and T1 come from a sampler at the measured processes' priority (bench/lib/sampler.js).
    const sampler = startProc('sampler', null, [process.execPath, path.join(__dirname, 'lib', 'sampler.js'), '--fwd', String(fwd.pid),
      '--gen', String(gen.pid), '--self', String(process.pid), '--softirq', softirqPids.join(','), '--t0', String(t0), '--t1', String(t1)], o.nice);
    const { s0, s1 } = await finish(sampler, t1 - Date.now() + 15_000);
    const gr = await finish(gen, 15_000);
    let fr;
    if (f.window) {
      fr = await finish(fwd, tend - Date.now() + 15_000);
    } else {
      await sleepUntil(tend);
      await stop(fwd, 'SIGINT', 10_000);
      fr = fwd.lines.find((x) => x.type === 'final') ?? null;
    }
    return measureScale(base, ready, fr, gr, s0, s1, taskShares(s0.tasks, s1.tasks, s1.at - s0.at), s1.at - t1);
  } catch (err) {
    // One failed cell is reported as such; the run goes on.
    return { ...base, na: `failed: ${err.message.split('\n')[0].slice(0, 100)}` };
  } finally {
    for (const p of [fwd, gen]) if (p && !p.exited) try { p.child.kill('SIGKILL'); } catch { /* gone */ }
    await Promise.all([fwd.done, gen?.done]);
    for (const [ns, dev] of [[l.fwdNs, l.fwdIf], [l.genNs, l.genIf]]) safe(() => sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'xdp', 'off']));
  }
}

/**
 * Rates from the generator (frames of the forwarder it received in the
 * window, per queue: a frame sent on queue k comes back on queue k), CPU per
 * forwarder thread from /proc: for the C reference the threads it names (its
 * own RUSAGE_THREAD reading is kept beside as ownCpuPct), for afxdp every
 * task of the process that ran, busiest first.
 */
function measureScale(base, ready, fr, gr, s0, s1, tasks, lateMs) {
  const secs = (s1.at - s0.at) / 1000;
  const windowS = gr.windowS;
  const { fwdTicks, fwdUserTicks, ...shares } = cpuShares(s0, s1, true);
  const threadsCpu = fr?.perThread?.map((t) => {
    const task = tasks.find((x) => x.tid === t.tid);
    return {
      thread: t.thread, tid: t.tid, queues: t.queues, name: task?.name, cpuPct: task?.cpuPct ?? 0, userPct: task?.userPct ?? 0,
      ownCpuPct: (t.userUs + t.sysUs) / (windowS * 1e4),
    };
  });
  return {
    ...base, windowS, xdpMode: ready.xdpMode ?? ready.ports?.[0]?.xdpMode, ...shares,
    packets: gr.rxWindow,
    pps: gr.rxWindow / windowS,
    perQueue: (gr.perQueue ?? []).map((q) => ({ queue: q.queue, pps: q.rxWindow / windowS, sentPps: q.sentWindow / windowS })),
    offeredPps: base.mode === 'macswap' ? gr.sentWindow / windowS : undefined,
    postedPps: base.mode === 'txonly' && fr?.txWindow !== undefined ? fr.txWindow / windowS : undefined,
    nsPerPacket: gr.rxWindow > 0 ? (fwdTicks * TICK_NS) / gr.rxWindow : NaN,
    cpuSampleS: secs, sampleLateMs: lateMs,
    tasks, threadsCpu, fwd: fr, gen: gr,
  };
}

function describeScale(r) {
  const base = `${r.impl.padEnd(4)} ${r.mode.padEnd(8)} ${r.threads} thread(s)`;
  if (r.na) return `${base} n/a (${r.na})`;
  const q = r.perQueue.map((x) => fmtM(x.pps)).join(' / ');
  const threads = (r.threadsCpu ?? r.tasks.slice(0, 4)).map((t) => `${t.name ?? ''}:${t.tid} ${t.cpuPct.toFixed(0)} %`).join(', ');
  return `${base} ${fmtM(r.pps)} Mpps (queues ${q}), threads ${threads}, gen ${r.genCpuPct.toFixed(0)} %, steal ${r.stealPct.toFixed(1)} %, others ${r.foreignPct.toFixed(1)} %${r.disturbed ? ' DISTURBED' : ''}`;
}

const fmtM = (pps) => (Number.isFinite(pps) ? (pps / 1e6).toFixed(3) : '-');

/** Every scaling cell, --scale-reps times, the order of the cells rotating between repetitions. */
async function runScaling(o, impls) {
  const runs = [];
  const cells = [];
  for (const mode of SCALE_FWD_MODES) for (const impl of impls) for (const threads of o.scaleThreads) cells.push({ mode, impl, threads });
  for (let rep = 1; rep <= o.scaleReps; rep++) {
    if (o.verbose) console.log(`scaling, repetition ${rep}/${o.scaleReps}`);
    for (const mode of SCALE_FWD_MODES) {
      const these = cells.filter((c) => c.mode === mode);
      const order = these.map((_, k) => these[(k + rep - 1) % these.length]);
      for (const { impl, threads } of order) {
        let r;
        if (impl === 'cli' && threads > 1 && !nbCores) {
          r = { scale: true, impl, mode, threads, na: NB_CORES_NA };
          plan.remainingMs = Math.max(0, plan.remainingMs - cellCost(o.window * 1000));
        } else {
          r = await runCell(o, impl, mode, o.window * 1000, 0, () => runScaleOnce(o, impl, mode, threads, o.window * 1000));
        }
        r.rep = rep;
        runs.push(r);
        if (o.verbose && r.na) console.log(`  ${describeScale(r)}`);
        else if (!o.verbose) process.stdout.write('.');
      }
    }
  }
  return runs;
}

/** Medians over repetitions per (forwarder, mode, threads); ratios paired within a repetition. */
function summarizeScale(scale) {
  const { runs } = scale;
  const cells = {};
  const key = (r) => `${r.impl}/${r.mode}/${r.threads}`;
  for (const r of runs) {
    if (cells[key(r)] === undefined) cells[key(r)] = [];
    cells[key(r)].push(r);
  }
  const out = {};
  for (const [k, rs] of Object.entries(cells)) {
    const ok = rs.filter((r) => !r.na);
    if (ok.length === 0) {
      out[k] = { na: rs[0].na };
      continue;
    }
    const m = (fn) => median(ok.map(fn));
    const nq = Math.max(...ok.map((r) => r.perQueue.length));
    // Forwarding threads: the C reference's by index; afxdp's by rank (busiest first).
    const nt = Math.max(...ok.map((r) => (r.threadsCpu ?? r.tasks).length));
    const threads = [];
    for (let i = 0; i < nt; i++) {
      const pick = (r) => (r.threadsCpu ?? r.tasks)[i];
      const first = ok.map(pick).find(Boolean);
      threads.push({ name: first?.name, queues: first?.queues, cpuPct: m((r) => pick(r)?.cpuPct ?? 0), userPct: m((r) => pick(r)?.userPct ?? 0) });
    }
    out[k] = {
      runs: ok.length, pps: m((r) => r.pps), perQueue: Array.from({ length: nq }, (_, q) => m((r) => r.perQueue[q]?.pps)),
      threads, cpuPct: m((r) => r.cpuPct), genCpuPct: m((r) => r.genCpuPct), stealPct: m((r) => r.stealPct),
      postedPps: m((r) => r.postedPps), disturbed: ok.filter((r) => r.disturbed).length,
    };
  }
  const ratio = (a, b) => {
    const v = runs.filter((r) => !r.na && a(r)).map((r) => {
      const other = runs.find((x) => !x.na && x.rep === r.rep && b(x));
      return other && other.pps > 0 ? r.pps / other.pps : NaN;
    });
    return median(v);
  };
  const top = Math.max(...scale.threads);
  const scaling = {};
  const vsC = {};
  for (const mode of SCALE_FWD_MODES) {
    for (const impl of scale.impls) {
      scaling[`${impl}/${mode}`] = ratio((r) => r.impl === impl && r.mode === mode && r.threads === top,
        (x) => x.impl === impl && x.mode === mode && x.threads === 1);
    }
    for (const t of scale.threads) {
      vsC[`${mode}/${t}`] = ratio((r) => r.impl === 'cli' && r.mode === mode && r.threads === t,
        (x) => x.impl === 'c' && x.mode === mode && x.threads === t);
    }
  }
  return { cells: out, scaling, vsC, top };
}

function scaleTable(scale) {
  const { cells, scaling, vsC, top } = summarizeScale(scale);
  const fmtR = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
  const header = ['cell', ...scale.impls.map((i) => SCALE_NAMES[i]), ...(scale.impls.length === 2 ? ['afxdp / C'] : [])];
  const rows = [];
  for (const mode of SCALE_FWD_MODES) {
    for (const t of scale.threads) {
      const label = `${mode}, ${t} thread${t > 1 ? 's' : ''}`;
      const cell = (impl) => cells[`${impl}/${mode}/${t}`];
      rows.push([`${label}: Mpps (queue 0 / 1)`, ...scale.impls.map((i) => {
        const c = cell(i);
        if (!c) return '-';
        if (c.na) return `n/a (${c.na})`;
        return `${fmtM(c.pps)} (${c.perQueue.map(fmtM).join(' / ')})${c.disturbed ? '*' : ''}`;
      }), ...(scale.impls.length === 2 ? [fmtR(vsC[`${mode}/${t}`])] : [])]);
      rows.push([`${label}: CPU % per thread; generator, steal`, ...scale.impls.map((i) => {
        const c = cell(i);
        if (!c || c.na) return '';
        // afxdp: the threads that used at least 2 % of a core (Node's helpers are the rest).
        const shown = i === 'c' ? c.threads : c.threads.filter((x) => x.cpuPct >= 2);
        const rest = i === 'c' ? 0 : c.threads.filter((x) => x.cpuPct < 2).reduce((sum, x) => sum + x.cpuPct, 0);
        const list = shown.map((x) => (i === 'c' ? `q${x.queues.join('+')} ${x.cpuPct.toFixed(0)}` : `${x.name} ${x.cpuPct.toFixed(0)}`)).join(' / ');
        return `${list}${rest >= 0.5 ? ` (+${rest.toFixed(0)})` : ''}; gen ${c.genCpuPct.toFixed(0)}, steal ${c.stealPct.toFixed(1)}`;
      }), ...(scale.impls.length === 2 ? [''] : [])]);
    }
    rows.push([`${mode}, scaling ${top}/1`, ...scale.impls.map((i) => fmtR(scaling[`${i}/${mode}`])), ...(scale.impls.length === 2 ? [''] : [])]);
  }
  const policy = scale.pollMode && scale.pollMode !== 'default' ? `--poll-mode ${scale.pollMode}` : 'each forwarder\'s default poll policy (adaptive)';
  const pin = scale.pin ? ' (C reference: thread k pinned to CPU (1 + k) mod nproc)' : '';
  const out = [`Scaling: ${SCALE_QUEUES}-queue veth, generator on both queues (one thread, CPU 0); 1 thread on CPU 1, ${top} threads on CPUs 0-${top - 1}${pin} (with the generator); ${policy}`];
  out.push(markdown(header, rows));
  out.push('');
  out.push(`Medians of ${scale.reps} run(s) of ${scale.windowS} s per cell. Mpps: forwarder frames the generator received in the window (txonly: what the forwarder sent; macswap: swapped and returned), per queue in brackets.`);
  out.push('CPU % per thread: utime+stime of each forwarding thread (/proc/<pid>/task/<tid>/stat) over the window, % of a core (C: by queue; afxdp: tasks by name, busiest first, those under 2 % summed in brackets); gen: the generator; steal: the host\'s, % of a core.');
  out.push(`scaling ${top}/1 and afxdp / C: medians of the ratios within one repetition.`);
  if (scale.impls.includes('cli') && !scale.nbCores) out.push(`afxdp fwd: --nb-cores ${NB_CORES_NA}; its 1-thread cells ran without the option (one thread over both queues).`);
  const disturbed = scale.runs.filter((r) => r.disturbed).length;
  if (disturbed) out.push(`* ${disturbed} run(s) stayed disturbed by other processes or a slow host (see the JSON).`);
  return out.join('\n');
}

// ------------------------------------------------------------------ report

const TARGETS = {
  macswap: { burst: 0.95, stream: 0.85 },
  rxdrop: { burst: 0.95, stream: 0.95 },
  txonly: { burst: 0.90, stream: 0.90 },
};

function summarize(runs, impls, modes) {
  const cells = {};
  for (const mode of modes) {
    for (const impl of impls) {
      const rs = runs.filter((r) => r.impl === impl && r.mode === mode && !r.gcCheck);
      if (rs.length === 0) continue;
      // The ratio pairs each run with the C reference's run of the same
      // repetition (adjacent windows): the machine's drift between
      // repetitions then cancels instead of landing in one column.
      const pairs = rs.map((r) => [r, runs.find((c) => c.impl === 'c' && c.mode === mode && c.rep === r.rep && !c.gcCheck)])
        .filter(([, c]) => c && c.pps > 0);
      cells[`${mode}/${impl}`] = {
        runs: rs.length,
        pps: median(rs.map((r) => r.pps)),
        ratio: pairs.length > 0 ? median(pairs.map(([r, c]) => r.pps / c.pps)) : NaN,
        nsPerPacket: median(rs.map((r) => r.nsPerPacket)),
        userNsPerPacket: median(rs.map((r) => r.userNsPerPacket)),
        cpuPct: median(rs.map((r) => r.cpuPct)),
        disturbed: rs.filter((r) => r.disturbed).length,
        gcs: rs.map((r) => r.fwd.gc?.count).filter((x) => x !== undefined),
      };
    }
  }
  return cells;
}

function fmtK(pps) {
  return Number.isFinite(pps) ? (pps / 1e3).toFixed(0) : '-';
}

function table(cells, impls, modes, skipped) {
  const names = { c: 'C reference', burst: 'afxdp burst', stream: 'afxdp stream' };
  const header = ['cell', ...impls.map((i) => names[i])];
  const rows = [];
  for (const mode of modes) {
    const c = cells[`${mode}/c`];
    if (mode === 'idle') {
      rows.push(['idle CPU, % of a core (target < 1)', ...impls.map((i) => {
        const x = cells[`idle/${i}`];
        if (!x) return skipped[i] ?? '-';
        return `${x.cpuPct.toFixed(2)} %${x.disturbed ? '*' : ''}`;
      })]);
      continue;
    }
    rows.push([`${mode}, kpps (ratio)`, ...impls.map((i) => {
      const x = cells[`${mode}/${i}`];
      if (!x) return skipped[i] ?? '-';
      const r = x.ratio;
      const ratio = c && i !== 'c' ? ` (${r.toFixed(3)}×${r >= TARGETS[mode][i] ? '' : ` < ${TARGETS[mode][i].toFixed(2)}`})` : '';
      return `${fmtK(x.pps)}${ratio}${x.disturbed ? '*' : ''}`;
    })]);
    rows.push([`${mode}, CPU ns/packet (user part)`, ...impls.map((i) => {
      const x = cells[`${mode}/${i}`];
      if (!x) return skipped[i] ? '' : '-';
      return `${x.nsPerPacket.toFixed(0)} (${x.userNsPerPacket.toFixed(0)}), ${x.cpuPct.toFixed(0)} % CPU`;
    })]);
  }
  return markdown(header, rows);
}

function gcTable(gcRuns) {
  if (gcRuns.length === 0) return '';
  const kib = (b) => (Number.isFinite(b) ? Math.round(b / 1024) : '-');
  const out = [
    '| forwarder | offered | window | packets | GCs | allocated KiB (B/packet) | used heap start → end (min..max), KiB |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of gcRuns) {
    const g = r.fwd.gc;
    const perPacket = Number.isFinite(g.allocatedBytes) && r.packets > 0 ? (g.allocatedBytes / r.packets).toFixed(2) : '-';
    out.push(`| ${r.impl} | ${r.gcLabel} | ${r.windowS} s | ${r.packets} | ${g.count} | ${kib(g.allocatedBytes)} (${perPacket}) | ` +
      `${kib(g.heapStart)} → ${kib(g.heapEnd)} (${kib(g.heapMin)}..${kib(g.heapMax)}) |`);
  }
  return out.join('\n');
}

// ------------------------------------------------------------------ main

function preflight(o) {
  preflightLab();
  if (o.impls.some((i) => i !== 'c') && !fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/index.js is missing: run `npm run build` first');
  }
}

function streamAvailable() {
  const why = safe(() => {
    require(path.join(__dirname, 'lib', 'stream-api')).check();
    return null;
  }, undefined);
  return why === null ? null : 'stream API not in this build';
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  preflight(o);
  const info = machine(ROOT);
  bins = build();
  removeStaleLabs();
  lab = createLab();
  softirqPids = kernelSoftirqPids();

  const skipped = {};
  if (o.impls.includes('stream')) {
    const why = streamAvailable();
    if (why) {
      skipped.stream = `n/a (${why})`;
      o.impls = o.impls.filter((i) => i !== 'stream');
    }
  }
  if (o.impls.includes('testpmd') && safe(() => sh('sh', ['-c', 'command -v dpdk-testpmd']), '') === '') skipped.testpmd = 'n/a (dpdk-testpmd not on PATH)';
  // The throughput cells: C reference, burst and stream; the load cells: every implementation asked for.
  const impls = o.impls.filter((i) => THROUGHPUT_IMPLS.includes(i));
  const modes = o.modes.filter((m) => MODES.includes(m));
  const loadImpls = o.modes.some((m) => LOAD_MODES.includes(m)) ? [...o.impls, ...(skipped.stream ? ['stream'] : [])].filter((i, k, a) => a.indexOf(i) === k) : [];
  loadImpls.sort((a, b) => IMPLS.indexOf(a) - IMPLS.indexOf(b));
  const loadRunImpls = loadImpls.filter((i) => !skipped[i]);
  const started = Date.now();
  const gcImpls = o.gc > 0 && modes.length > 0 ? impls.filter((i) => i !== 'c').length : 0;
  const maxCells = o.maxPps > 0 ? 0 : maxReps(o) * loadRunImpls.filter((i) => !(modes.includes('macswap') && impls.includes(i))).length;
  const scaleImpls = o.modes.includes('scaling') ? SCALE_IMPLS.filter((i) => o.impls.includes(i)) : [];
  const scaleCells = o.scaleReps * SCALE_FWD_MODES.length * scaleImpls.length * o.scaleThreads.length;
  plan.remainingMs = impls.length * modes.reduce((t, m) => t + (m === 'idle' ? o.idleReps * cellCost(o.idle * 1000) : o.reps * cellCost(o.window * 1000)), 0)
    + gcImpls * 2 * cellCost(o.gc * 1000)
    + (loadRunImpls.length * o.pollModes.length * loadTargets(o).length * o.loadReps + maxCells + scaleCells) * cellCost(o.window * 1000);
  plan.limitAt = started + Math.max(plan.remainingMs, o.quick ? 120_000 : 540_000);
  console.log(`afxdp benchmark: ${info.nproc} CPUs (${info.cpu}), Linux ${info.kernel}, Node ${info.node}, commit ${info.commit}`);
  console.log(`${o.reps} repetition(s) of ${o.window} s per traffic cell, ${o.idleReps} of ${o.idle} s idle, ${o.loadReps} per latency/cpuload cell; generator on CPU 0, forwarder on CPU 1; veth ${lab.genIf} <-> ${lab.fwdIf}; ${busyPolling(o)}`);
  for (const [impl, why] of Object.entries(skipped)) console.log(`${NAMES[impl]} column: ${why}`);

  // A first reading of the CPUs' speed, the reference later windows are held to.
  for (let i = 0; i < 3; i++) await hostSlowdown(o);
  const runs = [];
  const totalReps = modes.length === 0 ? 0 : Math.max(o.reps, modes.includes('idle') ? o.idleReps : 0);
  for (let rep = 1; rep <= totalReps; rep++) {
    if (o.verbose) console.log(`repetition ${rep}/${totalReps}`);
    for (const mode of modes) {
      if (rep > (mode === 'idle' ? o.idleReps : o.reps)) continue;
      // Rotate the order each repetition: no implementation always runs
      // first (or right after another one) in a mode.
      const order = impls.map((_, k) => impls[(k + rep - 1) % impls.length]);
      for (const impl of order) {
        const windowMs = (mode === 'idle' ? o.idle : o.window) * 1000;
        const r = await runCell(o, impl, mode, windowMs);
        r.rep = rep;
        runs.push(r);
        if (!o.verbose) process.stdout.write('.');
      }
    }
  }
  if (!o.verbose) process.stdout.write('\n');

  // V8: GCs, allocation and heap at full rate over two window lengths (the
  // macswap cells and a longer run) and at a fifth of the rate.
  const gcRuns = [];
  if (o.gc > 0 && modes.length > 0) {
    for (const impl of impls.filter((i) => i !== 'c')) {
      const cell = runs.find((r) => r.impl === impl && r.mode === 'macswap');
      if (cell) gcRuns.push({ ...cell, gcLabel: 'full rate (macswap cell)' });
      const full = await runCell(o, impl, 'macswap', o.gc * 1000, 0);
      Object.assign(full, { gcCheck: true, gcLabel: 'full rate' });
      const rate = Math.max(1000, full.pps / 5);
      const fifth = await runCell(o, impl, 'macswap', o.gc * 1000, rate);
      Object.assign(fifth, { gcCheck: true, gcLabel: `${fmtK(rate)} kpps` });
      gcRuns.push(full, fifth);
      runs.push(full, fifth);
    }
  }

  // Latency and CPU at partial load.
  let load;
  if (loadImpls.length > 0) {
    if (o.verbose) console.log('latency and partial load');
    load = { impls: loadImpls, ...await runLoad(o, loadImpls, skipped, runs) };
    if (!o.verbose) process.stdout.write('\n');
  }

  // Scaling: its own lab, a veth with 2 queues a side.
  let scale;
  if (scaleImpls.length > 0) {
    if (o.verbose) console.log('scaling');
    nbCores = scaleImpls.includes('cli') && nbCoresSupport();
    scaleLab = createLab({ queues: SCALE_QUEUES, tag: 's' });
    try {
      scale = { impls: scaleImpls, threads: o.scaleThreads, reps: o.scaleReps, windowS: o.window, queues: SCALE_QUEUES, nbCores, pollMode: o.scalePollMode, pin: o.scalePin, runs: await runScaling(o, scaleImpls) };
    } finally {
      scaleLab.destroy();
    }
    if (!o.verbose) process.stdout.write('\n');
  }

  // What one native call costs (afxdp's, and a plain Node-API function's).
  let callCost;
  if (modes.length > 0 && impls.some((i) => i !== 'c')) {
    const cmd = [process.execPath, path.join(__dirname, 'callcost.js'), '--netns', lab.fwdNs, '--iface', lab.fwdIf,
      ...(bins.napiBaseline ? ['--baseline', bins.napiBaseline] : [])];
    const p = startProc('call cost', 1, cmd, o.nice);
    try {
      callCost = await finish(p, 60_000);
    } catch (err) {
      console.log(`(call cost not measured: ${err.message.split('\n')[0]})`);
    }
  }

  const data = { machine: info, options: o, runs, gcRuns, load, scale, callCost, skipped, seconds: Math.round((Date.now() - started) / 1000) };
  report(data);
  fs.mkdirSync(path.dirname(o.json), { recursive: true });
  fs.writeFileSync(o.json, JSON.stringify(data, null, 2));
  console.log(`raw results: ${path.relative(process.cwd(), o.json)}`);
}

/** Runs recorded before the option existed used afxdp's default (64) and no busy polling in C. */
function busyPolling(o) {
  if (o.busyBudget === undefined) return 'busy polling: afxdp 64 (its default), C reference off';
  return o.busyBudget > 0 ? `busy polling: budget ${o.busyBudget} in every forwarder` : 'busy polling: off in every forwarder';
}

/** The tables, from a run just made or from a --json file (--from). */
function report(data) {
  const { machine: m, options: o, runs, skipped } = data;
  const impls = o.impls.filter((i) => THROUGHPUT_IMPLS.includes(i));
  const modes = o.modes.filter((x) => MODES.includes(x));
  console.log('');
  console.log(`${m.date}: ${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}, afxdp ${m.commit}; XDP ${[...runs, ...(data.load?.runs ?? []), ...(data.scale?.runs ?? [])].find((r) => r.xdpMode)?.xdpMode ?? '?'} mode on veth (copy mode); ${busyPolling(o)}`);
  if (modes.length > 0) throughputReport(data, impls, modes);
  if (data.load) {
    console.log('');
    console.log(loadTables({ ...data.load, options: o, skipped }));
  }
  if (data.scale) {
    console.log('');
    console.log(scaleTable(data.scale));
  }
  console.log(`\ntotal ${data.seconds} s`);
}

function throughputReport(data, impls, modes) {
  const { options: o, runs, skipped } = data;
  const gcRuns = data.gcRuns ?? [];
  const cells = summarize(runs, impls, modes);
  const allImpls = [...impls, ...(skipped.stream ? ['stream'] : [])];
  console.log('');
  console.log(table(cells, allImpls, modes, skipped));
  const disturbed = runs.filter((r) => r.disturbed).length;
  console.log('');
  console.log(`Medians of ${o.reps} run(s) of ${o.window} s per cell (idle: ${o.idleReps ?? o.reps} of ${o.idle} s); ratio = median over repetitions of afxdp / C reference in the same repetition (adjacent windows, order rotated); "< x" marks a missed target.`);
  console.log('macswap: frames returned to the generator per second; rxdrop: frames the forwarder received; txonly: forwarder frames the generator received.');
  console.log('CPU ns/packet: forwarder utime+stime (/proc/<pid>/stat, all threads) over the window / those packets; user part: utime only.');
  if (disturbed) console.log(`* ${disturbed} run(s) stayed disturbed (other processes, or CPUs running slower than their best: a busy host) after ${o.retries} retries (see the JSON).`);
  if (gcRuns.length) {
    console.log('');
    console.log('V8 check (macswap; v8.GCProfiler over the window: GCs, bytes allocated = freed by GCs + heap growth):');
    console.log(gcTable(gcRuns));
  }
  const cc = data.callCost;
  if (cc) {
    console.log('');
    console.log(`Native call cost (idle port, best of 5 × 200k calls): afxdp receive() on an empty ring ${cc.receiveEmpty} ns, ` +
      `release(0) ${cc.release0} ns` + (cc.napiBaseline !== undefined ? `; a plain Node-API function with 3 u32 arguments ${cc.napiBaseline} ns` : '') + '.');
  }
}

if (process.argv[2] === '--from') {
  report(JSON.parse(fs.readFileSync(process.argv[3], 'utf8')));
  process.exit(0);
}

main().then(() => {
  cleanup();
}, (err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  cleanup();
  process.exitCode = 1;
});
