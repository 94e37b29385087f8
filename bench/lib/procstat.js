'use strict';
// CPU time from /proc, for bench/run.js and its window sampler (bench/lib/sampler.js).
const fs = require('node:fs');
const { sh, safe } = require('./harness');

const TICK_NS = 1e9 / Number(safe(() => sh('getconf', ['CLK_TCK']).trim(), '100'));

/** utime and stime of a whole process (all threads), in clock ticks. */
function procTimes(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), sys: Number(f[12]) }; // fields 14 and 15 of proc(5)
}

function procTicks(pid) {
  const t = procTimes(pid);
  return t.user + t.sys;
}

/** Busy ticks of the whole machine (user nice system irq softirq) and the total. */
function sysTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal, steal };
}

function kernelSoftirqPids() {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))
    .filter((d) => safe(() => fs.readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('ksoftirqd/'), false)).map(Number);
}

/**
 * One reading: the machine's ticks, each of `pids` (name → pid; its total
 * and user ticks), the ksoftirqd threads, and `selfPids` (the bench's own
 * processes, not counted as others).
 */
function snapshot(pids, softirqPids, selfPids) {
  const ticks = {};
  for (const [k, pid] of Object.entries(pids)) {
    const t = pid ? safe(() => procTimes(pid), { user: NaN, sys: NaN }) : { user: 0, sys: 0 };
    ticks[k] = t.user + t.sys;
    ticks[`${k}User`] = t.user;
  }
  ticks.softirqd = softirqPids.reduce((s, p) => s + safe(() => procTicks(p), 0), 0);
  ticks.self = selfPids.reduce((s, p) => s + safe(() => procTicks(p), 0), 0);
  return { at: Date.now(), sys: sysTicks(), ticks };
}

/** utime, stime (clock ticks), name and last CPU of every thread of `pid`, by tid. */
function taskTimes(pid) {
  const out = {};
  for (const tid of safe(() => fs.readdirSync(`/proc/${pid}/task`), [])) {
    const s = safe(() => fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'), null);
    if (!s) continue;
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // proc(5): utime 14, stime 15, processor 39 (fields from 3 on follow the name)
    out[tid] = { name: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), user: Number(f[11]), sys: Number(f[12]), cpu: Number(f[36]) };
  }
  return out;
}

module.exports = { TICK_NS, procTimes, procTicks, sysTicks, kernelSoftirqPids, snapshot, taskTimes };
