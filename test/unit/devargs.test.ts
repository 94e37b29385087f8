import test from 'ava';
import type { ExecutionContext } from 'ava';

import { AfxdpError, codes, fromNative, isAfxdpErrorCode, quoteInput } from '../../lib/errors';
import { DEVARG_NAMES, MAX_DEVARGS_LENGTH, closestName, parseDevargs } from '../../lib/config/devargs';

// A devargs failure: AfxdpError, code ERR_AFXDP_DEVARGS, message mentioning `includes`.
function throwsDevargs(t: ExecutionContext, spec: string, includes?: string | RegExp, argument?: string): AfxdpError {
  const err = t.throws(() => parseDevargs(spec), { instanceOf: AfxdpError })!;
  t.is(err.code, 'ERR_AFXDP_DEVARGS');
  if (typeof includes === 'string') t.true(err.message.includes(includes), err.message);
  else if (includes) t.regex(err.message, includes);
  if (argument !== undefined) t.is(err.argument, argument);
  return err;
}

// ---------------------------------------------------------------- errors.ts

test('codes: the strings the native core throws, frozen', (t) => {
  t.deepEqual(Object.values(codes).sort(), [
    'ERR_AFXDP_BPF',
    'ERR_AFXDP_CLOSED',
    'ERR_AFXDP_DEVARGS',
    'ERR_AFXDP_DEVICE_PLUGIN',
    'ERR_AFXDP_FRAME_OWNERSHIP',
    'ERR_AFXDP_INVALID_ARGUMENT',
    'ERR_AFXDP_MEMLOCK',
    'ERR_AFXDP_NOT_SUPPORTED',
    'ERR_AFXDP_NO_MEMORY',
    'ERR_AFXDP_NO_SUCH_INTERFACE',
    'ERR_AFXDP_PERMISSION',
    'ERR_AFXDP_QUEUE_BUSY',
    'ERR_AFXDP_QUEUE_OUT_OF_RANGE',
    'ERR_AFXDP_SYSTEM',
    'ERR_AFXDP_TRANSFERRED',
  ]);
  t.true(Object.isFrozen(codes));
  t.true(isAfxdpErrorCode('ERR_AFXDP_QUEUE_BUSY'));
  t.false(isAfxdpErrorCode('ERR_INVALID_ARG_TYPE'));
});

test('AfxdpError: an Error with code, optional errno/argument/path, Node-style header', (t) => {
  const err = new AfxdpError(codes.DEVARGS, 'iface is missing', { argument: 'iface' });
  t.true(err instanceof Error);
  t.is(err.name, 'AfxdpError');
  t.is(err.code, 'ERR_AFXDP_DEVARGS');
  t.is(err.argument, 'iface');
  t.false('errno' in err);
  t.false('path' in err);
  t.is(String(err), 'AfxdpError [ERR_AFXDP_DEVARGS]: iface is missing');
  t.true(err.stack!.startsWith('AfxdpError [ERR_AFXDP_DEVARGS]: iface is missing\n'));
  const sys = new AfxdpError(codes.PERMISSION, 'no', { errno: 1, path: '/tmp/x' });
  t.is(sys.errno, 1);
  t.is(sys.path, '/tmp/x');
});

test('fromNative: an Error whose code is ours becomes an AfxdpError with message, code, errno, cause', (t) => {
  const native = Object.assign(new Error('bind(veth1, queue 0) failed: Device or resource busy'), {
    code: 'ERR_AFXDP_QUEUE_BUSY',
    errno: 16,
  });
  const err = fromNative(native);
  t.true(err instanceof AfxdpError);
  const afxdp = err as AfxdpError;
  t.is(afxdp.code, 'ERR_AFXDP_QUEUE_BUSY');
  t.is(afxdp.message, 'bind(veth1, queue 0) failed: Device or resource busy');
  t.is(afxdp.errno, 16);
  t.is(afxdp.cause, native);
});

test('fromNative: strips the code when the binding prefixed the message with it', (t) => {
  for (const message of ['"ERR_AFXDP_MEMLOCK", raise RLIMIT_MEMLOCK', 'ERR_AFXDP_MEMLOCK: raise RLIMIT_MEMLOCK']) {
    const err = fromNative(Object.assign(new Error(message), { code: 'ERR_AFXDP_MEMLOCK' })) as AfxdpError;
    t.is(err.message, 'raise RLIMIT_MEMLOCK');
  }
});

test('fromNative: other errors and non-errors pass through unchanged', (t) => {
  const plain = new Error('boom');
  const foreign = Object.assign(new Error('x'), { code: 'ENOENT' });
  const ours = new AfxdpError(codes.CLOSED, 'closed');
  t.is(fromNative(plain), plain);
  t.is(fromNative(foreign), foreign);
  t.is(fromNative(ours), ours);
  t.is(fromNative('ERR_AFXDP_BPF'), 'ERR_AFXDP_BPF');
  const lookalike = { code: 'ERR_AFXDP_BPF', message: 'not an Error' };
  t.is(fromNative(lookalike), lookalike);
  t.is(fromNative(undefined), undefined);
});

test('quoteInput: escapes invisible characters and quotes, truncates by code point', (t) => {
  t.is(quoteInput('eth0'), '"eth0"');
  t.is(quoteInput('a\u0000b\n"\\ c'), '"a\\u0000b\\u000A\\"\\\\ c"');
  t.is(quoteInput('\u202Eevil'), '"\\u202Eevil"');
  t.is(quoteInput('\uD800'), '"\\uD800"');
  t.is(quoteInput('🙂🙂🙂', 2), '"🙂🙂"… (6 characters)');
  t.is(quoteInput('x'.repeat(10_000)).length < 100, true);
});

// ------------------------------------------------------- DPDK's seed lines

test('parses the seed line: net_af_xdp0,use_cni=1,iface=<name>', (t) => {
  t.deepEqual(parseDevargs('net_af_xdp0,use_cni=1,iface=ens785f0'), {
    vdevIndex: 0,
    args: { use_cni: '1', iface: 'ens785f0' },
  });
});

test('parses the seed line with dp_path="/tmp/afxdp_dp/<if>/afxdp.sock" (quotes removed)', (t) => {
  t.deepEqual(parseDevargs('net_af_xdp0,use_cni=1,iface=veth1,dp_path="/tmp/afxdp_dp/veth1/afxdp.sock"'), {
    vdevIndex: 0,
    args: { use_cni: '1', iface: 'veth1', dp_path: '/tmp/afxdp_dp/veth1/afxdp.sock' },
  });
});

test('parses the seed line with use_pinned_map=1 and dp_path=".../xsks_map"', (t) => {
  t.deepEqual(parseDevargs('net_af_xdp0,use_pinned_map=1,iface=veth1,dp_path="/tmp/afxdp_dp/veth1/xsks_map"'), {
    vdevIndex: 0,
    args: { use_pinned_map: '1', iface: 'veth1', dp_path: '/tmp/afxdp_dp/veth1/xsks_map' },
  });
});

test('parses the same line after a shell removed the quotes', (t) => {
  t.deepEqual(parseDevargs('net_af_xdp0,use_cni=1,iface=veth1,dp_path=/tmp/afxdp_dp/veth1/afxdp.sock').args, {
    use_cni: '1',
    iface: 'veth1',
    dp_path: '/tmp/afxdp_dp/veth1/afxdp.sock',
  });
});

test('parses every devarg name', (t) => {
  const spec = DEVARG_NAMES.map((name) => `${name}=v`).join(',');
  t.deepEqual(Object.keys(parseDevargs(spec).args), [...DEVARG_NAMES]);
});

// ------------------------------------------------------------ driver name

test('driver: optional; net_af_xdp<N> keeps N as vdevIndex, bare net_af_xdp has none', (t) => {
  t.deepEqual(parseDevargs('iface=eth0'), { args: { iface: 'eth0' } });
  t.deepEqual(parseDevargs('net_af_xdp,iface=eth0'), { args: { iface: 'eth0' } });
  t.is(parseDevargs('net_af_xdp12,iface=eth0').vdevIndex, 12);
  t.deepEqual(parseDevargs('net_af_xdp3'), { vdevIndex: 3, args: {} });
});

test('driver: any other name is an error naming it', (t) => {
  throwsDevargs(t, 'net_pcap0,iface=eth0', '"net_pcap0"');
  throwsDevargs(t, 'eth_af_xdp0,iface=eth0', 'unknown driver "eth_af_xdp0"');
  throwsDevargs(t, 'net_af_xdp0x,iface=eth0', 'unknown driver');
  throwsDevargs(t, 'NET_AF_XDP0,iface=eth0', 'unknown driver');
});

test('driver: must come first', (t) => {
  throwsDevargs(t, 'iface=eth0,net_af_xdp0', 'is not first');
});

test('driver: an index too large for a safe integer is refused', (t) => {
  throwsDevargs(t, `net_af_xdp${'9'.repeat(20)},iface=eth0`, 'too large');
});

// ------------------------------------------------------------- key=value

test('quotes: protect commas and "=" inside a value', (t) => {
  t.is(parseDevargs('iface=eth0,xdp_prog="/opt/a,b=c.o"').args.xdp_prog, '/opt/a,b=c.o');
});

test('quotes: unbalanced, misplaced or single quotes are refused', (t) => {
  throwsDevargs(t, 'iface=eth0,dp_path="/tmp/x', 'not closed');
  throwsDevargs(t, 'iface="eth0', 'not closed');
  throwsDevargs(t, 'iface=eth0,dp_path=/tmp/"x"', 'misplaced double quote', 'dp_path');
  throwsDevargs(t, 'iface=eth0,dp_path="/a"b"', 'not closed');
  throwsDevargs(t, 'iface=eth0,dp_path="/a""b"', 'misplaced double quote', 'dp_path');
  throwsDevargs(t, "iface=eth0,dp_path='/tmp/x'", 'single quotes', 'dp_path');
  throwsDevargs(t, '"iface"=eth0', 'not a valid argument name');
});

test('a value may contain "=": only the first one splits', (t) => {
  t.is(parseDevargs('iface=a=b').args.iface, 'a=b');
});

test('a key without "=" is refused, naming it when it is a devarg', (t) => {
  throwsDevargs(t, 'net_af_xdp0,iface', 'iface has no value', 'iface');
  throwsDevargs(t, 'iface', 'iface has no value', 'iface');
  throwsDevargs(t, 'iface=eth0,bogus', '"bogus" is not a key=value pair');
});

test('an empty key is refused', (t) => {
  throwsDevargs(t, '=', 'no name before "="');
  throwsDevargs(t, 'iface=eth0,=1', 'no name before "="');
});

test('an empty value is refused, naming the devarg', (t) => {
  throwsDevargs(t, 'iface=', 'iface has no value', 'iface');
  throwsDevargs(t, 'iface=eth0,dp_path=""', 'dp_path has no value', 'dp_path');
});

test('duplicate keys are refused (DPDK would silently keep one)', (t) => {
  throwsDevargs(t, 'iface=eth0,start_queue=1,start_queue=2', 'start_queue is given twice', 'start_queue');
});

test('empty pairs are refused: leading, trailing and double commas', (t) => {
  throwsDevargs(t, ',iface=eth0', 'starts with a comma');
  throwsDevargs(t, 'iface=eth0,', 'ends with a comma');
  throwsDevargs(t, 'iface=eth0,,start_queue=1', 'between two commas');
  throwsDevargs(t, ',,');
});

test('spaces around a key are refused (DPDK does not trim them)', (t) => {
  throwsDevargs(t, 'iface=eth0, start_queue=1', 'spaces around', 'start_queue');
});

test('unknown keys list the valid ones and suggest the closest', (t) => {
  const err = throwsDevargs(t, 'iface=eth0,start_qeue=1', 'did you mean start_queue?', 'start_qeue');
  for (const name of DEVARG_NAMES) t.true(err.message.includes(name), name);
  throwsDevargs(t, 'iface=eth0,budget=8', 'did you mean busy_budget?');
  throwsDevargs(t, 'iface=eth0,IFACE=eth1', 'did you mean iface?');
  const far = throwsDevargs(t, 'iface=eth0,completely_unrelated=1', 'valid arguments: iface');
  t.false(far.message.includes('did you mean'));
});

test('retired names say what replaced them', (t) => {
  throwsDevargs(t, 'iface=eth0,queue=1', 'did you mean start_queue? (`queue` was removed in DPDK 19.08)', 'queue');
  throwsDevargs(t, 'iface=eth0,pmd_zero_copy=1', 'removed in DPDK 19.11');
  throwsDevargs(t, 'iface=eth0,use_map_pinning=1', 'did you mean use_pinned_map?');
  throwsDevargs(t, 'iface=eth0,sock=/tmp/afxdp.sock', 'did you mean dp_path?');
});

test('closestName: edit distance or containment, nothing when far', (t) => {
  t.is(closestName('iface', DEVARG_NAMES), 'iface');
  t.is(closestName('quee_count', DEVARG_NAMES), 'queue_count');
  t.is(closestName('pinned', DEVARG_NAMES), 'use_pinned_map');
  t.is(closestName('zzzzzzzz', DEVARG_NAMES), undefined);
  t.is(closestName('', DEVARG_NAMES), undefined);
  t.is(closestName('x'.repeat(500), DEVARG_NAMES), undefined);
});

// ------------------------------------------------------ malformed input

test('empty and whitespace-only specs are refused', (t) => {
  throwsDevargs(t, '', 'empty');
  throwsDevargs(t, '   ', 'empty');
});

test('control characters, NUL, line separators, bidi controls and lone surrogates are refused', (t) => {
  throwsDevargs(t, 'iface=eth0\0', 'U+0000 at offset 10');
  throwsDevargs(t, 'iface=eth0\n', 'U+000A');
  throwsDevargs(t, 'iface=eth\t0', 'U+0009');
  throwsDevargs(t, 'iface=eth0\u007f', 'U+007F');
  throwsDevargs(t, 'iface=eth0\u0085', 'U+0085');
  throwsDevargs(t, 'iface=eth0\u2028', 'U+2028');
  throwsDevargs(t, 'iface=\u202Eeth0', 'U+202E');
  throwsDevargs(t, 'iface=\uD800', 'U+D800');
});

test('the message escapes what it quotes', (t) => {
  const err = throwsDevargs(t, 'iface=eth0\0');
  t.false(err.message.includes('\0'));
  t.true(err.message.includes('"iface=eth0\\u0000"'));
});

test(`specs longer than ${MAX_DEVARGS_LENGTH} characters are refused, and the message stays short`, (t) => {
  const longest = `iface=${'x'.repeat(MAX_DEVARGS_LENGTH - 6)}`;
  t.is(parseDevargs(longest).args.iface!.length, MAX_DEVARGS_LENGTH - 6);
  const err = throwsDevargs(t, `${longest}x`, 'more than the limit of 4096');
  t.true(err.message.length < 300);
  throwsDevargs(t, 'a'.repeat(10_000));
});

test('malformed inputs from the checklist all throw ERR_AFXDP_DEVARGS', (t) => {
  const inputs = [
    '',
    ' ',
    '\t',
    '=',
    '==',
    ',',
    ',,',
    ',=,',
    'a'.repeat(10_000),
    '\0',
    'iface=eth0\0start_queue=1',
    'ü',
    '日本語=1',
    'iface=eth0,ключ=1',
    '🙂',
    'iface=eth0,🙂=1',
    '%',
    '%s%n',
    '"',
    '"""',
    'iface="',
    'iface=eth0,"',
    '\\',
    'net_af_xdp0,',
    'net_af_xdp0,,iface=eth0',
    '__proto__=1',
    'constructor=1',
    'toString=1',
  ];
  for (const input of inputs) {
    const err = t.throws(() => parseDevargs(input), { instanceOf: AfxdpError }, JSON.stringify(input));
    t.is(err?.code, 'ERR_AFXDP_DEVARGS', JSON.stringify(input));
  }
});

test('non-string input is an AfxdpError too', (t) => {
  for (const input of [undefined, null, 42, {}, [], Symbol('x')]) {
    const err = t.throws(() => parseDevargs(input as unknown as string), { instanceOf: AfxdpError });
    t.is(err?.code, 'ERR_AFXDP_DEVARGS');
  }
});

test('the result never inherits keys from Object.prototype', (t) => {
  const { args } = parseDevargs('iface=eth0');
  t.is((args as Record<string, unknown>).toString, Object.prototype.toString);
  t.deepEqual(Object.keys(args), ['iface']);
});

// ------------------------------------------------------------------ fuzz

// mulberry32: small, fast and deterministic, so a failure replays exactly.
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

const FRAGMENTS = [
  ...DEVARG_NAMES,
  'net_af_xdp',
  'net_af_xdp0',
  'queue',
  '=',
  '==',
  ',',
  '"',
  "'",
  ' ',
  '0',
  '1',
  '-1',
  '65536',
  '0x10',
  '/tmp/afxdp_dp/eth0/afxdp.sock',
  'eth0',
  '\0',
  '\n',
  '\u202E',
  '\uD800',
  '\uDC00',
  '🙂',
  'ü',
  '%',
  '\\',
  '[',
  ']',
];

function randomSpec(random: () => number): string {
  const parts = Math.floor(random() * 12);
  let spec = '';
  for (let i = 0; i < parts; i++) {
    if (random() < 0.7) spec += FRAGMENTS[Math.floor(random() * FRAGMENTS.length)];
    else spec += String.fromCharCode(Math.floor(random() * 0x10000));
  }
  if (random() < 0.01) spec = spec.repeat(500);
  return spec;
}

test('fuzz: 5000 random specs either parse or throw ERR_AFXDP_DEVARGS, never anything else', (t) => {
  const random = prng(0x5eed);
  let parsed = 0;
  for (let i = 0; i < 5000; i++) {
    const spec = randomSpec(random);
    try {
      const result = parseDevargs(spec);
      for (const name of Object.keys(result.args)) t.true((DEVARG_NAMES as readonly string[]).includes(name));
      parsed++;
    } catch (err) {
      if (!(err instanceof AfxdpError) || err.code !== 'ERR_AFXDP_DEVARGS') {
        t.fail(`spec ${JSON.stringify(spec)} threw ${String(err)}`);
        return;
      }
    }
  }
  t.log(`${parsed} of 5000 random specs parsed`);
  t.pass();
});
