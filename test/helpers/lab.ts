// A veth lab for privileged tests: two fresh network namespaces joined by a
// veth pair (addresses from 192.0.2.0/24), always removed again.
import { execFileSync } from 'node:child_process';
import { PacketSocket } from '../../lib/peer/packet-socket';

export interface Lab {
  /** Namespace with `portIf`, where the afxdp port under test binds. */
  portNs: string;
  /** Namespace with `peerIf`, the independent traffic source/sink. */
  peerNs: string;
  portIf: string;
  peerIf: string;
  portMac: string;
  peerMac: string;
  portIp: string;
  peerIp: string;
  destroy(): void;
}

let sequence = 0;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function macOf(ns: string, dev: string): string {
  const [link] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'dev', dev));
  return link.address as string;
}

export function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/** Options of a lab: the veth's rx/tx queue counts, and its MTU on both ends (jumbo frames: 9000). */
export interface LabOptions {
  queues?: number;
  mtu?: number;
}

/** Create a lab; `queues` sets the veth's rx/tx queue counts, `mtu` both ends' MTU. */
export function createLab(options: LabOptions = {}): Lab {
  const queues = String(options.queues ?? 1);
  const id = `${process.pid % 100000}${sequence++}`;
  const lab = {
    portNs: `afxt-p${id}`,
    peerNs: `afxt-q${id}`,
    portIf: `afxp${id}`,
    peerIf: `afxq${id}`,
    portIp: '192.0.2.1',
    peerIp: '192.0.2.2',
    portMac: '',
    peerMac: '',
    destroy() {
      for (const ns of [lab.portNs, lab.peerNs]) {
        try { ip('netns', 'del', ns); } catch { /* already gone */ }
      }
    },
  };
  try {
    ip('netns', 'add', lab.portNs);
    ip('netns', 'add', lab.peerNs);
    ip('link', 'add', lab.portIf, 'numtxqueues', queues, 'numrxqueues', queues, 'netns', lab.portNs,
      'type', 'veth', 'peer', 'name', lab.peerIf, 'numtxqueues', queues, 'numrxqueues', queues,
      'netns', lab.peerNs);
    for (const [ns, dev, addr] of [[lab.portNs, lab.portIf, lab.portIp], [lab.peerNs, lab.peerIf, lab.peerIp]] as const) {
      // No IPv6 autoconf chatter: the tests count packets exactly.
      ip('netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`);
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      if (options.mtu !== undefined) ip('-n', ns, 'link', 'set', dev, 'mtu', String(options.mtu));
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    lab.portMac = macOf(lab.portNs, lab.portIf);
    lab.peerMac = macOf(lab.peerNs, lab.peerIf);
  } catch (error) {
    lab.destroy();
    throw error;
  }
  return lab;
}

/** Run `fn` with a fresh lab and an AF_PACKET peer on its far end; both go afterwards. */
export async function withLab(options: LabOptions, fn: (lab: Lab, peer: PacketSocket) => Promise<void>): Promise<void> {
  const lab = createLab(options);
  const peer = new PacketSocket(lab.peerIf, { netns: lab.peerNs });
  try {
    await fn(lab, peer);
  } finally {
    peer.close();
    lab.destroy();
  }
}

/** Namespaces this process created and has not removed (for leak checks). */
export function leftoverNamespaces(): string[] {
  const out = ip('netns', 'list');
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`afxt-`) && n.includes(`${process.pid % 100000}`));
}
