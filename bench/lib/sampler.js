#!/usr/bin/env node
'use strict';
// The window readings of a scaling cell (bench/run.js --mode scaling), taken
// by a process of their own that the bench starts at the measured processes'
// priority (nice -20, own autogroup): with two forwarding threads and the
// generator busy on 2 vCPUs, the bench's own process can be kept off the CPU
// past the window's end, when the forwarder's threads have already exited.
// Reads at T0 and T1 (epoch ms), prints one JSON line and exits.
//   sampler.js --fwd PID --gen PID --self PID[,PID] --softirq PID[,PID] --t0 MS --t1 MS
const { snapshot, taskTimes } = require('./procstat');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const list = (v) => (v ? v.split(',').filter(Boolean).map(Number) : []);
const pids = { fwd: Number(args.fwd), gen: Number(args.gen) };
const self = [...list(args.self), process.pid];
const softirq = list(args.softirq);
const t0 = Number(args.t0);
const t1 = Number(args.t1);
if (!(pids.fwd > 0 && pids.gen > 0 && t0 > 0 && t1 >= t0) || t1 > Date.now() + 120_000) {
  process.stderr.write('usage: sampler.js --fwd PID --gen PID --self PIDS --softirq PIDS --t0 MS --t1 MS (T1 within 2 minutes)\n');
  process.exit(2);
}
const read = () => ({ ...snapshot(pids, softirq, self), tasks: taskTimes(pids.fwd) });
setTimeout(() => {
  const s0 = read();
  setTimeout(() => {
    const s1 = read();
    process.stdout.write(`${JSON.stringify({ s0, s1 })}\n`);
  }, Math.max(0, t1 - Date.now()));
}, Math.max(0, t0 - Date.now()));
