#!/usr/bin/env node
'use strict';
// afxdp soak: `npm run soak -- --minutes 10` (as root). Runs `afxdp fwd
// --forward-mode macswap` with its metrics endpoint for N minutes against the
// C generator at a fixed rate, scrapes the endpoint and reads the forwarder's
// RSS, fds and threads every --interval seconds, then reports the RSS slope
// (least squares, after the first minute's warm-up), fds and threads at
// start and end, and the packets lost (sent by the generator and never back).
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { sleepUntil, machine, cleanup, removeStaleLabs, createLab, startProc, waitLine, finish, build, preflightLab } = require('./lib/harness');

const ROOT = path.join(__dirname, '..');
const USAGE = `usage: node bench/soak.js [options]      (as root; npm run soak -- [options])
  --minutes N     how long to forward (default 10; at most 120)
  --rate PPS      generator rate in frames per second (default 50000)
  --interval S    seconds between samples (default 10)
  --warmup S      samples before this many seconds are left out of the RSS slope (default 60)
  --no-nice       do not run generator and forwarder at nice -20 (as the benchmark does)
  --json FILE     write every sample to FILE (default bench/results/soak-last.json)`;

function parseOptions(argv) {
  const o = { minutes: 10, rate: 50_000, interval: 10, warmup: 60, nice: true, json: path.join(__dirname, 'results', 'soak-last.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--minutes': o.minutes = value(); break;
      case '--rate': o.rate = Math.round(value()); break;
      case '--interval': o.interval = value(); break;
      case '--warmup': o.warmup = value(); break;
      case '--no-nice': o.nice = false; break;
      case '--json': o.json = path.resolve(argv[++i] ?? ''); break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.minutes > 120) throw new Error('--minutes must be at most 120');
  return o;
}

/** VmRSS (KiB), threads and open fds of `pid`. */
function procSample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number((status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm')) || [])[1]);
  return { rssKiB: field('VmRSS'), threads: field('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

function scrape(url) {
  return new Promise((resolve, reject) => {
    // No keep-alive: a lingering connection would count as a forwarder fd.
    const req = http.get(url, { timeout: 2000, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`metrics: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('metrics: no answer within 2 s')));
    req.on('error', reject);
  });
}

/** Sum of a Prometheus counter over its label sets. */
function metric(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  preflightLab();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: run `npm run build` first');
  const info = machine(ROOT);
  const bins = build(['gen']);
  removeStaleLabs();
  const lab = createLab();
  console.log(`afxdp soak: macswap at ${o.rate} pps for ${o.minutes} min, sampled every ${o.interval} s; ` +
    `Linux ${info.kernel}, Node ${info.node}, commit ${info.commit}`);

  // busy_budget=0: on veth busy polling only costs (bench/README.md).
  const fwd = startProc('afxdp fwd', 1, [process.execPath, path.join(ROOT, 'bin', 'afxdp.js'), 'fwd',
    '--vdev', `net_af_xdp0,iface=${lab.fwdIf},busy_budget=0`, '--netns', lab.fwdNs, '--forward-mode', 'macswap',
    '--json', '--stats-period', '0', '--metrics-port', '0'], o.nice);
  const start = await waitLine(fwd, (l) => l.type === 'start', 30_000);
  const t0 = Date.now() + 500;
  const t1 = t0 + o.minutes * 60_000;
  const gen = startProc('generator', 0, [bins.gen, '--netns', lab.genNs, '--iface', lab.genIf, '--mode', 'tx',
    '--peer-mac', lab.fwdMac, '--rate', String(o.rate), '--t0', String(t0), '--t1', String(t1), '--tend', String(t1 + 1000)], o.nice);

  const samples = [];
  for (let at = t0; at <= t1; at += o.interval * 1000) {
    await sleepUntil(at);
    if (fwd.exited || gen.exited) break;
    const proc = procSample(fwd.pid); // before the scrape opens a connection
    const text = await scrape(start.metrics).catch((err) => { throw new Error(`scraping ${start.metrics}: ${err.message}`); });
    const s = {
      s: Math.round((Date.now() - t0) / 1000), ...proc,
      heapKiB: Math.round(metric(text, 'nodejs_heap_size_used_bytes') / 1024),
      rx: metric(text, 'afxdp_rx_packets_total'), tx: metric(text, 'afxdp_tx_packets_total'),
    };
    samples.push(s);
    console.log(`${String(s.s).padStart(5)} s  RSS ${(s.rssKiB / 1024).toFixed(1)} MiB  V8 heap used ${(s.heapKiB / 1024).toFixed(1)} MiB  ` +
      `fds ${s.fds}  threads ${s.threads}  rx ${s.rx}  tx ${s.tx}`);
  }
  const gr = await finish(gen, 20_000);
  fwd.child.kill('SIGINT');
  await finish(fwd, 5_000).catch(() => null);
  const stopped = fwd.lines.find((l) => l.type === 'final');

  const late = samples.filter((s) => s.s >= o.warmup);
  const fit = late.map((s) => ({ x: s.s / 60, y: s.rssKiB }));
  const first = samples[0];
  const last = samples[samples.length - 1];
  const result = {
    machine: info, options: o,
    sent: gr.sent, back: gr.rx, lost: gr.sent - gr.rx,
    // Where the forwarder lost them: the kernel found its fill ring empty.
    fillRingEmpty: stopped?.ports?.[0]?.xdp?.rxFillRingEmptyDescs,
    rssSlopeKiBPerMin: slope(fit), rssStartKiB: first.rssKiB, rssEndKiB: last.rssKiB,
    rssMaxKiB: Math.max(...late.map((s) => s.rssKiB)),
    heapSlopeKiBPerMin: slope(late.map((s) => ({ x: s.s / 60, y: s.heapKiB }))),
    fds: [first.fds, last.fds], threads: [first.threads, last.threads],
    xdp: gr.xdp, final: stopped, samples,
  };
  console.log('');
  console.log(`sent ${result.sent}, back ${result.back}, lost ${result.lost} (${((100 * result.lost) / Math.max(1, result.sent)).toFixed(4)} %; ` +
    `the forwarder's fill ring was found empty for ${result.fillRingEmpty ?? '?'} of them)`);
  console.log(`RSS ${(result.rssStartKiB / 1024).toFixed(1)} -> ${(result.rssEndKiB / 1024).toFixed(1)} MiB, ` +
    `slope ${result.rssSlopeKiBPerMin.toFixed(1)} KiB/min after the first ${o.warmup} s (peak ${(result.rssMaxKiB / 1024).toFixed(1)} MiB); ` +
    `V8 heap used: slope ${result.heapSlopeKiBPerMin.toFixed(1)} KiB/min`);
  console.log(`fds ${result.fds.join(' -> ')}, threads ${result.threads.join(' -> ')}; forwarder exit ${fwd.exited?.code ?? fwd.exited?.signal}`);
  fs.mkdirSync(path.dirname(o.json), { recursive: true });
  fs.writeFileSync(o.json, JSON.stringify(result, null, 2));
  console.log(`raw results: ${path.relative(process.cwd(), o.json)}`);
}

main().then(() => cleanup(), (err) => {
  process.stderr.write(`soak: ${err.message}\n`);
  cleanup();
  process.exitCode = 1;
});
