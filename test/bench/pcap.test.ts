// bench/pcap.js as a user runs it, cut to one short repetition: both
// variants measured, every packet received captured, the capture file
// removed, the JSON consistent, no namespace left behind. The figures are
// the benchmark's business; here only their accounting is checked.
// --retries 0 --foreign-max 1000: disturbed windows are not repeated.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privileged } from '../helpers/privileged';

const test = privileged();
const PCAP = path.join(__dirname, '../../bench/pcap.js');

const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '')
  .filter((n) => n.startsWith('afxb-'));

test.serial('bench/pcap.js: afxdp fwd measured with and without --pcap; every packet received captured; nothing left behind', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bench-pcap-test-'));
  const json = path.join(dir, 'run.json');
  const before = namespaces();
  try {
    const out = execFileSync(process.execPath, [PCAP, '--mode', 'macswap', '--reps', '1', '--window', '1', '--retries', '0',
      '--foreign-max', '1000', '--dir', dir, '--json', json], { encoding: 'utf8', timeout: 100_000 });
    t.regex(out, /without --pcap \d+ pps, \d+ ns CPU\/packet .* with --pcap \d+ pps, \d+ ns CPU\/packet .* capture costs -?\d+ ns CPU per packet/);
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    t.is(result.runs.length, 2);
    const off = result.runs.find((r: { pcap: boolean }) => !r.pcap);
    const on = result.runs.find((r: { pcap: boolean }) => r.pcap);
    t.true(off.pps > 0 && on.pps > 0, 'both received packets');
    t.is(off.captured, undefined, 'no capture without --pcap');
    t.true(on.captured > 0);
    t.is(on.captured + on.dropped, on.rxTotal, 'every packet received was captured or counted as dropped');
    t.true(on.bytesWritten >= 24 + on.captured * 16, 'the file held a header and a record per packet');
    t.deepEqual(result.pairedNsPerPacket, [Math.round(on.nsPerPacket - off.nsPerPacket)]);
    t.deepEqual(fs.readdirSync(dir).sort(), ['run.json'], 'the capture file was removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(namespaces().filter((n) => !before.includes(n)), [], 'the bench removed its namespaces');
});
