#!/usr/bin/env node
'use strict';
// The cost of `afxdp fwd --pcap`: the same forwarder with and without a
// capture file, in the benchmark's lab (bench/lib/harness.js: two
// namespaces and a veth pair; the C generator bench/c/gen.c on CPU 0 offers
// 64-byte UDP frames as fast as it can; `afxdp fwd` on CPU 1). Each
// repetition runs both variants back to back (their order alternating);
// the medians are printed with the difference: the forwarder's CPU ns per
// received packet with capture minus without is the capture's cost.
//
//   sudo node bench/pcap.js [--mode rxonly|macswap] [--reps 5] [--window 3] [--dir DIR] [--json FILE]
//   node bench/pcap.js --writer [--length 64] [--dir DIR]   the writer alone, no lab, no root
//
// Packets: the forwarder's rxPackets over the window (its --json stats
// lines, read as they arrive), so "pps" is what it received. CPU: utime +
// stime of the whole forwarder process (all threads, libuv's file-writing
// threads included) over the window. The capture file goes to --dir
// (default: os.tmpdir()) and is removed after each run.
//
// The host may be busy: each window also measures the CPU other processes
// used (/proc/stat's busy time minus the forwarder's, the generator's and
// this process's), and a window where it exceeds --foreign-max % of a core
// (default 15) is repeated up to --retries times (default 2). The cost is
// the median over repetitions of the paired difference (with minus without
// --pcap, adjacent windows), over the repetitions whose two windows were
// both quiet (all repetitions if none was).
//
// --writer: PcapWriter alone, bursts of 64 packets of --length bytes from a
// Buffer as UMEM, one setImmediate turn per burst (as a forward loop yields
// to its event loop) for 3 s; prints the time write() takes per packet (the
// caller's cost: record headers and copies; bursts that dropped anything
// are left out), and the whole process's CPU per packet captured (the file
// writes on libuv's threads and the turns included).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { sh, safe, sleepUntil, machine, removeStaleLabs, createLab, startProc, waitLine, stop, finish, build, preflightLab } = require('./lib/harness');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'afxdp.js');
const WARMUP_MS = 1000;
const TICK_NS = 1e9 / Number(safe(() => sh('getconf', ['CLK_TCK']).trim(), '100'));

function parseOptions(argv) {
  const o = { writer: false, length: 64, mode: 'rxonly', reps: 5, window: 3, foreignMax: 15, retries: 2, dir: os.tmpdir(), json: path.join(__dirname, 'results', 'pcap-last-run.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--mode': o.mode = next(); break;
      case '--writer': o.writer = true; break;
      case '--length': o.length = Math.max(14, Math.min(9000, Math.floor(Number(next())))); break;
      case '--reps': o.reps = Math.max(1, Math.min(20, Math.floor(Number(next())))); break;
      case '--window': o.window = Math.max(0.5, Math.min(60, Number(next()))); break;
      case '--dir': o.dir = path.resolve(next()); break;
      case '--foreign-max': o.foreignMax = Number(next()); break;
      case '--retries': o.retries = Math.max(0, Math.min(5, Math.floor(Number(next())))); break;
      case '--json': o.json = path.resolve(next()); break;
      case '-h': case '--help':
        console.log('usage: sudo node bench/pcap.js [--mode rxonly|macswap] [--reps N] [--window S] [--dir DIR] [--json FILE]');
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (!['rxonly', 'macswap', 'io'].includes(o.mode)) throw new Error('--mode must be rxonly, macswap or io');
  return o;
}

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** Busy ticks of the whole machine (user nice system irq softirq). */
function busyTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6];
}

function procTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** rxPackets of the last stats line that arrived at or before `t`, and when it arrived. */
function rxAt(stamped, t) {
  let best = null;
  for (const s of stamped) if (s.at <= t) best = s;
  return best;
}

// The capture file of the run in progress: removed at exit too (the harness exits on SIGINT).
let captureFile = null;
process.on('exit', () => {
  if (captureFile) fs.rmSync(captureFile, { force: true });
});

async function runOnce(o, lab, bins, pcap) {
  const file = pcap ? path.join(o.dir, `afxdp-bench-pcap-${process.pid}.pcap`) : null;
  captureFile = file;
  const cmd = [process.execPath, BIN, 'fwd', '--vdev', `net_af_xdp0,iface=${lab.fwdIf},busy_budget=0`, '--netns', lab.fwdNs,
    '--forward-mode', o.mode, '--json', '--stats-period', '0.1', ...(file ? ['--pcap', file] : [])];
  const fwd = startProc(pcap ? 'afxdp fwd --pcap' : 'afxdp fwd', 1, cmd, true);
  // Stamp each stats line with its arrival time.
  const stamped = [];
  fwd.waiters.push(() => {
    while (stamped.length < fwd.lines.length) {
      const l = fwd.lines[stamped.length];
      stamped.push({ at: Date.now(), rx: l.type === 'stats' ? l.ports[0].rxPackets : NaN });
    }
  });
  let gen = null;
  try {
    await waitLine(fwd, (l) => l.type === 'start', 30_000);
    const t0 = Date.now() + WARMUP_MS;
    const t1 = t0 + o.window * 1000;
    gen = startProc('generator', 0, [bins.gen, '--netns', lab.genNs, '--iface', lab.genIf, '--mode', 'tx', '--peer-mac', lab.fwdMac,
      '--rate', '0', '--t0', String(t0), '--t1', String(t1), '--tend', String(t1 + 250)], true);
    await sleepUntil(t0);
    const c0 = procTicks(fwd.pid);
    const g0 = procTicks(gen.pid);
    const s0 = procTicks(process.pid);
    const b0 = busyTicks();
    await sleepUntil(t1);
    const c1 = procTicks(fwd.pid);
    const g1 = procTicks(gen.pid);
    const s1 = procTicks(process.pid);
    const b1 = busyTicks();
    const windowTicks = (o.window * 1e9) / TICK_NS;
    const foreignPct = Math.max(0, (100 * (b1 - b0 - (c1 - c0) - (g1 - g0) - (s1 - s0))) / windowTicks);
    const gr = await finish(gen, 15_000);
    await stop(fwd, 'SIGINT', 10_000);
    const final = fwd.lines.find((l) => l.type === 'final');
    if (!final) throw new Error(`afxdp fwd printed no final line:\n${fwd.stderr}`);
    const s = stamped.filter((x) => Number.isFinite(x.rx));
    const a = rxAt(s, t0);
    const b = rxAt(s, t1);
    if (!a || !b || b.at <= a.at) throw new Error('no stats lines around the window');
    const packets = b.rx - a.rx;
    const secs = (b.at - a.at) / 1000;
    const cpuNs = (c1 - c0) * TICK_NS;
    const capture = final.pcap?.[0];
    return {
      pcap, foreignPct, pps: packets / secs, offeredPps: gr.sentWindow / o.window, cpuPct: (100 * cpuNs) / (o.window * 1e9),
      // CPU over the fixed window [t0, t1) per packet received in about that window.
      nsPerPacket: (cpuNs / (o.window * 1e9)) * (secs * 1e9) / packets,
      rxTotal: final.ports[0].rxPackets,
      ...(capture ? { captured: capture.captured, dropped: capture.dropped, bytesWritten: capture.bytesWritten, error: capture.error } : {}),
    };
  } finally {
    for (const p of [fwd, gen]) if (p && !p.exited) try { p.child.kill('SIGKILL'); } catch { /* gone */ }
    await Promise.all([fwd.done, gen?.done]);
    for (const [ns, dev] of [[lab.fwdNs, lab.fwdIf], [lab.genNs, lab.genIf]]) safe(() => sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'xdp', 'off']));
    if (file) fs.rmSync(file, { force: true });
  }
}

async function writerOnly(o) {
  const { PcapWriter } = require(path.join(ROOT, 'dist', 'pcap'));
  const BURST = 64;
  const FRAME = 16384;
  const umem = Buffer.alloc(FRAME * BURST, 0x5a);
  const addrs = new Uint32Array(BURST);
  const lengths = new Uint32Array(BURST).fill(o.length);
  for (let i = 0; i < BURST; i++) addrs[i] = i * FRAME + 256;
  const file = path.join(o.dir, `afxdp-bench-writer-${process.pid}.pcap`);
  captureFile = file;
  const w = PcapWriter.open(file);
  try {
    const turn = () => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20000; i++) {
      w.write(umem, addrs, lengths, BURST);
      await turn();
    }
    const c0 = process.cpuUsage();
    const p0 = w.captured;
    const d0 = w.dropped;
    let syncNs = 0n;
    let syncPackets = 0;
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      for (let i = 0; i < 100; i++) {
        const t0 = process.hrtime.bigint();
        const n = w.write(umem, addrs, lengths, BURST);
        const t1 = process.hrtime.bigint();
        if (n === BURST) {
          syncNs += t1 - t0;
          syncPackets += n;
        }
        await turn();
      }
    }
    const c = process.cpuUsage(c0);
    const captured = w.captured - p0;
    const dropped = w.dropped - d0;
    const stats = await w.close();
    const cpuNs = (c.user + c.system) * 1000;
    console.log(JSON.stringify({ writer: true, length: o.length, captured, dropped,
      writeNsPerPacket: Math.round(Number(syncNs) / syncPackets), processCpuNsPerCaptured: Math.round(cpuNs / captured),
      bytesWritten: stats.bytesWritten, machine: machine(ROOT) }));
  } finally {
    fs.rmSync(file, { force: true });
  }
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  if (o.writer) return writerOnly(o);
  preflightLab();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('build the checkout first: npm run build');
  removeStaleLabs();
  const bins = build(['gen']);
  const lab = createLab();
  const runs = [];
  const pairs = [];
  for (let r = 0; r < o.reps; r++) {
    const pair = {};
    for (const pcap of r % 2 === 0 ? [false, true] : [true, false]) {
      let res;
      for (let attempt = 0; attempt <= o.retries; attempt++) {
        res = await runOnce(o, lab, bins, pcap);
        res.rep = r;
        res.attempt = attempt;
        res.disturbed = res.foreignPct > o.foreignMax;
        runs.push(res);
        console.error(`rep ${r + 1}/${o.reps} ${pcap ? 'pcap' : 'off '}: ${Math.round(res.pps)} pps, ${res.nsPerPacket.toFixed(0)} ns/packet CPU, ` +
          `${res.cpuPct.toFixed(0)} % CPU, others ${res.foreignPct.toFixed(0)} % of a core${res.disturbed ? ' (disturbed)' : ''}` +
          (pcap ? `, captured ${res.captured} of ${res.rxTotal}, dropped ${res.dropped}` : ''));
        if (!res.disturbed) break;
      }
      pair[pcap ? 'pcap' : 'off'] = res;
    }
    pairs.push(pair);
  }
  const quiet = pairs.filter((p) => !p.off.disturbed && !p.pcap.disturbed);
  const used = quiet.length > 0 ? quiet : pairs;
  const summary = (pcap) => {
    const v = used.map((p) => (pcap ? p.pcap : p.off));
    return {
      pps: Math.round(median(v.map((x) => x.pps))),
      nsPerPacket: Math.round(median(v.map((x) => x.nsPerPacket))),
      cpuPct: Math.round(median(v.map((x) => x.cpuPct))),
      ...(pcap ? { capturedShare: median(v.map((x) => x.captured / x.rxTotal)), dropped: median(v.map((x) => x.dropped)) } : {}),
    };
  };
  const off = summary(false);
  const on = summary(true);
  const out = {
    machine: machine(ROOT), mode: o.mode, reps: o.reps, windowS: o.window, dir: o.dir, off, pcap: on,
    quietPairs: quiet.length,
    captureNsPerPacket: Math.round(median(used.map((p) => p.pcap.nsPerPacket - p.off.nsPerPacket))),
    pairedNsPerPacket: used.map((p) => Math.round(p.pcap.nsPerPacket - p.off.nsPerPacket)),
    ppsRatio: median(used.map((p) => p.pcap.pps / p.off.pps)), runs,
  };
  fs.mkdirSync(path.dirname(o.json), { recursive: true });
  fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`afxdp fwd --forward-mode ${o.mode}, medians of ${o.reps}: without --pcap ${off.pps} pps, ${off.nsPerPacket} ns CPU/packet ` +
    `(${off.cpuPct} % CPU); with --pcap ${on.pps} pps, ${on.nsPerPacket} ns CPU/packet (${on.cpuPct} % CPU), ` +
    `${(100 * on.capturedShare).toFixed(1)} % of received captured; capture costs ${out.captureNsPerPacket} ns CPU per packet ` +
    `(median of paired differences ${out.pairedNsPerPacket.join(', ')}; pps ratio ${out.ppsRatio.toFixed(2)}; ` +
    `${quiet.length} of ${o.reps} pairs quiet) (${o.json})`);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack || err}\n`);
  process.exit(2);
});
