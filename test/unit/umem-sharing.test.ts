// Sharing a UMEM across ports: which port owns it in openPorts(), and the
// checks on a joining port's settings (pure: nothing is opened).
import test from 'ava';
import { resolvePortConfig } from '../../lib/config/port-config';
import { planUmemSharing } from '../../lib/port/open';
import { checkUmemSharing } from '../../lib/port/umem-share';
import { openPort, openPorts } from '../../lib/index';

const config = (spec: Parameters<typeof resolvePortConfig>[0]) => resolvePortConfig(spec);

test('openPorts: the first shared_umem=1 port owns the UMEM, later ones join it; one alone shares nothing', (t) => {
  const configs = [
    config('net_af_xdp0,iface=eth0'),
    config('net_af_xdp1,iface=eth1,shared_umem=1'),
    config({ iface: 'eth2', sharedUmem: true }),
    config('net_af_xdp3,iface=eth3,shared_umem=1,queue_count=2'),
  ];
  t.deepEqual(planUmemSharing(configs), [undefined, undefined, 1, 1]);
  t.deepEqual(planUmemSharing(configs.slice(0, 2)), [undefined, undefined]);
  t.deepEqual(planUmemSharing([]), []);
});

test('a joining port needs the owner\'s frame settings: the error names the setting and the fix', (t) => {
  const owner = { closed: false, config: config({ iface: 'eth0', sharedUmem: true }) };
  checkUmemSharing(owner, config({ iface: 'eth1', sharedUmem: true, fillSize: 1024, rxSize: 512 }), {});
  for (const [setting, options] of [
    ['frameSize', { frameSize: 2048 }],
    ['frameCount', { frameCount: 8192 }],
    ['headroom', { headroom: 64 }],
    ['hugepages', { hugepages: 'never' }],
  ] as const) {
    const spec = { iface: 'eth1', sharedUmem: true, ...options };
    const e = t.throws(() => checkUmemSharing(owner, config(spec), spec), { code: 'ERR_AFXDP_INVALID_ARGUMENT' } as never);
    t.regex(e!.message, new RegExp(`${setting} is .* here but .* there`));
    t.regex(e!.message, /eth1 .*eth0/);
    t.regex(e!.message, /same frame settings|without shared_umem/);
    t.is((e as unknown as { argument: string }).argument, setting);
  }
  // A devargs string gets the devargs code.
  const small = { closed: false, config: config({ iface: 'eth0', frameSize: 2048 }) };
  t.throws(() => checkUmemSharing(small, config('net_af_xdp1,iface=eth1,shared_umem=1'), 'net_af_xdp1,iface=eth1,shared_umem=1'),
    { code: 'ERR_AFXDP_DEVARGS', message: /frameSize is 4096 here but 2048 there/ } as never);
});

test('a closed port cannot be shared', (t) => {
  const closed = { closed: true, config: config({ iface: 'eth0' }) };
  t.throws(() => checkUmemSharing(closed, config({ iface: 'eth1' }), {}), { code: 'ERR_AFXDP_CLOSED', message: /eth0.*closed/ } as never);
});

test('openPorts refuses mismatched shared_umem ports before opening anything', async (t) => {
  await t.throwsAsync(openPorts([{ iface: 'eth0', sharedUmem: true, frameSize: 2048 }, 'net_af_xdp1,iface=eth1,shared_umem=1']),
    { code: 'ERR_AFXDP_DEVARGS', message: /frameSize/ } as never);
  await t.throwsAsync(openPorts([{ iface: 'eth0', sharedUmem: true }, { iface: 'eth1', sharedUmem: true, frameCount: 8192 }]),
    { code: 'ERR_AFXDP_INVALID_ARGUMENT', message: /frameCount/ } as never);
});

test('shareUmemWith must be a Port', async (t) => {
  t.notThrows(() => resolvePortConfig({ iface: 'eth0', shareUmemWith: undefined }));
  await t.throwsAsync(openPort({ iface: 'eth0', shareUmemWith: {} as never }),
    { code: 'ERR_AFXDP_INVALID_ARGUMENT', message: /shareUmemWith must be a Port/ } as never);
});
