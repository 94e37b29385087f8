// `afxdp fwd` as a user runs it, on veth labs: every forward mode with
// exact counts read from its --json output and seen by an independent
// AF_PACKET peer, two ports, the metrics endpoint, signals and --duration.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { privileged } from '../helpers/privileged';
import { cpuPercentDuring } from '../helpers/cpu';
import { createLab, Lab } from '../helpers/lab';
import { frameSeq, sleep, testFrame } from '../helpers/frames';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { txFrameSeq } from '../../lib/fwd/txframe';
import { Running, runAfxdp } from './helpers';
import { DpChild } from '../helpers/dp-child';

const test = privileged();
const N = 1000;

function vdevOf(lab: Lab): string {
  return `net_af_xdp0,iface=${lab.portIf}`;
}

function xdpAttached(lab: Lab): boolean {
  const [link] = JSON.parse(execFileSync('ip', ['-n', lab.portNs, '-j', '-d', 'link', 'show', 'dev', lab.portIf], { encoding: 'utf8' }));
  return link.xdp !== undefined;
}

function send(peer: PacketSocket, frames: Buffer[]): number {
  let sent = 0;
  for (let i = 0; i < frames.length; i += 100) sent += peer.send(frames.slice(i, i + 100));
  return sent;
}

/** `f` is, byte for byte, the frame of `frames` its sequence number names. */
function wasSent(frames: readonly Buffer[], f: Buffer): boolean {
  const sent = frames[frameSeq(f)!];
  return sent !== undefined && f.equals(sent);
}

/** Frames the peer receives within `timeoutMs` (stops early at `n`), then anything extra within 200 ms. */
function collect(peer: PacketSocket, n: number, timeoutMs: number): Buffer[] {
  const got: Buffer[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < n && Date.now() < deadline) got.push(...peer.receive(n - got.length, 100));
  got.push(...peer.receive(100, 200));
  return got;
}

async function withFwd(t: ExecutionContext, labs: Lab[], args: string[],
  fn: (run: Running, start: any) => Promise<void>): Promise<any> {
  const run = new Running(['fwd', ...labs.flatMap((l) => ['--vdev', vdevOf(l)]), ...labs.flatMap((l) => ['--netns', l.portNs]),
    '--json', '--stats-period', '0.2', ...args]);
  try {
    const start = await run.waitFor((o) => o.type === 'start');
    await fn(run, start);
    const exit = await run.stop('SIGINT');
    t.is(exit.code, 0, run.stderr);
    const final = run.objects.find((o) => o.type === 'final');
    t.truthy(final, 'a final object');
    t.is(final.reason, 'SIGINT');
    for (const lab of labs) t.false(xdpAttached(lab), 'the XDP program was detached');
    return final;
  } finally {
    run.kill();
  }
}

/** HugePages_Total of /proc/meminfo (the default size), 0 if absent. */
function hugepagesTotal(): number {
  const m = /^HugePages_Total:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

function withLabs<T>(count: 1, fn: (labs: [Lab]) => Promise<T>): Promise<T>;
function withLabs<T>(count: 2, fn: (labs: [Lab, Lab]) => Promise<T>): Promise<T>;
function withLabs<T>(count: number, fn: (labs: never) => Promise<T>): Promise<T> {
  const labs: Lab[] = [];
  return (async () => {
    try {
      for (let i = 0; i < count; i++) labs.push(createLab());
      return await fn(labs as never); // the overloads give it its tuple type
    } finally {
      for (const lab of labs) lab.destroy();
    }
  })();
}

test.serial('fwd --forward-mode rxonly: the port receives exactly N, sends nothing', async (t) => {
  await withLabs(1, async ([lab]) => {
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const final = await withFwd(t, [lab], ['--forward-mode', 'rxonly'], async (run, start) => {
        t.is(start.forwardMode, 'rxonly');
        t.is(start.ports[0].iface, lab.portIf);
        t.is(start.ports[0].source, 'attach');
        const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i));
        t.is(send(peer, frames), N);
        await run.waitFor((o) => o.type === 'stats' && o.ports[0].rxPackets >= N, 10_000);
        t.is(peer.receive(10, 300).length, 0, 'nothing comes back in rxonly');
      });
      t.is(final.ports[0].rxPackets, N);
      t.is(final.ports[0].rxBytes, N * 64);
      t.is(final.ports[0].txPackets, 0);
      t.is(final.ports[0].rxMissed, 0);
    } finally {
      peer.close();
    }
  });
});

for (const mode of ['io', 'macswap'] as const) {
  test.serial(`fwd --forward-mode ${mode} on one port: exactly N back to the peer, ${mode === 'io' ? 'unchanged' : 'MACs swapped'}`, async (t) => {
    await withLabs(1, async ([lab]) => {
      const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
      try {
        const frames = Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, 64 + (i % 100)));
        const final = await withFwd(t, [lab], [`--forward-mode=${mode}`], async () => {
          peer.drain();
          t.is(send(peer, frames), N);
          const back = collect(peer, N, 10_000);
          t.is(back.length, N, 'exactly N frames came back');
          const seqs = new Set(back.map(frameSeq));
          t.is(seqs.size, N);
          const wrong = back.filter((f) => {
            const sent = frames[frameSeq(f)!];
            if (sent === undefined) return true; // not a frame the peer sent
            const want = Buffer.from(sent);
            if (mode === 'macswap') {
              Buffer.from(sent.subarray(6, 12)).copy(want, 0);
              Buffer.from(sent.subarray(0, 6)).copy(want, 6);
            }
            return !want.equals(f);
          });
          t.is(wrong.length, 0, 'bytes as expected');
        });
        const bytes = frames.reduce((s, f) => s + f.length, 0);
        t.like(final.ports[0], { rxPackets: N, txPackets: N, rxBytes: bytes, txBytes: bytes, txDropped: 0, rxMissed: 0 });
      } finally {
        peer.close();
      }
    });
  });
}

test.serial('fwd --forward-mode txonly: --tx-count frames, the peer sees exactly those, 64-byte UDP by default', async (t) => {
  await withLabs(1, async ([lab]) => {
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      peer.drain();
      const final = await withFwd(t, [lab], ['--forward-mode', 'txonly', '--tx-count', String(N), '--tx-rate', '20000',
        '--eth-peer', lab.peerMac, '--tx-ip', '198.51.100.1,198.51.100.2', '--tx-udp', '1234,5678'], async () => {
        const got = collect(peer, N, 10_000);
        t.is(got.length, N);
        const seqs = new Set(got.map(txFrameSeq));
        t.is(seqs.size, N);
        t.true([...seqs].every((s) => s !== undefined && s < N));
        const f = got[0]!; // got.length was checked above
        t.is(f.length, 64);
        t.is(f.subarray(0, 6).toString('hex'), lab.peerMac.replace(/:/g, ''));
        t.is(f.subarray(6, 12).toString('hex'), lab.portMac.replace(/:/g, ''));
        t.deepEqual([...f.subarray(26, 34)], [198, 51, 100, 1, 198, 51, 100, 2]);
        t.deepEqual([f.readUInt16BE(34), f.readUInt16BE(36)], [1234, 5678]);
      });
      t.like(final.ports[0], { txPackets: N, txBytes: N * 64, rxPackets: 0 });
    } finally {
      peer.close();
    }
  });
});

test.serial('fwd with two --vdev (io): each port forwards to the other, exact counts both ways', async (t) => {
  await withLabs(2, async ([a, b]) => {
    const peerA = new PacketSocket(a.peerIf, { netns: a.peerNs });
    const peerB = new PacketSocket(b.peerIf, { netns: b.peerNs });
    const M = 700;
    try {
      const final = await withFwd(t, [a, b], ['--forward-mode', 'io'], async (_run, start) => {
        t.deepEqual(start.ports.map((p: any) => p.iface), [a.portIf, b.portIf]);
        peerA.drain();
        peerB.drain();
        const fa = Array.from({ length: N }, (_, i) => testFrame(a.portMac, a.peerMac, i));
        t.is(send(peerA, fa), N);
        const atB = collect(peerB, N, 10_000);
        t.is(atB.length, N, 'A → B');
        t.true(atB.every((f) => wasSent(fa, f)));
        const fb = Array.from({ length: M }, (_, i) => testFrame(b.portMac, b.peerMac, i, 128));
        t.is(send(peerB, fb), M);
        const atA = collect(peerA, M, 10_000);
        t.is(atA.length, M, 'B → A');
        t.true(atA.every((f) => wasSent(fb, f)));
      });
      t.like(final.ports[0], { rxPackets: N, txPackets: M });
      t.like(final.ports[1], { rxPackets: M, txPackets: N });
    } finally {
      peerA.close();
      peerB.close();
    }
  });
});

test.serial('fwd --metrics-port: Prometheus text over loopback with per-queue counters, XDP statistics and gauges', async (t) => {
  await withLabs(1, async ([lab]) => {
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      await withFwd(t, [lab], ['--forward-mode', 'macswap', '--metrics-port', '0'], async (run, start) => {
        t.regex(start.metrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
        t.is(send(peer, Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i))), N);
        await run.waitFor((o) => o.type === 'stats' && o.ports[0].txPackets >= N, 10_000);
        const res = await fetch(start.metrics);
        t.is(res.status, 200);
        t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
        const text = await res.text();
        const labels = `port="0",iface="${lab.portIf}",queue="0"`;
        const value = (name: string, l = labels) => Number(new RegExp(`^${name}\\{${l}\\} (\\S+)$`, 'm').exec(text)?.[1]);
        t.is(value('afxdp_rx_packets_total'), N);
        t.is(value('afxdp_tx_packets_total'), N);
        t.is(value('afxdp_rx_bytes_total'), N * 64);
        t.is(value('afxdp_tx_dropped_total'), 0);
        for (const x of ['rx_dropped', 'rx_invalid_descs', 'tx_invalid_descs', 'rx_ring_full', 'rx_fill_ring_empty_descs', 'tx_ring_empty_descs']) {
          t.false(Number.isNaN(value(`afxdp_xdp_${x}_total`)), x);
        }
        t.regex(text, /^# TYPE afxdp_rx_packets_total counter$/m);
        t.is(value('afxdp_zero_copy'), 0, 'veth: copy mode');
        // Hugepages back the UMEM when the machine has them reserved (hugepages=auto):
        // the gauge follows what the port reports, which follows the machine.
        t.is(value('afxdp_hugepages', `port="0",iface="${lab.portIf}"`), start.ports[0].hugepages ? 1 : 0);
        if (hugepagesTotal() === 0) t.false(start.ports[0].hugepages, 'no hugepages reserved: none used');
        t.log(`HugePages_Total ${hugepagesTotal()}: the port's UMEM ${start.ports[0].hugepages ? 'is' : 'is not'} on hugepages`);
        t.is(value('afxdp_link_up', `port="0",iface="${lab.portIf}"`), 1);
        t.regex(text, /^process_cpu_seconds_total /m);
        t.is((await fetch(start.metrics.replace('/metrics', '/nope'))).status, 404);
      });
    } finally {
      peer.close();
    }
  });
});

test.serial('fwd --duration ends by itself with exit 0; SIGTERM too; plain lines without --json', async (t) => {
  await withLabs(1, async ([lab]) => {
    const r = runAfxdp(['fwd', '--vdev', vdevOf(lab), '--netns', lab.portNs, '--forward-mode', 'io', '--duration', '1', '--stats-period', '0.3'], { timeout: 30_000 });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /^afxdp fwd: forward-mode io, poll-mode adaptive; port 0 afxp/m);
    t.regex(r.stdout, /^\[0\.\ds\] port 0 \(afxp\S+\): rx 0 pkts 0 B 0 pps \| tx 0 pkts/m);
    t.regex(r.stdout, /afxdp fwd: duration; totals after 1\.\d s/);
    t.false(xdpAttached(lab));

    const run = new Running(['fwd', '--vdev', vdevOf(lab), '--netns', lab.portNs, '--json']);
    try {
      await run.waitFor((o) => o.type === 'start');
      const exit = await run.stop('SIGTERM');
      t.is(exit.code, 0);
      t.is(run.objects.at(-1).type, 'final');
      t.is(run.objects.at(-1).reason, 'SIGTERM');
    } finally {
      run.kill();
    }
    t.false(xdpAttached(lab));
  });
});

test.serial('fwd: a port that cannot open exits 1 with the error', async (t) => {
  await withLabs(1, async ([lab]) => {
    const r = runAfxdp(['fwd', '--vdev', 'net_af_xdp0,iface=nosuchif0', '--netns', lab.portNs, '--duration', '1']);
    t.is(r.status, 1);
    t.regex(r.stderr, /nosuchif0.*\[ERR_AFXDP_NO_SUCH_INTERFACE\]/);
    const q = runAfxdp(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf},start_queue=5`, '--netns', lab.portNs, '--duration', '1']);
    t.is(q.status, 1);
    t.regex(q.stderr, /ERR_AFXDP_QUEUE_OUT_OF_RANGE/);
    await sleep(10);
  });
});

test.serial('fwd idles on the rings\' readiness: ~0 CPU without traffic, and wakes for the next packet', async (t) => {
  await withLabs(1, async ([lab]) => {
    const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
    try {
      const final = await withFwd(t, [lab], ['--forward-mode', 'macswap', '--stats-period', '1'], async (run) => {
        await sleep(1500); // a second after the last packet it sleeps on events
        // Every thread of the forwarder; a stats line each second included.
        const used = await cpuPercentDuring(() => sleep(2000), undefined, run.child.pid!);
        t.log(`idle forwarder CPU: ${used.toFixed(2)} %`);
        t.true(used < 5, `idle CPU ${used.toFixed(2)} % of a core`);
        peer.drain();
        t.is(send(peer, Array.from({ length: N }, (_, i) => testFrame(lab.portMac, lab.peerMac, i))), N);
        t.is(collect(peer, N, 10_000).length, N, 'woke up and forwarded every frame');
      });
      t.like(final.ports[0], { rxPackets: N, txPackets: N });
    } finally {
      peer.close();
    }
  });
});

test.serial('fwd on an MTU 9000 veth: macswap returns 8,000-byte frames (multi-buffer chains) byte-exact, exact counts', async (t) => {
  const lab = createLab({ mtu: 9000 });
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    const M = 2000;
    const frames = Array.from({ length: M }, (_, i) => testFrame(lab.portMac, lab.peerMac, i, 8000));
    const final = await withFwd(t, [lab], ['--forward-mode', 'macswap', '--burst', '4'], async (_run, start) => {
      t.true(start.ports[0].multiBuffer, 'multi-buffer: auto turns it on for MTU 9000');
      t.deepEqual(start.warnings, []);
      peer.drain();
      const back: Buffer[] = [];
      // 100 at a time: the peer's socket buffer holds a few MB.
      for (let i = 0; i < M; i += 100) {
        t.is(send(peer, frames.slice(i, i + 100)), 100);
        back.push(...collect(peer, i + 100 - back.length, 10_000));
      }
      t.is(back.length, M, 'exactly M frames came back');
      t.is(new Set(back.map(frameSeq)).size, M);
      const wrong = back.filter((f) => {
        const sent = frames[frameSeq(f)!];
        if (sent === undefined) return true;
        const want = Buffer.from(sent);
        sent.copy(want, 0, 6, 12);
        sent.copy(want, 6, 0, 6);
        return !want.equals(f);
      });
      t.is(wrong.length, 0, 'byte-exact, MACs swapped');
    });
    t.like(final.ports[0], { rxPackets: M, txPackets: M, rxBytes: M * 8000, txBytes: M * 8000, txDropped: 0, rxMissed: 0 });
  } finally {
    peer.close();
    lab.destroy();
  }
});

test.serial('fwd txonly --txpkts 9000 on an MTU 9000 veth: chains of frames, the peer sees exactly --tx-count 9000-byte frames', async (t) => {
  const lab = createLab({ mtu: 9000 });
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    const M = 500;
    peer.drain();
    const final = await withFwd(t, [lab], ['--forward-mode', 'txonly', '--txpkts', '9000', '--tx-count', String(M),
      '--tx-rate', '5000', '--eth-peer', lab.peerMac], async () => {
      const got = collect(peer, M, 10_000);
      t.is(got.length, M);
      t.true(got.every((f) => f.length === 9000), 'every frame whole');
      t.is(new Set(got.map(txFrameSeq)).size, M);
    });
    t.like(final.ports[0], { txPackets: M, txBytes: M * 9000 });
    const refused = runAfxdp(['fwd', '--vdev', vdevOf(lab), '--netns', lab.portNs, '--forward-mode', 'txonly', '--txpkts', '9001',
      '--duration', '0.2'], { timeout: 30_000 });
    t.is(refused.status, 2);
    t.regex(refused.stderr, /--txpkts must be an integer from 1 to 9000/);
  } finally {
    peer.close();
    lab.destroy();
  }
});

test.serial('fwd warns at start: an MTU over the frame room, busy polling through the Device Plugin (text and JSON)', async (t) => {
  await withLabs(1, async ([lab]) => {
    // 2048-byte frames hold 2048 - 256 bytes of frame: MTU 2000 does not fit.
    execFileSync('ip', ['-n', lab.portNs, 'link', 'set', 'dev', lab.portIf, 'mtu', '2000']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-fwd-warn-'));
    const dp = new DpChild({ devices: [{ iface: lab.portIf, netns: lab.portNs }], podDir: path.join(dir, 'pod'), udsDir: path.join(dir, 'host'), sessions: 0 });
    try {
      const { info } = await dp.next('info');
      const vdev = `net_af_xdp0,iface=${lab.portIf},use_cni=1,busy_budget=64,dp_path=${info.podSocketPaths[0]}`;
      const run = new Running(['fwd', '--vdev', vdev, '--netns', lab.portNs, '--frame-size', '2048', '--multi-buffer', 'off', '--pod-name', 'pod-a', '--json']);
      try {
        const start = await run.waitFor((o) => o.type === 'start');
        t.is(start.warnings.length, 2, JSON.stringify(start.warnings));
        t.regex(start.warnings[0], /MTU 2000 is larger than a frame holds \(1792 bytes.*at most MTU 1774\) and multi-buffer is off: frames over it are dropped; use --multi-buffer auto or on/);
        t.regex(start.warnings[1], /busy polling goes through the Device Plugin \(use_cni with busy_budget=64\).*never closes the socket fd it receives with \/config_busy_poll.*busy_budget=0/);
        t.is((await run.stop('SIGINT')).code, 0, run.stderr);
      } finally {
        run.kill();
      }
      // Plain text: the same warnings after the start line; none at the default MTU.
      const text = runAfxdp(['fwd', '--vdev', vdev, '--netns', lab.portNs, '--frame-size', '2048', '--multi-buffer', 'off', '--pod-name', 'pod-a', '--duration', '0.3'], { timeout: 30_000 });
      t.is(text.status, 0, text.stderr);
      t.regex(text.stdout, /^afxdp fwd: forward-mode io, poll-mode adaptive; .*\nafxdp fwd: warning: port 0 \S+: MTU 2000 is larger.*\nafxdp fwd: warning: port 0 \S+: busy polling goes through the Device Plugin/m);
      execFileSync('ip', ['-n', lab.portNs, 'link', 'set', 'dev', lab.portIf, 'mtu', '1500']);
      const quiet = runAfxdp(['fwd', '--vdev', `net_af_xdp0,iface=${lab.portIf},use_cni=1,dp_path=${info.podSocketPaths[0]}`, '--netns', lab.portNs,
        '--pod-name', 'pod-a', '--duration', '0.3'], { timeout: 30_000 });
      t.is(quiet.status, 0, quiet.stderr);
      t.notRegex(quiet.stdout, /warning/);
    } finally {
      await dp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
