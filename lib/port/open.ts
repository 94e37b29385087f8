// openPort(): devargs or options → resolved config → XSKMAP source →
// native sockets → Port.
import { resolvePortConfig, PortConfig, PortOptions } from '../config/port-config';
import { native, NativeOpenOptions } from '../native';
import { AfxdpError, codes } from '../errors';
import { Port } from './port';
import { call } from './native-call';

export function nativeOptions(config: PortConfig): NativeOpenOptions {
  return {
    ifname: config.iface,
    netns: config.netns,
    startQueue: config.startQueue,
    queueCount: config.queueCount,
    sharedUmem: config.sharedUmem,
    forceCopy: config.forceCopy,
    frameSize: config.frameSize,
    frameCount: config.frameCount,
    headroom: config.headroom,
    rxSize: config.rxSize,
    txSize: config.txSize,
    fillSize: config.fillSize,
    compSize: config.compSize,
    hugepages: config.hugepages,
    xdpMode: config.xdpMode,
    xdpProg: config.source === 'attach' ? config.xdpProg : undefined,
    pinnedMap: config.source === 'pinned' ? config.dpPath : undefined,
    burstSize: config.burstSize,
  };
}

/**
 * Open a port from a DPDK devargs string (`net_af_xdp0,iface=eth0,...`,
 * prefix optional) or a typed options object.
 */
export async function openPort(spec: string | PortOptions): Promise<Port> {
  const config = resolvePortConfig(spec);
  return openResolved(config);
}

export async function openResolved(config: PortConfig): Promise<Port> {
  if (config.source === 'cni') {
    throw new AfxdpError(codes.NOT_SUPPORTED,
      'use_cni is not supported yet in this build; use use_pinned_map=1 with the Device Plugin\'s pinned map');
  }
  const binding = native();
  const nativePort = call(() => binding.NativePort.open(nativeOptions(config)));
  return new Port(nativePort, config);
}
