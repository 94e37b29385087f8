import test from 'ava';

import { AfxdpError } from '../../lib/errors';
import {
  DP_BASE_PATH,
  LEGACY_PINNED_PATH,
  LEGACY_UDS_PATH,
  DEFAULT_FILE_PREFIX,
  defaultDpPath,
  dpdkRuntimeDir,
  lookupDpPath,
  resolveDpPath,
  runtimeDirDpPath,
  type DpMode,
  type DpPathProbe,
} from '../../lib/dp/paths';
import { DEVICES_ENV_PREFIX, LEGACY_DEVICES_ENV, devicesFromEnv } from '../../lib/dp/devices-env';

// ----------------------------------------------------------------- paths

test('constants: the DP mount point and the old DP paths', (t) => {
  t.is(DP_BASE_PATH, '/tmp/afxdp_dp');
  t.is(LEGACY_UDS_PATH, '/tmp/afxdp.sock');
  t.is(LEGACY_PINNED_PATH, '/tmp/xsks_map');
});

test('defaultDpPath: cni → /tmp/afxdp_dp/<iface>/afxdp.sock', (t) => {
  t.is(defaultDpPath('cni', 'veth1'), '/tmp/afxdp_dp/veth1/afxdp.sock');
});

test('defaultDpPath: pinned → /tmp/afxdp_dp/<iface>/xsks_map', (t) => {
  t.is(defaultDpPath('pinned', 'ens785f0'), '/tmp/afxdp_dp/ens785f0/xsks_map');
});

test('defaultDpPath: never the legacy path (the old DP needs an explicit dp_path)', (t) => {
  for (const mode of ['cni', 'pinned'] as const) {
    t.not(defaultDpPath(mode, 'eth1'), LEGACY_UDS_PATH);
    t.not(defaultDpPath(mode, 'eth1'), LEGACY_PINNED_PATH);
  }
});

test('resolveDpPath: an explicit path wins, including the legacy socket', (t) => {
  t.is(resolveDpPath('cni', 'eth1', LEGACY_UDS_PATH), '/tmp/afxdp.sock');
  t.is(resolveDpPath('pinned', 'eth1', '/sys/fs/bpf/x/xsks_map'), '/sys/fs/bpf/x/xsks_map');
  t.is(resolveDpPath('cni', 'eth1'), '/tmp/afxdp_dp/eth1/afxdp.sock');
  t.is(resolveDpPath('pinned', 'eth1', undefined), '/tmp/afxdp_dp/eth1/xsks_map');
});

test('defaultDpPath: an interface name that would leave the base directory is refused', (t) => {
  for (const iface of ['', '.', '..', '../../etc', 'a/b', 'a\0b']) {
    const err = t.throws(() => defaultDpPath('cni', iface), { instanceOf: AfxdpError });
    t.is(err?.code, 'ERR_AFXDP_INVALID_ARGUMENT');
    t.is(err?.argument, 'iface');
  }
});

test('defaultDpPath: an unknown mode is refused at run time', (t) => {
  const err = t.throws(() => defaultDpPath('attach' as DpMode, 'eth1'), { instanceOf: AfxdpError });
  t.is(err?.argument, 'mode');
});

// -------------------------------------------- DPDK 26.11 default lookup

// A probe over a fixed set of existing paths, recording what was asked.
function probe(existing: readonly string[], env: DpPathProbe['env'], uid: number): DpPathProbe & { asked: string[] } {
  const asked: string[] = [];
  const exists = (file: string): boolean => {
    asked.push(file);
    return existing.includes(file);
  };
  return { env, uid, asked, exists };
}

test('dpdkRuntimeDir: EAL order: RUNTIME_DIRECTORY, else /var/run for root, else XDG_RUNTIME_DIR, else /tmp', (t) => {
  t.is(DEFAULT_FILE_PREFIX, 'rte');
  t.is(dpdkRuntimeDir('rte', {}, 0), '/var/run/dpdk/rte');
  t.is(dpdkRuntimeDir('rte', { XDG_RUNTIME_DIR: '/run/user/1000' }, 0), '/var/run/dpdk/rte', 'root ignores XDG_RUNTIME_DIR');
  t.is(dpdkRuntimeDir('pod1', { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/dpdk/pod1');
  t.is(dpdkRuntimeDir('rte', {}, 1000), '/tmp/dpdk/rte');
  t.is(dpdkRuntimeDir('rte', { XDG_RUNTIME_DIR: '' }, 1000), '/tmp/dpdk/rte', 'an empty variable counts as unset');
  t.is(dpdkRuntimeDir('rte', { RUNTIME_DIRECTORY: '/run/app/', XDG_RUNTIME_DIR: '/run/user/7' }, 7), '/run/app/dpdk/rte');
  t.is(dpdkRuntimeDir('rte', { RUNTIME_DIRECTORY: '/run/app' }, 0), '/run/app/dpdk/rte', 'systemd wins for root too');
  t.is(dpdkRuntimeDir('rte', { RUNTIME_DIRECTORY: '/' }, 0), '/dpdk/rte');
});

test('dpdkRuntimeDir: a file prefix that is not one directory name is refused', (t) => {
  for (const prefix of ['', '.', '..', 'a/b', '../x']) {
    const err = t.throws(() => dpdkRuntimeDir(prefix, {}, 0), { instanceOf: AfxdpError });
    t.is(err?.argument, 'filePrefix', prefix);
  }
});

test('runtimeDirDpPath: <runtime dir>/afxdp_dp/<iface>/afxdp.sock or xsks_map', (t) => {
  t.is(runtimeDirDpPath('cni', 'eth1', '/var/run/dpdk/rte'), '/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock');
  t.is(runtimeDirDpPath('pinned', 'eth1', '/var/run/dpdk/rte'), '/var/run/dpdk/rte/afxdp_dp/eth1/xsks_map');
  t.throws(() => runtimeDirDpPath('cni', '../x', '/var/run/dpdk/rte'), { instanceOf: AfxdpError });
});

test('lookupDpPath: root, runtime dir has the socket → it is used, /tmp is not looked at', (t) => {
  const p = probe(['/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock', '/tmp/afxdp_dp/eth1/afxdp.sock'], {}, 0);
  t.deepEqual(lookupDpPath('cni', 'eth1', 'rte', p), {
    path: '/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock', origin: 'runtime-dir', searched: ['/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock'],
  });
  t.deepEqual(p.asked, ['/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock']);
});

test('lookupDpPath: runtime dir without the file → /tmp/afxdp_dp fallback, whether or not that exists', (t) => {
  for (const existing of [['/tmp/afxdp_dp/eth1/xsks_map'], []]) {
    const p = probe(existing, {}, 0);
    t.deepEqual(lookupDpPath('pinned', 'eth1', 'rte', p), {
      path: '/tmp/afxdp_dp/eth1/xsks_map', origin: 'tmp',
      searched: ['/var/run/dpdk/rte/afxdp_dp/eth1/xsks_map', '/tmp/afxdp_dp/eth1/xsks_map'],
    });
    t.deepEqual(p.asked, ['/var/run/dpdk/rte/afxdp_dp/eth1/xsks_map'], 'the fallback is not probed: it is the last word');
  }
});

test('lookupDpPath: non-root looks under $XDG_RUNTIME_DIR with the file prefix; another prefix is not found', (t) => {
  const file = '/run/user/1000/dpdk/pod-a/afxdp_dp/net1/afxdp.sock';
  const env = { XDG_RUNTIME_DIR: '/run/user/1000' };
  t.is(lookupDpPath('cni', 'net1', 'pod-a', probe([file], env, 1000)).path, file);
  t.is(lookupDpPath('cni', 'net1', 'rte', probe([file], env, 1000)).path, '/tmp/afxdp_dp/net1/afxdp.sock');
  // The same file seen by root is not where root looks.
  t.is(lookupDpPath('cni', 'net1', 'pod-a', probe([file], env, 0)).origin, 'tmp');
});

test('lookupDpPath: an explicit dp_path is used as it is and nothing is probed (also /tmp/afxdp.sock)', (t) => {
  const p = probe(['/var/run/dpdk/rte/afxdp_dp/eth1/afxdp.sock'], {}, 0);
  t.deepEqual(lookupDpPath('cni', 'eth1', 'rte', p, LEGACY_UDS_PATH), { path: '/tmp/afxdp.sock', origin: 'explicit', searched: [] });
  t.deepEqual(p.asked, []);
});

test('lookupDpPath: non-root without XDG_RUNTIME_DIR: /tmp/dpdk/rte first (EAL), then /tmp/afxdp_dp', (t) => {
  const p = probe([], {}, 1000);
  const found = lookupDpPath('cni', 'eth1', 'rte', p);
  t.deepEqual(found.searched, ['/tmp/dpdk/rte/afxdp_dp/eth1/afxdp.sock', '/tmp/afxdp_dp/eth1/afxdp.sock']);
  t.is(found.origin, 'tmp');
});

// ----------------------------------------------------------- devices-env

test('devicesFromEnv: reads AFXDP_DEVICES_<POOL> as space-separated netdevs', (t) => {
  const env = { AFXDP_DEVICES_MYPOOL: 'veth1 veth3', PATH: '/usr/bin', HOME: '/root' };
  t.deepEqual(devicesFromEnv(env), [{ pool: 'MYPOOL', devices: ['veth1', 'veth3'] }]);
});

test('devicesFromEnv: several pools, sorted by name', (t) => {
  const env = { AFXDP_DEVICES_ZED: 'ens2', AFXDP_DEVICES_ALPHA: 'ens1' };
  t.deepEqual(devicesFromEnv(env), [
    { pool: 'ALPHA', devices: ['ens1'] },
    { pool: 'ZED', devices: ['ens2'] },
  ]);
});

test('devicesFromEnv: the old DP variable AFXDP_DEVICES has pool ""', (t) => {
  t.is(LEGACY_DEVICES_ENV, 'AFXDP_DEVICES');
  t.deepEqual(devicesFromEnv({ AFXDP_DEVICES: 'eth5', AFXDP_DEVICES_P: 'eth6' }), [
    { pool: '', devices: ['eth5'] },
    { pool: 'P', devices: ['eth6'] },
  ]);
});

test('devicesFromEnv: filters by pool, case-insensitively and by resource name', (t) => {
  const env = { AFXDP_DEVICES: 'eth5', AFXDP_DEVICES_MYPOOL: 'veth1', AFXDP_DEVICES_OTHER: 'veth2' };
  const mine = [{ pool: 'MYPOOL', devices: ['veth1'] }];
  t.deepEqual(devicesFromEnv(env, 'myPool'), mine);
  t.deepEqual(devicesFromEnv(env, 'MYPOOL'), mine);
  t.deepEqual(devicesFromEnv(env, 'afxdp/myPool'), mine);
  t.deepEqual(devicesFromEnv(env, 'missing'), []);
  t.deepEqual(devicesFromEnv(env, ''), []);
});

test('devicesFromEnv: tolerant of extra whitespace, drops duplicates, keeps empty pools', (t) => {
  const env = { AFXDP_DEVICES_A: '  veth1\tveth2  veth1\n', AFXDP_DEVICES_B: '' };
  t.deepEqual(devicesFromEnv(env), [
    { pool: 'A', devices: ['veth1', 'veth2'] },
    { pool: 'B', devices: [] },
  ]);
});

test('devicesFromEnv: ignores the bare prefix, lookalikes and undefined values', (t) => {
  const env = {
    [DEVICES_ENV_PREFIX]: 'stale',
    AFXDP_DEVICESX: 'no',
    afxdp_devices_low: 'no',
    CNDP_DEVICES: 'no',
    AFXDP_DEVICES_U: undefined,
  };
  t.deepEqual(devicesFromEnv(env), []);
});

test('devicesFromEnv: defaults to process.env', (t) => {
  const name = 'AFXDP_DEVICES_UNITTEST_DEFAULT_ENV';
  process.env[name] = 'veth9';
  try {
    t.deepEqual(devicesFromEnv(undefined, 'unittest_default_env'), [{ pool: 'UNITTEST_DEFAULT_ENV', devices: ['veth9'] }]);
  } finally {
    delete process.env[name];
  }
});
