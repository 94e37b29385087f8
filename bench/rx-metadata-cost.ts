// Per-packet cost of afxdp's XDP program with and without rxMetadata: the
// kernel's own accounting (kernel.bpf_stats_enabled=1: run_time_ns /
// run_cnt of the attached program), on a veth lab, the same 64-byte UDP
// packets (7 flows), 5 alternating repetitions of 200,000 packets.
// As root: npx tsx bench/rx-metadata-cost.ts   (docs/design.md, issue 16)
// The XDP program runs in the sender's softirq (veth), not in the
// forwarder, which is why a macswap pps comparison on a busy 2-CPU host
// hides it; this reads the program's own time.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLab } from '../test/helpers/lab';
import { udpFrame } from '../test/helpers/udp-frames';
import { openPort } from '../lib/index';
import { PacketSocket } from '../lib/peer/packet-socket';

async function run(rxMetadata: boolean, n: number): Promise<{ ns: number; cnt: number; program: string }> {
  const lab = createLab();
  try {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, rxMetadata });
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const id = port.info().xdpProgramId;
      const q = port.queues[0];
      const frames = Array.from({ length: 100 }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, 1000 + (i % 7), 64));
      let got = 0;
      for (let sent = 0; sent < n; sent += 100) {
        peer.send(frames);
        for (let k = q.receive(); k > 0; k = q.receive()) { got += k; q.release(k); }
      }
      for (let i = 0; i < 100; i++) { const k = q.receive(); got += k; q.release(k); }
      const s = JSON.parse(execFileSync(progstats, [String(id)], { encoding: 'utf8' }));
      return { ns: s.run_time_ns / s.run_cnt, cnt: s.run_cnt, program: port.info().rxMetadata.program };
    } finally {
      port.close();
      peer.close();
    }
  } finally {
    lab.destroy();
  }
}

const progstats = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-progstats-')), 'progstats');
execFileSync('cc', ['-O2', '-Wall', '-idirafter', `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
  '-o', progstats, path.join(__dirname, 'c', 'progstats.c')]);

async function main() {
  execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
  try {
    const rows: string[] = [];
    for (let r = 0; r < 5; r++) {
      for (const m of [false, true]) {
        const x = await run(m, 200_000);
        rows.push(`${m ? 'rxMetadata' : 'plain     '} rep ${r}: ${x.ns.toFixed(1)} ns/packet over ${x.cnt} runs (${x.program})`);
      }
    }
    console.log(rows.join('\n'));
  } finally {
    execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=0']);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
