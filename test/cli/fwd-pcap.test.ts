// `afxdp fwd --pcap` on veth labs: the capture file read back by tcpdump
// (Debian's) and by the test's own parser, with the right count, lengths,
// timestamps and bytes; forwarding goes on after --pcap-count; with
// --nb-cores 2, one file per thread. Needs root and tcpdump.
import anyTest from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privileged } from '../helpers/privileged';
import { createLab, Lab } from '../helpers/lab';
import { udpFrame, udpSeq } from '../helpers/udp-frames';
import { readPcap } from '../helpers/pcap';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { Running, runAfxdp } from './helpers';

const test = privileged();

function tcpdump(args: string[]): string {
  return execFileSync('tcpdump', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

/** tcpdump -xx's hex dump of each packet, as Buffers (its header lines start the packets). */
function tcpdumpBytes(file: string, count: number): Buffer[] {
  const out = tcpdump(['-r', file, '-nn', '-xx', '-c', String(count)]);
  const packets: string[][] = [];
  for (const line of out.split('\n')) {
    const hex = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    if (hex === null) {
      if (line.trim() !== '') packets.push([]);
      continue;
    }
    packets.at(-1)!.push(hex[1]!.replace(/\s+/g, ''));
  }
  return packets.map((p) => Buffer.from(p.join(''), 'hex'));
}

/** Send `frames` in bursts of 100; the echoes are drained as they come (bounded). */
async function sendAll(peer: PacketSocket, frames: Buffer[]): Promise<{ sent: number; back: number }> {
  let sent = 0;
  let back = 0;
  const deadline = Date.now() + 30_000;
  while (sent < frames.length && Date.now() < deadline) {
    sent += peer.send(frames.slice(sent, sent + 100));
    back += peer.drain();
    await new Promise((r) => setImmediate(r));
  }
  return { sent, back };
}

function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-fwd-pcap-'));
  return fn(dir).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

test.serial('fwd macswap --pcap FILE --pcap-count 500: tcpdump reads exactly 500 packets, right lengths and bytes; forwarding goes on', async (t) => {
  const N = 1000;
  const COUNT = 500;
  await withTmp(async (dir) => {
    const lab: Lab = createLab();
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    const file = path.join(dir, 'capture.pcap');
    const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--forward-mode', 'macswap',
      '--json', '--stats-period', '0.2', '--pcap', file, '--pcap-count', String(COUNT)]);
    try {
      const start = await run.waitFor((o) => o.type === 'start');
      t.deepEqual(start.pcap, [{ port: 0, file }]);
      peer.drain();
      const frames = Array.from({ length: N }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, 1000 + (i % 50), 64 + (i % 200)));
      const before = Date.now();
      const { sent } = await sendAll(peer, frames);
      t.is(sent, N);
      await run.waitFor((o) => o.type === 'stats' && o.ports[0].rxPackets >= N, 10_000);
      const after = Date.now();
      const exit = await run.stop('SIGINT');
      t.is(exit.code, 0, run.stderr);
      const final = run.objects.find((o) => o.type === 'final');
      t.is(final.ports[0].rxPackets, N);
      t.is(final.ports[0].txPackets, N, 'every frame forwarded: capture stopped at 500, forwarding did not');
      t.deepEqual(final.pcap, [{ port: 0, file, captured: COUNT, dropped: 0, full: true,
        bytesWritten: fs.statSync(file).size }]);

      // tcpdump -tt: "<sec>.<ns> IP 192.0.2.2.<sport> > 192.0.2.1.9: UDP, length <payload>" (nanoseconds:
      // tcpdump prints microseconds unless --time-stamp-precision=nano asks for them).
      const lines = tcpdump(['-r', file, '-nn', '-tt', '--time-stamp-precision=nano']).trim().split('\n');
      t.is(lines.length, COUNT, 'tcpdump reads exactly --pcap-count packets');
      lines.forEach((line, i) => {
        const m = /^(\d+)\.(\d{9}) IP 192\.0\.2\.2\.(\d+) > 192\.0\.2\.1\.9: UDP, length (\d+)$/.exec(line);
        if (m === null) {
          t.fail(`tcpdump line ${i}: ${line}`);
          return;
        }
        t.is(Number(m[3]), 1000 + (i % 50), `packet ${i}: its source port`);
        t.is(Number(m[4]), 64 + (i % 200) - 42, `packet ${i}: its UDP payload length`);
        const ms = Number(m[1]) * 1000 + Number(m[2]) / 1e6;
        t.true(ms >= before - 5 && ms <= after + 5, `packet ${i}: ts ${ms} within the test's window [${before}, ${after}]`);
      });
      // The bytes as tcpdump dumps them, and the whole file by the test's own parser.
      const dumped = tcpdumpBytes(file, 5);
      t.is(dumped.length, 5);
      for (const [i, d] of dumped.entries()) t.true(d.equals(frames[i]!), `tcpdump -xx packet ${i} equals what the peer sent`);
      const f = readPcap(file);
      t.is(f.magic, 0xa1b23c4d);
      t.is(f.linktype, 1);
      t.is(f.records.length, COUNT);
      for (const [i, r] of f.records.entries()) {
        if (!(r.data.equals(frames[i]!) && r.origLen === frames[i]!.length)) {
          t.fail(`record ${i} (seq ${udpSeq(r.data)}) is not frame ${i} as sent`);
          break;
        }
      }
      const ns = f.records.map((r) => BigInt(r.sec) * 1_000_000_000n + BigInt(r.frac));
      t.true(ns.every((x, i) => i === 0 || x >= ns[i - 1]!), 'timestamps never go back');
    } finally {
      run.kill();
      peer.close();
      lab.destroy();
    }
  });
});

test.serial('fwd rxonly --nb-cores 2 --pcap FILE: one file per thread (FILE-t0, FILE-t1), together every received packet', async (t) => {
  const N = 2000;
  await withTmp(async (dir) => {
    const lab: Lab = createLab({ queues: 2 });
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    const file = path.join(dir, 'mq.pcap');
    const run = new Running(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf},queue_count=2`, '--netns', lab.portNs,
      '--forward-mode', 'rxonly', '--nb-cores', '2', '--json', '--stats-period', '0.2', '--pcap', file]);
    try {
      const start = await run.waitFor((o) => o.type === 'start');
      const files = [path.join(dir, 'mq-t0.pcap'), path.join(dir, 'mq-t1.pcap')];
      t.deepEqual(start.pcap, [{ port: 0, thread: 0, file: files[0] }, { port: 0, thread: 1, file: files[1] }]);
      const frames = Array.from({ length: N }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, 1000 + (i % 512)));
      t.is((await sendAll(peer, frames)).sent, N);
      await run.waitFor((o) => o.type === 'stats' && o.ports[0].rxPackets >= N, 10_000);
      const exit = await run.stop('SIGINT');
      t.is(exit.code, 0, run.stderr);
      const final = run.objects.find((o) => o.type === 'final');
      t.is(final.ports[0].rxPackets, N);
      const perQueue = final.ports[0].queues.map((q: { rxPackets: number }) => q.rxPackets);
      t.true(perQueue.every((n: number) => n > 0), `both queues received (${perQueue})`);
      t.is(final.pcap.length, 2);
      const seen = new Set<number>();
      for (const [w, c] of final.pcap.entries()) {
        t.like(c, { port: 0, thread: w, file: files[w], dropped: 0, full: false });
        t.is(c.captured, perQueue[w], `thread ${w} captured what its queue received`);
        const records = readPcap(files[w]!).records;
        t.is(records.length, c.captured);
        t.is(tcpdump(['-r', files[w]!, '-nn']).trim().split('\n').length, c.captured, 'tcpdump reads the same count');
        for (const r of records) {
          const seq = udpSeq(r.data)!;
          if (!r.data.equals(frames[seq]!)) t.fail(`thread ${w}: a record is not frame ${seq} as sent`);
          seen.add(seq);
        }
      }
      t.is(seen.size, N, 'the two files hold every frame once');
    } finally {
      run.kill();
      peer.close();
      lab.destroy();
    }
  });
});

test.serial('fwd io between two ports --pcap FILE: FILE-p0 holds what port 0 received, FILE-p1 what port 1 received', async (t) => {
  const N = 300;
  await withTmp(async (dir) => {
    const labs: Lab[] = [];
    const peers: PacketSocket[] = [];
    const file = path.join(dir, 'two.pcap');
    let run: Running | undefined;
    try {
      for (let i = 0; i < 2; i++) {
        labs.push(createLab());
        peers.push(new PacketSocket(labs[i]!.peerIf, { netns: labs[i]!.peerNs }));
      }
      run = new Running(['fwd', ...labs.flatMap((l) => ['--vdev', `net_af_xdp${labs.indexOf(l)},iface=${l.portIf}`]),
        ...labs.flatMap((l) => ['--netns', l.portNs]), '--forward-mode', 'io', '--json', '--stats-period', '0.2', '--pcap', file]);
      const start = await run.waitFor((o) => o.type === 'start');
      const files = [path.join(dir, 'two-p0.pcap'), path.join(dir, 'two-p1.pcap')];
      t.deepEqual(start.pcap, [{ port: 0, file: files[0] }, { port: 1, file: files[1] }]);
      // Port p's peer sends N frames with source ports 2000 + p (and lengths by port).
      const sent = labs.map((l, p) => Array.from({ length: N }, (_, i) => udpFrame(l.portMac, l.peerMac, i, 2000 + p, 64 + p * 100 + (i % 50))));
      for (const [p, frames] of sent.entries()) t.is((await sendAll(peers[p]!, frames)).sent, N);
      await run.waitFor((o) => o.type === 'stats' && o.ports[0].rxPackets >= N && o.ports[1].rxPackets >= N, 10_000);
      const exit = await run.stop('SIGINT');
      t.is(exit.code, 0, run.stderr);
      const final = run.objects.find((o) => o.type === 'final');
      t.deepEqual(final.pcap.map((c: { port: number; captured: number; dropped: number }) => [c.port, c.captured, c.dropped]), [[0, N, 0], [1, N, 0]]);
      for (const p of [0, 1]) {
        const records = readPcap(files[p]!).records;
        t.is(records.length, N);
        t.true(records.every((r, i) => r.data.equals(sent[p]![i]!)), `file ${p}: port ${p}'s frames, in order, byte for byte`);
      }
    } finally {
      run?.kill();
      for (const peer of peers) peer.close();
      for (const lab of labs) lab.destroy();
    }
  });
});

anyTest('fwd --pcap refuses txonly and --pcap-count without --pcap, naming the fix; --pcap-count 0 is refused', async (t) => {
  const tx = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--forward-mode', 'txonly', '--pcap', '/tmp/x.pcap']);
  t.is(tx.status, 2);
  t.regex(tx.stderr, /--forward-mode txonly receives nothing; use io, macswap or rxonly/);
  const count = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--pcap-count', '5']);
  t.is(count.status, 2);
  t.regex(count.stderr, /--pcap-count needs --pcap FILE/);
  const zero = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=lo', '--pcap', '/tmp/x.pcap', '--pcap-count', '0']);
  t.is(zero.status, 2);
});

test.serial('fwd --pcap into a missing directory: exit 1 naming the file, nothing left attached', async (t) => {
  const lab = createLab();
  try {
    const missing = path.join(os.tmpdir(), `afxdp-no-such-dir-${process.pid}`, 'x.pcap');
    const r = runAfxdp(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf}`, '--netns', lab.portNs, '--pcap', missing, '--duration', '1']);
    t.is(r.status, 1, r.stdout + r.stderr);
    t.true(r.stderr.includes(missing), r.stderr);
    t.regex(r.stderr, /ENOENT/);
    const [link] = JSON.parse(execFileSync('ip', ['-n', lab.portNs, '-j', '-d', 'link', 'show', 'dev', lab.portIf], { encoding: 'utf8' }));
    t.is(link.xdp, undefined, 'the XDP program was detached');
  } finally {
    lab.destroy();
  }
});
