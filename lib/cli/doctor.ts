// `afxdp doctor [iface]`: what AF_XDP users trip on, checked on this
// machine for this process, each with ok / warn / fail and how to fix it.
// Exit status 1 when something blocks opening a port.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { native } from '../native';
import { devicesFromEnv } from '../dp/devices-env';
import {
  DEFAULT_FILE_PREFIX, DP_BASE_PATH, DP_PINNED_MAP_NAME, DP_SOCKET_NAME, LEGACY_UDS_PATH, RUNTIME_DP_DIR, dpdkRuntimeDir,
} from '../dp/paths';
import { defaults } from '../config/port-config';
import { UsageError } from './usage';
import { integer } from './args';
import { boundingOnlyFixes, CAP, classifyCaps, describeBoundingOnly, parseProcStatus } from '../caps';
import type { CapName } from '../caps';

export const doctorUsage = `Usage: afxdp doctor [IFACE] [options]

Checks what AF_XDP ports need, for this process on this machine: kernel and
AF_XDP support, capabilities, RLIMIT_MEMLOCK against the UMEM size,
hugepages, bpffs, unprivileged BPF, and with IFACE its queues, driver, XDP
features and zero-copy support, Device Plugin sockets/maps and
AFXDP_DEVICES_*. Each check says ok, warn or fail, and how to fix it.

  --netns NS            look for IFACE in network namespace NS
  --frame-count N       UMEM frames per queue to plan for (default ${defaults.frameCount})
  --frame-size B        UMEM frame size to plan for (default ${defaults.frameSize})
  --queue-count N       queues (sockets) per port to plan for (default 1)
  --file-prefix PREFIX  DPDK file prefix of the runtime directory searched for Device
                        Plugin sockets and maps (default ${DEFAULT_FILE_PREFIX})
  --json                one JSON object: {ok, checks: [{id, status, title, detail, fix}]}
  -h, --help            this text

Exit status: 0 when nothing blocks a port (warnings allowed), 1 otherwise, 2 for bad arguments.`;

export type Status = 'ok' | 'warn' | 'fail';

export interface Check {
  id: string;
  status: Status;
  title: string;
  detail: string;
  fix?: string;
}

export { classifyCaps, parseProcStatus } from '../caps';

export function parseCapEff(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function hasCap(capEff: bigint, name: CapName): boolean {
  return ((capEff >> BigInt(CAP[name])) & 1n) === 1n;
}

export function kernelVersion(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const atLeast = (v: [number, number], major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);

/** Soft RLIMIT_MEMLOCK in bytes from /proc/self/limits text; Infinity when unlimited. */
export function parseMemlock(limits: string): number | undefined {
  const m = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(limits);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

export function mib(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unlimited';
  if (bytes >= 1 << 20) return `${+(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${+(bytes / 1024).toFixed(1)} KiB`;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface DoctorOptions {
  iface: string | undefined;
  netns: string | undefined;
  frameCount: number;
  frameSize: number;
  queueCount: number;
  filePrefix: string;
  json: boolean;
}

export function runChecks(o: DoctorOptions): Check[] {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const release = os.release();
  const kv = kernelVersion(release);
  const status = read('/proc/self/status') ?? '';
  const capEff = parseCapEff(status);
  const caps = (Object.keys(CAP) as CapName[]).filter((c) => hasCap(capEff, c));
  // The Kubernetes non-root case: capabilities.add landed in the bounding set only.
  const processCaps = parseProcStatus(status);
  const verdict = processCaps === undefined ? undefined : classifyCaps(processCaps);
  const boundingOnly = processCaps !== undefined && verdict?.case === 'bounding-only'
    ? { what: describeBoundingOnly(processCaps, verdict), fixes: boundingOnlyFixes(processCaps) }
    : undefined;
  const numbered = (fixes: readonly string[]) => fixes.map((fix, i) => `(${i + 1}) ${fix}`).join('; ');

  // Kernel.
  if (!atLeast(kv, 4, 18)) {
    add({ id: 'kernel', status: 'fail', title: 'kernel version', detail: `Linux ${release} has no AF_XDP (needs 4.18, 5.4 or later recommended)`, fix: 'upgrade the kernel' });
  } else if (!atLeast(kv, 5, 4)) {
    add({ id: 'kernel', status: 'warn', title: 'kernel version', detail: `Linux ${release}: AF_XDP without need_wakeup and shared-UMEM fixes`, fix: 'use Linux 5.4 or later (5.19+ for unprivileged pods without CAP_BPF)' });
  } else {
    add({ id: 'kernel', status: 'ok', title: 'kernel version', detail: `Linux ${release}` + (atLeast(kv, 5, 19) ? '' : ' (pods need CAP_BPF for map access before 5.19)') });
  }

  // AF_XDP socket.
  type Binding = { probeAfXdpSocket?(netns?: string): { ok: boolean; errno: number; message: string } };
  let binding: Binding | undefined;
  try {
    binding = native() as unknown as Binding;
  } catch (err) {
    add({ id: 'addon', status: 'fail', title: 'native addon', detail: (err as Error).message, fix: 'reinstall afxdp (npm install afxdp) on a supported Linux platform' });
  }
  if (binding?.probeAfXdpSocket) {
    try {
      const p = binding.probeAfXdpSocket(o.netns);
      if (p.ok) {
        add({ id: 'af_xdp', status: 'ok', title: 'AF_XDP socket', detail: 'socket(AF_XDP, SOCK_RAW) works for this process' });
      } else if (p.errno === 97 /* EAFNOSUPPORT */) {
        add({ id: 'af_xdp', status: 'fail', title: 'AF_XDP socket', detail: `the kernel has no AF_XDP (${p.message})`, fix: 'use a kernel built with CONFIG_XDP_SOCKETS=y' });
      } else if (p.errno === 1 || p.errno === 13) {
        add({
          id: 'af_xdp', status: 'fail', title: 'AF_XDP socket', detail: `socket(AF_XDP) was refused (${p.message}): it needs CAP_NET_RAW` +
            (boundingOnly && verdict?.missing.includes('NET_RAW') ? ', which this non-root process has in its bounding set only (see capabilities)' : ''),
          fix: boundingOnly !== undefined ? 'the three fixes under capabilities below'
            : 'run as root, or grant CAP_NET_RAW (pods: securityContext.capabilities.add: [NET_RAW]; setpriv --inh-caps +net_raw --ambient-caps +net_raw)',
        });
      } else {
        add({ id: 'af_xdp', status: 'fail', title: 'AF_XDP socket', detail: `socket(AF_XDP) failed: ${p.message}`, fix: 'check seccomp/LSM policies that filter socket families' });
      }
    } catch (err) {
      add({ id: 'af_xdp', status: 'fail', title: 'AF_XDP socket', detail: (err as Error).message, fix: o.netns ? `check that network namespace ${o.netns} exists (ip netns list)` : 'see the message' });
    }
  }

  // Capabilities.
  const privileged = hasCap(capEff, 'NET_RAW') && hasCap(capEff, 'NET_ADMIN') && (hasCap(capEff, 'BPF') || hasCap(capEff, 'SYS_ADMIN'));
  const dpModes = hasCap(capEff, 'NET_RAW') && (atLeast(kv, 5, 19) || hasCap(capEff, 'BPF') || hasCap(capEff, 'SYS_ADMIN'));
  const held = `CapEff ${capEff.toString(16).padStart(16, '0')}: ${caps.length ? caps.map((c) => `CAP_${c}`).join(', ') : 'none of CAP_NET_RAW, CAP_IPC_LOCK, CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN'}`;
  if (boundingOnly !== undefined) {
    add({
      id: 'capabilities', status: verdict!.missing.includes('NET_RAW') ? 'fail' : 'warn', title: 'capabilities',
      detail: `${held}; ${boundingOnly.what}`, fix: numbered(boundingOnly.fixes),
    });
  } else if (privileged) {
    add({ id: 'capabilities', status: 'ok', title: 'capabilities', detail: `${held}; every mode works (afxdp attaches its own XDP program)` });
  } else if (dpModes) {
    add({ id: 'capabilities', status: 'warn', title: 'capabilities', detail: `${held}; only use_cni / use_pinned_map ports (the Device Plugin or 'afxdp dp-serve' attaches the program)`, fix: 'for ports that attach XDP themselves run as root, or add CAP_NET_ADMIN and CAP_BPF' });
  } else {
    add({ id: 'capabilities', status: 'fail', title: 'capabilities', detail: `${held}; no port can open: AF_XDP sockets need CAP_NET_RAW` + (atLeast(kv, 5, 19) ? '' : ' (and CAP_BPF before Linux 5.19 for Device Plugin maps)'), fix: 'pods: securityContext.capabilities.add: [NET_RAW, IPC_LOCK]; elsewhere: run as root or setpriv --inh-caps +net_raw,+ipc_lock --ambient-caps +net_raw,+ipc_lock' });
  }

  // RLIMIT_MEMLOCK vs the UMEM.
  const umem = o.frameCount * o.frameSize * o.queueCount;
  const memlock = parseMemlock(read('/proc/self/limits') ?? '');
  const plan = `${o.queueCount} × ${o.frameCount} frames × ${o.frameSize} B = ${mib(umem)}`;
  const memlockFix = boundingOnly !== undefined && verdict!.missing.includes('IPC_LOCK')
    ? '; CAP_IPC_LOCK is in this process\'s bounding set only: the fixes under capabilities make it effective' : '';
  if (hasCap(capEff, 'IPC_LOCK')) {
    add({ id: 'memlock', status: 'ok', title: 'locked memory', detail: `CAP_IPC_LOCK held: the UMEM (${plan}) is not limited by RLIMIT_MEMLOCK (${mib(memlock ?? NaN)})` });
  } else if (memlock === undefined) {
    add({ id: 'memlock', status: 'warn', title: 'locked memory', detail: 'cannot read RLIMIT_MEMLOCK from /proc/self/limits' });
  } else if (memlock >= umem) {
    add({ id: 'memlock', status: 'ok', title: 'locked memory', detail: `RLIMIT_MEMLOCK ${mib(memlock)} fits the UMEM (${plan}); it counts all locked memory of this user` });
  } else {
    const fits = Math.floor(memlock / o.frameSize / o.queueCount);
    add({
      id: 'memlock', status: 'fail', title: 'locked memory',
      detail: `RLIMIT_MEMLOCK ${mib(memlock)} is below the UMEM (${plan}); opening a port fails with ERR_AFXDP_MEMLOCK`,
      fix: 'raise it: ulimit -l unlimited (shell), LimitMEMLOCK=infinity (systemd/containerd), or grant CAP_IPC_LOCK' +
        (fits >= 64 ? `; or use smaller UMEMs (frameCount ${2 ** Math.floor(Math.log2(fits))} or less)` : '') + memlockFix,
    });
  }

  // Hugepages.
  const meminfo = read('/proc/meminfo') ?? '';
  const num = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0);
  const hpTotal = num('HugePages_Total');
  const hpFree = num('HugePages_Free');
  const hpSize = num('Hugepagesize') * 1024;
  if (hpTotal === 0) {
    add({ id: 'hugepages', status: 'ok', title: 'hugepages', detail: 'none configured (optional: UMEMs use normal pages)', fix: `for fewer TLB misses: echo ${Math.ceil(umem / (hpSize || 2 << 20))} > /proc/sys/vm/nr_hugepages` });
  } else if (hpFree * hpSize >= umem) {
    add({ id: 'hugepages', status: 'ok', title: 'hugepages', detail: `${hpFree} of ${hpTotal} free (${mib(hpSize)} each): the UMEM fits` });
  } else {
    add({ id: 'hugepages', status: 'warn', title: 'hugepages', detail: `${hpFree} of ${hpTotal} free (${mib(hpSize)} each), the UMEM needs ${Math.ceil(umem / hpSize)}; afxdp falls back to normal pages`, fix: 'raise /proc/sys/vm/nr_hugepages, or ignore (hugepages are optional)' });
  }

  // bpffs.
  const mounts = (read('/proc/self/mounts') ?? '').split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'bpf').map((f) => f[1]);
  if (mounts.length > 0) {
    add({ id: 'bpffs', status: 'ok', title: 'bpffs', detail: `mounted at ${mounts.join(', ')}` });
  } else {
    add({ id: 'bpffs', status: 'warn', title: 'bpffs', detail: 'no bpf filesystem mounted (needed only for pinned maps: use_pinned_map, dp-serve --pin-dir)', fix: 'mount -t bpf bpf /sys/fs/bpf' });
  }

  // unprivileged_bpf_disabled.
  const ubd = read('/proc/sys/kernel/unprivileged_bpf_disabled')?.trim();
  if (ubd === undefined) {
    add({ id: 'unprivileged_bpf', status: 'warn', title: 'unprivileged BPF', detail: 'cannot read /proc/sys/kernel/unprivileged_bpf_disabled' });
  } else if (ubd === '0') {
    add({ id: 'unprivileged_bpf', status: 'ok', title: 'unprivileged BPF', detail: 'kernel.unprivileged_bpf_disabled = 0' });
  } else if (atLeast(kv, 6, 5) || hasCap(capEff, 'BPF') || hasCap(capEff, 'SYS_ADMIN')) {
    add({ id: 'unprivileged_bpf', status: 'ok', title: 'unprivileged BPF', detail: `kernel.unprivileged_bpf_disabled = ${ubd}; ` + (atLeast(kv, 6, 5) ? 'since Linux 6.5 it only restricts loading programs and creating maps, which use_cni / use_pinned_map ports never do' : 'this process holds CAP_BPF/CAP_SYS_ADMIN') });
  } else {
    add({ id: 'unprivileged_bpf', status: 'warn', title: 'unprivileged BPF', detail: `kernel.unprivileged_bpf_disabled = ${ubd} on Linux ${release}: processes without CAP_BPF cannot use the Device Plugin's XSKMAP (bpf() refused)`, fix: 'give pods CAP_BPF, or sysctl kernel.unprivileged_bpf_disabled=0 (if 1, only a reboot resets it), or use Linux >= 6.5' });
  }

  if (o.iface !== undefined) checks.push(...interfaceChecks(o));
  checks.push(...devicePluginChecks(o.iface, o.filePrefix));
  return checks;
}

interface InterfaceProbe {
  name: string; ifindex: number; mac: string; mtu: number; up: boolean; carrier: boolean; driver?: string | null;
  rxQueues: number; txQueues: number; maxQueues: number; queueSource: string;
  xdpFeatures?: string[] | null; xdpZcMaxSegs?: number | null; xdpFeaturesError?: string | null;
  rxMetadataFeatures?: string[] | null; xskFeatures?: string[] | null;
}

function interfaceChecks(o: DoctorOptions): Check[] {
  const checks: Check[] = [];
  const iface = o.iface!;
  const where = o.netns ? ` in network namespace ${o.netns}` : '';
  let probe: InterfaceProbe;
  try {
    probe = (native() as unknown as { probeInterface(i: string, n?: string): InterfaceProbe }).probeInterface(iface, o.netns);
  } catch (err) {
    return [{ id: 'interface', status: 'fail', title: `interface ${iface}`, detail: `${(err as Error).message}`, fix: `list interfaces with ip${o.netns ? ` -n ${o.netns}` : ''} link` }];
  }
  const link = probe.up ? (probe.carrier ? 'up' : 'up, no carrier') : 'down';
  checks.push({
    id: 'interface', status: probe.up ? 'ok' : 'warn', title: `interface ${iface}`,
    detail: `${probe.mac}, mtu ${probe.mtu}, ${link}${where}, driver ${probe.driver ?? 'unknown'}`,
    ...(probe.up ? {} : { fix: `ip${o.netns ? ` -n ${o.netns}` : ''} link set ${iface} up` }),
  });
  checks.push({
    id: 'queues', status: o.queueCount <= probe.rxQueues ? 'ok' : 'fail', title: 'queues',
    detail: `${probe.rxQueues} rx / ${probe.txQueues} tx queues (max ${probe.maxQueues}, from ${probe.queueSource}); ` +
      'a socket sees only the packets of its queue: use queue_count to cover them, or steer flows with ethtool -N/-X',
    ...(o.queueCount <= probe.rxQueues ? {} : { fix: `ethtool -L ${iface} combined ${o.queueCount}` }),
  });
  const f = probe.xdpFeatures;
  if (f === undefined || f === null) {
    checks.push({ id: 'xdp', status: 'ok', title: 'XDP modes', detail: `unknown (${probe.xdpFeaturesError ?? 'the kernel does not report XDP features'}); afxdp tries native XDP and falls back to generic` });
  } else {
    const native = f.includes('basic') && f.includes('redirect');
    const zc = f.includes('xsk-zerocopy');
    checks.push({
      id: 'xdp', status: native ? 'ok' : 'warn', title: 'XDP modes',
      detail: `features: ${f.length ? f.join(', ') : 'none'}; ${native ? 'native XDP' : 'generic (skb) XDP only: slower'}; ` +
        `${zc ? `zero-copy AF_XDP supported${probe.xdpZcMaxSegs ? ` (max ${probe.xdpZcMaxSegs} segments)` : ''}` : 'copy mode only (no zero-copy)'}`,
      ...(native ? {} : { fix: 'use a driver with native XDP (ice, i40e, mlx5, veth, virtio_net, ...) for speed' }),
    });
    if (probe.mtu > o.frameSize - 256 - 320 && native) {
      checks.push({ id: 'mtu', status: 'warn', title: 'MTU', detail: `mtu ${probe.mtu} may be too large for native XDP with ${o.frameSize}-byte frames (no multi-buffer AF_XDP here)`, fix: `ip link set ${iface} mtu 1500` });
    }
  }
  checks.push(...metadataChecks(probe));
  if (probe.driver === 'veth') {
    // Measured in the benchmark (bench/README.md): on veth busy polling costs and gains nothing measurable.
    checks.push({
      id: 'busy_poll', status: 'warn', title: 'busy polling',
      detail: 'veth: with busy_budget (default 64) every empty receive makes a recvfrom(); in the benchmark\'s rxdrop that cost ' +
        'about 1 µs of system time per packet, with no gain measured',
      fix: 'add busy_budget=0 to the vdev (busyBudget: 0 in openPort)',
    });
  }
  // Program currently attached (ip -d link).
  try {
    const out = execFileSync('ip', [...(o.netns ? ['-n', o.netns] : []), '-j', '-d', 'link', 'show', 'dev', iface], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [l] = JSON.parse(out);
    const prog = l.xdp?.prog ?? l.xdp?.attached?.[0]?.prog;
    if (prog) {
      checks.push({ id: 'xdp_program', status: 'warn', title: 'XDP program', detail: `program ${prog.id} (${prog.name ?? 'unnamed'}) is attached (${l.xdp.mode === 1 ? 'native' : l.xdp.mode === 2 ? 'generic' : `mode ${l.xdp.mode}`}): a port that attaches its own fails; use_cni / use_pinned_map ports use the attached one`, fix: `if it is stale: ip${o.netns ? ` -n ${o.netns}` : ''} link set dev ${iface} xdp off` });
    } else {
      checks.push({ id: 'xdp_program', status: 'ok', title: 'XDP program', detail: 'none attached (a privileged port attaches afxdp\'s)' });
    }
  } catch {
    // no iproute2: skip
  }
  return checks;
}

// What RX and TX metadata the driver offers (netdev xdp-rx-metadata-features
// and xsk-features): informational, nothing fails for their absence.
function metadataChecks(probe: InterfaceProbe): Check[] {
  const rx = probe.rxMetadataFeatures;
  const tx = probe.xskFeatures;
  const unknown = 'unknown (the kernel does not report it: Linux >= 6.3 for RX, 6.8 for TX)';
  return [
    {
      id: 'rx_metadata', status: 'ok', title: 'RX metadata',
      detail: rx === undefined || rx === null ? unknown
        : rx.length === 0 ? 'none: the driver implements no XDP metadata kfuncs (rxMetadata is refused)'
        : `${rx.join(', ')} (rxMetadata: afxdp's program reads them per packet; native XDP)`,
    },
    {
      id: 'tx_metadata', status: 'ok', title: 'TX metadata',
      detail: tx === undefined || tx === null ? unknown
        : `zero-copy: ${tx.length ? tx.join(', ') : 'none'}; copy mode: checksum and a software completion timestamp ` +
          '(txMetadata), launch time not',
    },
  ];
}

function socketState(file: string): 'socket' | 'file' | 'missing' {
  try {
    return fs.statSync(file).isSocket() ? 'socket' : 'file';
  } catch {
    return 'missing';
  }
}

function devicePluginChecks(iface: string | undefined, filePrefix: string): Check[] {
  const checks: Check[] = [];
  const pools = devicesFromEnv(process.env);
  const envDevices = pools.flatMap((p) => p.devices);
  const envText = pools.map((p) => `${p.pool === '' ? 'AFXDP_DEVICES' : `AFXDP_DEVICES_${p.pool}`}=${p.devices.join(' ')}`).join('; ');
  // DPDK 26.11's order: the runtime directory first, then the DP's /tmp mount.
  const runtimeBase = path.join(dpdkRuntimeDir(filePrefix, process.env, typeof process.getuid === 'function' ? process.getuid() : -1), RUNTIME_DP_DIR);
  const found: string[] = [];
  const problems: string[] = [];
  for (const [base, label] of [[runtimeBase, 'DPDK runtime directory'], [DP_BASE_PATH, '']] as const) {
    let dirs: string[] = [];
    try {
      dirs = fs.readdirSync(base).filter((d) => d !== 'afxdp_pool');
    } catch {
      // none
    }
    const names = iface !== undefined ? [iface] : [...new Set([...dirs, ...envDevices])];
    const where = label === '' ? '' : `, ${label}`;
    for (const name of names) {
      const sock = path.join(base, name, DP_SOCKET_NAME);
      const map = path.join(base, name, DP_PINNED_MAP_NAME);
      const s = socketState(sock);
      const m = socketState(map);
      if (s === 'socket') {
        try {
          fs.accessSync(sock, fs.constants.W_OK);
          found.push(`${sock} (use_cni${where})`);
        } catch {
          problems.push(`${sock} exists but this user may not connect to it`);
        }
      } else if (s === 'file') problems.push(`${sock} is not a socket`);
      if (m !== 'missing') found.push(`${map} (use_pinned_map${where})`);
    }
  }
  if (socketState(LEGACY_UDS_PATH) === 'socket') found.push(`${LEGACY_UDS_PATH} (old Device Plugin: dp_path=${LEGACY_UDS_PATH})`);
  const listed = iface === undefined || envDevices.length === 0 || envDevices.includes(iface);
  if (problems.length > 0) {
    checks.push({ id: 'dp_path', status: 'warn', title: 'Device Plugin paths', detail: problems.join('; '), fix: 'the socket belongs to the pod uid the Device Plugin (or afxdp dp-serve --uid) was given' });
  } else {
    checks.push({
      id: 'dp_path', status: 'ok', title: 'Device Plugin paths',
      detail: found.length ? found.join(', ')
        : `none under ${runtimeBase}${iface ? `/${iface}` : ''} or ${DP_BASE_PATH}${iface ? `/${iface}` : ''} ` +
          '(fine for ports that attach XDP themselves; use_cni needs one)',
    });
  }
  checks.push({
    id: 'afxdp_devices', status: listed ? 'ok' : 'warn', title: 'AFXDP_DEVICES_*',
    detail: envText || 'not set (not in a Device Plugin pod)',
    ...(listed ? {} : { fix: `${iface} is not among the devices the Device Plugin allocated; use one of: ${envDevices.join(', ')}` }),
  });
  return checks;
}

const MARK: Record<Status, string> = { ok: '[ ok ]', warn: '[warn]', fail: '[FAIL]' };

export async function doctor(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      netns: { type: 'string' },
      'frame-count': { type: 'string' },
      'frame-size': { type: 'string' },
      'queue-count': { type: 'string' },
      'file-prefix': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(doctorUsage);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`doctor takes at most one interface, got ${positionals.join(' ')}`, doctorUsage);
  const prefix = values['file-prefix'];
  if (prefix !== undefined && (prefix === '' || prefix === '.' || prefix === '..' || /[/\0]/.test(prefix))) {
    throw new UsageError(`--file-prefix must be one directory name, not ${JSON.stringify(prefix)}`, doctorUsage);
  }
  const frameSize = integer('frame-size', values['frame-size'], 2048, 4096, doctorUsage) ?? defaults.frameSize;
  if (frameSize !== 2048 && frameSize !== 4096) throw new UsageError(`--frame-size must be 2048 or 4096, not ${frameSize}`, doctorUsage);
  const options: DoctorOptions = {
    iface: positionals[0],
    netns: values.netns,
    frameCount: integer('frame-count', values['frame-count'], 64, 1 << 20, doctorUsage) ?? defaults.frameCount,
    frameSize,
    queueCount: integer('queue-count', values['queue-count'], 1, 65535, doctorUsage) ?? 1,
    filePrefix: values['file-prefix'] ?? DEFAULT_FILE_PREFIX,
    json: values.json ?? false,
  };
  const checks = runChecks(options);
  const ok = !checks.some((c) => c.status === 'fail');
  if (options.json) {
    console.log(JSON.stringify({ ok, checks }));
  } else {
    for (const c of checks) {
      console.log(`${MARK[c.status]} ${c.title}: ${c.detail}`);
      if (c.fix && c.status !== 'ok') console.log(`       fix: ${c.fix}`);
    }
    const fails = checks.filter((c) => c.status === 'fail').length;
    const warns = checks.filter((c) => c.status === 'warn').length;
    console.log(ok ? `\nNothing blocks an AF_XDP port${warns ? ` (${warns} warning${warns > 1 ? 's' : ''})` : ''}.` : `\n${fails} problem${fails > 1 ? 's block' : ' blocks'} AF_XDP ports; see the fixes above.`);
  }
  return ok ? 0 : 1;
}
