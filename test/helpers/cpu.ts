// CPU time of a process's threads in nanoseconds, from
// /proc/self/task/<tid>/schedstat (the scheduler's exact runtime). The
// utime/stime fields of /proc/<pid>/stat are sampled in 10 ms clock ticks:
// one stray tick in a 3 s window reads as 0.33 % of a core, which made idle
// checks flaky.
import fs from 'node:fs';

type ThreadFilter = (tid: number, name: string) => boolean;

/** Sum of the runtime of the threads of `pid` that `keep(tid, name)` selects (all by default). */
export function threadCpuNs(keep: ThreadFilter = () => true, pid: number | 'self' = 'self'): number {
  let ns = 0;
  const task = `/proc/${pid}/task`;
  for (const tid of fs.readdirSync(task)) {
    try {
      const stat = fs.readFileSync(`${task}/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!keep(Number(tid), name)) continue;
      ns += Number(fs.readFileSync(`${task}/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return ns;
}

/** Percent of one core the selected threads of `pid` used while `fn` ran. */
export async function cpuPercentDuring(fn: () => Promise<unknown>, keep?: ThreadFilter, pid: number | 'self' = 'self'): Promise<number> {
  const c0 = threadCpuNs(keep, pid);
  const t0 = process.hrtime.bigint();
  await fn();
  const wallNs = Number(process.hrtime.bigint() - t0);
  return ((threadCpuNs(keep, pid) - c0) / wallNs) * 100;
}
