// The capability classification behind doctor's and the errors' advice for
// the Kubernetes non-root case (lib/caps.ts): pure, from /proc status text.
import test from 'ava';

import {
  boundingOnlyFixes, capabilityHint, classifyCaps, parseProcStatus, PORT_CAPS, type ProcessCaps,
} from '../../lib/caps';

// /proc/self/status lines for a uid and the five capability sets (hex).
function status(uid: number, sets: { inh?: string; prm?: string; eff?: string; bnd: string; amb?: string }, noNewPrivs = 0): string {
  return [
    'Name:\tnode', 'Umask:\t0022', 'State:\tR (running)', `Uid:\t${uid}\t${uid}\t${uid}\t${uid}`, `Gid:\t${uid}\t${uid}\t${uid}\t${uid}`,
    `CapInh:\t${sets.inh ?? '0000000000000000'}`, `CapPrm:\t${sets.prm ?? '0000000000000000'}`,
    `CapEff:\t${sets.eff ?? '0000000000000000'}`, `CapBnd:\t${sets.bnd}`, `CapAmb:\t${sets.amb ?? '0000000000000000'}`,
    `NoNewPrivs:\t${noNewPrivs}`, 'Seccomp:\t2', '',
  ].join('\n');
}

const parsed = (text: string): ProcessCaps => {
  const caps = parseProcStatus(text);
  if (caps === undefined) throw new Error('unparsed');
  return caps;
};

// containerd's default set (0xa80425fb, NET_RAW included) plus IPC_LOCK (14) from capabilities.add.
const K8S_BOUNDING = '00000000a80465fb';

test('parseProcStatus reads the uids, the five sets and NoNewPrivs', (t) => {
  const caps = parsed(status(1000, { bnd: K8S_BOUNDING, amb: '0000000000002000' }, 1));
  t.is(caps.uid, 1000);
  t.is(caps.euid, 1000);
  t.is(caps.capEff, 0n);
  t.is(caps.capBnd, 0xa80465fbn);
  t.is(caps.capAmb, 0x2000n);
  t.true(caps.noNewPrivs);
  t.is(parseProcStatus('Name:\tx\n'), undefined);
  t.is(parseProcStatus(status(0, { bnd: 'zz' })), undefined, 'a set that is not hex');
  t.deepEqual(PORT_CAPS, ['NET_RAW', 'IPC_LOCK']);
});

test('classifyCaps: non-root, CapEff 0, NET_RAW and IPC_LOCK in the bounding set → bounding-only', (t) => {
  t.deepEqual(classifyCaps(parsed(status(1000, { bnd: K8S_BOUNDING }))),
    { case: 'bounding-only', missing: ['NET_RAW', 'IPC_LOCK'], inBounding: ['NET_RAW', 'IPC_LOCK'] });
  // setpriv --bounding-set=-all,+net_raw,+ipc_lock as uid 65534: the same case.
  t.is(classifyCaps(parsed(status(65534, { bnd: '0000000000006000' }))).case, 'bounding-only');
  // Only IPC_LOCK missing (ambient NET_RAW): still the case, for IPC_LOCK alone.
  t.deepEqual(classifyCaps(parsed(status(1000, { bnd: K8S_BOUNDING, eff: '0000000000002000', prm: '0000000000002000', amb: '0000000000002000' }))),
    { case: 'bounding-only', missing: ['IPC_LOCK'], inBounding: ['IPC_LOCK'] });
});

test('classifyCaps: not the case when the capabilities are effective, absent from the bounding set, or the uid is 0', (t) => {
  t.is(classifyCaps(parsed(status(1000, { bnd: K8S_BOUNDING, eff: '0000000000006000', prm: '0000000000006000' }))).case, 'ok');
  t.is(classifyCaps(parsed(status(0, { bnd: '000001ffffffffff', eff: '000001ffffffffff', prm: '000001ffffffffff' }))).case, 'ok');
  // capabilities.add lacks IPC_LOCK: runAsUser 0 or setcap would not help with it.
  t.deepEqual(classifyCaps(parsed(status(1000, { bnd: '0000000000002000' }))),
    { case: 'missing', missing: ['NET_RAW', 'IPC_LOCK'], inBounding: ['NET_RAW'] });
  // Root with the capabilities dropped from CapEff (capsh --drop): not the Kubernetes non-root case.
  t.is(classifyCaps(parsed(status(0, { bnd: K8S_BOUNDING }))).case, 'missing');
  // The needed set is a parameter (e.g. CAP_BPF for a pinned map before 5.19).
  t.is(classifyCaps(parsed(status(1000, { bnd: K8S_BOUNDING })), ['BPF']).case, 'missing');
});

test('boundingOnlyFixes: the three fixes, in order; NoNewPrivs is called out for setcap', (t) => {
  const fixes = boundingOnlyFixes(parsed(status(1000, { bnd: K8S_BOUNDING })));
  t.is(fixes.length, 3);
  t.regex(fixes[0]!, /runAsUser: 0, capabilities: \{add: \[NET_RAW, IPC_LOCK\]\}/);
  t.regex(fixes[0]!, /without privileged/);
  t.true(fixes[1]!.includes('setcap cap_net_raw,cap_ipc_lock+ep $(readlink -f $(which node))'));
  t.notRegex(fixes[1]!, /NoNewPrivs is 1/);
  t.regex(fixes[2]!, /Device Plugin pool's "uid" to this uid \(1000\)/);
  t.regex(boundingOnlyFixes(parsed(status(1000, { bnd: K8S_BOUNDING }, 1)))[1]!, /NoNewPrivs is 1/);
});

test('capabilityHint: the case and numbered fixes for bounding-only, nothing otherwise', (t) => {
  const hint = capabilityHint(parsed(status(1000, { bnd: K8S_BOUNDING })));
  t.regex(hint, /^ \[AF_XDP ports need CAP_NET_RAW, CAP_IPC_LOCK effective, but this process runs as uid 1000 with CAP_NET_RAW, CAP_IPC_LOCK only in its bounding set \(CapEff 0{16}/);
  t.regex(hint, /Fixes: \(1\) .*; \(2\) .*; \(3\) .*\]$/);
  t.is(capabilityHint(parsed(status(0, { bnd: '000001ffffffffff', eff: '000001ffffffffff', prm: '000001ffffffffff' }))), '');
  t.is(capabilityHint(parsed(status(1000, { bnd: '0000000000000000' }))), '');
  t.is(capabilityHint(undefined), '');
});
