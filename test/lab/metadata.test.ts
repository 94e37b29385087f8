// RX/TX metadata (issue 16) on a veth pair. veth implements the three RX
// metadata kfuncs (drivers/net/veth.c): the hash is skb_get_hash() (the
// flow hash), the timestamp the skb's *hardware* timestamp, which is 0 for
// packets a socket sent (nothing stamps them), so veth gives no timestamp:
// afxdp's program treats 0 as none and the test checks exactly that. TX:
// copy mode (veth has no zero-copy) does the checksum (software with
// txSoftwareChecksum) and a software completion timestamp
// (ktime_get_tai_fast_ns in xsk_destruct_skb); launch time is refused.
import { privileged } from '../helpers/privileged';
import { createLab, withLab } from '../helpers/lab';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { sleep } from '../helpers/frames';
import { udpFrame, udpSeq } from '../helpers/udp-frames';
import { openPort, Port, XDP_PKT_CONTD, RX_META_HASH, RX_META_TIMESTAMP, XDP_TXMD_FLAGS_CHECKSUM, XDP_TXMD_FLAGS_LAUNCH_TIME,
  XDP_TXMD_FLAGS_TIMESTAMP, XDP_TX_METADATA } from '../../lib/index';

const test = privileged();

async function receiveN(port: Port, n: number, onPacket: (slot: number) => void): Promise<number> {
  const q = port.queues[0];
  let got = 0;
  const deadline = Date.now() + 5000;
  while (got < n && Date.now() < deadline) {
    const k = q.receive();
    for (let i = 0; i < k; i++) onPacket(i);
    q.release(k);
    got += k;
    if (k === 0) await sleep(1);
  }
  return got;
}

test.serial('rxMetadata: the hash is per flow, veth gives no timestamp, packets stay byte-exact', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, rxMetadata: true });
    try {
      const info = port.info();
      t.is(info.xdpMode, 'native', 'a device-bound program attaches natively');
      t.true(['metadata-area', 'prefix'].includes(info.rxMetadata.program), info.rxMetadata.program);
      t.deepEqual(info.rxMetadata.deviceSupports, ['timestamp', 'hash', 'vlan-tag']);
      const q = port.queues[0];
      const N = 200; // 100 per flow, interleaved
      const sent = Array.from({ length: N }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, i % 2 === 0 ? 5000 : 6000, 80));
      const before = process.hrtime.bigint();
      t.is(peer.send(sent), N);
      const hashes = new Map<number, Set<number>>();
      let exact = 0;
      const got = await receiveN(port, N, (slot) => {
        const bytes = q.packet(slot);
        const seq = udpSeq(bytes)!;
        if (Buffer.compare(Buffer.from(bytes), sent[seq]!) === 0) exact++;
        const valid = q.rxMetaValid(slot);
        t.true((valid & RX_META_HASH) !== 0, 'veth always gives a hash');
        t.is(valid & RX_META_TIMESTAMP, 0, 'veth gives the skb hardware timestamp: 0 for sent packets');
        t.is(q.rxTimestamp(slot), 0n);
        t.is(q.rxTimestampMs(slot), 0);
        t.is(q.rxVlanTci(slot), -1, 'untagged');
        const flow = seq % 2;
        const set = hashes.get(flow) ?? new Set<number>();
        set.add(q.rxHash(slot));
        hashes.set(flow, set);
      });
      t.true(process.hrtime.bigint() > before);
      t.is(got, N);
      t.is(exact, N, 'every packet byte-exact: the metadata never shows in the packet');
      const [a, b] = [[...hashes.get(0)!], [...hashes.get(1)!]];
      t.is(a.length, 1, 'one hash for one flow');
      t.is(b.length, 1, 'one hash for one flow');
      t.not(a[0], b[0], 'different flows, different hashes');
      t.not(a[0], 0);
    } finally {
      port.close();
    }
  });
});

test.serial('rxMetadata through a stream: batches carry the hash', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, rxMetadata: true });
    try {
      const N = 50;
      t.is(peer.send(Array.from({ length: N }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, 5000, 80))), N);
      const hashes = new Set<number>();
      let got = 0;
      const deadline = setTimeout(() => port.close(), 10_000);
      for await (const b of port) {
        for (let i = 0; i < b.length; i++) {
          t.true((b.rxMetaValid(i) & RX_META_HASH) !== 0);
          t.is(b.rxTimestamp(i), 0n);
          hashes.add(b.rxHash(i));
          t.is(udpSeq(b.packet(i)) !== undefined, true, 'the packet starts at the Ethernet header');
        }
        got += b.length;
        b.release();
        if (got >= N) break;
      }
      clearTimeout(deadline);
      t.is(got, N);
      t.is(hashes.size, 1, 'one flow, one hash');
    } finally {
      port.close();
    }
  });
});

test.serial('rxMetadata with multi-buffer: 8,000-byte chains arrive byte-exact, the metadata before the first fragment', async (t) => {
  const lab = createLab({ mtu: 9000 });
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, rxMetadata: true });
    try {
      t.true(port.info().multiBuffer);
      t.true(port.info().xdpFrags);
      const q = port.queues[0];
      const N = 20;
      const sent = Array.from({ length: N }, (_, i) => udpFrame(lab.portMac, lab.peerMac, i, 7000, 8000));
      t.is(peer.send(sent), N);
      let packets = 0;
      let exact = 0;
      const deadline = Date.now() + 5000;
      while (packets < N && Date.now() < deadline) {
        const n = q.receive();
        let start = 0;
        for (let i = 0; i < n; i++) {
          if ((q.options[i]! & XDP_PKT_CONTD) !== 0) continue;
          // Slots [start, i] are one packet: glue the fragments.
          const parts: Buffer[] = [];
          for (let k = start; k <= i; k++) parts.push(Buffer.from(q.packet(k)));
          const whole = Buffer.concat(parts);
          const seq = udpSeq(whole);
          if (seq !== undefined && Buffer.compare(whole, sent[seq]!) === 0) exact++;
          t.true((q.rxMetaValid(start) & RX_META_HASH) !== 0, 'the first fragment carries the metadata');
          packets++;
          start = i + 1;
        }
        q.release(n);
        if (n === 0) await sleep(1);
      }
      t.is(packets, N);
      t.is(exact, N, 'byte-exact: the prefix is skipped on first fragments only');
    } finally {
      port.close();
    }
  } finally {
    peer.close();
    lab.destroy();
  }
});

test.serial('rxMetadata in generic mode is refused naming native XDP', async (t) => {
  await withLab({}, async (lab) => {
    await t.throwsAsync(openPort({ iface: lab.portIf, netns: lab.portNs, rxMetadata: true, xdpMode: 'generic' }),
      { code: 'ERR_AFXDP_NOT_SUPPORTED', message: /native XDP/ });
  });
});

test.serial('without rxMetadata the accessors say how to get metadata', async (t) => {
  await withLab({}, async (lab) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs });
    try {
      t.is(port.info().rxMetadata.program, 'none');
      t.throws(() => port.queues[0].rxHash(0), { code: 'ERR_AFXDP_NOT_SUPPORTED', message: /rxMetadata/ });
      t.throws(() => port.queues[0].requestTxMetadata(0, XDP_TXMD_FLAGS_TIMESTAMP),
        { code: 'ERR_AFXDP_NOT_SUPPORTED', message: /txMetadata/ });
    } finally {
      port.close();
    }
  });
});

/** One's complement sum over `b` (big-endian 16-bit words). */
function onesSum(b: Buffer, start: number, end: number, seed = 0): number {
  let sum = seed;
  for (let i = start; i < end; i += 2) sum += i + 1 < end ? b.readUInt16BE(i) : b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

test.serial('txMetadata on veth copy mode: software checksum, TAI completion timestamp, launch time refused', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, txSoftwareChecksum: true });
    try {
      const info = port.info();
      t.is(info.zeroCopy[0], false);
      t.is(info.txMetadata.registration, 'XDP_UMEM_TX_METADATA_LEN', 'Linux >= 6.11 takes the flag');
      t.true(info.txMetadata.checksum && info.txMetadata.timestamp);
      t.false(info.txMetadata.launchTime);
      t.deepEqual(info.txMetadata.deviceSupports, [], 'veth has no AF_XDP TX metadata ops');
      const q = port.queues[0];
      t.is(q.alloc(1), 1);
      const frame = udpFrame(lab.peerMac, lab.portMac, 7, 4242, 80);
      // UDP checksum offload convention: the field holds the pseudo-header sum.
      const udpLen = frame.length - 34;
      const pseudo = onesSum(Buffer.concat([frame.subarray(26, 34), Buffer.from([0, 17, udpLen >> 8, udpLen & 0xff])]), 0, 12);
      frame.writeUInt16BE(pseudo, 40);
      q.umem.set(frame, q.addrs[0]!);
      q.lengths[0] = frame.length;
      t.throws(() => q.requestTxMetadata(0, XDP_TXMD_FLAGS_LAUNCH_TIME, 0, 0, 1n),
        { code: 'ERR_AFXDP_NOT_SUPPORTED', message: /launch time.*qdisc/ });
      q.requestTxMetadata(0, XDP_TXMD_FLAGS_CHECKSUM | XDP_TXMD_FLAGS_TIMESTAMP, 34, 6);
      t.is(q.options[0]! & XDP_TX_METADATA, XDP_TX_METADATA);
      const addr = q.addrs[0]!;
      // CLOCK_TAI = CLOCK_REALTIME + the kernel's TAI offset: 37 s once an NTP
      // daemon set it, 0 on a machine where none did. Either, ±2 s.
      const taiBefore = BigInt(Date.now() - 2_000) * 1_000_000n;
      t.is(q.transmit(1), 1);
      let rx: Buffer[] = [];
      for (let i = 0; i < 200 && rx.length === 0; i++) {
        q.flushTx();
        rx = peer.receive(8, 10).filter((f) => udpSeq(f) === 7);
      }
      t.is(rx.length, 1, 'the peer got the packet');
      const got = rx[0]!;
      // The kernel wrote the real checksum: the sum over pseudo header + UDP is 0xffff.
      const check = onesSum(got, 34, got.length, onesSum(Buffer.concat([got.subarray(26, 34),
        Buffer.from([0, 17, udpLen >> 8, udpLen & 0xff])]), 0, 12));
      t.is(check, 0xffff, `UDP checksum 0x${got.readUInt16BE(40).toString(16)} verifies`);
      t.not(got.readUInt16BE(40), pseudo, 'the checksum field was completed');
      for (let i = 0; i < 200 && port.frames(0).free !== port.frames(0).total - port.frames(0).fillRing; i++) {
        q.reap();
        await sleep(1);
      }
      const ts = q.txTimestamp(addr);
      const taiAfter = BigInt(Date.now() + 39_000) * 1_000_000n;
      t.true(ts > taiBefore && ts < taiAfter, `completion timestamp ${ts} is CLOCK_TAI now (${taiBefore}..${taiAfter})`);
    } finally {
      port.close();
    }
  });
});

test.serial('txMetadata without software checksum on veth: the checksum stays partial (the device completes it), timestamps still come', async (t) => {
  await withLab({}, async (lab, peer) => {
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, txMetadata: true });
    try {
      const q = port.queues[0];
      t.is(q.alloc(1), 1);
      const frame = udpFrame(lab.peerMac, lab.portMac, 9, 4343, 80);
      frame.writeUInt16BE(0x1234, 40); // what the device would complete from
      q.umem.set(frame, q.addrs[0]!);
      q.lengths[0] = frame.length;
      q.requestTxMetadata(0, XDP_TXMD_FLAGS_CHECKSUM | XDP_TXMD_FLAGS_TIMESTAMP, 34, 6);
      const addr = q.addrs[0]!;
      const before = BigInt(Date.now() - 2_000) * 1_000_000n;
      t.is(q.transmit(1), 1);
      let rx: Buffer[] = [];
      for (let i = 0; i < 200 && rx.length === 0; i++) {
        q.flushTx();
        rx = peer.receive(8, 10).filter((f) => udpSeq(f) === 9);
      }
      t.is(rx.length, 1);
      // veth advertises checksum offload (NETIF_F_HW_CSUM) and hands the
      // skb on CHECKSUM_PARTIAL: the peer's raw bytes keep the seed.
      t.is(rx[0]!.readUInt16BE(40), 0x1234);
      // Completed once the frame left the tx and completion rings (the
      // area holds the request until then).
      for (let i = 0; i < 200; i++) {
        q.reap();
        const f = port.frames(0);
        if (f.txRing + f.completionRing === 0) break;
        await sleep(1);
      }
      const ts = q.txTimestamp(addr);
      t.true(ts > before && ts < BigInt(Date.now() + 39_000) * 1_000_000n, `${ts}`);
    } finally {
      port.close();
    }
  });
});
