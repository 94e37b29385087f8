// Where the AF_XDP Device Plugin (DP) puts its socket and pinned map inside a
// pod, matching DPDK's net_af_xdp defaults.
//
// Without an explicit dp_path, DPDK 26.11 looks first under its EAL runtime
// directory, <runtime dir>/dpdk/<file-prefix>/afxdp_dp/<iface>/, then falls
// back to /tmp/afxdp_dp/<iface>/ (the DP's mount point, DPDK 23.11-25.11's
// only default). lookupDpPath() is that order as a pure function: the caller
// hands in the environment, the uid and an existence predicate (openPort
// passes process.env, process.getuid() and fs), so tests need no privileges.

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

/** DPDK's EAL file prefix when none is given (--file-prefix). */
export const DEFAULT_FILE_PREFIX = 'rte';
/** The DP's directory under the DPDK runtime directory (DPDK 26.11). */
export const RUNTIME_DP_DIR = 'afxdp_dp';

/** The environment variables the runtime directory depends on. */
export interface RuntimeEnv {
  readonly RUNTIME_DIRECTORY?: string;
  readonly XDG_RUNTIME_DIR?: string;
}

/**
 * DPDK's EAL runtime directory for a file prefix, as eal_create_runtime_dir()
 * builds it: $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=) if set, else
 * /var/run for uid 0, else $XDG_RUNTIME_DIR, else /tmp; then /dpdk/<prefix>.
 * (An empty variable counts as unset here; EAL would use the empty string.)
 */
export function dpdkRuntimeDir(filePrefix: string, env: RuntimeEnv, uid: number): string {
  checkPathSegment(filePrefix, 'filePrefix');
  const set = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);
  const base = set(env.RUNTIME_DIRECTORY) ?? (uid === 0 ? '/var/run' : set(env.XDG_RUNTIME_DIR) ?? '/tmp');
  return `${base.replace(/\/+$/, '') || '/'}/dpdk/${filePrefix}`.replace(/^\/\//, '/');
}

/** `<runtime dir>/afxdp_dp/<iface>/afxdp.sock` (cni) or `…/xsks_map` (pinned). */
export function runtimeDirDpPath(mode: DpMode, iface: string, runtimeDir: string): string {
  return `${runtimeDir}/${RUNTIME_DP_DIR}${defaultDpPath(mode, iface).slice(DP_BASE_PATH.length)}`;
}

/**
 * Where a dp_path came from: given (explicit); not looked up yet, the /tmp
 * fallback until a port opens (default: resolvePortConfig does no I/O);
 * found under the DPDK runtime directory (runtime-dir); or the /tmp/afxdp_dp
 * fallback after the runtime directory had none (tmp).
 */
export type DpPathOrigin = 'explicit' | 'default' | 'runtime-dir' | 'tmp';

export interface DpPathLookup {
  readonly path: string;
  readonly origin: 'explicit' | 'runtime-dir' | 'tmp';
  /** Every path looked at, in order (empty for an explicit one). */
  readonly searched: readonly string[];
}

export interface DpPathProbe {
  /** Whether something (a socket, a pinned map) is at `path`. */
  exists(path: string): boolean;
  env: RuntimeEnv;
  uid: number;
}

/**
 * DPDK 26.11's default dp_path: an explicit one as it is; otherwise the
 * runtime-directory path when something is there, else /tmp/afxdp_dp/<iface>/…
 * (used whether or not it exists: opening it then says what is missing).
 * /tmp/afxdp.sock is never a default (pass it as dp_path).
 */
export function lookupDpPath(
  mode: DpMode, iface: string, filePrefix: string, probe: DpPathProbe, explicit?: string,
): DpPathLookup {
  if (explicit !== undefined) return { path: explicit, origin: 'explicit', searched: [] };
  const fallback = defaultDpPath(mode, iface);
  const first = runtimeDirDpPath(mode, iface, dpdkRuntimeDir(filePrefix, probe.env, probe.uid));
  if (first !== fallback && probe.exists(first)) return { path: first, origin: 'runtime-dir', searched: [first] };
  return { path: fallback, origin: 'tmp', searched: first === fallback ? [fallback] : [first, fallback] };
}

/** An explicit dp_path wins; otherwise the DP default for the interface. */
export function resolveDpPath(mode: DpMode, iface: string, explicit?: string): string {
  return explicit === undefined ? defaultDpPath(mode, iface) : explicit;
}

// The interface name (and the file prefix) becomes a directory: refuse
// anything that would leave its parent (callers normally pass names
// validated by port-config).
function checkPathSegment(segment: string, argument: 'iface' | 'filePrefix' = 'iface'): void {
  if (typeof segment === 'string' && segment !== '' && segment !== '.' && segment !== '..' && !/[/\0]/.test(segment)) {
    return;
  }
  throw new AfxdpError(
    codes.INVALID_ARGUMENT,
    argument === 'iface'
      ? `Interface name ${quoteInput(String(segment))} cannot name a directory under ${DP_BASE_PATH}; pass the netdev name, e.g. eth1`
      : `File prefix ${quoteInput(String(segment))} cannot name a directory under the DPDK runtime directory; ` +
        `pass a plain name such as ${DEFAULT_FILE_PREFIX} (DPDK's default)`,
    { argument },
  );
}
