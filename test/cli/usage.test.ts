// The command's surface without privileges: help, version, and bad input
// (exit 2, the error and the usage), plus testpmd-style argument parsing.
import test from 'ava';
import { runAfxdp } from './helpers';
import { fwdUsage, parseFwdArgs } from '../../lib/cli/fwd';
import { UsageError } from '../../lib/cli/usage';
import { txFrame, txFrameSeq } from '../../lib/fwd/txframe';
import { parseCapEff, hasCap, parseMemlock, kernelVersion } from '../../lib/cli/doctor';
const { version } = require('../../package.json');

test('--version and -v print the package version', (t) => {
  for (const flag of ['--version', '-v']) {
    const r = runAfxdp([flag]);
    t.is(r.status, 0);
    t.is(r.stdout.trim(), version);
  }
});

test('--help lists every command; each command has --help', (t) => {
  const r = runAfxdp(['--help']);
  t.is(r.status, 0);
  for (const c of ['demo', 'fwd', 'doctor', 'dp-serve']) t.regex(r.stdout, new RegExp(`^  ${c} `, 'm'));
  for (const [c, head] of [['fwd', /Usage: afxdp fwd --vdev/], ['demo', /Usage: sudo afxdp demo/], ['doctor', /Usage: afxdp doctor/], ['dp-serve', /Usage: afxdp dp-serve/]] as const) {
    const h = runAfxdp([c, '--help']);
    t.is(h.status, 0, c);
    t.regex(h.stdout, head);
  }
  const none = runAfxdp([]);
  t.is(none.status, 2);
  t.regex(none.stderr, /Usage: afxdp <command>/);
});

const bad: [string[], RegExp, RegExp][] = [
  [['bogus'], /unknown command "bogus"/, /Usage: afxdp <command>/],
  [['fwd', '--vdev', 'net_af_xdp0,iface=x', '--bogus'], /bogus/, /Usage: afxdp fwd/],
  [['fwd'], /fwd needs --vdev/, /Usage: afxdp fwd/],
  [['fwd', '--vdev', 'net_af_xdp0,iface=eth0,start_queue=x'], /start_queue must be a non-negative decimal integer/, /Usage: afxdp fwd/],
  [['fwd', '--vdev', 'net_af_xdp0,iface=eth0,use_cni=1,use_pinned_map=1'], /use_cni/, /Usage: afxdp fwd/],
  [['fwd', '--vdev', 'net_af_xdp0,ifac=eth0'], /ifac/, /Usage: afxdp fwd/],
  [['fwd', '--vdev', 'iface=a', '--forward-mode', 'csum'], /--forward-mode must be one of io, macswap, rxonly, txonly/, /Usage: afxdp fwd/],
  [['fwd', '--vdev', 'iface=a', '--burst', '0'], /--burst must be an integer from 1 to 1024/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--vdev', 'iface=b', '--vdev', 'iface=c'], /one or two --vdev/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--txpkts', '20'], /--txpkts must be at least/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--eth-peer', '1,02:00:00:00:00:01'], /there is no port 1/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--tx-ip', '1.2.3'], /--tx-ip/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--duration', 'soon'], /--duration must be a number of seconds/, /Usage/],
  [['fwd', '--vdev', 'iface=a', '--netns', 'a', '--netns', 'b', '--netns', 'c'], /--netns once/, /Usage/],
  [['doctor', 'a', 'b'], /at most one interface/, /Usage: afxdp doctor/],
  [['doctor', '--frame-size', '1000'], /--frame-size/, /Usage: afxdp doctor/],
  [['demo', '--rate', '0'], /--rate must be an integer/, /Usage: sudo afxdp demo/],
  [['demo', '--forward-mode', 'rxonly'], /macswap or io/, /Usage: sudo afxdp demo/],
  [['dp-serve', '--iface', 'x', '--bogus'], /bogus/, /Usage: afxdp dp-serve/],
];

for (const [args, message, usage] of bad) {
  test(`bad input exits 2 with the error and the usage: afxdp ${args.join(' ')}`, (t) => {
    const r = runAfxdp(args);
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, /^afxdp: /);
    t.regex(r.stderr, message);
    t.regex(r.stderr, usage);
    t.is(r.stdout, '');
  });
}

test('fwd takes a pasted testpmd line: --forward-mode=X and --forward-mode X, -i, -a, --a, --nb-cores, --rxq, --txq, EAL words', (t) => {
  const line = ['-l', '0,1', '--no-pci', '--vdev=net_af_xdp0,use_cni=1,iface=eth1,dp_path="/tmp/afxdp_dp/eth1/afxdp.sock"',
    '--no-mlockall', '--in-memory', '--', '-i', '--a', '--nb-cores=2', '--rxq=1', '--txq', '1', '--forward-mode=macswap'];
  const o = parseFwdArgs(line);
  if (o === 'help') throw new Error('help');
  t.is(o.mode, 'macswap');
  t.is(o.specs.length, 1);
  t.like(o.specs[0], { iface: 'eth1', useCni: true, dpPath: '/tmp/afxdp_dp/eth1/afxdp.sock' });
  const o2 = parseFwdArgs(['--vdev', 'net_af_xdp0,iface=a', '--vdev', 'net_af_xdp1,iface=b', '--forward-mode', 'io', '-a', '--auto-start',
    '--burst', '32', '--netns', 'n1', '--netns', 'n2']);
  if (o2 === 'help') throw new Error('help');
  t.is(o2.mode, 'io');
  t.deepEqual(o2.specs.map((s) => [s.iface, s.burstSize, s.netns]), [['a', 32, 'n1'], ['b', 32, 'n2']]);
  const o3 = parseFwdArgs(['--vdev', 'iface=a']);
  if (o3 === 'help') throw new Error('help');
  t.is(o3.mode, 'io', 'io is the default, as in testpmd');
  t.is(o3.statsPeriod, 1);
  t.is(o3.tx.length, 64);
  t.throws(() => parseFwdArgs(['--vdev', 'iface=a', 'extra']), { instanceOf: UsageError, message: /unexpected argument "extra"/ });
});

test('fwd --file-prefix (EAL) is used, not ignored: it names the runtime directory a default dp_path is looked for in', (t) => {
  for (const line of [['--file-prefix', 'pod7'], ['--file-prefix=pod7']]) {
    const o = parseFwdArgs(['-l', '0,1', ...line, '--vdev', 'net_af_xdp0,use_cni=1,iface=eth1', '--', '-i']);
    if (o === 'help') throw new Error('help');
    t.like(o.specs[0], { iface: 'eth1', filePrefix: 'pod7', dpPathOrigin: 'default' });
  }
  const o = parseFwdArgs(['--vdev', 'iface=eth1,use_pinned_map=1']);
  if (o === 'help') throw new Error('help');
  t.is(o.specs[0]!.filePrefix, 'rte');
  t.throws(() => parseFwdArgs(['--file-prefix', '../x', '--vdev', 'iface=eth1,use_cni=1']), { instanceOf: UsageError, message: /filePrefix/ });
  t.regex(fwdUsage, /--file-prefix PREFIX/);
});

test('txonly options: --txpkts sums segments, --eth-peer per port, --tx-ip, --tx-udp', (t) => {
  const o = parseFwdArgs(['--vdev', 'iface=a', '--vdev', 'iface=b', '--forward-mode', 'txonly', '--txpkts', '64,36',
    '--eth-peer', '0,02:00:00:00:00:0a', '--eth-peer', '1,02:00:00:00:00:0b', '--tx-ip', '198.51.100.7,198.51.100.8', '--tx-udp', '1000,2000']);
  if (o === 'help') throw new Error('help');
  t.is(o.tx.length, 100);
  t.deepEqual(o.tx.dstMacs.map((m) => m?.toString('hex')), ['02000000000a', '02000000000b']);
  t.deepEqual([...o.tx.srcIp], [198, 51, 100, 7]);
  t.deepEqual([o.tx.srcPort, o.tx.dstPort], [1000, 2000]);
  const f = txFrame({ length: 64, srcMac: Buffer.alloc(6, 1), dstMac: Buffer.alloc(6, 2), srcIp: o.tx.srcIp, dstIp: o.tx.dstIp, srcPort: 1, dstPort: 2 });
  t.is(f.length, 64);
  t.is(f.readUInt16BE(12), 0x0800);
  // A valid IPv4 header checksum sums to 0xffff.
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  t.is(sum, 0xffff);
  f.writeUInt32BE(77, 46);
  t.is(txFrameSeq(f), 77);
});

test('doctor parsers: CapEff, RLIMIT_MEMLOCK, kernel version', (t) => {
  const eff = parseCapEff('Name:\tx\nCapEff:\t0000000000006000\n');
  t.true(hasCap(eff, 'NET_RAW'));
  t.true(hasCap(eff, 'IPC_LOCK'));
  t.false(hasCap(eff, 'NET_ADMIN'));
  t.is(parseMemlock('Max locked memory         8388608              8388608              bytes\n'), 8388608);
  t.is(parseMemlock('Max locked memory         unlimited            unlimited            bytes\n'), Infinity);
  t.deepEqual(kernelVersion('6.18.44-fc-v782'), [6, 18]);
});
