// rxMetadata / txMetadata and DPDK 26.11's xdp_meta_* devargs: bounds and
// the rules between them (lib/config/port-config.ts checkMetadataRules),
// and what TX metadata a queue honours (lib/port/metadata.ts).
import test from 'ava';
import { resolvePortConfig } from '../../lib/config/port-config';
import { rxMetaLayout, txMetadataSupport } from '../../lib/port/metadata';

const P = 'net_af_xdp0,iface=eth0';

test('xdp_meta_* devargs with xdp_prog resolve to a custom layout', (t) => {
  const c = resolvePortConfig(`${P},xdp_prog=/x.o,xdp_meta_rx_ts_offset=16,xdp_meta_valid_hint_offset=4,xdp_meta_rx_ts_valid_mask=1`);
  t.is(c.xdpMetaRxTsOffset, 16);
  t.is(c.xdpMetaValidHintOffset, 4);
  t.is(c.xdpMetaRxTsValidMask, 1);
  t.deepEqual(rxMetaLayout(c), { kind: 'custom', tsOffset: 16, hintOffset: 4, mask: 1 });
  const plain = resolvePortConfig(`${P},use_cni=1,xdp_meta_rx_ts_offset=8`);
  t.deepEqual(rxMetaLayout(plain), { kind: 'custom', tsOffset: 8, hintOffset: undefined, mask: 0 });
  t.deepEqual(rxMetaLayout(resolvePortConfig({ iface: 'eth0', rxMetadata: true })), { kind: 'afxdp' });
  t.deepEqual(rxMetaLayout(resolvePortConfig(P)), { kind: 'none' });
});

test('xdp_meta_* bounds and rules are errors naming the fix', (t) => {
  const bad: [string, RegExp][] = [
    [`${P},xdp_prog=/x.o,xdp_meta_rx_ts_offset=4`, /xdp_meta_rx_ts_offset/],
    [`${P},xdp_prog=/x.o,xdp_meta_rx_ts_offset=256`, /xdp_meta_rx_ts_offset/],
    [`${P},xdp_meta_rx_ts_offset=16`, /redirect program writes none/],
    [`${P},xdp_prog=/x.o,xdp_meta_valid_hint_offset=4,xdp_meta_rx_ts_valid_mask=1`, /needs xdp_meta_rx_ts_offset/],
    [`${P},xdp_prog=/x.o,xdp_meta_rx_ts_offset=16,xdp_meta_valid_hint_offset=4`, /go together/],
    [`${P},xdp_prog=/x.o,xdp_meta_rx_ts_offset=16,xdp_meta_rx_ts_valid_mask=0x1`, /decimal/],
  ];
  for (const [spec, message] of bad) t.throws(() => resolvePortConfig(spec), { code: 'ERR_AFXDP_DEVARGS', message }, spec);
  t.throws(() => resolvePortConfig({ iface: 'eth0', rxMetadata: true, xdpProg: '/x.o' }), { message: /selects afxdp's own/ });
  t.throws(() => resolvePortConfig({ iface: 'eth0', rxMetadata: true, useCni: true }), { message: /Device Plugin loads/ });
  t.throws(() => resolvePortConfig({ iface: 'eth0', rxMetadata: true, xdpProg: '/x.o', xdpMetaRxTsOffset: 16 }));
});

test('TX metadata support: copy mode does checksum and timestamp, zero-copy what xsk-features say', (t) => {
  const off = txMetadataSupport(undefined, false, undefined);
  t.false(off.checksum || off.timestamp || off.launchTime);
  t.regex(off.reasons.timestamp!, /txMetadata: true/);
  const copy = txMetadataSupport('XDP_UMEM_TX_METADATA_LEN', false, []);
  t.true(copy.checksum && copy.timestamp);
  t.false(copy.launchTime);
  t.regex(copy.reasons.launchTime!, /qdisc/);
  const zc = txMetadataSupport('XDP_UMEM_TX_METADATA_LEN', true, ['tx-timestamp']);
  t.true(zc.timestamp);
  t.false(zc.checksum);
  t.regex(zc.reasons.checksum!, /tx-checksum.*it reports: tx-timestamp/);
  t.regex(txMetadataSupport('x', true, undefined).reasons.launchTime!, /Linux >= 6.8/);
});
