// PcapWriter on real ports (veth lab): a Queue's slots right after
// receive(), and the batches of a port's readable stream, written and read
// back by the test's parser and by tcpdump, byte for byte, in order.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privileged } from '../helpers/privileged';
import { withLab } from '../helpers/lab';
import { frameSeq, sleep, testFrame } from '../helpers/frames';
import { readPcap } from '../helpers/pcap';
import { openPort, PcapWriter } from '../../lib/index';
import type { Batch } from '../../lib/index';

const test = privileged();
const N = 300;

function tcpdumpCount(file: string): number {
  const out = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  // One line per packet starts with its time; unknown ethertypes (0x88b5) add hex dump lines.
  return out.split('\n').filter((l) => /^\d{2}:\d{2}:\d{2}\.\d+ /.test(l)).length;
}

for (const source of ['queue', 'batch'] as const) {
  test.serial(`PcapWriter.${source === 'queue' ? 'writeQueue' : 'writeBatch'} on a real port: every frame, in order, byte for byte`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-lab-pcap-'));
    try {
      await withLab({}, async (lab, peer) => {
        const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
        const file = path.join(dir, `${source}.pcap`);
        const w = PcapWriter.open(file);
        try {
          const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, 60 + (i % 300)));
          for (let i = 0; i < N; i += 50) t.is(peer.send(frames.slice(i, i + 50)), Math.min(50, N - i));
          const deadline = Date.now() + 10_000;
          if (source === 'queue') {
            const q = port.queues[0]!;
            while (w.captured < N && Date.now() < deadline) {
              const n = q.receive();
              t.is(w.writeQueue(q, n), n);
              q.release(n);
              if (n === 0) await sleep(1);
            }
          } else {
            const rx = port.readable();
            const ac = new AbortController();
            const timer = setTimeout(() => ac.abort(), 10_000);
            try {
              for await (const b of rx) {
                const batch = b as Batch;
                t.is(w.writeBatch(batch), batch.length);
                batch.release();
                if (w.captured >= N) break;
              }
            } finally {
              clearTimeout(timer);
            }
          }
          const stats = await w.close();
          t.like(stats, { captured: N, dropped: 0 });
          const records = readPcap(file).records;
          t.is(records.length, N);
          t.deepEqual(records.map((r) => frameSeq(r.data)), frames.map((_, i) => i), 'in the order sent');
          t.true(records.every((r, i) => r.data.equals(frames[i]!) && r.origLen === frames[i]!.length), 'byte for byte');
          t.is(tcpdumpCount(file), N, 'tcpdump reads every record');
        } finally {
          await w.close();
          port.close();
        }
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
