// `afxdp dp-serve` as a user runs it: a ready line, a use_cni port served
// by it, clean exit on SIGTERM with nothing left attached or on disk.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import { openPort } from '../../lib/index';

const test = privileged();
const bin = path.join(__dirname, '../../bin/afxdp.js');

test.serial('dp-serve serves a use_cni port and cleans up on SIGTERM', async (t) => {
  const lab = createLab();
  const dir = mkdtempSync('/tmp/afxdp-dpserve-');
  const server = spawn(process.execPath, [bin, 'dp-serve', '--iface', lab.portIf, '--netns', lab.portNs,
    '--pod-dir', path.join(dir, 'pod'), '--uds-dir', path.join(dir, 'host'), '--sessions', '0', '--timeout', '10'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: server.stdout! });
    const [first] = (await Promise.race([once(lines, 'line'), new Promise((_, reject) => setTimeout(() => reject(new Error('no ready line')), 20_000))])) as [string];
    const ready = JSON.parse(first);
    t.is(ready.event, 'ready');
    t.is(ready.podSockets.length, 1);
    const podSocket = ready.podSockets[0];
    t.true(existsSync(podSocket));
    const port = await openPort({ iface: lab.portIf, netns: lab.portNs, useCni: true, dpPath: podSocket, podName: 'dev-pod' });
    t.is(port.info().source, 'cni');
    port.close();
    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    t.is(code, 0);
    const [link] = JSON.parse(execFileSync('ip', ['-n', lab.portNs, '-j', '-d', 'link', 'show', 'dev', lab.portIf], { encoding: 'utf8' }));
    t.is(link.xdp, undefined, 'the redirect program was detached');
    t.false(existsSync(podSocket), 'the pod socket path was removed');
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    lab.destroy();
  }
});

test.serial('dp-serve: a bad flag prints the error and usage and exits 2', (t) => {
  const bad = spawnSync(process.execPath, [bin, 'dp-serve', '--iface', 'x', '--bogus'], { encoding: 'utf8' });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /bogus/);
  t.regex(bad.stderr, /Usage: afxdp dp-serve/);
  const missing = spawnSync(process.execPath, [bin, 'dp-serve'], { encoding: 'utf8' });
  t.is(missing.status, 2);
  t.regex(missing.stderr, /--iface/);
});
