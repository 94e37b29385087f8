// Loading the addon on a platform without a prebuilt package: a typed
// error naming the target, the prebuilt targets and the way out, instead of
// the napi-rs loader's generic "Cannot find native binding".
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PREBUILT_TARGETS, platformTarget } from '../../lib/native';

const repo = path.resolve(__dirname, '../..');

/** Run `native()` in a child whose process.arch / platform pretend to be something else. */
function loadAs(overrides: { arch?: string; platform?: string }): { code?: string; message?: string; loaded?: boolean } {
  const script = `
for (const [k, v] of Object.entries(${JSON.stringify(overrides)})) Object.defineProperty(process, k, { value: v });
const { native } = require('./lib/native.ts');
try { native(); console.log(JSON.stringify({ loaded: true })); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`;
  const env = { ...process.env };
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  const r = spawnSync(process.execPath, ['--import=tsx', '-e', script], { cwd: repo, env, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('this machine is one of the prebuilt targets', (t) => {
  t.true((PREBUILT_TARGETS as readonly string[]).includes(platformTarget()), platformTarget());
});

test('an architecture without a prebuilt package gets ERR_AFXDP_NOT_SUPPORTED naming it and the fix', (t) => {
  const r = loadAs({ arch: 'riscv64' });
  t.is(r.code, 'ERR_AFXDP_NOT_SUPPORTED');
  t.regex(r.message!, /no prebuilt native addon for linux-riscv64-(gnu|musl)/);
  for (const target of PREBUILT_TARGETS) t.true(r.message!.includes(target));
  t.regex(r.message!, /Build from source/);
  t.notRegex(r.message!, /wasi/);
});

test('another operating system is refused before any load attempt', (t) => {
  const r = loadAs({ platform: 'darwin' });
  t.is(r.code, 'ERR_AFXDP_NOT_SUPPORTED');
  t.regex(r.message!, /needs Linux/);
});
