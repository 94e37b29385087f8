// An AF_PACKET socket on an interface: an independent traffic peer (the
// other end of a veth in tests, `afxdp demo`, the benchmark). Frames cross
// into JS as Buffers, so this is a tool, not a fast path.
import { native } from '../native';
import { call } from '../port/native-call';

export interface PacketSocketOptions {
  /** Network namespace (name under /run/netns, or a path) to open it in. */
  netns?: string;
}

export class PacketSocket {
  readonly iface: string;
  readonly #socket: ReturnType<ReturnType<typeof native>['NativePacketSocket']['open']>;

  constructor(iface: string, options: PacketSocketOptions = {}) {
    this.iface = iface;
    this.#socket = call(() => native().NativePacketSocket.open(iface, options.netns));
  }

  /** Send the frames; returns how many the kernel took. */
  send(frames: Buffer[]): number {
    return call(() => this.#socket.send(frames));
  }

  /** Up to `max` frames, waiting at most `timeoutMs` in total. */
  receive(max: number, timeoutMs: number): Buffer[] {
    return call(() => this.#socket.recv(max, timeoutMs));
  }

  drain(): number {
    return call(() => this.#socket.drain());
  }

  close(): void {
    this.#socket.close();
  }
}
