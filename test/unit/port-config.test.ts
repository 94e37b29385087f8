import test from 'ava';
import type { ExecutionContext } from 'ava';
import { inspect } from 'node:util';

import { AfxdpError } from '../../lib/errors';
import { DEVARG_NAMES } from '../../lib/config/devargs';
import { optionSpec } from '../../lib/config/options';
import {
  defaults,
  devargsToOptions,
  limits,
  locateDpPath,
  resolvePortConfig,
  type PortConfig,
  type PortOptions,
} from '../../lib/config/port-config';

// A devargs string that must fail: ERR_AFXDP_DEVARGS naming `argument`.
function rejectsDevargs(t: ExecutionContext, spec: string, argument: string | undefined, includes?: string): AfxdpError {
  const err = t.throws(() => resolvePortConfig(spec), { instanceOf: AfxdpError }, spec)!;
  t.is(err.code, 'ERR_AFXDP_DEVARGS', spec);
  t.is(err.argument, argument, spec);
  if (includes !== undefined) t.true(err.message.includes(includes), err.message);
  return err;
}

// An options object that must fail: ERR_AFXDP_INVALID_ARGUMENT naming `argument`.
function rejectsOptions(t: ExecutionContext, options: unknown, argument: string | undefined, includes?: string): AfxdpError {
  const label = inspect(options);
  const err = t.throws(() => resolvePortConfig(options as PortOptions), { instanceOf: AfxdpError }, label)!;
  t.is(err.code, 'ERR_AFXDP_INVALID_ARGUMENT', label);
  t.is(err.argument, argument, label);
  if (includes !== undefined) t.true(err.message.includes(includes), err.message);
  return err;
}

const resolve = (spec: string | PortOptions): PortConfig => resolvePortConfig(spec);

// ------------------------------------------------------------- defaults

test('defaults: one frozen object with the documented values', (t) => {
  t.deepEqual(defaults, {
    startQueue: 0,
    queueCount: 1,
    sharedUmem: false,
    forceCopy: false,
    useCni: false,
    usePinnedMap: false,
    busyBudget: { attach: 64, cni: 0, pinned: 0 },
    frameSize: 4096,
    frameCount: 4096,
    headroom: 0,
    rxSize: 2048,
    txSize: 2048,
    fillSize: 2048,
    compSize: 2048,
    burstSize: 64,
    hugepages: 'auto',
    xdpMode: 'auto',
    multiBuffer: 'auto',
    pollMode: 'adaptive',
    handshakeTimeoutMs: 10_000,
    filePrefix: 'rte',
    rxMetadata: false,
    txMetadata: false,
    txSoftwareChecksum: false,
  });
  t.true(Object.isFrozen(defaults));
  t.true(Object.isFrozen(defaults.busyBudget));
  t.true(Object.isFrozen(limits));
});

test('resolve: iface alone gets every default, attach mode, frozen', (t) => {
  const config = resolve('iface=eth0');
  t.deepEqual(config, {
    source: 'attach',
    iface: 'eth0',
    startQueue: 0,
    queueCount: 1,
    sharedUmem: false,
    xdpProg: undefined,
    busyBudget: 64,
    busyBudgetExplicit: false,
    forceCopy: false,
    useCni: false,
    usePinnedMap: false,
    dpPath: undefined,
    dpPathOrigin: undefined,
    dpPathSearched: [],
    frameSize: 4096,
    frameCount: 4096,
    headroom: 0,
    rxSize: 2048,
    txSize: 2048,
    fillSize: 2048,
    compSize: 2048,
    burstSize: 64,
    hugepages: 'auto',
    xdpMode: 'auto',
    multiBuffer: 'auto',
    podName: undefined,
    handshakeTimeoutMs: 10_000,
    netns: undefined,
    filePrefix: 'rte',
    pollMode: 'adaptive',
    xdpMetaRxTsOffset: undefined,
    xdpMetaValidHintOffset: undefined,
    xdpMetaRxTsValidMask: undefined,
    rxMetadata: false,
    txMetadata: false,
    txSoftwareChecksum: false,
    vdevIndex: undefined,
  });
  t.true(Object.isFrozen(config));
  t.deepEqual(resolve({ iface: 'eth0' }), config);
});

test('resolve: vdevIndex comes from net_af_xdp<N>', (t) => {
  t.is(resolve('net_af_xdp7,iface=eth0').vdevIndex, 7);
  t.is(resolve('net_af_xdp,iface=eth0').vdevIndex, undefined);
});

// ------------------------------------------------------------ seed lines

test('seed: use_cni=1 without dp_path uses the DP mount point for the interface', (t) => {
  const config = resolve('net_af_xdp0,use_cni=1,iface=veth1');
  t.is(config.source, 'cni');
  t.true(config.useCni);
  t.is(config.dpPath, '/tmp/afxdp_dp/veth1/afxdp.sock');
});

test('seed: use_cni=1 with dp_path="/tmp/afxdp_dp/<if>/afxdp.sock"', (t) => {
  const config = resolve('net_af_xdp0,use_cni=1,iface=veth1,dp_path="/tmp/afxdp_dp/veth1/afxdp.sock"');
  t.is(config.source, 'cni');
  t.is(config.dpPath, '/tmp/afxdp_dp/veth1/afxdp.sock');
});

test('seed: use_pinned_map=1 with dp_path=".../xsks_map"', (t) => {
  const config = resolve('net_af_xdp0,use_pinned_map=1,iface=veth1,dp_path="/tmp/afxdp_dp/veth1/xsks_map"');
  t.is(config.source, 'pinned');
  t.true(config.usePinnedMap);
  t.is(config.dpPath, '/tmp/afxdp_dp/veth1/xsks_map');
});

test('use_pinned_map=1 without dp_path uses /tmp/afxdp_dp/<iface>/xsks_map', (t) => {
  t.is(resolve('iface=veth1,use_pinned_map=1').dpPath, '/tmp/afxdp_dp/veth1/xsks_map');
});

test('an explicit dp_path wins: the old Device Plugin socket /tmp/afxdp.sock', (t) => {
  t.is(resolve('iface=veth1,use_cni=1,dp_path=/tmp/afxdp.sock').dpPath, '/tmp/afxdp.sock');
  t.is(resolve({ iface: 'veth1', usePinnedMap: true, dpPath: '/tmp/xsks_map' }).dpPath, '/tmp/xsks_map');
});

test('a full devargs line maps every devarg to its option', (t) => {
  const config = resolve(
    'net_af_xdp1,iface=ens1,start_queue=3,queue_count=4,shared_umem=1,xdp_prog=/opt/prog.o,busy_budget=128,force_copy=1',
  );
  t.like(config, {
    iface: 'ens1',
    startQueue: 3,
    queueCount: 4,
    sharedUmem: true,
    xdpProg: '/opt/prog.o',
    busyBudget: 128,
    busyBudgetExplicit: true,
    forceCopy: true,
    source: 'attach',
  });
});

// ----------------------------------------------------------------- iface

test('iface: required', (t) => {
  rejectsDevargs(t, 'net_af_xdp0', 'iface', 'iface is required');
  rejectsDevargs(t, 'net_af_xdp0,start_queue=1', 'iface', 'add iface=<netdev>');
  rejectsOptions(t, {}, 'iface', 'iface is required');
  rejectsOptions(t, { iface: undefined }, 'iface');
});

test('iface: 1..15 bytes, counted in UTF-8', (t) => {
  t.is(resolve('iface=a').iface, 'a');
  t.is(resolve(`iface=${'e'.repeat(15)}`).iface, 'e'.repeat(15));
  rejectsDevargs(t, `iface=${'e'.repeat(16)}`, 'iface', '16 bytes');
  t.is(resolve({ iface: '🙂🙂🙂' }).iface, '🙂🙂🙂');
  rejectsOptions(t, { iface: '🙂🙂🙂🙂' }, 'iface', '16 bytes');
  rejectsOptions(t, { iface: '' }, 'iface', 'empty');
});

test('iface: no "/", ":", whitespace, NUL, "%", and not "." or ".."', (t) => {
  for (const bad of ['a/b', 'eth0:1', '.', '..', '%d', 'eth%']) rejectsDevargs(t, `iface=${bad}`, 'iface');
  for (const bad of ['eth 0', 'eth\t0', ' eth0', 'eth0\0', '\u00a0eth0']) rejectsOptions(t, { iface: bad }, 'iface');
  t.is(resolve('iface=...').iface, '...');
  t.is(resolve('iface=br-lan.10').iface, 'br-lan.10');
});

test('iface: must be a string in an options object', (t) => {
  rejectsOptions(t, { iface: 0 }, 'iface', 'must be a string');
  rejectsOptions(t, { iface: ['eth0'] }, 'iface', 'got an array');
});

// -------------------------------------------------------------- integers

test('start_queue: decimal digits only (no sign, space, hex or junk)', (t) => {
  t.is(resolve('iface=eth0,start_queue=0').startQueue, 0);
  t.is(resolve('iface=eth0,start_queue=007').startQueue, 7);
  for (const bad of ['1x', '-1', '+1', ' 1', '1 ', '0x10', '1.5', '1e3', '١']) {
    rejectsDevargs(t, `iface=eth0,start_queue="${bad}"`, 'start_queue', 'decimal integer');
  }
});

test('start_queue: 0..65535', (t) => {
  t.is(resolve('iface=eth0,start_queue=65535').startQueue, 65535);
  rejectsDevargs(t, 'iface=eth0,start_queue=65536', 'start_queue', '0..65535');
  rejectsDevargs(t, `iface=eth0,start_queue=${'9'.repeat(30)}`, 'start_queue', 'too large');
  rejectsOptions(t, { iface: 'eth0', startQueue: -1 }, 'startQueue', '0..65535');
});

test('queue_count: 1..65535', (t) => {
  t.is(resolve('iface=eth0,queue_count=1').queueCount, 1);
  t.is(resolve('iface=eth0,queue_count=65535').queueCount, 65535);
  rejectsDevargs(t, 'iface=eth0,queue_count=0', 'queue_count', '1..65535');
  rejectsDevargs(t, 'iface=eth0,queue_count=65536', 'queue_count');
  rejectsDevargs(t, 'iface=eth0,queue_count=two', 'queue_count');
});

test('start_queue + queue_count has no limit of its own: the interface decides at open', (t) => {
  const config = resolve('iface=eth0,start_queue=60,queue_count=10');
  t.is(config.startQueue + config.queueCount, 70);
  t.notThrows(() => resolve('iface=eth0,start_queue=65535,queue_count=65535'));
});

test('busy_budget: 0..65535, and whether it was explicit', (t) => {
  t.like(resolve('iface=eth0,busy_budget=0'), { busyBudget: 0, busyBudgetExplicit: true });
  t.like(resolve('iface=eth0,busy_budget=65535'), { busyBudget: 65535, busyBudgetExplicit: true });
  t.like(resolve('iface=eth0'), { busyBudget: 64, busyBudgetExplicit: false });
  t.like(resolve({ iface: 'eth0', busyBudget: 64 }), { busyBudget: 64, busyBudgetExplicit: true });
  t.like(resolve({ iface: 'eth0', busyBudget: undefined }), { busyBudgetExplicit: false });
  rejectsDevargs(t, 'iface=eth0,busy_budget=65536', 'busy_budget');
  rejectsDevargs(t, 'iface=eth0,busy_budget=-1', 'busy_budget');
});

test('busy_budget default: 64 when afxdp attaches the program, 0 in Device Plugin modes', (t) => {
  t.is(resolve('iface=eth0').busyBudget, 64);
  t.is(resolve('iface=eth0,use_cni=1').busyBudget, 0);
  t.is(resolve('iface=eth0,use_pinned_map=1').busyBudget, 0);
});

test('deviation from DPDK: use_cni + busy_budget is allowed (delegated to the Device Plugin)', (t) => {
  t.like(resolve('iface=eth0,use_cni=1,busy_budget=64'), { source: 'cni', busyBudget: 64, busyBudgetExplicit: true });
});

test('deviation from DPDK: use_pinned_map + explicit busy_budget > 0 is allowed (attempted and reported)', (t) => {
  t.like(resolve('iface=eth0,use_pinned_map=1,busy_budget=8'), {
    source: 'pinned',
    busyBudget: 8,
    busyBudgetExplicit: true,
  });
});

// -------------------------------------------------------------- booleans

test('boolean devargs take exactly "0" or "1"', (t) => {
  const pairs = [
    ['shared_umem', 'sharedUmem'],
    ['force_copy', 'forceCopy'],
    ['use_cni', 'useCni'],
    ['use_pinned_map', 'usePinnedMap'],
  ] as const;
  for (const [devarg, option] of pairs) {
    t.is(resolve(`iface=eth0,${devarg}=1`)[option], true, devarg);
    t.is(resolve(`iface=eth0,${devarg}=0`)[option], false, devarg);
    t.is(resolve('iface=eth0')[option], false, devarg);
    for (const bad of ['2', 'true', 'yes', '01', '-0', ' 1']) {
      rejectsDevargs(t, `iface=eth0,${devarg}="${bad}"`, devarg, 'must be 0 or 1');
    }
  }
});

test('boolean options must be booleans', (t) => {
  rejectsOptions(t, { iface: 'eth0', useCni: 1 }, 'useCni', 'true or false');
  rejectsOptions(t, { iface: 'eth0', forceCopy: 'true' }, 'forceCopy');
  rejectsOptions(t, { iface: 'eth0', sharedUmem: null }, 'sharedUmem');
});

// ----------------------------------------------------------------- paths

test('xdp_prog: any non-empty path; existence is checked at open, not here', (t) => {
  t.is(resolve('iface=eth0,xdp_prog=/does/not/exist.o').xdpProg, '/does/not/exist.o');
  t.is(resolve({ iface: 'eth0', xdpProg: 'relative.o' }).xdpProg, 'relative.o');
  rejectsOptions(t, { iface: 'eth0', xdpProg: '' }, 'xdpProg', 'empty');
  rejectsOptions(t, { iface: 'eth0', xdpProg: 42 }, 'xdpProg', 'must be a string');
  rejectsOptions(t, { iface: 'eth0', xdpProg: '/x\0.o' }, 'xdpProg', 'U+0000');
  rejectsOptions(t, { iface: 'eth0', xdpProg: `/${'p'.repeat(limits.pathMaxBytes)}` }, 'xdpProg');
});

test('dp_path: at most 107 bytes with use_cni (sun_path)', (t) => {
  const fits = `/${'s'.repeat(106)}`;
  t.is(resolve(`iface=eth0,use_cni=1,dp_path=${fits}`).dpPath, fits);
  rejectsDevargs(t, `iface=eth0,use_cni=1,dp_path=${fits}s`, 'dp_path', '108 bytes');
  rejectsOptions(t, { iface: 'eth0', useCni: true, dpPath: `/${'é'.repeat(60)}` }, 'dpPath', '121 bytes');
});

test('dp_path: a pinned map path may be longer than a socket path', (t) => {
  const long = `/sys/fs/bpf/${'m'.repeat(200)}`;
  t.is(resolve(`iface=eth0,use_pinned_map=1,dp_path=${long}`).dpPath, long);
});

test('dp_path origin: explicit, or default (the /tmp fallback until a port opens and looks it up)', (t) => {
  const explicit = resolve('iface=eth0,use_cni=1,dp_path=/tmp/afxdp.sock');
  t.is(explicit.dpPathOrigin, 'explicit');
  t.deepEqual(explicit.dpPathSearched, []);
  const dflt = resolve('iface=eth0,use_cni=1');
  t.is(dflt.dpPath, '/tmp/afxdp_dp/eth0/afxdp.sock');
  t.is(dflt.dpPathOrigin, 'default');
  t.is(dflt.filePrefix, 'rte');
  t.is(resolve('iface=eth0').dpPathOrigin, undefined);
});

test('locateDpPath: runtime dir first (root: /var/run/dpdk/<prefix>), else /tmp/afxdp_dp; explicit and attach untouched', (t) => {
  const runtime = '/var/run/dpdk/rte/afxdp_dp/eth0/afxdp.sock';
  const found = locateDpPath(resolve('iface=eth0,use_cni=1'), { exists: (f) => f === runtime, env: {}, uid: 0 });
  t.is(found.dpPath, runtime);
  t.is(found.dpPathOrigin, 'runtime-dir');
  t.deepEqual(found.dpPathSearched, [runtime]);
  t.true(Object.isFrozen(found));
  t.is(resolvePortConfig(found), found, 'a located config is a resolved config');
  t.is(locateDpPath(found, { exists: () => false, env: {}, uid: 0 }), found, 'located once');

  const missing = locateDpPath(resolve('iface=eth0,use_pinned_map=1'), { exists: () => false, env: {}, uid: 0 });
  t.is(missing.dpPath, '/tmp/afxdp_dp/eth0/xsks_map');
  t.is(missing.dpPathOrigin, 'tmp');
  t.deepEqual(missing.dpPathSearched, ['/var/run/dpdk/rte/afxdp_dp/eth0/xsks_map', '/tmp/afxdp_dp/eth0/xsks_map']);

  const prefixed = resolvePortConfig('iface=eth0,use_cni=1', { filePrefix: 'pod7' });
  const file = '/run/user/1000/dpdk/pod7/afxdp_dp/eth0/afxdp.sock';
  t.is(locateDpPath(prefixed, { exists: (f) => f === file, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000 }).dpPath, file);

  for (const config of [resolve('iface=eth0,use_cni=1,dp_path=/x/afxdp.sock'), resolve('iface=eth0')]) {
    t.is(locateDpPath(config, { exists: () => t.fail('nothing to look up') as never, env: {}, uid: 0 }), config);
  }
  t.throws(() => locateDpPath({ ...found }, { exists: () => true, env: {}, uid: 0 }), { code: 'ERR_AFXDP_INVALID_ARGUMENT' });
});

test('locateDpPath: a found socket path longer than sun_path is refused with the limit; a long pinned map path is fine', (t) => {
  const longDir = `/run/${'d'.repeat(80)}`;
  const env = { RUNTIME_DIRECTORY: longDir };
  const socket = `${longDir}/dpdk/rte/afxdp_dp/eth0/afxdp.sock`;
  t.true(Buffer.byteLength(socket) > limits.socketPathMaxBytes);
  const err = t.throws(() => locateDpPath(resolve('iface=eth0,use_cni=1'), { exists: (f) => f === socket, env, uid: 0 }),
    { instanceOf: AfxdpError, code: 'ERR_AFXDP_INVALID_ARGUMENT' })!;
  t.is(err.argument, 'dpPath');
  t.true(err.message.includes(`at most ${limits.socketPathMaxBytes}`), err.message);
  t.true(err.message.includes('pass dp_path explicitly'), err.message);
  // Not found there: the short /tmp fallback, no error.
  t.is(locateDpPath(resolve('iface=eth0,use_cni=1'), { exists: () => false, env, uid: 0 }).dpPathOrigin, 'tmp');
  // bpf(BPF_OBJ_GET) takes a PATH_MAX path: no sun_path limit for a pinned map.
  const map = `${longDir}/dpdk/rte/afxdp_dp/eth0/xsks_map`;
  t.is(locateDpPath(resolve('iface=eth0,use_pinned_map=1'), { exists: (f) => f === map, env, uid: 0 }).dpPath, map);
});

test('filePrefix: one directory name (DPDK --file-prefix), default rte', (t) => {
  t.is(resolvePortConfig({ iface: 'eth0', filePrefix: 'my-app_1' }).filePrefix, 'my-app_1');
  for (const bad of ['', '.', '..', 'a/b', 'x'.repeat(256), 'a\nb']) rejectsOptions(t, { iface: 'eth0', filePrefix: bad }, 'filePrefix');
  rejectsOptions(t, { iface: 'eth0', filePrefix: 7 }, 'filePrefix');
});

test('dp_path: undefined in attach mode', (t) => {
  t.is(resolve('iface=eth0').dpPath, undefined);
});

// ------------------------------------------------------ cross-argument rules

test('rule: use_cni and use_pinned_map are mutually exclusive', (t) => {
  const err = rejectsDevargs(t, 'iface=eth0,use_cni=1,use_pinned_map=1', 'use_pinned_map');
  t.true(err.message.includes('use_cni and use_pinned_map cannot be combined'), err.message);
  rejectsOptions(t, { iface: 'eth0', useCni: true, usePinnedMap: true }, 'usePinnedMap', 'useCni and usePinnedMap');
  t.notThrows(() => resolve('iface=eth0,use_cni=1,use_pinned_map=0'));
});

test('rule: xdp_prog cannot be combined with use_cni', (t) => {
  rejectsDevargs(t, 'iface=eth0,use_cni=1,xdp_prog=/p.o', 'xdp_prog', 'xdp_prog cannot be used with use_cni');
  rejectsOptions(t, { iface: 'eth0', useCni: true, xdpProg: '/p.o' }, 'xdpProg', 'xdpProg cannot be used with useCni');
});

test('rule: xdp_prog cannot be combined with use_pinned_map', (t) => {
  rejectsDevargs(t, 'iface=eth0,use_pinned_map=1,xdp_prog=/p.o', 'xdp_prog', 'with use_pinned_map');
  t.is(resolve('iface=eth0,use_pinned_map=0,xdp_prog=/p.o').xdpProg, '/p.o');
});

test('rule: dp_path needs use_cni or use_pinned_map', (t) => {
  rejectsDevargs(t, 'iface=eth0,dp_path=/tmp/afxdp.sock', 'dp_path', 'dp_path needs use_cni or use_pinned_map');
  rejectsDevargs(t, 'iface=eth0,use_cni=0,dp_path=/tmp/afxdp.sock', 'dp_path');
  rejectsOptions(t, { iface: 'eth0', dpPath: '/tmp/afxdp.sock' }, 'dpPath', 'useCni: true');
});

test('rule: xdpMode other than auto needs afxdp to attach the program', (t) => {
  t.is(resolve({ iface: 'eth0', xdpMode: 'native' }).xdpMode, 'native');
  t.is(resolve({ iface: 'eth0', useCni: true, xdpMode: 'auto' }).xdpMode, 'auto');
  rejectsOptions(t, { iface: 'eth0', useCni: true, xdpMode: 'generic' }, 'xdpMode', 'Device Plugin attaches');
  rejectsOptions(t, { iface: 'eth0', usePinnedMap: true, xdpMode: 'native' }, 'xdpMode');
});

// ------------------------------------------------------------ extensions

test('frameSize: 2048 or 4096', (t) => {
  t.is(resolve({ iface: 'eth0', frameSize: 2048 }).frameSize, 2048);
  for (const bad of [1024, 3000, 8192, '4096']) rejectsOptions(t, { iface: 'eth0', frameSize: bad }, 'frameSize');
});

test('ring sizes: powers of two in 64..16384, each named when wrong', (t) => {
  for (const ring of ['rxSize', 'txSize', 'fillSize', 'compSize'] as const) {
    t.is(resolve({ iface: 'eth0', [ring]: 64, frameCount: 16384 })[ring], 64, ring);
    t.is(resolve({ iface: 'eth0', [ring]: 16384, frameCount: 32768 })[ring], 16384, ring);
    rejectsOptions(t, { iface: 'eth0', [ring]: 100 }, ring, 'power of two');
    rejectsOptions(t, { iface: 'eth0', [ring]: 32 }, ring, '64..16384');
    rejectsOptions(t, { iface: 'eth0', [ring]: 32768 }, ring, '64..16384');
    rejectsOptions(t, { iface: 'eth0', [ring]: '2048' }, ring, 'without quotes');
  }
});

test('frameCount: at least fillSize, at most 2^20', (t) => {
  t.is(resolve({ iface: 'eth0', frameCount: 2048 }).frameCount, 2048);
  t.is(resolve({ iface: 'eth0', frameSize: 2048, frameCount: 1 << 20 }).frameCount, 1 << 20);
  // 2^20 frames of 4 KiB are 4 GiB: one UMEM must stay below (the core refuses it too).
  rejectsOptions(t, { iface: 'eth0', frameCount: 1 << 20 }, 'frameCount', 'below 4 GiB');
  t.is(resolve({ iface: 'eth0', frameCount: (1 << 20) - 1 }).frameCount, (1 << 20) - 1);
  rejectsOptions(t, { iface: 'eth0', frameCount: 2047 }, 'frameCount', 'at least fillSize (2048)');
  rejectsOptions(t, { iface: 'eth0', fillSize: 4096, frameCount: 4095 }, 'frameCount');
  rejectsOptions(t, { iface: 'eth0', frameCount: (1 << 20) + 1 }, 'frameCount');
  rejectsOptions(t, { iface: 'eth0', frameCount: 0 }, 'frameCount');
});

test('frameCount default grows to fillSize + txSize for bigger rings', (t) => {
  t.is(resolve({ iface: 'eth0', fillSize: 8192 }).frameCount, 8192 + 2048);
  t.is(resolve({ iface: 'eth0', fillSize: 64, txSize: 64 }).frameCount, 4096);
});

test('headroom: 0..frameSize-256-64', (t) => {
  t.is(resolve({ iface: 'eth0', headroom: 4096 - 320 }).headroom, 3776);
  rejectsOptions(t, { iface: 'eth0', headroom: 3777 }, 'headroom', '0..3776');
  t.is(resolve({ iface: 'eth0', frameSize: 2048, headroom: 1728 }).headroom, 1728);
  rejectsOptions(t, { iface: 'eth0', frameSize: 2048, headroom: 1729 }, 'headroom', '0..1728');
  rejectsOptions(t, { iface: 'eth0', headroom: -1 }, 'headroom');
  rejectsOptions(t, { iface: 'eth0', headroom: 1.5 }, 'headroom');
});

test('burstSize: 1..1024 and no more than the RX and TX rings', (t) => {
  t.is(resolve({ iface: 'eth0', burstSize: 1 }).burstSize, 1);
  t.is(resolve({ iface: 'eth0', burstSize: 1024 }).burstSize, 1024);
  rejectsOptions(t, { iface: 'eth0', burstSize: 0 }, 'burstSize');
  rejectsOptions(t, { iface: 'eth0', burstSize: 1025 }, 'burstSize');
  rejectsOptions(t, { iface: 'eth0', rxSize: 128, burstSize: 256 }, 'burstSize', '1..128');
  rejectsOptions(t, { iface: 'eth0', txSize: 64, burstSize: 65 }, 'burstSize', '1..64');
});

test('mode (DPDK 25.11): drv → native, skb → generic, also with xdp_prog; absent → auto', (t) => {
  t.is(resolve('net_af_xdp0,iface=eth0,mode=drv').xdpMode, 'native');
  t.is(resolve('net_af_xdp0,iface=eth0,mode=skb').xdpMode, 'generic');
  t.is(resolve('net_af_xdp0,iface=eth0').xdpMode, 'auto');
  t.is(resolve('iface=eth0,xdp_prog=/opt/prog.o,mode=skb').xdpMode, 'generic');
  t.is(devargsToOptions('iface=eth0,mode=drv').xdpMode, 'native');
  // An afxdp extension on top of a devargs string speaks afxdp's values.
  t.is(resolvePortConfig('iface=eth0', { xdpMode: 'generic' }).xdpMode, 'generic');
});

test('mode=hw (offload) is refused with the reason and the two modes that work', (t) => {
  const err = rejectsDevargs(t, 'iface=eth0,mode=hw', 'mode', 'offload');
  t.true(err.message.includes('XSKMAP'), err.message);
  t.true(err.message.includes('mode=drv') && err.message.includes('mode=skb'), err.message);
});

test('mode: any other value is refused, naming the accepted ones; afxdp\'s own names are not devarg values', (t) => {
  for (const value of ['native', 'generic', 'auto', 'offload', 'xdpdrv', 'drv ', '1']) {
    rejectsDevargs(t, `iface=eth0,mode=${value}`, 'mode', 'mode must be drv or skb');
  }
  const err = rejectsDevargs(t, 'iface=eth0,mode=SKB', 'mode', 'lower case');
  t.true(err.message.includes('mode=skb'), err.message);
  rejectsDevargs(t, 'iface=eth0,mode=drv,mode=skb', 'mode', 'given twice');
  // Not a devarg value spelling for options objects either.
  rejectsOptions(t, { iface: 'eth0', xdpMode: 'drv' }, 'xdpMode');
});

test('mode with use_cni / use_pinned_map is refused in the devarg\'s words (DPDK ignores it there)', (t) => {
  rejectsDevargs(t, 'iface=eth0,use_cni=1,mode=skb', 'mode', 'mode=skb cannot be used with use_cni');
  rejectsDevargs(t, 'iface=eth0,use_pinned_map=1,mode=drv', 'mode', 'mode=drv cannot be used with use_pinned_map');
  const err = rejectsDevargs(t, 'iface=eth0,use_cni=1,mode=hw', 'mode', 'offload');
  t.false(err.message.includes('cannot be used with'), 'the value is refused first, as DPDK parses it first');
});

test('hugepages and xdpMode: one of their values', (t) => {
  for (const mode of ['auto', 'require', 'never'] as const) t.is(resolve({ iface: 'eth0', hugepages: mode }).hugepages, mode);
  rejectsOptions(t, { iface: 'eth0', hugepages: 'always' }, 'hugepages', "'auto', 'require', 'never'");
  rejectsOptions(t, { iface: 'eth0', hugepages: true }, 'hugepages');
  for (const mode of ['auto', 'native', 'generic'] as const) t.is(resolve({ iface: 'eth0', xdpMode: mode }).xdpMode, mode);
  rejectsOptions(t, { iface: 'eth0', xdpMode: 'skb' }, 'xdpMode');
});

test('podName: at most 55 bytes, no comma or whitespace (Device Plugin handshake)', (t) => {
  t.is(resolve({ iface: 'eth0', useCni: true, podName: 'dpdk-7d9f' }).podName, 'dpdk-7d9f');
  t.is(resolve({ iface: 'eth0', podName: 'p'.repeat(55) }).podName, 'p'.repeat(55));
  rejectsOptions(t, { iface: 'eth0', podName: 'p'.repeat(56) }, 'podName', '56 bytes');
  rejectsOptions(t, { iface: 'eth0', podName: 'a,b' }, 'podName', 'comma');
  rejectsOptions(t, { iface: 'eth0', podName: 'a b' }, 'podName');
  rejectsOptions(t, { iface: 'eth0', podName: '' }, 'podName');
  rejectsOptions(t, { iface: 'eth0', podName: 5 }, 'podName');
});

test('pollMode: busy, adaptive or event; anything else names the choices', (t) => {
  for (const mode of ['busy', 'adaptive', 'event'] as const) t.is(resolve({ iface: 'eth0', pollMode: mode }).pollMode, mode);
  const err = t.throws(() => resolve({ iface: 'eth0', pollMode: 'spin' as never }), { instanceOf: AfxdpError });
  t.is(err?.code, 'ERR_AFXDP_INVALID_ARGUMENT');
  t.regex(err?.message ?? '', /'busy', 'adaptive', 'event'/);
});

test('handshakeTimeoutMs: integer 1..300000', (t) => {
  t.is(resolve({ iface: 'eth0', handshakeTimeoutMs: 1 }).handshakeTimeoutMs, 1);
  t.is(resolve({ iface: 'eth0', handshakeTimeoutMs: 300_000 }).handshakeTimeoutMs, 300_000);
  rejectsOptions(t, { iface: 'eth0', handshakeTimeoutMs: 0 }, 'handshakeTimeoutMs');
  rejectsOptions(t, { iface: 'eth0', handshakeTimeoutMs: 300_001 }, 'handshakeTimeoutMs');
  rejectsOptions(t, { iface: 'eth0', handshakeTimeoutMs: Infinity }, 'handshakeTimeoutMs');
});

test('netns: a name or a path, not empty, ".", ".." or with NUL', (t) => {
  t.is(resolve({ iface: 'eth0', netns: 'lab' }).netns, 'lab');
  t.is(resolve({ iface: 'eth0', netns: '/proc/1/ns/net' }).netns, '/proc/1/ns/net');
  for (const bad of ['', '.', '..', 'a\0b', 7]) rejectsOptions(t, { iface: 'eth0', netns: bad }, 'netns');
});

// ------------------------------------------------------- options objects

test('options: a string where a number belongs is an error naming the option', (t) => {
  const err = rejectsOptions(t, { iface: 'eth0', startQueue: '1' }, 'startQueue', 'startQueue must be a number');
  t.true(err.message.includes('the string "1"'), err.message);
  rejectsOptions(t, { iface: 'eth0', queueCount: '4' }, 'queueCount');
  rejectsOptions(t, { iface: 'eth0', busyBudget: '64' }, 'busyBudget');
});

test('options: NaN, Infinity, fractions and bigints are not integers', (t) => {
  for (const bad of [NaN, Infinity, -Infinity, 0.5]) rejectsOptions(t, { iface: 'eth0', startQueue: bad }, 'startQueue');
  rejectsOptions(t, { iface: 'eth0', queueCount: 2n }, 'queueCount', 'bigint');
});

test('options: unknown keys are refused with a suggestion', (t) => {
  rejectsOptions(t, { iface: 'eth0', startQueu: 1 }, 'startQueu', 'did you mean startQueue?');
  rejectsOptions(t, { iface: 'eth0', start_queue: 1 }, 'start_queue', 'did you mean startQueue?');
  rejectsOptions(t, { iface: 'eth0', use_cni: true }, 'use_cni', 'did you mean useCni?');
  rejectsOptions(t, { iface: 'eth0', zzzzzz: 1 }, 'zzzzzz', 'valid options: iface');
});

test('options: anything but a string or a plain object is refused', (t) => {
  for (const bad of [undefined, null, 0, true, ['iface=eth0'], () => 'x']) rejectsOptions(t, bad, undefined, 'expected a devargs string');
});

test('options: the input object is not modified', (t) => {
  const options = Object.freeze({ iface: 'eth0', startQueue: 2 });
  t.is(resolve(options).startQueue, 2);
  t.deepEqual(options, { iface: 'eth0', startQueue: 2 });
});

test('devargsToOptions: the typed options a devargs string stands for, to extend', (t) => {
  const options = devargsToOptions('net_af_xdp0,iface=eth0,start_queue=2,use_cni=1,busy_budget=16');
  t.deepEqual(options, { iface: 'eth0', startQueue: 2, busyBudget: 16, useCni: true });
  t.like(resolve({ ...options, frameSize: 2048 }), { startQueue: 2, useCni: true, frameSize: 2048, busyBudgetExplicit: true });
  t.throws(() => devargsToOptions('iface=eth0,use_cni=2'), { instanceOf: AfxdpError, code: 'ERR_AFXDP_DEVARGS' });
  t.throws(() => devargsToOptions('net_af_xdp0,use_cni=1'), { instanceOf: AfxdpError, code: 'ERR_AFXDP_DEVARGS' });
});

// ------------------------------------------------------------------ fuzz

function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const VALUES = ['0', '1', '2', '64', '65535', '65536', '-1', '1x', 'eth0', 'veth1', '/tmp/afxdp.sock', '"/tmp/a,b"',
  '', '..', 'a/b', '%', '🙂🙂🙂🙂', 'x'.repeat(120), '"', "'x'", ' 1', '\0'];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!; // random() < 1: in range
}

// Mostly well-formed key=value lists, so validation (not just syntax) runs.
function randomDevargs(random: () => number): string {
  const pairs: string[] = random() < 0.5 ? [`net_af_xdp${Math.floor(random() * 3)}`] : [];
  if (random() < 0.9) pairs.push(`iface=${pick(random, ['eth0', 'veth1', pick(random, VALUES)])}`);
  const count = Math.floor(random() * 5);
  for (let i = 0; i < count; i++) pairs.push(`${pick(random, DEVARG_NAMES)}=${pick(random, VALUES)}`);
  return pairs.join(',');
}

const OPTION_VALUES: unknown[] = [0, 1, 2, 63, 64, 100, 2048, 4096, 65535, 65536, -1, 0.5, NaN, Infinity, true, false,
  null, '1', 'eth0', 'auto', 'native', 'require', '/tmp/x', '', [], {}, 1n, Symbol('s'), undefined];
const OPTION_KEYS = ['iface', 'startQueue', 'queueCount', 'sharedUmem', 'xdpProg', 'busyBudget', 'forceCopy', 'useCni',
  'usePinnedMap', 'dpPath', 'frameSize', 'frameCount', 'headroom', 'rxSize', 'txSize', 'fillSize', 'compSize',
  'burstSize', 'hugepages', 'xdpMode', 'multiBuffer', 'podName', 'handshakeTimeoutMs', 'netns', 'bogus'];

function randomOptions(random: () => number): Record<string, unknown> {
  const options: Record<string, unknown> = random() < 0.9 ? { iface: 'eth0' } : {};
  const count = Math.floor(random() * 5);
  for (let i = 0; i < count; i++) options[pick(random, OPTION_KEYS)] = pick(random, OPTION_VALUES);
  return options;
}

// True if `input` resolved to a frozen config; false if it threw an
// AfxdpError with `code`; fails the test on anything else.
function resolvesOrRejects(t: ExecutionContext, input: unknown, code: string): boolean {
  try {
    return Object.isFrozen(resolvePortConfig(input as PortOptions));
  } catch (err) {
    if (err instanceof AfxdpError && err.code === code) return false;
    t.fail(`${inspect(input)} threw ${inspect(err)}`);
    throw err;
  }
}

test('fuzz: 5000 random devargs lists resolve or throw ERR_AFXDP_DEVARGS', (t) => {
  const random = prng(0xdecaf);
  let resolved = 0;
  for (let i = 0; i < 5000; i++) {
    if (resolvesOrRejects(t, randomDevargs(random), 'ERR_AFXDP_DEVARGS')) resolved++;
  }
  t.log(`${resolved} of 5000 resolved`);
  t.true(resolved > 100, 'the generator should reach successful resolution too');
});

test('fuzz: 5000 random options objects resolve or throw ERR_AFXDP_INVALID_ARGUMENT', (t) => {
  const random = prng(0xbeef);
  let resolved = 0;
  for (let i = 0; i < 5000; i++) {
    if (resolvesOrRejects(t, randomOptions(random), 'ERR_AFXDP_INVALID_ARGUMENT')) resolved++;
  }
  t.log(`${resolved} of 5000 resolved`);
  t.true(resolved > 100);
});

test('multiBuffer: auto, on or off (an afxdp extension: no devarg); anything else is refused', (t) => {
  t.is(resolve({ iface: 'eth0' }).multiBuffer, 'auto');
  t.is(resolve({ iface: 'eth0', multiBuffer: 'on' }).multiBuffer, 'on');
  t.is(resolve({ iface: 'eth0', multiBuffer: 'off' }).multiBuffer, 'off');
  rejectsOptions(t, { iface: 'eth0', multiBuffer: true }, 'multiBuffer');
  rejectsOptions(t, { iface: 'eth0', multiBuffer: 'yes' }, 'multiBuffer');
  t.is(optionSpec('multiBuffer').devarg, undefined);
  t.true(optionSpec('multiBuffer').native === true, 'passed to the addon');
});
