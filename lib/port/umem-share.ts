// One UMEM's JS buffer, shared by the ports using the UMEM.
//
// V8 accepts one external ArrayBuffer per memory address, so ports sharing
// a UMEM (openPorts with shared_umem=1, or openPort's shareUmemWith) all
// use the first port's buffer. Its native keepalive holds the UMEM itself,
// so it stays valid while any port uses it; it is detached (views read as
// empty) only when the last of those ports closes.
import type { PortConfig } from '../config/port-config';
import { devargsError } from '../config/devargs';
import { AfxdpError, codes } from '../errors';

export class UmemBuffer {
  readonly buffer: ArrayBuffer;
  #users = 0;

  constructor(buffer: ArrayBuffer) {
    this.buffer = buffer;
  }

  /** A port starts using the buffer. */
  retain(): ArrayBuffer {
    this.#users++;
    return this.buffer;
  }

  /** A port stops using it; true when that was the last (detach it then). */
  release(): boolean {
    this.#users--;
    return this.#users === 0;
  }
}

/** The frame settings ports sharing a UMEM must agree on. */
export const FRAME_SETTINGS = ['frameSize', 'frameCount', 'headroom', 'hugepages'] as const;

export type { UmemOwner } from '../config/options';
import type { UmemOwner } from '../config/options';

/**
 * @internal Refuses to let a port with `config` (given as `spec`) join the
 * UMEM of `owner`: a closed owner (ERR_AFXDP_CLOSED), or frame settings
 * that differ (ERR_AFXDP_DEVARGS for a devargs string, else
 * ERR_AFXDP_INVALID_ARGUMENT), naming the setting and the fix.
 */
export function checkUmemSharing(owner: UmemOwner, config: PortConfig, spec: unknown): void {
  if (owner.closed) {
    throw new AfxdpError(codes.CLOSED,
      `cannot share the UMEM of the port on ${owner.config.iface}: that port is closed; ` +
      'pass an open port as shareUmemWith, or open this port without it', { argument: 'shareUmemWith' });
  }
  for (const setting of FRAME_SETTINGS) {
    const theirs = owner.config[setting];
    const ours = config[setting];
    if (theirs === ours) continue;
    const problem = `the port on ${config.iface} cannot share the UMEM of the port on ${owner.config.iface}: ` +
      `${setting} is ${JSON.stringify(ours)} here but ${JSON.stringify(theirs)} there`;
    const fix = `give both ports the same frame settings (${FRAME_SETTINGS.join(', ')}), or open them without shared_umem`;
    if (typeof spec === 'string') throw devargsError(spec, problem, fix, undefined);
    throw new AfxdpError(codes.INVALID_ARGUMENT, `${problem}; ${fix}`, { argument: setting });
  }
}
