// The process's capabilities as /proc/self/status shows them, and the one
// case AF_XDP users in Kubernetes keep meeting: a container running as a
// non-root uid gets `securityContext.capabilities.add` only in its bounding
// set, never in its effective set (CapEff 0), so socket(AF_XDP) fails with
// EPERM (no CAP_NET_RAW) and the UMEM hits RLIMIT_MEMLOCK (no CAP_IPC_LOCK).
// Used by `afxdp doctor` and by fromNative() (lib/errors.ts) for the errors
// of ERR_AFXDP_PERMISSION and ERR_AFXDP_MEMLOCK. Parsing and classifying are
// pure; readProcessCaps() is the one read of /proc.
import fs from 'node:fs';

/** Capability numbers (linux/capability.h) afxdp cares about. */
export const CAP = { NET_ADMIN: 12, NET_RAW: 13, IPC_LOCK: 14, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;
export type CapName = keyof typeof CAP;

/** What an AF_XDP port needs from a process that does not attach XDP itself. */
export const PORT_CAPS: readonly CapName[] = Object.freeze(['NET_RAW', 'IPC_LOCK']);

export interface ProcessCaps {
  /** Real and effective uid (the Uid: line's first two fields). */
  uid: number;
  euid: number;
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  /** NoNewPrivs: 1 (Kubernetes allowPrivilegeEscalation: false) makes exec ignore file capabilities. */
  noNewPrivs: boolean;
}

/** The fields of /proc/<pid>/status text; undefined when the Uid or Cap lines are missing. */
export function parseProcStatus(status: string): ProcessCaps | undefined {
  const hex = (name: string): bigint | undefined => {
    const m = new RegExp(`^${name}:\\s*([0-9a-fA-F]+)\\s*$`, 'm').exec(status);
    return m ? BigInt(`0x${m[1]}`) : undefined;
  };
  const uids = /^Uid:\s*(\d+)\s+(\d+)/m.exec(status);
  const [capInh, capPrm, capEff, capBnd, capAmb] = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map(hex);
  if (uids === null || capPrm === undefined || capEff === undefined || capBnd === undefined) return undefined;
  return {
    uid: Number(uids[1]),
    euid: Number(uids[2]),
    capInh: capInh ?? 0n,
    capPrm,
    capEff,
    capBnd,
    capAmb: capAmb ?? 0n, // before Linux 4.3
    noNewPrivs: /^NoNewPrivs:\s*1\s*$/m.test(status),
  };
}

export function hasCapBit(set: bigint, name: CapName): boolean {
  return ((set >> BigInt(CAP[name])) & 1n) === 1n;
}

/**
 * root-ok / ok: every needed capability is effective (as root or not).
 * bounding-only: a non-root euid, some needed capability not effective but
 *   every missing one in the bounding set: the Kubernetes non-root case
 *   (capabilities.add without runAsUser: 0), fixable without privileged.
 * missing: some needed capability is not even in the bounding set
 *   (capabilities.add lacks it, or a root process dropped it).
 */
export type CapsCase = 'ok' | 'bounding-only' | 'missing';

export interface CapsVerdict {
  case: CapsCase;
  /** Needed capabilities not in CapEff. */
  missing: CapName[];
  /** Of those, the ones in CapBnd. */
  inBounding: CapName[];
}

/** Which case `caps` is for the capabilities `needed` (default CAP_NET_RAW and CAP_IPC_LOCK). */
export function classifyCaps(caps: ProcessCaps, needed: readonly CapName[] = PORT_CAPS): CapsVerdict {
  const missing = needed.filter((name) => !hasCapBit(caps.capEff, name));
  const inBounding = missing.filter((name) => hasCapBit(caps.capBnd, name));
  if (missing.length === 0) return { case: 'ok', missing, inBounding };
  if (caps.euid !== 0 && inBounding.length === missing.length) return { case: 'bounding-only', missing, inBounding };
  return { case: 'missing', missing, inBounding };
}

const capList = (names: readonly CapName[]) => names.map((name) => `CAP_${name}`).join(', ');
const hex16 = (value: bigint) => value.toString(16).padStart(16, '0');

/** One sentence saying what the bounding-only case is, for this process. */
export function describeBoundingOnly(caps: ProcessCaps, verdict: CapsVerdict): string {
  return `this process runs as uid ${caps.euid} with ${capList(verdict.inBounding)} only in its bounding set ` +
    `(CapEff ${hex16(caps.capEff)}, CapPrm ${hex16(caps.capPrm)}, CapAmb ${hex16(caps.capAmb)}, CapBnd ${hex16(caps.capBnd)}): ` +
    'a container running as a non-root uid gets securityContext.capabilities.add in its bounding set only, never as ' +
    'effective capabilities (a long-standing Kubernetes limitation)';
}

/**
 * The three fixes of the bounding-only case, in order of preference. The
 * second is void under NoNewPrivs (allowPrivilegeEscalation: false), and
 * says so.
 */
export function boundingOnlyFixes(caps: ProcessCaps): string[] {
  return [
    'run the container as uid 0 without privileged: securityContext: {runAsUser: 0, capabilities: {add: [NET_RAW, IPC_LOCK]}} ' +
      '(it then holds only those capabilities and the runtime defaults, not privileged: true)',
    'give the node binary file capabilities in the image: setcap cap_net_raw,cap_ipc_lock+ep $(readlink -f $(which node)) ' +
      '(they become effective at exec because capabilities.add put them in the bounding set; ' +
      `allowPrivilegeEscalation must not be false${caps.noNewPrivs ? ', and here NoNewPrivs is 1, so this needs that changed first' : ''})`,
    'with use_cni, set the Device Plugin pool\'s "uid" to this uid (' + caps.euid + ') so the plugin\'s socket accepts it ' +
      'without root; the AF_XDP socket itself still needs CAP_NET_RAW effective, so pair it with the file capabilities above',
  ];
}

/** The hint an ERR_AFXDP_PERMISSION / ERR_AFXDP_MEMLOCK message gets in the bounding-only case; '' otherwise. */
export function capabilityHint(caps: ProcessCaps | undefined): string {
  if (caps === undefined) return '';
  const verdict = classifyCaps(caps);
  if (verdict.case !== 'bounding-only') return '';
  const fixes = boundingOnlyFixes(caps).map((fix, i) => `(${i + 1}) ${fix}`).join('; ');
  return ` [AF_XDP ports need ${capList(PORT_CAPS)} effective, but ${describeBoundingOnly(caps, verdict)}. Fixes: ${fixes}]`;
}

/** This process's capabilities from /proc/self/status; undefined where it cannot be read. */
export function readProcessCaps(file = '/proc/self/status'): ProcessCaps | undefined {
  try {
    return parseProcStatus(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
