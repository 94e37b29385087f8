// What users hit when privileges are missing: each failure names the limit
// or capability and the fix. Children run with reduced privileges.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';

const test = privileged();
const child = path.join(__dirname, '../helpers/open-port-child.ts');

function runChild(prefix: [string, ...string[]], options: object): { ok: boolean; code?: string; message?: string } {
  const out = execFileSync(prefix[0], [...prefix.slice(1), process.execPath, '--import', 'tsx', child, JSON.stringify(options)],
    { encoding: 'utf8', timeout: 30_000, cwd: path.join(__dirname, '../..') });
  return JSON.parse(out);
}

test.serial('RLIMIT_MEMLOCK too small: ERR_AFXDP_MEMLOCK names the limit, the size and the fixes', async (t) => {
  const lab = createLab();
  try {
    // Root holds CAP_IPC_LOCK, which exempts it from the limit: drop it.
    const result = runChild(['prlimit', '--memlock=1048576:1048576', 'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'],
      { iface: lab.portIf, netns: lab.portNs, frameCount: 4096, frameSize: 4096 });
    t.false(result.ok);
    t.is(result.code, 'ERR_AFXDP_MEMLOCK');
    t.regex(result.message!, /1024 KiB|1 MiB|1048576/);
    t.regex(result.message!, /16 MiB|16384 KiB|16777216/);
    t.regex(result.message!, /CAP_IPC_LOCK/);
    t.regex(result.message!, /ulimit -l|LimitMEMLOCK/);
  } finally {
    lab.destroy();
  }
});

test.serial('privileged mode without capabilities: ERR_AFXDP_PERMISSION says which capability', async (t) => {
  const lab = createLab();
  try {
    const result = runChild(['ip', 'netns', 'exec', lab.portNs, 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
      '--inh-caps=-all', '--ambient-caps=-all'], { iface: lab.portIf });
    t.false(result.ok);
    t.is(result.code, 'ERR_AFXDP_PERMISSION');
    t.regex(result.message!, /CAP_NET_ADMIN|CAP_BPF|CAP_NET_RAW/);
  } finally {
    lab.destroy();
  }
});
