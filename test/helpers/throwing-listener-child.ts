// A 'readable' listener that throws on its first two calls, in a process of
// its own (the throws are uncaught by design). argv[2]: JSON {iface, netns,
// peerIf, peerNs, portMac, peerMac, mode}. Prints {calls, caught, rx}.
import { openPort, Queue } from '../../lib/index';
import { PacketSocket } from '../../lib/peer/packet-socket';
import { setDefaultWakeupMode } from '../../lib/port/waiter';
import { testFrame } from './frames';

const o = JSON.parse(process.argv[2]!) as {
  iface: string; netns: string; peerIf: string; peerNs: string; portMac: string; peerMac: string; mode: 'uv' | 'thread';
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

(async () => {
  setDefaultWakeupMode(o.mode);
  const port = await openPort({ iface: o.iface, netns: o.netns });
  const peer = new PacketSocket(o.peerIf, { netns: o.peerNs });
  let caught = 0;
  process.on('uncaughtException', () => {
    caught++;
  });
  let calls = 0;
  port.on('readable', (q: Queue) => {
    calls++;
    q.release(q.receive());
    if (calls <= 2) throw new Error(`listener failure ${calls}`);
  });
  for (let i = 0; i < 5; i++) {
    peer.send([testFrame(o.portMac, o.peerMac, i)]);
    await sleep(30);
  }
  process.stdout.write(JSON.stringify({ calls, caught, rx: port.stats().rxPackets }));
  peer.close();
  port.close();
})();
