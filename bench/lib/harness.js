'use strict';
// The benchmark's harness (bench/run.js, bench/soak.js): a veth lab between
// two namespaces, pinned child processes speaking JSON lines, the C helpers
// built into a temporary directory, and cleanup on exit or signal.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntil = (t) => sleep(t - Date.now());

function sh(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}


function safe(fn, fallback) {
  try {
    return fn();
  } catch {
    return fallback;
  }
}


function machine(root) {
  const cpuinfo = safe(() => fs.readFileSync('/proc/cpuinfo', 'utf8'), '');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown';
  return {
    nproc: os.cpus().length,
    cpu: model.trim(),
    kernel: os.release(),
    node: process.version,
    commit: safe(() => sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).trim(), 'unknown'),
    date: new Date().toISOString(),
  };
}


// ------------------------------------------------------------------ cleanup

const children = new Set();
const labs = new Set();
let tmpDir = null;

function cleanup() {
  for (const child of children) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
  for (const l of labs) l.destroy();
  labs.clear();
  if (tmpDir) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = null;
  }
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: stopping, removing the namespaces\n`);
    cleanup();
    process.exit(130);
  });
}

// ------------------------------------------------------------------ lab

const NS_PREFIX = 'afxb-';

/** Remove namespaces left behind by a benchmark process that no longer exists. */
function removeStaleLabs() {
  const names = safe(() => sh('ip', ['netns', 'list']), '').split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
  for (const ns of names) {
    const m = ns.match(/^afxb-[gf](\d+)[a-z]?$/);
    if (m && !fs.existsSync(`/proc/${m[1]}`)) safe(() => sh('ip', ['netns', 'del', ns]));
  }
}

/**
 * Two namespaces joined by a veth pair with `queues` tx and rx queues on
 * each side; `tag` (one letter) tells several labs of one process apart.
 * Removed by cleanup(), or by destroy().
 */
function createLab({ queues = 1, tag = '' } = {}) {
  const id = `${process.pid}${tag}`;
  const q = String(queues);
  const l = {
    genNs: `${NS_PREFIX}g${id}`, fwdNs: `${NS_PREFIX}f${id}`,
    genIf: `afxbg${id}`.slice(0, 15), fwdIf: `afxbf${id}`.slice(0, 15),
    genMac: '', fwdMac: '', queues,
    destroy() {
      for (const ns of [l.genNs, l.fwdNs]) safe(() => sh('ip', ['netns', 'del', ns]));
      labs.delete(l);
    },
  };
  labs.add(l);
  sh('ip', ['netns', 'add', l.genNs]);
  sh('ip', ['netns', 'add', l.fwdNs]);
  sh('ip', ['link', 'add', l.genIf, 'numtxqueues', q, 'numrxqueues', q, 'netns', l.genNs, 'type', 'veth',
    'peer', 'name', l.fwdIf, 'numtxqueues', q, 'numrxqueues', q, 'netns', l.fwdNs]);
  for (const [ns, dev] of [[l.genNs, l.genIf], [l.fwdNs, l.fwdIf]]) {
    // No addresses and no IPv6: nothing but benchmark frames on the wire.
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'up']);
  }
  const mac = (ns, dev) => JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address;
  l.genMac = mac(l.genNs, l.genIf);
  l.fwdMac = mac(l.fwdNs, l.fwdIf);
  return l;
}

// ------------------------------------------------------------------ processes

/**
 * A child pinned to `cpu` (null: not pinned, it pins itself), JSON lines on
 * stdout (other lines are kept with stderr). With `nice` it runs at
 * nice -20 in a session of its own whose autogroup is also set to nice -20:
 * with autogroup scheduling (kernel.sched_autogroup_enabled) a process's
 * nice value only counts inside its session, so without the second part
 * any other session's busy process takes half of our CPU.
 */
function startProc(name, cpu, cmd, nice) {
  const argv = [...(nice ? ['nice', '-n', '-20'] : []), ...(cpu === null ? [] : ['taskset', '-c', String(cpu)]), ...cmd];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: nice });
  children.add(child);
  if (nice && child.pid !== undefined) safe(() => fs.writeFileSync(`/proc/${child.pid}/autogroup`, '-20'));
  const proc = { name, child, pid: child.pid, lines: [], stderr: '', exited: null, waiters: [] };
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        proc.lines.push(JSON.parse(line));
      } catch {
        proc.stderr += `${line}\n`;
      }
      for (const w of proc.waiters) w();
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { proc.stderr += d; });
  child.stdin.on('error', () => { /* the child may exit first */ });
  proc.done = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      proc.exited = { code, signal };
      for (const w of proc.waiters) w();
      resolve(proc.exited);
    });
  });
  return proc;
}

function failure(proc, what) {
  const how = proc.exited ? `exited (${proc.exited.code ?? proc.exited.signal})` : 'still running';
  return new Error(`${proc.name}: ${what}; ${how}${proc.stderr ? `:\n${proc.stderr.trim()}` : ''}`);
}

/** Wait for a JSON line matching `pred`, at most `timeoutMs`. */
function waitLine(proc, pred, timeoutMs) {
  return waitFor(proc, () => proc.lines.find(pred), `no expected output within ${timeoutMs} ms`, timeoutMs);
}

/** Resolves to `found()` once truthy (checked on every line and at exit); rejects at exit or after `timeoutMs`. */
function waitFor(proc, found, what, timeoutMs) {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => done(() => reject(failure(proc, what))), timeoutMs);
    let finished = false;
    const done = (f) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      proc.waiters = proc.waiters.filter((w) => w !== check);
      f();
    };
    const check = () => {
      const hit = found();
      if (hit) done(() => resolve(hit));
      else if (proc.exited) done(() => reject(failure(proc, 'ended without the expected output')));
    };
    proc.waiters.push(check);
    check();
  });
}

/** Wait for a line of text (non-JSON output) matching `re`, at most `timeoutMs`. */
function waitText(proc, re, timeoutMs) {
  return waitFor(proc, () => re.test(proc.stderr), `no line matching ${re} within ${timeoutMs} ms`, timeoutMs);
}

/** Signal `proc` and wait for it to exit (SIGKILL after `timeoutMs`). */
async function stop(proc, signal, timeoutMs) {
  if (!proc.exited) try { proc.child.kill(signal); } catch { /* gone */ }
  const timer = setTimeout(() => { try { proc.child.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  await proc.done;
  clearTimeout(timer);
  return proc.exited;
}

async function finish(proc, timeoutMs) {
  const timer = setTimeout(() => { try { proc.child.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  await proc.done;
  clearTimeout(timer);
  const last = proc.lines.filter((l) => !l.ready).pop();
  if (!last || proc.exited.code !== 0) throw failure(proc, 'no result');
  return last;
}


/** node_api.h of the running Node, if installed (Debian: libnode-dev; or Node's own include/). */
function nodeApiInclude() {
  const dirs = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return dirs.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
}

function build(names = ['gen', 'fwd', 'probe']) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bench-'));
  const out = {};
  const inc = nodeApiInclude();
  if (inc) {
    out.napiBaseline = path.join(tmpDir, 'napi-baseline.node');
    try {
      sh('cc', ['-O2', '-shared', '-fPIC', `-I${inc}`, '-o', out.napiBaseline, path.join(__dirname, '..', 'c', 'napi-baseline.c')]);
    } catch {
      out.napiBaseline = undefined;
    }
  }
  for (const name of names) {
    out[name] = path.join(tmpDir, name);
    try {
      sh('cc', ['-O2', '-Wall', '-o', out[name], path.join(__dirname, '..', 'c', `${name}.c`)]);
    } catch (err) {
      throw new Error(`building bench/c/${name}.c failed (needs a C compiler and linux-libc-dev):\n${err.stderr || err.message}`);
    }
  }
  return out;
}

/** Root on Linux with 2 CPUs and the tools the lab needs. */
function preflightLab() {
  if (process.platform !== 'linux' || process.geteuid?.() !== 0) {
    throw new Error('the benchmark needs root on Linux (network namespaces, XDP, AF_XDP): sudo npm run bench');
  }
  if (os.cpus().length < 2) throw new Error('the benchmark pins the generator to CPU 0 and the forwarder to CPU 1: it needs 2 CPUs');
  for (const tool of ['ip', 'taskset', 'cc']) {
    if (safe(() => sh('sh', ['-c', `command -v ${tool}`]), '') === '') throw new Error(`${tool} is required (iproute2, util-linux, a C compiler)`);
  }
}

module.exports = { sh, safe, sleep, sleepUntil, machine, cleanup, removeStaleLabs, createLab, startProc, failure, waitLine, waitText, stop, finish, build, preflightLab };
