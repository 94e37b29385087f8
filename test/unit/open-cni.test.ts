// Pure parts of use_cni in openPort/openPorts: grouping ports by Device
// Plugin socket, one pod name per session, busy-poll status per port.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolvePortConfig } from '../../lib/config/port-config';
import { cniBusyPoll, groupBySocket, sessionPodName } from '../../lib/port/open';
import { AfxdpError } from '../../lib/errors';
import type { HandshakeResult } from '../../lib/dp';

test('openPorts groups use_cni ports by socket; other ports stand alone', (t) => {
  const configs = [
    'iface=veth1,use_cni=1',
    'iface=veth2',
    'iface=veth1,use_cni=1,start_queue=1',
    'iface=veth3,use_cni=1',
    'iface=veth4,use_pinned_map=1',
    'iface=veth3,use_cni=1,dp_path=/tmp/afxdp_dp/veth1/afxdp.sock',
  ].map((s) => resolvePortConfig(s));
  t.deepEqual(groupBySocket(configs), [[0, 2, 5], [1], [3], [4]]);
});

test('two paths to the same socket file (the Device Plugin mounts it once per netdev) are one group', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-group-'));
  try {
    fs.writeFileSync(path.join(dir, 'sock'), '');
    fs.linkSync(path.join(dir, 'sock'), path.join(dir, 'same'));
    fs.writeFileSync(path.join(dir, 'other'), '');
    const configs = ['sock', 'other', 'same'].map((name, i) =>
      resolvePortConfig({ iface: `veth${i}`, useCni: true, dpPath: path.join(dir, name) }));
    t.deepEqual(groupBySocket(configs), [[0, 2], [1]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('one session sends one pod name', (t) => {
  const a = resolvePortConfig({ iface: 'veth1', useCni: true, podName: 'web-0' });
  const b = resolvePortConfig({ iface: 'veth2', useCni: true });
  const c = resolvePortConfig({ iface: 'veth3', useCni: true, podName: 'web-1' });
  t.is(sessionPodName([a, b]), 'web-0');
  t.is(sessionPodName([b]), undefined);
  const e = t.throws(() => sessionPodName([a, c]), { instanceOf: AfxdpError })!;
  t.is(e.code, 'ERR_AFXDP_INVALID_ARGUMENT');
  t.regex(e.message, /different podName values \("web-0", "web-1"\)/);
});

test('busy poll status of a use_cni port', (t) => {
  const result = (busyPoll: HandshakeResult['busyPoll']): HandshakeResult => ({ version: '0.1', maps: ['a', 'b'], busyPoll, notes: [] });
  const off = resolvePortConfig('iface=veth1,use_cni=1');
  const s0 = cniBusyPoll(result([]), 0, off);
  t.false(s0.enabled);
  t.regex(s0.reason!, /busy_budget is 0 \(the default with use_cni\); set busy_budget/);

  const on = resolvePortConfig('iface=veth1,use_cni=1,busy_budget=64,queue_count=2');
  t.deepEqual(cniBusyPoll(result([{ map: 1, queue: 0, enabled: true }, { map: 1, queue: 1, enabled: true }]), 1, on),
    { enabled: true, timeoutUs: 20, budget: 64, via: 'device-plugin' });

  const partly = cniBusyPoll(result([{ map: 0, queue: 0, enabled: true }, { map: 0, queue: 1, enabled: false, reason: 'busy polling refused by the Device Plugin' }]), 0, on);
  t.false(partly.enabled);
  t.is(partly.reason, 'queue 1: busy polling refused by the Device Plugin (on for queue 0 only)');
});
