// CPU time of this process's threads in nanoseconds, from
// /proc/self/task/<tid>/schedstat (the scheduler's exact runtime). The
// utime/stime fields of /proc/<pid>/stat are sampled in 10 ms clock ticks:
// one stray tick in a 3 s window reads as 0.33 % of a core, which made idle
// checks flaky.
import fs from 'node:fs';

/** Sum of the runtime of the threads `keep(tid, name)` selects (all by default). */
export function threadCpuNs(keep: (tid: number, name: string) => boolean = () => true): number {
  let ns = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!keep(Number(tid), name)) continue;
      ns += Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return ns;
}

/** Percent of one core `fn`'s window cost, measured on the selected threads. */
export async function cpuPercentDuring(fn: () => Promise<unknown>, keep?: (tid: number, name: string) => boolean): Promise<number> {
  const c0 = threadCpuNs(keep);
  const t0 = process.hrtime.bigint();
  await fn();
  const wallNs = Number(process.hrtime.bigint() - t0);
  return ((threadCpuNs(keep) - c0) / wallNs) * 100;
}
