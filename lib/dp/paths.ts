// Where the AF_XDP Device Plugin (DP) puts its socket and pinned map inside a
// pod, matching DPDK's net_af_xdp defaults (DPDK > 23.11).
//
// DPDK 26.11 looks in <EAL runtime dir>/afxdp_dp/ first; afxdp has no EAL
// runtime directory, so it uses the /tmp/afxdp_dp/ mount point the DP uses.

import { AfxdpError, codes, quoteInput } from '../errors';

export type DpMode = 'cni' | 'pinned';

/** Mount point of the current DP: one directory per allocated netdev. */
export const DP_BASE_PATH = '/tmp/afxdp_dp';
export const DP_SOCKET_NAME = 'afxdp.sock';
export const DP_PINNED_MAP_NAME = 'xsks_map';

/**
 * The DP at or before commit 38317c2 mounted one socket per container here.
 * It is never chosen by default: pass dp_path=/tmp/afxdp.sock to use it, as
 * DPDK's af_xdp_dp guide says.
 */
export const LEGACY_UDS_PATH = '/tmp/afxdp.sock';
/** Pinned-map path of the same old DP (which, in practice, never pinned it). */
export const LEGACY_PINNED_PATH = '/tmp/xsks_map';

/** `/tmp/afxdp_dp/<iface>/afxdp.sock` (cni) or `/tmp/afxdp_dp/<iface>/xsks_map` (pinned). */
export function defaultDpPath(mode: DpMode, iface: string): string {
  checkPathSegment(iface);
  switch (mode) {
    case 'cni':
      return `${DP_BASE_PATH}/${iface}/${DP_SOCKET_NAME}`;
    case 'pinned':
      return `${DP_BASE_PATH}/${iface}/${DP_PINNED_MAP_NAME}`;
    default:
      throw new AfxdpError(
        codes.INVALID_ARGUMENT,
        `Unknown Device Plugin mode ${quoteInput(String(mode))}; use 'cni' or 'pinned'`,
        { argument: 'mode' },
      );
  }
}

/** An explicit dp_path wins; otherwise the DP default for the interface. */
export function resolveDpPath(mode: DpMode, iface: string, explicit?: string): string {
  return explicit === undefined ? defaultDpPath(mode, iface) : explicit;
}

// The interface name becomes a directory: refuse anything that would leave
// /tmp/afxdp_dp/ (callers normally pass a name validated by port-config).
function checkPathSegment(iface: string): void {
  if (typeof iface === 'string' && iface !== '' && iface !== '.' && iface !== '..' && !/[/\0]/.test(iface)) {
    return;
  }
  throw new AfxdpError(
    codes.INVALID_ARGUMENT,
    `Interface name ${quoteInput(String(iface))} cannot name a directory under ${DP_BASE_PATH}; ` +
      'pass the netdev name, e.g. eth1',
    { argument: 'iface' },
  );
}
