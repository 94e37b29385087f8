// The benchmark as a user runs it (`npm run bench`), cut to one short
// repetition of rxdrop and idle: it builds its C programs, runs the C
// reference and both afxdp forwarders against the generator, prints the
// table, writes the JSON that `--from` prints again, and leaves no namespace
// behind. The figures themselves are the benchmark's business; here only
// their accounting is checked.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privileged } from '../helpers/privileged';

const test = privileged();
const RUN = path.join(__dirname, '../../bench/run.js');

const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter(Boolean);

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
      '--gc', '0', '--mode', 'rxdrop,idle', '--verbose', '--json', json], { encoding: 'utf8', timeout: 100_000 });
    t.regex(out, /\| cell +\| C reference +\| afxdp burst +\| afxdp stream +\|/);
    const row = out.split('\n').find((l) => l.startsWith('| rxdrop, kpps (ratio)'));
    t.truthy(row, out);
    // Three numbers, the afxdp ones with a ratio to the C reference.
    t.regex(row!, /\| \d+ +\| \d+ \(\d+\.\d{3}×.*\| \d+ \(\d+\.\d{3}×/);
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
