// The README's library example, run as written: the ```js block under
// "## The library" is copied into an .mjs file inside the checkout (so that
// `import ... from 'afxdp'` resolves to this package by its name, through
// package.json "exports" and the built dist/), with only the interface name
// changed to the lab's. It must reflect frames with their MAC addresses
// swapped, print its stats on SIGINT and exit 0 on its own after close().
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { frameSeq, macBytes, sleep, testFrame } from '../helpers/frames';

const test = privileged();
const repo = path.resolve(__dirname, '../..');

/** The first ```js block after the README's "## The library" heading. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## The library\n'));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (readme.indexOf('\n## The library\n') < 0 || code === undefined) throw new Error('README.md has no ```js block under "## The library"');
  return code;
}

test.serial('README library example: reflects frames with swapped MACs, prints stats on SIGINT, exits 0', async (t) => {
  const code = readmeExample();
  t.regex(code, /from 'afxdp'/, 'the example imports the package by name');
  t.regex(code, /iface=veth1/);
  const lab = createLab();
  const file = path.join(repo, `test/.readme-example-${process.pid}.mjs`);
  fs.writeFileSync(file, code.replaceAll('veth1', lab.portIf));
  const child = spawn('ip', ['netns', 'exec', lab.portNs, process.execPath, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    const peerMac = macBytes(lab.peerMac);
    const portMac = macBytes(lab.portMac);
    // Until the port is open, frames go nowhere: probe until one comes back.
    let ready = false;
    for (let deadline = Date.now() + 20_000; !ready && Date.now() < deadline && child.exitCode === null;) {
      peer.send([testFrame(lab.portMac, lab.peerMac, 1_000_000)]);
      await sleep(50);
      ready = peer.receive(64, 0).some((f) => frameSeq(f) === 1_000_000);
    }
    t.true(ready, `the example never answered; stderr: ${stderr}`);

    const N = 200;
    const back = new Set<number>();
    for (let seq = 0; seq < N; seq += 10) {
      peer.send(Array.from({ length: 10 }, (_, i) => testFrame(lab.portMac, lab.peerMac, seq + i)));
      await sleep(5);
      for (const f of peer.receive(64, 0)) {
        const s = frameSeq(f);
        if (s === undefined || s >= N) continue;
        t.true(f.subarray(0, 6).equals(peerMac) && f.subarray(6, 12).equals(portMac), `frame ${s} came back with its MACs swapped`);
        back.add(s);
      }
    }
    for (let deadline = Date.now() + 5_000; back.size < N && Date.now() < deadline;) {
      await sleep(10);
      for (const f of peer.receive(256, 0)) {
        const s = frameSeq(f);
        if (s !== undefined && s < N) back.add(s);
      }
    }
    t.is(back.size, N, 'every frame came back');

    child.kill('SIGINT');
    const exited = await Promise.race([once(child, 'exit'), sleep(10_000).then(() => null)]);
    t.not(exited, null, 'the example exits on its own after SIGINT (port.close() leaves nothing armed)');
    t.is(child.exitCode, 0, stderr);
    const rx = Number(/rxPackets: (\d+)/.exec(stdout)?.[1]);
    t.true(rx >= N, `stats printed on SIGINT, rxPackets ${rx}: ${stdout}`);
  } finally {
    child.kill('SIGKILL');
    peer.close();
    lab.destroy();
    fs.rmSync(file, { force: true });
  }
});
