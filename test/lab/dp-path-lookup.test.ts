// DPDK 26.11's default dp_path on a real Device Plugin (`afxdp dp-serve`):
// a use_cni port without dp_path finds the socket under the DPDK runtime
// directory (<RUNTIME_DIRECTORY>/dpdk/<filePrefix>/afxdp_dp/<iface>/), else
// at /tmp/afxdp_dp/<iface>/, and says which (info(), the fwd start line and
// --json start event). Each test runs its own dp-serve on its own veth, with
// RUNTIME_DIRECTORY pointing at a fresh temporary directory.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import type { Lab } from '../helpers/lab';
import { openPort } from '../../lib/index';

const test = privileged();
const bin = path.join(__dirname, '../../bin/afxdp.js');
let sequence = 0;

interface Served {
  podSocket: string;
  server: ChildProcess;
}

async function serve(lab: Lab, podDir: string, hostDir: string): Promise<Served> {
  const server = spawn(process.execPath, [bin, 'dp-serve', '--iface', lab.portIf, '--netns', lab.portNs,
    '--pod-dir', podDir, '--uds-dir', hostDir, '--sessions', '0', '--timeout', '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    const [first] = (await Promise.race([once(lines, 'line'),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('dp-serve printed no ready line')), 20_000); })])) as [string];
    const ready = JSON.parse(first);
    return { podSocket: ready.podSockets[0] as string, server };
  } catch (err) {
    server.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function stop(served: Served | undefined): Promise<void> {
  if (served === undefined || served.server.exitCode !== null) return;
  served.server.kill('SIGTERM');
  const timer = setTimeout(() => served.server.kill('SIGKILL'), 10_000);
  await once(served.server, 'exit');
  clearTimeout(timer);
}

// A lab, a temporary RUNTIME_DIRECTORY and a unique file prefix, all removed afterwards.
async function withRuntimeDir(fn: (lab: Lab, runtimeDir: string, prefix: string) => Promise<void>): Promise<void> {
  const lab = createLab();
  const runtimeDir = mkdtempSync('/tmp/afxdp-rundir-');
  const saved = process.env.RUNTIME_DIRECTORY;
  process.env.RUNTIME_DIRECTORY = runtimeDir;
  try {
    await fn(lab, runtimeDir, `afxt${process.pid % 100000}x${sequence++}`);
  } finally {
    if (saved === undefined) delete process.env.RUNTIME_DIRECTORY;
    else process.env.RUNTIME_DIRECTORY = saved;
    rmSync(runtimeDir, { recursive: true, force: true });
    lab.destroy();
  }
}

test.serial('use_cni without dp_path: the socket under the DPDK runtime directory is found first (info, fwd --json, fwd line)', async (t) => {
  await withRuntimeDir(async (lab, runtimeDir, prefix) => {
    const podDir = path.join(runtimeDir, 'dpdk', prefix, 'afxdp_dp');
    let served: Served | undefined;
    try {
      served = await serve(lab, podDir, path.join(runtimeDir, 'host'));
      t.is(served.podSocket, path.join(podDir, lab.portIf, 'afxdp.sock'));
      const port = await openPort({ iface: lab.portIf, netns: lab.portNs, useCni: true, filePrefix: prefix, podName: 'lookup-pod' });
      try {
        const info = port.info();
        t.is(info.source, 'cni');
        t.is(info.dpPath, served.podSocket);
        t.is(info.dpPathOrigin, 'runtime-dir');
        t.deepEqual(port.config.dpPathSearched, [served.podSocket]);
      } finally {
        port.close();
      }
      // Without the prefix, the runtime dir has nothing for rte: the /tmp fallback, which has no socket.
      const err = await t.throwsAsync(openPort({ iface: lab.portIf, netns: lab.portNs, useCni: true, handshakeTimeoutMs: 2000 }));
      t.true(err!.message.includes(`/tmp/afxdp_dp/${lab.portIf}/afxdp.sock`), err!.message);
      t.true(err!.message.includes(path.join(runtimeDir, 'dpdk', 'rte', 'afxdp_dp', lab.portIf, 'afxdp.sock')), err!.message);

      const env = { ...process.env, RUNTIME_DIRECTORY: runtimeDir };
      const args = [bin, 'fwd', '--file-prefix', prefix, '--vdev', `net_af_xdp0,use_cni=1,iface=${lab.portIf}`,
        '--netns', lab.portNs, '--duration', '0.3', '--stats-period', '0'];
      const json = spawnSync(process.execPath, [...args, '--json'], { encoding: 'utf8', env, timeout: 30_000 });
      t.is(json.status, 0, json.stderr);
      const start = JSON.parse(json.stdout.split('\n')[0]!);
      t.is(start.type, 'start');
      t.like(start.ports[0], { iface: lab.portIf, source: 'cni', dpPath: served.podSocket, dpPathOrigin: 'runtime-dir' });
      const text = spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: 30_000 });
      t.is(text.status, 0, text.stderr);
      t.true(text.stdout.includes(`dp_path ${served.podSocket} (found in the DPDK runtime directory)`), text.stdout);
    } finally {
      await stop(served);
    }
    t.false(existsSync(path.join(podDir, lab.portIf, 'afxdp.sock')));
  });
});

test.serial('use_cni without dp_path: nothing under the runtime directory → /tmp/afxdp_dp/<iface>/afxdp.sock, reported as the fallback', async (t) => {
  await withRuntimeDir(async (lab, runtimeDir, prefix) => {
    let served: Served | undefined;
    try {
      served = await serve(lab, '/tmp/afxdp_dp', path.join(runtimeDir, 'host'));
      t.is(served.podSocket, `/tmp/afxdp_dp/${lab.portIf}/afxdp.sock`);
      const port = await openPort({ iface: lab.portIf, netns: lab.portNs, useCni: true, filePrefix: prefix, podName: 'lookup-pod' });
      try {
        t.like(port.info(), { source: 'cni', dpPath: served.podSocket, dpPathOrigin: 'tmp' });
        t.deepEqual(port.config.dpPathSearched,
          [path.join(runtimeDir, 'dpdk', prefix, 'afxdp_dp', lab.portIf, 'afxdp.sock'), served.podSocket]);
      } finally {
        port.close();
      }
      // An explicit dp_path is used as given.
      const given = await openPort({ iface: lab.portIf, netns: lab.portNs, useCni: true, dpPath: served.podSocket, podName: 'lookup-pod' });
      try {
        t.like(given.info(), { dpPath: served.podSocket, dpPathOrigin: 'explicit' });
      } finally {
        given.close();
      }
    } finally {
      await stop(served);
    }
    t.false(existsSync(`/tmp/afxdp_dp/${lab.portIf}`), 'dp-serve removed its pod directory');
  });
});
