// The Device Plugin handshake state machine, driven by scripted replies
// (dp-protocol.md §2, §3, §11, §12). No sockets. Over 600 lines: one case
// per message and quirk of the protocol, sharing the scripted-reply driver.
import test from 'ava';
import { AfxdpError } from '../../lib/errors';
import { pair } from '../helpers/tuple';
import {
  createHandshake,
  FdDisposition,
  HandshakeOptions,
  HandshakeReply,
  HandshakeResult,
  XskRef,
} from '../../lib/dp';

const DP = '/tmp/afxdp_dp/veth1/afxdp.sock';
const enc = new TextEncoder();

function r(text: string, extra: { fd?: boolean; truncated?: boolean; fdsDropped?: number; controlTruncated?: boolean } = {}): HandshakeReply {
  return {
    data: enc.encode(text), hasFd: extra.fd ?? false, truncated: extra.truncated ?? false, fdsDropped: extra.fdsDropped,
    controlTruncated: extra.controlTruncated,
  };
}
const fd = (text: string) => r(text, { fd: true });

interface Trace {
  sent: string[];
  attached: (XskRef | undefined)[];
  dispositions: FdDisposition[];
  socketsPhases: number;
  optionalReceives: number;
  result?: HandshakeResult;
  error?: AfxdpError;
}

/**
 * Runs the machine against `server`, which sees each sent record and returns
 * the replies to feed (in order: a reply may be followed by a second record).
 */
function drive(
  options: Partial<HandshakeOptions>,
  server: (record: string, index: number) => HandshakeReply[],
): Trace {
  const machine = createHandshake({ podName: 'pod-a', interfaces: ['veth1'], dpPath: DP, timeoutMs: 1000, ...options });
  const trace: Trace = { sent: [], attached: [], dispositions: [], socketsPhases: 0, optionalReceives: 0 };
  let pending: HandshakeReply[] = [];
  for (let i = 0; i < 200; i++) {
    const action = machine.next();
    switch (action.type) {
      case 'send':
        trace.sent.push(action.record);
        trace.attached.push(action.attachXsk);
        pending = [...server(action.record, trace.sent.length - 1)];
        break;
      case 'receive': {
        if (action.optional) trace.optionalReceives++;
        const reply = pending.shift() ?? (action.optional ? 'timeout' : 'eof');
        trace.dispositions.push(machine.receive(reply));
        break;
      }
      case 'sockets':
        trace.socketsPhases++;
        machine.socketsReady();
        break;
      case 'done':
        trace.result = action.result;
        return trace;
      case 'failed':
        trace.error = action.error;
        return trace;
    }
  }
  throw new Error('handshake did not end');
}

// A well-behaved Device Plugin (dp-protocol.md §3) with overrides.
function dp(overrides: Record<string, HandshakeReply[]> = {}) {
  return (record: string): HandshakeReply[] => {
    const override = overrides[record];
    if (override !== undefined) return override;
    if (record.startsWith('/connect,')) return [r('/host_ok')];
    if (record === '/version') return [r('0.1')];
    if (record.startsWith('/xsk_map_fd,')) return [fd('/fd_ack')];
    if (record.startsWith('/config_busy_poll,')) return [r('/config_busy_poll_ack')];
    if (record === '/fin') return [r('/fin_ack')];
    return [r('/nak')];
  };
}

function failure(t: import('ava').ExecutionContext, trace: Trace): AfxdpError {
  t.is(trace.result, undefined);
  t.true(trace.error instanceof AfxdpError);
  const e = trace.error!;
  t.is(e.code, 'ERR_AFXDP_DEVICE_PLUGIN');
  t.is(e.path, DP);
  t.true(e.message.includes(DP), 'names dp_path');
  return e;
}

// ----------------------------------------------------------------- success

test('one interface: /connect, /version, /xsk_map_fd, /fin in DPDK format; the fd is kept', (t) => {
  const trace = drive({}, dp());
  t.deepEqual(trace.sent, ['/connect,pod-a', '/version', '/xsk_map_fd,veth1', '/fin']);
  t.deepEqual(trace.dispositions, [{ fd: 'none' }, { fd: 'none' }, { fd: 'keep', map: 0 }, { fd: 'none' }]);
  t.deepEqual(trace.attached, [undefined, undefined, undefined, undefined]);
  t.is(trace.socketsPhases, 0);
  t.deepEqual(trace.result, { version: '0.1', maps: ['veth1'], busyPoll: [], notes: [] });
});

test('two interfaces in one session: one fd each, in order', (t) => {
  const trace = drive({ interfaces: ['veth1', 'veth3'] }, dp());
  t.deepEqual(trace.sent, ['/connect,pod-a', '/version', '/xsk_map_fd,veth1', '/xsk_map_fd,veth3', '/fin']);
  t.deepEqual(trace.dispositions.filter((d) => d.fd === 'keep'), [{ fd: 'keep', map: 0 }, { fd: 'keep', map: 1 }]);
  t.deepEqual(trace.result!.maps, ['veth1', 'veth3']);
});

test('the same interface twice (two ports on one netdev): two requests, two fds', (t) => {
  const trace = drive({ interfaces: ['veth1', 'veth1'] }, dp());
  t.deepEqual(trace.sent.filter((s) => s.startsWith('/xsk')), ['/xsk_map_fd,veth1', '/xsk_map_fd,veth1']);
  t.is(trace.dispositions.filter((d) => d.fd === 'keep').length, 2);
});

test('CNDP quirks: /fd_ack,<n> and trailing NULs are accepted', (t) => {
  const trace = drive({}, dp({
    '/connect,pod-a': [r('/host_ok\0')],
    '/version': [r('0.1\0\0')],
    '/xsk_map_fd,veth1': [fd('/fd_ack,7\0')],
    '/fin': [r('/fin_ack\0')],
  }));
  t.truthy(trace.result);
  t.deepEqual(trace.dispositions[2], { fd: 'keep', map: 0 });
});

test('busy poll: a sockets pause, then one /config_busy_poll per queue with that XSK attached, then /fin', (t) => {
  const trace = drive({ interfaces: ['veth1', 'veth3'], busyPoll: { timeoutUs: 20, budget: [64, 8], queues: [2, 1] } }, dp());
  t.is(trace.socketsPhases, 1);
  t.deepEqual(trace.sent, [
    '/connect,pod-a', '/version', '/xsk_map_fd,veth1', '/xsk_map_fd,veth3',
    '/config_busy_poll,20,64', '/config_busy_poll,20,64', '/config_busy_poll,20,8', '/fin',
  ]);
  t.deepEqual(trace.attached.slice(4), [{ map: 0, queue: 0 }, { map: 0, queue: 1 }, { map: 1, queue: 0 }, undefined]);
  t.deepEqual(trace.result!.busyPoll, [
    { map: 0, queue: 0, enabled: true }, { map: 0, queue: 1, enabled: true }, { map: 1, queue: 0, enabled: true },
  ]);
});

test('busy poll: the sockets pause comes after every fd, and socketsReady() is refused elsewhere', (t) => {
  const machine = createHandshake({ podName: 'p', interfaces: ['veth1'], dpPath: DP, busyPoll: { timeoutUs: 20, budget: 64, queues: 1 } });
  t.throws(() => machine.socketsReady());
  t.throws(() => machine.receive(r('/host_ok')));
  const order: string[] = [];
  const replies = [r('/host_ok'), r('0.1'), fd('/fd_ack')];
  for (;;) {
    const a = machine.next();
    order.push(a.type);
    if (a.type === 'receive') machine.receive(replies.shift()!);
    if (a.type === 'sockets') break;
  }
  t.deepEqual(order, ['send', 'receive', 'send', 'receive', 'send', 'receive', 'sockets']);
  t.deepEqual(machine.next(), { type: 'sockets' }, 'stays paused until socketsReady()');
});

test('busy poll nak is not fatal; the Device Plugin closing afterwards ends the session as a success', (t) => {
  const trace = drive({ busyPoll: { timeoutUs: 20, budget: 64, queues: 2 } }, dp({
    '/config_busy_poll,20,64': [r('/config_busy_poll_nak')],
  }));
  // Our dp() answers every busy-poll request with nak and /fin with /fin_ack.
  t.deepEqual(trace.result!.busyPoll.map((o) => o.enabled), [false, false]);
  t.regex(trace.result!.busyPoll[0]!.reason!, /busy polling refused by the Device Plugin/);

  // The real DP closes after a failed setsockopt: EOF (or EPIPE on send) at the next step.
  let closed = false;
  const trace2 = drive({ busyPoll: { timeoutUs: 20, budget: 64, queues: 2 } }, (record) => {
    if (closed) return [];
    if (record.startsWith('/config_busy_poll')) {
      closed = true;
      return [r('/config_busy_poll_nak')];
    }
    return dp()(record);
  });
  t.truthy(trace2.result, trace2.error?.message);
  t.deepEqual(trace2.sent.slice(-2), ['/config_busy_poll,20,64', '/config_busy_poll,20,64']);
  const [q0, q1] = pair(trace2.result!.busyPoll);
  t.false(q0.enabled);
  t.regex(q0.reason!, /refused by the Device Plugin/);
  t.false(q1.enabled);
  t.regex(q1.reason!, /not requested: the Device Plugin ended the session after refusing busy polling on queue 0 of "veth1"/);
  t.regex(trace2.result!.notes.join('\n'), /closed the session after refusing busy polling/);

  // Also when the close shows at /fin.
  let closed3 = false;
  const trace3 = drive({ busyPoll: { timeoutUs: 20, budget: 64, queues: 1 } }, (record) => {
    if (closed3) return [];
    if (record.startsWith('/config_busy_poll')) {
      closed3 = true;
      return [r('/config_busy_poll_nak')];
    }
    return dp()(record);
  });
  t.truthy(trace3.result);
  t.is(trace3.result!.busyPoll.length, 1);
});

test('busy poll: a Device Plugin without /config_busy_poll (/nak) is a refusal, not a failure', (t) => {
  const trace = drive({ busyPoll: { timeoutUs: 50, budget: 8, queues: 1 } }, dp({ '/config_busy_poll,50,8': [r('/nak')] }));
  t.truthy(trace.result);
  t.false(trace.result!.busyPoll[0]!.enabled);
  t.regex(trace.result!.busyPoll[0]!.reason!, /does not support \/config_busy_poll/);
});

test('busy poll on zero queues goes straight to /fin', (t) => {
  const trace = drive({ busyPoll: { timeoutUs: 20, budget: 64, queues: 0 } }, dp());
  t.is(trace.socketsPhases, 1);
  t.deepEqual(trace.sent.slice(-1), ['/fin']);
  t.deepEqual(trace.result!.busyPoll, []);
});

test('an fd on a reply other than /fd_ack is handed back for closing and noted', (t) => {
  const trace = drive({}, dp({ '/connect,pod-a': [fd('/host_ok')], '/fin': [fd('/fin_ack')] }));
  t.truthy(trace.result);
  t.deepEqual(trace.dispositions[0], { fd: 'close' });
  t.deepEqual(trace.dispositions[3], { fd: 'close' });
  t.is(trace.result!.notes.length, 2);
  t.regex(trace.result!.notes[0]!, /sent a file descriptor with "\/host_ok".*afxdp closed it/);
});

// ----------------------------------------------------------------- failures

test('/host_nak: pod not found, with the pod name, the resource and the podName fix', (t) => {
  const trace = drive({ podName: 'web-0' }, dp({ '/connect,web-0': [r('/host_nak')] }));
  const e = failure(t, trace);
  t.is(e.message,
    `Device Plugin handshake on ${DP} failed at step /connect (pod "web-0"): the Device Plugin answered "/host_nak": ` +
    'it did not find pod "web-0" with this device; check the pod name (podName option; DPDK sends the host name) ' +
    'and that the pod requested the afxdp/<pool> resource that this device belongs to');
  t.deepEqual(trace.sent, ['/connect,web-0', '/fin'], 'ends the session with /fin after the nak');
});

test('after every nak the session still ends with /fin, and the nak is the error whatever /fin gets', (t) => {
  const naks: [Record<string, HandshakeReply[]>, string, RegExp][] = [
    [{ '/connect,pod-a': [r('/host_nak')] }, '/connect,pod-a', /answered "\/host_nak"/],
    [{ '/version': [r('/nak')] }, '/version', /answered "\/nak": it does not know the \/version request/],
    [{ '/xsk_map_fd,veth1': [r('/fd_nak')] }, '/xsk_map_fd,veth1', /answered "\/fd_nak"/],
    [{ '/xsk_map_fd,veth1': [r('/nak')] }, '/xsk_map_fd,veth1', /rejected "\/xsk_map_fd,veth1" as malformed/],
    [{ '/connect,pod-a': [r('/nak')] }, '/connect,pod-a', /expected "\/host_ok", but the Device Plugin answered "\/nak"/],
  ];
  for (const [overrides, last, pattern] of naks) {
    for (const finReply of [[r('/fin_ack')], ['eof' as const], ['timeout' as const], [fd('/nak')]]) {
      const trace = drive({}, dp({ ...overrides, '/fin': finReply }));
      const e = failure(t, trace);
      t.regex(e.message, pattern);
      t.is(trace.sent.at(-2), last);
      t.is(trace.sent.at(-1), '/fin');
      t.is(trace.optionalReceives, 1, 'the /fin_ack wait is short (optional)');
      const first = finReply[0];
      if (first !== undefined && first !== 'eof' && first !== 'timeout' && first.hasFd) t.deepEqual(trace.dispositions.at(-1), { fd: 'close' });
    }
  }
  // No /fin after EOF, a timeout, /error or garbage: the session is over or not the plugin's.
  const endings: Record<string, HandshakeReply[]>[] = [{ '/version': ['eof'] }, { '/version': ['timeout'] }, { '/version': [r('x\u0001')] },
    { '/connect,pod-a': [r('/error'), r('/host_nak')] }];
  for (const overrides of endings) {
    const trace = drive({}, dp(overrides));
    failure(t, trace);
    t.not(trace.sent.at(-1), '/fin');
  }
});

test('the /fin after a nak is optional: a driver that cannot send it reports the nak', (t) => {
  const machine = createHandshake({ podName: 'pod-a', interfaces: ['veth1'], dpPath: DP });
  machine.next();
  machine.receive(r('/host_nak'));
  const fin = machine.next();
  t.like(fin, { type: 'send', record: '/fin', optional: true });
  machine.receive('eof');
  const end = machine.next();
  t.is(end.type, 'failed');
  t.regex((end as { error: Error }).error.message, /"\/host_nak"/);
});

test('/host_nak with the host name as pod name says so', (t) => {
  const e = failure(t, drive({ podNameFrom: 'hostname' }, dp({ '/connect,pod-a': [r('/host_nak')] })));
  t.regex(e.message, /afxdp sent the host name, as DPDK does; pass podName if it differs from the pod name/);
});

test('/error then /host_nak: one error about the pod-resources API, both records consumed', (t) => {
  const trace = drive({}, dp({ '/connect,pod-a': [r('/error'), r('/host_nak')] }));
  const e = failure(t, trace);
  t.is(trace.dispositions.length, 2, 'read both records');
  t.is(trace.optionalReceives, 1);
  t.regex(e.message, /step \/connect \(pod "pod-a"\): the Device Plugin answered "\/error" then "\/host_nak": it could not query kubelet's pod-resources API to validate pod "pod-a"/);
  t.regex(e.message, /\/var\/lib\/kubelet\/pod-resources\/kubelet\.sock/);
});

test('/error alone (EOF or silence after it) is the same error', (t) => {
  for (const second of [[], ['eof' as const], ['timeout' as const]]) {
    const e = failure(t, drive({}, dp({ '/connect,pod-a': [r('/error'), ...second] })));
    t.regex(e.message, /answered "\/error": it could not query kubelet's pod-resources API/);
  }
  const e = failure(t, drive({}, dp({ '/connect,pod-a': [r('/error'), r('/host_ok')] })));
  t.regex(e.message, /answered "\/error" then "\/host_ok": it could not query/);
});

test('EOF right after /connect: one connection per allocation, UdsTimeout', (t) => {
  const e = failure(t, drive({}, dp({ '/connect,pod-a': ['eof'] })));
  t.regex(e.message, /failed at step \/connect \(pod "pod-a"\): the Device Plugin closed the connection without answering "\/connect,pod-a"/);
  t.regex(e.message, /serves one connection per allocation and closes after a timeout \(UdsTimeout, default 30 s/);
  t.regex(e.message, /openPorts\(\)/);
});

test('EOF at later steps names the step', (t) => {
  const cases: [string, RegExp][] = [
    ['/version', /step \/version: the Device Plugin closed the connection after "\/version" without a reply/],
    ['/xsk_map_fd,veth1', /step \/xsk_map_fd \(interface "veth1"\): the Device Plugin closed the connection after "\/xsk_map_fd,veth1"/],
    ['/fin', /step \/fin: the Device Plugin closed the connection after "\/fin"/],
  ];
  for (const [record, pattern] of cases) {
    const e = failure(t, drive({}, dp({ [record]: ['eof'] })));
    t.regex(e.message, pattern);
    t.regex(e.message, /UdsTimeout/);
  }
  const e = failure(t, drive({ busyPoll: { timeoutUs: 20, budget: 64, queues: 1 } }, dp({ '/config_busy_poll,20,64': ['eof'] })));
  t.regex(e.message, /step \/config_busy_poll \(queue 0 of interface "veth1"\): the Device Plugin closed the connection/);
});

test('silence past the timeout at each step', (t) => {
  for (const record of ['/connect,pod-a', '/version', '/xsk_map_fd,veth1', '/fin']) {
    const e = failure(t, drive({ timeoutMs: 1234 }, dp({ [record]: ['timeout'] })));
    t.regex(e.message, /no reply within 1234 ms/);
    t.regex(e.message, /handshakeTimeoutMs/);
  }
});

test('/fd_nak: the interface is not allocated to this pod', (t) => {
  const trace = drive({ interfaces: ['veth9'] }, dp({ '/xsk_map_fd,veth9': [r('/fd_nak')] }));
  const e = failure(t, trace);
  t.regex(e.message, /step \/xsk_map_fd \(interface "veth9"\): the Device Plugin answered "\/fd_nak": interface "veth9" is not one of the devices allocated to this pod \(AFXDP_DEVICES_\*\)/);
  t.regex(e.message, /see the AFXDP_DEVICES_\* environment variables/);
  const e2 = failure(t, drive({ interfaces: ['veth9'], allocatedDevices: ['veth1', 'veth3'] }, dp({ '/xsk_map_fd,veth9': [r('/fd_nak')] })));
  t.regex(e2.message, /the environment \(AFXDP_DEVICES_\*\) lists "veth1", "veth3"/);
});

test('/fd_nak for the second interface: the first fd was kept (the driver closes it on failure)', (t) => {
  const trace = drive({ interfaces: ['veth1', 'veth9'] }, dp({ '/xsk_map_fd,veth9': [r('/fd_nak')] }));
  failure(t, trace);
  t.deepEqual(trace.dispositions.filter((d) => d.fd === 'keep'), [{ fd: 'keep', map: 0 }]);
});

test('/fd_ack without an fd, and with surplus fds', (t) => {
  const e = failure(t, drive({}, dp({ '/xsk_map_fd,veth1': [r('/fd_ack')] })));
  t.regex(e.message, /answered "\/fd_ack" without a file descriptor/);
  const trace = drive({}, dp({ '/xsk_map_fd,veth1': [r('/fd_ack', { fd: true, fdsDropped: 1 })] }));
  const e2 = failure(t, trace);
  t.regex(e2.message, /with 2 file descriptors \(the protocol carries exactly one\); afxdp closed them all/);
  t.deepEqual(trace.dispositions.at(-1), { fd: 'close' });
  // 200 fds sent: 8 fit the control buffer, the rest were cut (MSG_CTRUNC).
  const e3 = failure(t, drive({}, dp({ '/xsk_map_fd,veth1': [r('/fd_ack', { fd: true, fdsDropped: 7, controlTruncated: true })] })));
  t.regex(e3.message, /with more than 8 file descriptors/);
  t.notRegex(e3.message, /with 2 file/);
  const e4 = failure(t, drive({}, dp({ '/xsk_map_fd,veth1': [r('/fd_ack', { fd: true, fdsDropped: 0, controlTruncated: true })] })));
  t.regex(e4.message, /with more than one file descriptor \(/);
});

test('an fd on a failing reply is handed back for closing and mentioned', (t) => {
  const trace = drive({}, dp({ '/connect,pod-a': [fd('/host_nak')] }));
  const e = failure(t, trace);
  t.deepEqual(trace.dispositions, [{ fd: 'close' }, { fd: 'none' }], 'the fd of /host_nak closed; then /fin_ack');
  t.regex(e.message, /"\/host_nak" \(a file descriptor came with it; afxdp closed it\)/);
  const trace2 = drive({}, dp({ '/version': [fd('0.2')] }));
  failure(t, trace2);
  t.deepEqual(trace2.dispositions.at(-1), { fd: 'close' });
});

test('/nak: a malformed request or a protocol mismatch', (t) => {
  const e = failure(t, drive({}, dp({ '/xsk_map_fd,veth1': [r('/nak')] })));
  t.regex(e.message, /answered "\/nak": it rejected "\/xsk_map_fd,veth1" as malformed; afxdp and this Device Plugin disagree on the protocol/);
  const e2 = failure(t, drive({}, dp({ '/version': [r('/nak')] })));
  t.regex(e2.message, /it does not know the \/version request/);
  const e3 = failure(t, drive({}, dp({ '/connect,pod-a': [r('/nak')] })));
  t.regex(e3.message, /expected "\/host_ok", but the Device Plugin answered "\/nak"; afxdp and this Device Plugin disagree/);
});

test('version other than 0.1', (t) => {
  const e = failure(t, drive({}, dp({ '/version': [r('0.2')] })));
  t.regex(e.message, /step \/version: the Device Plugin speaks handshake version "0.2"; afxdp speaks 0.1/);
  const e2 = failure(t, drive({}, dp({ '/version': [r('/host_ok')] })));
  t.regex(e2.message, /expected "0.1", but the Device Plugin answered "\/host_ok"/);
});

test('exact comparison: no prefix or suffix tricks', (t) => {
  const cases: [string, string][] = [
    ['/connect,pod-a', '/host_okay'],
    ['/connect,pod-a', '/host_ok\n'],
    ['/connect,pod-a', ' /host_ok'],
    ['/connect,pod-a', '/host_o'],
    ['/version', '0.1.0'],
    ['/version', '0.10'],
    ['/xsk_map_fd,veth1', '/fd_ackx'],
    ['/xsk_map_fd,veth1', '/fd_ack,'],
    ['/xsk_map_fd,veth1', '/fd_ack,12a'],
    ['/fin', '/fin_ack2'],
    ['/fin', '/fin'],
  ];
  for (const [record, reply] of cases) {
    const trace = drive({}, dp({ [record]: [record.startsWith('/xsk') ? fd(reply) : r(reply)] }));
    t.truthy(trace.error, `${JSON.stringify(reply)} must be refused`);
    t.is(trace.error!.code, 'ERR_AFXDP_DEVICE_PLUGIN');
  }
});

test('unexpected replies are quoted with escapes', (t) => {
  const e = failure(t, drive({}, dp({ '/fin': [r('/fin_ack\n')] })));
  t.regex(e.message, /step \/fin: the reply is not a text record: "\/fin_ack\\u000A"/);
  t.regex(e.message, /check that dp_path is the socket of the AF_XDP Device Plugin/);
  const e2 = failure(t, drive({}, dp({ '/connect,pod-a': [{ data: new Uint8Array([0xff, 0x00, 0x41]), hasFd: false, truncated: false }] })));
  t.regex(e2.message, /the reply is not a text record: 3 bytes that are not UTF-8 \(hex ff 00 41\)/);
  const e3 = failure(t, drive({}, dp({ '/connect,pod-a': [r('HTTP/1.1 400 Bad Request')] })));
  t.regex(e3.message, /expected "\/host_ok", but the Device Plugin answered "HTTP\/1.1 400 Bad Request"; check that dp_path is the socket/);
});

test('a truncated (over-long) reply', (t) => {
  const e = failure(t, drive({}, dp({ '/connect,pod-a': [r('/host_ok'.padEnd(128, 'x'), { truncated: true })] })));
  t.regex(e.message, /the reply is longer than 128 bytes; it starts "\/host_okxx/);
});

test('a wrong reply at /fin fails', (t) => {
  const e = failure(t, drive({}, dp({ '/fin': [r('/nak')] })));
  t.regex(e.message, /step \/fin: expected "\/fin_ack", but the Device Plugin answered "\/nak"/);
});

test('after failing, the machine stays failed', (t) => {
  const machine = createHandshake({ podName: 'p', interfaces: ['veth1'], dpPath: DP });
  machine.next();
  machine.receive('eof');
  const a = machine.next();
  t.is(a.type, 'failed');
  t.deepEqual(machine.next(), a, 'stable');
  t.throws(() => machine.receive(r('/host_ok')));
});

// ----------------------------------------------------------------- options

test('pod names: 55 bytes fit the 64-byte record, 56 do not; commas and whitespace are refused', (t) => {
  t.notThrows(() => createHandshake({ podName: 'a'.repeat(55), interfaces: ['veth1'], dpPath: DP }));
  const long = t.throws(() => createHandshake({ podName: 'a'.repeat(56), interfaces: ['veth1'], dpPath: DP }), { instanceOf: AfxdpError })!;
  t.is(long.code, 'ERR_AFXDP_INVALID_ARGUMENT');
  t.regex(long.message, /podName "a{56}" is 56 bytes; "\/connect,<name>" must fit the Device Plugin's 64-byte record, so the name may have at most 55 bytes/);
  const host = t.throws(() => createHandshake({ podName: 'h'.repeat(60), podNameFrom: 'hostname', interfaces: ['veth1'], dpPath: DP }))!;
  t.regex(host.message, /the host name .* pass the pod name with the podName option/);
  for (const bad of ['', 'a,b', 'a b', 'a\tb', 'pöd', 'a\u0000']) {
    const e = t.throws(() => createHandshake({ podName: bad, interfaces: ['veth1'], dpPath: DP }), { instanceOf: AfxdpError })!;
    t.is(e.argument, 'podName');
  }
});

test('interfaces and busy poll parameters are checked', (t) => {
  const base = { podName: 'p', dpPath: DP };
  t.throws(() => createHandshake({ ...base, interfaces: [] }), { instanceOf: AfxdpError });
  t.throws(() => createHandshake({ ...base, interfaces: ['a,b'] }), { instanceOf: AfxdpError });
  t.throws(() => createHandshake({ ...base, interfaces: ['x'.repeat(60)] }), { instanceOf: AfxdpError });
  t.throws(() => createHandshake({ ...base, interfaces: ['a'], busyPoll: { timeoutUs: -1, budget: 1, queues: 1 } }));
  t.throws(() => createHandshake({ ...base, interfaces: ['a'], busyPoll: { timeoutUs: 1, budget: 70000, queues: 1 } }));
  t.throws(() => createHandshake({ ...base, interfaces: ['a', 'b'], busyPoll: { timeoutUs: 1, budget: 1, queues: [1] } }));
  t.throws(() => createHandshake({ ...base, interfaces: ['a'], dpPath: '' }));
});

// ----------------------------------------------------------------- fuzz

// Deterministic PRNG (mulberry32).
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz: random replies end in done or an ERR_AFXDP_DEVICE_PLUGIN failure; only /fd_ack fds are kept', (t) => {
  const known = ['/host_ok', '/host_nak', '/error', '0.1', '0.2', '/fd_ack', '/fd_ack,3', '/fd_nak', '/config_busy_poll_ack',
    '/config_busy_poll_nak', '/fin_ack', '/nak', '', '/host_ok\0', '/fd_ack\0\0', '/fin_ack\n', 'é', '/version'];
  let done = 0;
  let failed = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const rand = prng(seed);
    const pick = (): HandshakeReply => {
      const k = rand();
      if (k < 0.06) return 'eof';
      if (k < 0.1) return 'timeout';
      const hasFd = rand() < 0.4;
      if (k < 0.2) {
        const bytes = new Uint8Array(Math.floor(rand() * 140));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
        return { data: bytes, hasFd, truncated: bytes.length > 128 || rand() < 0.05, fdsDropped: rand() < 0.05 ? 1 : 0 };
      }
      return { data: enc.encode(known[Math.floor(rand() * known.length)]), hasFd, truncated: rand() < 0.03 };
    };
    // A server that mostly answers right, so deep states are reached.
    const honest = dp();
    const busyPoll = rand() < 0.5 ? { timeoutUs: 20, budget: 64, queues: Math.floor(rand() * 3) } : undefined;
    const interfaces = rand() < 0.5 ? ['veth1'] : ['veth1', 'veth3'];
    const machine = createHandshake({ podName: 'p', interfaces, dpPath: DP, busyPoll });
    let steps = 0;
    let lastSent = '';
    const replies: HandshakeReply[] = [];
    for (;;) {
      t.true(++steps < 100, 'bounded');
      const action = machine.next();
      if (action.type === 'send') {
        lastSent = action.record;
        replies.length = 0;
        replies.push(...(rand() < 0.8 ? honest(lastSent) : [pick()]));
        if (rand() < 0.1) replies.push(pick());
      } else if (action.type === 'receive') {
        const reply = replies.shift() ?? (rand() < 0.5 ? 'eof' : pick());
        let disposition: FdDisposition | undefined;
        t.notThrows(() => {
          disposition = machine.receive(reply);
        });
        const hasFd = typeof reply === 'object' && reply.hasFd;
        if (!hasFd) t.not(disposition!.fd, 'close');
        if (disposition!.fd === 'keep') {
          t.true(hasFd);
          t.true(lastSent.startsWith('/xsk_map_fd,'));
        }
        if (hasFd) t.not(disposition!.fd, 'none', 'an fd is never ignored');
      } else if (action.type === 'sockets') {
        machine.socketsReady();
      } else if (action.type === 'done') {
        done++;
        t.deepEqual(action.result.maps, interfaces);
        break;
      } else {
        failed++;
        t.true(action.error instanceof AfxdpError);
        t.is(action.error.code, 'ERR_AFXDP_DEVICE_PLUGIN');
        t.true(action.error.message.includes(DP));
        t.false(/[\n\r\0]/.test(action.error.message), 'no raw control characters in messages');
        break;
      }
    }
  }
  t.true(done > 100 && failed > 100, `done ${done}, failed ${failed}`);
});

// ----------------------------------------------------------------- driver (fake transport)

import os from 'node:os';
import { DpSession, fetchXskMaps } from '../../lib/dp';
import type { NativeDpConnection, NativeDpRecord, NativePort } from '../../lib/native';

class FakeFd {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

type Scripted = { text: string; fd?: boolean } | 'eof' | 'timeout' | 'slow-timeout';

interface FakeServer {
  conn: NativeDpConnection;
  sent: { record: string; port?: NativePort; queue?: number }[];
  waits: number[];
  fds: FakeFd[];
  closed: boolean;
}

function fakeServer(answer: (record: string) => Scripted[]): FakeServer {
  const queue: Scripted[] = [];
  let eof = false;
  const server: FakeServer = {
    sent: [],
    waits: [],
    fds: [],
    closed: false,
    conn: {
      send(record: Buffer) {
        server.conn.sendWithSocket(record, undefined as unknown as NativePort, undefined as unknown as number);
      },
      sendWithSocket(record: Buffer, port: NativePort, q: number) {
        if (eof) throw Object.assign(new Error('sending failed: the peer closed the connection'), { code: 'ERR_AFXDP_DEVICE_PLUGIN' });
        server.sent.push({ record: record.toString('latin1'), port, queue: q });
        // 'eof' in an answer: the server closes right after the records before it.
        for (const item of answer(record.toString('latin1'))) {
          if (item === 'eof') eof = true;
          else queue.push(item);
        }
      },
      recv(timeoutMs: number, limit: number): NativeDpRecord | null {
        t0.is(limit, 128);
        server.waits.push(timeoutMs);
        const next = queue.shift() ?? (eof ? 'eof' : 'timeout');
        if (next === 'eof') return null;
        if (next === 'timeout') {
          throw Object.assign(new Error(`no record within ${timeoutMs} ms`), { code: 'ERR_AFXDP_DEVICE_PLUGIN', errno: 110 });
        }
        if (next === 'slow-timeout') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, timeoutMs);
          throw Object.assign(new Error('no record'), { code: 'ERR_AFXDP_DEVICE_PLUGIN' });
        }
        const fd = next.fd ? new FakeFd() : null;
        if (fd) server.fds.push(fd);
        return { data: Buffer.from(next.text, 'latin1'), fd, truncated: false, fdsDropped: 0 };
      },
      close() {
        server.closed = true;
      },
    },
  };
  return server;
}
// recv() asserts through this (set per test).
let t0: { is(a: unknown, b: unknown): void } = { is() {} };

function dpScript(overrides: Record<string, Scripted[]> = {}) {
  return (record: string): Scripted[] => {
    const override = overrides[record];
    if (override !== undefined) return override;
    if (record.startsWith('/connect,')) return [{ text: '/host_ok' }];
    if (record === '/version') return [{ text: '0.1' }];
    if (record.startsWith('/xsk_map_fd,')) return [{ text: '/fd_ack', fd: true }];
    if (record.startsWith('/config_busy_poll,')) return [{ text: '/config_busy_poll_ack' }];
    if (record === '/fin') return [{ text: '/fin_ack' }];
    return [{ text: '/nak' }];
  };
}

test.serial('driver: fetchXskMaps returns the kept fds, closes the others and the connection', async (t) => {
  t0 = t;
  const server = fakeServer(dpScript({ '/connect,web-0': [{ text: '/host_ok', fd: true }] }));
  const { maps, result } = await fetchXskMaps({
    dpPath: DP, podName: 'web-0', interfaces: ['veth1', 'veth3'], timeoutMs: 500, connect: (path, ms) => {
      t.is(path, DP);
      t.is(ms, 500);
      return server.conn;
    },
  });
  t.deepEqual(server.sent.map((s) => s.record), ['/connect,web-0', '/version', '/xsk_map_fd,veth1', '/xsk_map_fd,veth3', '/fin']);
  t.is(maps.length, 2);
  t.is(server.fds.length, 3);
  t.true(server.fds[0]!.closed, 'the fd that came with /host_ok was closed');
  t.is(maps[0], server.fds[1] as never);
  t.is(maps[1], server.fds[2] as never);
  t.false(server.fds[1]!.closed);
  t.true(server.closed);
  t.deepEqual(result.maps, ['veth1', 'veth3']);
  t.is(result.notes.length, 1);
  t.true(server.waits.every((w) => w === 500));
});

test.serial('driver: the pod name defaults to the host name', async (t) => {
  t0 = t;
  const host = os.hostname();
  const server = fakeServer(dpScript());
  const valid = /^[\x21-\x7e]{1,55}$/.test(host) && !host.includes(',');
  if (!valid) {
    await t.throwsAsync(fetchXskMaps({ dpPath: DP, interfaces: ['veth1'], connect: () => server.conn }), { message: /host name/ });
    return;
  }
  const { maps } = await fetchXskMaps({ dpPath: DP, interfaces: ['veth1'], connect: () => server.conn });
  t.is(server.sent[0]!.record, `/connect,${host}`);
  for (const m of maps) m.close();
});

test.serial('driver: a failure closes every fd received so far and the connection', async (t) => {
  t0 = t;
  const server = fakeServer(dpScript({ '/xsk_map_fd,veth9': [{ text: '/fd_nak', fd: true }] }));
  const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1', 'veth9'], allocatedDevices: ['veth1'], connect: () => server.conn }), { instanceOf: AfxdpError });
  t.is(e!.code, 'ERR_AFXDP_DEVICE_PLUGIN');
  t.regex(e!.message, /interface "veth9" is not one of the devices allocated to this pod.*lists "veth1"/);
  t.is(server.fds.length, 2);
  t.true(server.fds.every((fd) => fd.closed));
  t.true(server.closed);
});

test.serial('driver: busy poll sends each XSK, survives the Device Plugin closing after a nak', async (t) => {
  t0 = t;
  let naks = 0;
  const server = fakeServer(dpScript({ '/config_busy_poll,20,64': [{ text: '/config_busy_poll_nak' }, 'eof'] }));
  const session = await DpSession.start({
    dpPath: DP, podName: 'p', interfaces: ['veth1'], busyPoll: { timeoutUs: 20, budget: 64, queues: 2 }, connect: () => server.conn,
  });
  try {
    t.deepEqual(server.sent.map((s) => s.record), ['/connect,p', '/version', '/xsk_map_fd,veth1'], 'paused before busy poll');
    const fakePort = {} as NativePort;
    const [map] = session.takeMaps();
    map!.close(); // one interface, one map
    const result = await session.finish((xsk) => ({ port: fakePort, queue: xsk.queue }));
    naks = result.busyPoll.filter((o) => !o.enabled).length;
    t.is(server.sent[3]!.port, fakePort);
    t.is(server.sent[3]!.queue, 0);
    t.is(server.sent.length, 4, 'the second request failed to send: the peer had closed');
    t.regex(result.busyPoll[1]!.reason!, /not requested/);
  } finally {
    session.close();
  }
  t.is(naks, 2);
  t.true(server.closed);
});

test.serial('driver: busy poll acknowledged for each socket, then /fin', async (t) => {
  t0 = t;
  const server = fakeServer(dpScript());
  const session = await DpSession.start({
    dpPath: DP, podName: 'p', interfaces: ['veth1'], busyPoll: { timeoutUs: 20, budget: 64, queues: 2 }, connect: () => server.conn,
  });
  const port = {} as NativePort;
  await t.throwsAsync(session.finish(), { instanceOf: AfxdpError });
  const result = await session.finish(({ queue }) => ({ port, queue }));
  session.close();
  t.deepEqual(server.sent.slice(3).map((s) => [s.record, s.queue]), [['/config_busy_poll,20,64', 0], ['/config_busy_poll,20,64', 1], ['/fin', undefined]]);
  t.true(result.busyPoll.every((o) => o.enabled));
  t.true(server.fds[0]!.closed, 'the map fd not taken was closed by close()');
});

test.serial('driver: timeouts (errno or a full wait) become the step\'s timeout error', async (t) => {
  t0 = t;
  for (const kind of ['timeout', 'slow-timeout'] as const) {
    const server = fakeServer(dpScript({ '/version': [kind] }));
    const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], timeoutMs: 30, connect: () => server.conn }));
    t.regex(e!.message, /step \/version: no reply within 30 ms/);
    t.true(server.closed);
  }
});

test.serial('driver: /error waits only briefly for the /host_nak', async (t) => {
  t0 = t;
  const server = fakeServer(dpScript({ '/connect,p': [{ text: '/error' }] }));
  const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], timeoutMs: 60_000, connect: () => server.conn }));
  t.regex(e!.message, /pod-resources API/);
  t.deepEqual(server.waits, [60_000, 1000]);
});

test.serial('driver: transport errors keep their code and gain the dp_path', async (t) => {
  t0 = t;
  const refused = Object.assign(new Error('nothing is listening at /x (connection refused)'), { code: 'ERR_AFXDP_DEVICE_PLUGIN' });
  const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], connect: () => { throw refused; } }), { instanceOf: AfxdpError });
  t.is(e!.code, 'ERR_AFXDP_DEVICE_PLUGIN');
  t.is(e!.path, DP);
  t.regex(e!.message, new RegExp(`connection refused\\) \\(Device Plugin dp_path ${DP.replace(/\//g, '\\/')}\\)`));
});

// ----------------------------------------------------------------- driver: AbortSignal

/** A transport whose recv waits until close() (then rejects as the native one does). */
function hangingServer() {
  const state = { closed: false, sent: [] as string[], pending: 0 };
  let fail: ((err: Error) => void) | undefined;
  const conn: NativeDpConnection = {
    send(record: Buffer) {
      state.sent.push(record.toString('latin1'));
      return Promise.resolve();
    },
    sendWithSocket() {
      return Promise.resolve();
    },
    recv() {
      state.pending++;
      return new Promise<NativeDpRecord | null>((_, reject) => {
        fail = reject;
      });
    },
    close() {
      state.closed = true;
      fail?.(Object.assign(new Error('receiving was cancelled: the connection was closed'), { code: 'ERR_AFXDP_CLOSED' }));
    },
  };
  return { conn, state };
}

test.serial('driver: an abort ends a pending wait at once with an AbortError and closes the connection', async (t) => {
  const { conn, state } = hangingServer();
  const controller = new AbortController();
  const reason = new Error('given up');
  setTimeout(() => controller.abort(reason), 50);
  const t0 = Date.now();
  const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], timeoutMs: 10_000, signal: controller.signal, connect: () => conn }));
  t.true(Date.now() - t0 < 1000, 'not after the 10 s timeout');
  t.is(e!.name, 'AbortError');
  t.is((e as unknown as { code: string }).code, 'ABORT_ERR');
  t.is(e!.cause, reason);
  t.true(state.closed);
  t.deepEqual(state.sent, ['/connect,p']);
});

test.serial('driver: an aborted signal rejects before connecting; an abort during connect closes what connect made', async (t) => {
  let connects = 0;
  const e = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], signal: AbortSignal.abort(), connect: () => {
    connects++;
    return hangingServer().conn;
  } }));
  t.is((e as unknown as { code: string }).code, 'ABORT_ERR');
  t.is(connects, 0);

  const { conn, state } = hangingServer();
  const controller = new AbortController();
  const slowConnect = () => new Promise<NativeDpConnection>((resolve) => setTimeout(() => resolve(conn), 100));
  setTimeout(() => controller.abort(), 20);
  const e2 = await t.throwsAsync(DpSession.start({ dpPath: DP, podName: 'p', interfaces: ['veth1'], signal: controller.signal, connect: slowConnect }));
  t.is((e2 as unknown as { code: string }).code, 'ABORT_ERR');
  t.true(state.closed, 'the connection that arrived after the abort was closed');
  t.deepEqual(state.sent, []);
});

test.serial('driver: an abort between start() and finish() (busy poll) closes the session and its fds', async (t) => {
  t0 = t;
  const server = fakeServer(dpScript());
  const controller = new AbortController();
  const session = await DpSession.start({
    dpPath: DP, podName: 'p', interfaces: ['veth1'], busyPoll: { timeoutUs: 20, budget: 64, queues: 1 }, signal: controller.signal, connect: () => server.conn,
  });
  controller.abort();
  t.true(server.closed, 'the abort closed the connection');
  t.true(server.fds.every((fd) => fd.closed), 'and the map fd not taken over');
  const e = await t.throwsAsync(session.finish(() => ({ port: {} as NativePort, queue: 0 })));
  t.is((e as unknown as { code: string }).code, 'ABORT_ERR');
});
