'use strict';
// Shared pieces of the afxdp forwarders (bench/fwd-burst.js, bench/fwd-stream.js).
const path = require('node:path');
const v8 = require('node:v8');
const { PerformanceObserver, performance } = require('node:perf_hooks');

const FRAME_LEN = 64;

function afxdp() {
  try {
    return require(path.join(__dirname, '..', '..', 'dist', 'index.js'));
  } catch (err) {
    throw new Error(`cannot load afxdp from dist/ (run \`npm run build\` first): ${err.message}`);
  }
}

/** --key value pairs. */
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad arguments near ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  if (!['macswap', 'rxdrop', 'txonly'].includes(out.mode)) throw new Error('--mode must be macswap, rxdrop or txonly');
  if (!out.iface) throw new Error('--iface is required');
  return out;
}

/**
 * The port every afxdp cell uses: afxdp's defaults (4096 frames of 4096
 * bytes, rings of 2048, bursts of 64), with --poll-mode as the port's
 * pollMode (its streams and 'readable' events follow it).
 */
async function openBenchPort(args) {
  const { openPort } = afxdp();
  const options = { iface: args.iface, netns: args.netns };
  if (args['poll-mode'] !== undefined) options.pollMode = args['poll-mode'];
  if (args['busy-budget'] !== undefined) options.busyBudget = Number(args['busy-budget']);
  // AFXDP_BENCH_RX_METADATA=1: afxdp's RX-metadata program (issue 16), to
  // measure its cost per packet against the same run without it.
  if (process.env.AFXDP_BENCH_RX_METADATA === '1') options.rxMetadata = true;
  return openPort(options);
}

/** One line "T0 T1 TEND [MAC]" from stdin (epoch ms), then stdin is let go. */
function readWindow() {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('no window on stdin within 60 s')), 60_000);
    const onData = (chunk) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      process.stdin.off('data', onData);
      process.stdin.pause();
      process.stdin.unref?.();
      const [t0, t1, tend, mac] = buf.slice(0, nl).trim().split(/\s+/);
      const w = { t0: Number(t0), t1: Number(t1), tend: Number(tend), mac };
      if (!(w.t0 <= w.t1 && w.t1 <= w.tend) || w.tend > Date.now() + 600_000) {
        reject(new Error(`bad window line ${JSON.stringify(buf.slice(0, nl))}`));
        return;
      }
      resolve(w);
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.on('end', () => reject(new Error('stdin closed before the window line')));
  });
}

/**
 * V8 inside the window [mark(0), mark(1)): GCs (v8.GCProfiler, and
 * PerformanceObserver 'gc' as a cross-check), bytes allocated on the V8 heap
 * (what the GCs freed plus how much the heap grew) and used heap samples.
 */
class GcMeter {
  constructor() {
    this.events = [];
    this.marks = [undefined, undefined];
    this.heapMax = 0;
    this.heapMin = Infinity;
    this.nextSample = 0;
    this.profile = null;
    this.profiler = typeof v8.GCProfiler === 'function' ? new v8.GCProfiler() : null;
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.events.push({ at: performance.timeOrigin + e.startTime, ms: e.duration });
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  mark(i) {
    if (i === 1 && this.profiler) this.profile = this.profiler.stop();
    const heap = v8.getHeapStatistics().used_heap_size;
    this.marks[i] = { at: Date.now(), heap };
    this.sampleHeap(heap);
    if (i === 0 && this.profiler) this.profiler.start();
  }

  /** Called about once per event-loop turn; samples the heap every 250 ms inside the window. */
  tick(now) {
    if (this.marks[0] === undefined || this.marks[1] !== undefined || now < this.nextSample) return;
    this.nextSample = now + 250;
    this.sampleHeap(v8.getHeapStatistics().used_heap_size);
  }

  sampleHeap(heap) {
    if (heap > this.heapMax) this.heapMax = heap;
    if (heap < this.heapMin) this.heapMin = heap;
  }

  async report() {
    // Observer callbacks are delivered asynchronously: let them arrive.
    await new Promise((r) => setTimeout(r, 20));
    this.observer.disconnect();
    const [m0, m1] = this.marks;
    const observed = this.events.filter((e) => e.at >= m0.at && e.at < m1.at);
    const stats = this.profile?.statistics;
    let freed = 0;
    for (const g of stats ?? []) freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
    return {
      count: stats ? stats.length : observed.length,
      observed: observed.length,
      kinds: stats ? [...new Set(stats.map((g) => g.gcType))] : undefined,
      ms: Math.round(observed.reduce((t, e) => t + e.ms, 0) * 100) / 100,
      allocatedBytes: stats ? freed + (m1.heap - m0.heap) : undefined,
      heapStart: m0.heap,
      heapEnd: m1.heap,
      heapMin: this.heapMin,
      heapMax: this.heapMax,
    };
  }
}

/** The benchmark frame: Ethernet / IPv4 / UDP, 64 bytes, magic "AFXB" at 42 (as bench/c/xsk.h). */
function buildFrame(dstMac, srcMac) {
  const f = Buffer.alloc(FRAME_LEN);
  const mac = (s) => Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
  mac(dstMac).copy(f, 0);
  mac(srcMac).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(FRAME_LEN - 14, ip + 2);
  f[ip + 8] = 64;
  f[ip + 9] = 17;
  Buffer.from([198, 18, 0, 1, 198, 18, 0, 2]).copy(f, ip + 12);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += f.readUInt16BE(ip + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(~s & 0xffff, ip + 10);
  f.writeUInt16BE(9, 34);
  f.writeUInt16BE(9, 36);
  f.writeUInt16BE(FRAME_LEN - 34, 38);
  f.write('AFXB', 42, 'latin1');
  return f;
}

/**
 * The poll policy a forwarder runs (--poll-mode). `has` lists what it can
 * do, its default first. A policy it does not have is an error: the bench
 * then shows the cell as n/a rather than measuring something else under
 * that name.
 */
function pollMode(args, has) {
  const want = args['poll-mode'] ?? has[0];
  if (!has.includes(want)) throw new Error(`--poll-mode ${want}: this forwarder has ${has.map((m) => `'${m}'`).join(', ')} only`);
  return want;
}

/** The library's poll policies, its default first (for pollMode()). */
function libraryPollModes() {
  const { POLL_MODES, portDefaults } = afxdp();
  return [portDefaults.pollMode, ...POLL_MODES.filter((m) => m !== portDefaults.pollMode)];
}

function result(obj) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve));
}

module.exports = { afxdp, parseArgs, pollMode, libraryPollModes, openBenchPort, readWindow, GcMeter, buildFrame, FRAME_LEN, result };
