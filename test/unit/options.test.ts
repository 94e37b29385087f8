// The option table (lib/config/options.ts) is the one source of option names,
// devargs, bounds and defaults: parsing, validation, the addon's options, the
// CLI help and docs/options.md all follow it. Also: the error-code list and
// the limits agree with the Rust sources, without needing the addon.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';

import { AfxdpError, codes } from '../../lib/errors';
import { DEVARG_NAMES, parseDevargs } from '../../lib/config/devargs';
import {
  DEVARG_OPTIONS, NATIVE_OPTIONS, OPTIONS, OPTION_NAMES, defaults, devargsHelp, limits, optionsMarkdownTable,
} from '../../lib/config/options';
import { isPortConfig, resolvePortConfig } from '../../lib/config/port-config';
import { nativeOptions } from '../../lib/port/open';

const ROOT = path.join(__dirname, '../..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { withTable } = require('../../scripts/options-table.js') as { withTable(text: string, table: string): string };

test('docs/options.md carries the table generated from lib/config/options.ts', (t) => {
  const text = fs.readFileSync(path.join(ROOT, 'docs/options.md'), 'utf8');
  t.is(text, withTable(text, optionsMarkdownTable()), 'run: npm run build:ts && node scripts/options-table.js');
  for (const name of OPTION_NAMES) t.true(text.includes(`| \`${name}\` |`), name);
});

test('every devarg is its option name in snake_case (but DPDK 25.11 mode → xdpMode), in DPDK order', (t) => {
  const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const renamed: Partial<Record<string, string>> = { xdpMode: 'mode' };
  for (const name of DEVARG_OPTIONS) t.is<string, string>(OPTIONS[name].devarg, renamed[name] ?? snake(name));
  t.deepEqual([...DEVARG_NAMES], [
    'iface', 'start_queue', 'queue_count', 'shared_umem', 'xdp_prog', 'busy_budget', 'force_copy', 'use_cni',
    'use_pinned_map', 'dp_path', 'mode', 'xdp_meta_rx_ts_offset', 'xdp_meta_valid_hint_offset', 'xdp_meta_rx_ts_valid_mask']);
});

test('mode: DPDK spells the values drv|skb|hw; the table maps drv and skb and refuses hw', (t) => {
  t.deepEqual(OPTIONS.xdpMode.devargValues, { drv: 'native', skb: 'generic' });
  t.deepEqual(Object.keys(OPTIONS.xdpMode.devargRefused), ['hw']);
  for (const value of Object.values(OPTIONS.xdpMode.devargValues)) t.true((OPTIONS.xdpMode.values as readonly string[]).includes(value));
});

test('the devargs parser and the resolver take every devarg of the table', (t) => {
  const sample = { int: '1', bool: '1', path: '/tmp/x', string: 'eth0', enum: 'skb', port: '' } as const;
  for (const name of DEVARG_OPTIONS) {
    if (name === 'iface') continue;
    const spec = OPTIONS[name];
    const devargs = `iface=eth0,${spec.devarg}=${sample[spec.kind]}`;
    t.deepEqual(Object.keys(parseDevargs(devargs).args), ['iface', spec.devarg], devargs);
  }
  t.is(resolvePortConfig('iface=eth0,busy_budget=7').busyBudget, 7);
});

test('every int option is checked against its table bounds, named in camelCase', (t) => {
  for (const name of OPTION_NAMES) {
    const spec: { kind: string; min?: number; max?: number } = OPTIONS[name];
    if (spec.kind !== 'int' || name === 'frameCount') continue;
    const err = t.throws(() => resolvePortConfig({ iface: 'eth0', [name]: spec.max! + 1 }), { instanceOf: AfxdpError }, name);
    t.is(err?.code, codes.INVALID_ARGUMENT, name);
    t.is(err?.argument, name);
    t.true(err?.message.includes(`${name} must be`), err?.message);
  }
});

test('defaults come from the table', (t) => {
  for (const name of OPTION_NAMES) {
    const value = (OPTIONS[name] as { default?: unknown }).default;
    if (value !== undefined) t.is((defaults as Record<string, unknown>)[name], value, name);
  }
});

test('devargsHelp() lists every devarg with its description', (t) => {
  const help = devargsHelp();
  const lines = help.split('\n');
  t.is(lines.length, DEVARG_NAMES.length);
  DEVARG_OPTIONS.forEach((name, i) => {
    t.true(lines[i]!.trimStart().startsWith(`${OPTIONS[name].devarg}=`), lines[i]);
    t.true(lines[i]!.includes(OPTIONS[name].description), lines[i]);
  });
  t.regex(help, /iface=STRING +Interface .*\(required\)/);
});

test('nativeOptions: the table native options as they are, plus ifname and the map source', (t) => {
  const config = resolvePortConfig({ iface: 'eth0', usePinnedMap: true, dpPath: '/sys/fs/bpf/x', queueCount: 3 });
  const options = nativeOptions(config);
  for (const name of NATIVE_OPTIONS) t.is((options as unknown as Record<string, unknown>)[name], config[name], name);
  t.is(options.ifname, 'eth0');
  t.is(options.pinnedMap, '/sys/fs/bpf/x');
  t.is(options.xdpProg, undefined);
  const attach = nativeOptions(resolvePortConfig({ iface: 'eth0', xdpProg: '/x.o' }));
  t.is(attach.xdpProg, '/x.o');
  t.is(attach.pinnedMap, undefined);
});

test('resolvePortConfig(devargs, extensions): one parse, devargs and options named as given', (t) => {
  const config = resolvePortConfig('net_af_xdp3,iface=eth0,queue_count=2', { frameSize: 2048, netns: 'blue' });
  t.is(config.queueCount, 2);
  t.is(config.frameSize, 2048);
  t.is(config.netns, 'blue');
  t.is(config.vdevIndex, 3);
  t.true(isPortConfig(config));
  t.is(resolvePortConfig(config), config, 'a resolved config is used as it is');
  t.false(isPortConfig({ ...config }));

  const devarg = t.throws(() => resolvePortConfig('iface=eth0,queue_count=0', { frameSize: 2048 }), { instanceOf: AfxdpError });
  t.is(devarg?.code, codes.DEVARGS);
  t.is(devarg?.argument, 'queue_count');
  const extension = t.throws(() => resolvePortConfig('iface=eth0', { burstSize: 5000 }), { instanceOf: AfxdpError });
  t.is(extension?.code, codes.INVALID_ARGUMENT);
  t.is(extension?.argument, 'burstSize');
  t.true(extension?.message.includes('burstSize must be an integer in 1..1024'), extension?.message);
  const unknown = t.throws(() => resolvePortConfig('iface=eth0', { frame_size: 2048 } as never), { instanceOf: AfxdpError });
  t.is(unknown?.argument, 'frame_size');
});

// Rust sources, read as text: these agree even when the addon is not built
// (test/faults/port.test.ts compares the addon's own exports too).
test('the Rust core throws exactly the codes lib/errors.ts lists (but the facade-only DEVARGS)', (t) => {
  const source = fs.readFileSync(path.join(ROOT, 'crates/afxdp-core/src/error.rs'), 'utf8');
  const asStr = source.slice(source.indexOf('pub fn as_str'));
  const rust = [...new Set([...asStr.slice(0, asStr.indexOf('\n    }\n')).matchAll(/"(ERR_AFXDP_[A-Z_]+)"/g)].map((m) => m[1]))];
  t.true(rust.length > 10, 'Code::as_str was found');
  t.deepEqual(rust.sort(), Object.values(codes).filter((c) => c !== codes.DEVARGS).sort());
});

test('the limits in lib/config/limits.ts are the numbers of crates/afxdp-core/src/limits.rs', (t) => {
  const source = fs.readFileSync(path.join(ROOT, 'crates/afxdp-core/src/limits.rs'), 'utf8');
  const rust = (name: string): number => {
    const m = new RegExp(`pub const ${name}: \\w+ = ([^;]+);`).exec(source);
    if (m === null) throw new Error(`${name} not found in limits.rs`);
    const text = m[1]!.replace(/_/g, '');
    const shift = /^\(?1 << (\d+)\)?( - 1)?$/.exec(text);
    if (shift) return 2 ** Number(shift[1]) - (shift[2] ? 1 : 0);
    return Number(text);
  };
  t.is<number, number>(limits.maxQueueId, rust('MAX_QUEUE_ID'));
  t.is<number, number>(limits.maxQueueCount, rust('MAX_QUEUE_COUNT'));
  t.is<number, number>(limits.ringMinSize, rust('RING_MIN_SIZE'));
  t.is<number, number>(limits.ringMaxSize, rust('RING_MAX_SIZE'));
  t.is<number, number>(limits.maxFrameCount, rust('MAX_FRAME_COUNT'));
  t.is<number, number>(limits.maxUmemBytes, rust('MAX_UMEM_BYTES'));
  t.is<number, number>(limits.kernelHeadroom, rust('KERNEL_HEADROOM'));
  t.is<number, number>(limits.minFrameData, rust('MIN_FRAME_DATA'));
  t.is<number, number>(limits.maxBurstSize, rust('MAX_BURST_SIZE'));
});
