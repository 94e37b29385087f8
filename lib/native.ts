// The native addon (napi-rs loader in ../index.js) with the shapes the
// facade relies on. Everything else imports the binding from here.
import { AfxdpError, codes } from './errors';

export interface NativeOpenOptions {
  ifname: string;
  netns?: string;
  startQueue: number;
  queueCount: number;
  sharedUmem: boolean;
  forceCopy: boolean;
  frameSize: number;
  frameCount: number;
  headroom: number;
  rxSize: number;
  txSize: number;
  fillSize: number;
  compSize: number;
  hugepages: string;
  xdpMode: string;
  xdpProg?: string;
  pinnedMap?: string;
  burstSize: number;
}

export interface NativeQueueStats {
  queueId: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  rxDropped: number;
  rxInvalidDescs: number;
  txInvalidDescs: number;
  rxRingFull: number;
  rxFillRingEmptyDescs: number;
  txRingEmptyDescs: number;
}

export interface NativeFrameCounts {
  total: number;
  free: number;
  fillRing: number;
  rxRing: number;
  app: number;
  txRing: number;
  completionRing: number;
  inKernel: number;
}

export interface NativePortInfo {
  ifname: string;
  ifindex: number;
  mac: string;
  mtu: number;
  linkUp: boolean;
  queueIds: number[];
  interfaceQueues: number;
  driver: string;
  xdpMode: string;
  xdpProgramId: number;
  zeroCopy: boolean[];
  hugepages: boolean;
  umemCount: number;
  frameSize: number;
  dataOffset: number;
}

export interface NativeFd {
  close(): void;
}

export interface NativePort {
  umemBuffer(umem: number): ArrayBuffer;
  descriptorBuffer(): ArrayBuffer;
  umemOf(queue: number): number;
  rxBurst(queue: number, max: number): number;
  txBurst(queue: number, start: number, count: number, dropUnsent: boolean): number;
  release(queue: number, start: number, count: number): void;
  alloc(queue: number, start: number, count: number): number;
  reap(queue: number): number;
  stats(queue: number): NativeQueueStats;
  frames(umem: number): NativeFrameCounts;
  info(): NativePortInfo;
  close(buffers: ArrayBuffer[]): void;
}

export interface NativePacketSocket {
  send(frames: Buffer[]): number;
  recv(max: number, timeoutMs: number): Buffer[];
  drain(): number;
  close(): void;
}

export interface NativeBinding {
  coreVersion(): string;
  NativePort: { open(options: NativeOpenOptions, mapFd?: NativeFd | null): NativePort };
  NativePacketSocket: { open(ifname: string, netns?: string | null): NativePacketSocket };
}

let binding: NativeBinding | undefined;

/** The addon, loaded on first use so config parsing works without it. */
export function native(): NativeBinding {
  if (binding) return binding;
  if (process.platform !== 'linux') {
    throw new AfxdpError(codes.NOT_SUPPORTED,
      `afxdp needs Linux (AF_XDP sockets); this is ${process.platform}/${process.arch}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  binding = require('../index.js') as NativeBinding;
  return binding;
}
