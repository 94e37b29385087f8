// The option table: every port option once, with its DPDK devarg name, kind,
// bounds, default and a one-line description. It drives devargs parsing
// (devargs.ts), validation (port-config.ts), what crosses into the addon
// (nativeOptions in lib/port/open.ts), devargsHelp() for the CLI usage and
// the table in docs/options.md (scripts/options-table.js).
//
// A new devarg: one entry here plus its field in PortOptions/PortConfig
// below, a field in NativeOpenOptions (crates/afxdp-node/src/port.rs) and
// the core config, and a test. docs/design.md "Option schema".

import { limits } from './limits';
import type { DpPathOrigin } from '../dp/paths';

export { limits };

export type PortSource = 'attach' | 'cni' | 'pinned';
export type FrameSize = (typeof limits.frameSizes)[number];
export const HUGEPAGES_POLICIES = ['auto', 'require', 'never'] as const;
export type HugepagesPolicy = (typeof HUGEPAGES_POLICIES)[number];
export const XDP_MODES = ['auto', 'native', 'generic'] as const;
export type XdpMode = (typeof XDP_MODES)[number];
/** Multi-buffer sockets (XDP_USE_SG): auto (when the MTU needs it), on, off. */
export const MULTI_BUFFER_MODES = ['auto', 'on', 'off'] as const;
export type MultiBufferMode = (typeof MULTI_BUFFER_MODES)[number];
/**
 * How a forwarding loop, a stream or `port.on('readable')` waits for packets:
 * 'busy' spins on the rings (a core, lowest latency), 'event' sleeps on
 * readiness at once (least CPU), 'adaptive' spins while packets come and a
 * short window after, then sleeps (lib/fwd/poll-loop.ts; docs/design.md).
 */
export const POLL_MODES = ['busy', 'adaptive', 'event'] as const;
export type PollMode = (typeof POLL_MODES)[number];

/**
 * What `shareUmemWith` takes: an open port (lib/port/port.ts `Port`). Config
 * only needs these two fields, so it does not depend on the port layer.
 */
export interface UmemOwner {
  readonly closed: boolean;
  readonly config: PortConfig;
}

/** What users pass: camelCase devargs, all optional but `iface`, plus afxdp extensions. */
export interface PortOptions {
  iface: string;
  startQueue?: number;
  queueCount?: number;
  sharedUmem?: boolean;
  xdpProg?: string;
  busyBudget?: number;
  forceCopy?: boolean;
  useCni?: boolean;
  usePinnedMap?: boolean;
  dpPath?: string;
  /** DPDK 26.11: a custom xdp_prog's u64 RX timestamp (ns) starts this many bytes before the packet. */
  xdpMetaRxTsOffset?: number;
  /** DPDK 26.11: a u32 hint this many bytes before the packet says whether the timestamp is valid. */
  xdpMetaValidHintOffset?: number;
  /** DPDK 26.11: the timestamp is valid when hint & mask is not 0. */
  xdpMetaRxTsValidMask?: number;
  // afxdp extensions (no devarg):
  /**
   * afxdp's program asks the driver for each packet's RX timestamp, hash and
   * VLAN tag (XDP metadata kfuncs, Linux >= 6.3, native mode) and puts them
   * before the packet: queue.rxTimestamp(slot), rxHash(slot), ...
   */
  rxMetadata?: boolean;
  /** UMEM with tx_metadata_len (Linux >= 6.8): queue.requestTxMetadata(slot, ...) per packet. */
  txMetadata?: boolean;
  /** XDP_UMEM_TX_SW_CSUM: the kernel computes requested checksums itself (copy mode; implies txMetadata). */
  txSoftwareChecksum?: boolean;
  /** UMEM chunk size in bytes. */
  frameSize?: FrameSize;
  /** UMEM frames per queue. */
  frameCount?: number;
  /** Bytes reserved before packet data in every frame, on top of the kernel's 256. */
  headroom?: number;
  rxSize?: number;
  txSize?: number;
  fillSize?: number;
  compSize?: number;
  /** Most descriptors moved per receive/send call. */
  burstSize?: number;
  hugepages?: HugepagesPolicy;
  /** How afxdp attaches its XDP program; only when afxdp attaches it. */
  xdpMode?: XdpMode;
  /**
   * Multi-buffer AF_XDP (XDP_USE_SG, Linux >= 6.6): a packet larger than a
   * frame arrives and leaves as a chain of descriptors (queue.options
   * XDP_PKT_CONTD on all but the last). 'auto' (default): on when a packet
   * the interface's MTU allows does not fit one frame, off otherwise.
   */
  multiBuffer?: MultiBufferMode;
  /** Name sent in the Device Plugin handshake; defaults to the host name at open. */
  podName?: string;
  handshakeTimeoutMs?: number;
  /** Network namespace of the interface: a name under /var/run/netns or a path. */
  netns?: string;
  /**
   * DPDK's EAL --file-prefix: names the runtime directory
   * (<runtime dir>/dpdk/<filePrefix>/afxdp_dp/<iface>/) where a default
   * dp_path is looked for first (DPDK 26.11). Default 'rte'.
   */
  filePrefix?: string;
  /** Poll policy of this port's 'readable' events and streams (default 'adaptive'). */
  pollMode?: PollMode;
  /**
   * An open port whose UMEM this port uses (openPort() only): every queue
   * binds with XDP_SHARED_UMEM to it, also on another interface (Linux >=
   * 5.10), so frames move between the ports without a copy. frameSize,
   * frameCount, headroom and hugepages must equal that port's. Not part of
   * the resolved PortConfig.
   */
  shareUmemWith?: UmemOwner;
}

/** A validated configuration with every default resolved. */
export interface PortConfig {
  /** Where the XSKMAP comes from: afxdp attaches a program, the DP socket, or a pinned map. */
  readonly source: PortSource;
  readonly iface: string;
  readonly startQueue: number;
  readonly queueCount: number;
  readonly sharedUmem: boolean;
  readonly xdpProg: string | undefined;
  readonly busyBudget: number;
  /** Whether the user chose busyBudget (failures to apply it are then reported). */
  readonly busyBudgetExplicit: boolean;
  readonly forceCopy: boolean;
  readonly useCni: boolean;
  readonly usePinnedMap: boolean;
  /**
   * DP socket (cni) or pinned map (pinned); undefined for attach. Without an
   * explicit dp_path this is the /tmp/afxdp_dp fallback until the port opens
   * and looks under the DPDK runtime directory first (dpPathOrigin).
   */
  readonly dpPath: string | undefined;
  /** Where dpPath came from (lib/dp/paths.ts DpPathOrigin); undefined for attach. */
  readonly dpPathOrigin: DpPathOrigin | undefined;
  /** The paths looked at for a default dpPath, in order; empty before open and for an explicit one. */
  readonly dpPathSearched: readonly string[];
  readonly xdpMetaRxTsOffset: number | undefined;
  readonly xdpMetaValidHintOffset: number | undefined;
  readonly xdpMetaRxTsValidMask: number | undefined;
  readonly rxMetadata: boolean;
  readonly txMetadata: boolean;
  readonly txSoftwareChecksum: boolean;
  readonly filePrefix: string;
  readonly frameSize: FrameSize;
  readonly frameCount: number;
  readonly headroom: number;
  readonly rxSize: number;
  readonly txSize: number;
  readonly fillSize: number;
  readonly compSize: number;
  readonly burstSize: number;
  readonly hugepages: HugepagesPolicy;
  readonly xdpMode: XdpMode;
  readonly multiBuffer: MultiBufferMode;
  readonly podName: string | undefined;
  readonly handshakeTimeoutMs: number;
  readonly netns: string | undefined;
  readonly pollMode: PollMode;
  /** N of a devargs string's leading net_af_xdp<N>, if any. */
  readonly vdevIndex: number | undefined;
}

export type OptionName = keyof PortOptions;
/** int: an integer in min..max; path: a string of at most PATH_MAX bytes; port: an open port. */
export type OptionKind = 'int' | 'bool' | 'enum' | 'string' | 'path' | 'port';

export interface OptionSpec {
  /** DPDK net_af_xdp devarg name; none for afxdp extensions. */
  readonly devarg?: string;
  readonly kind: OptionKind;
  readonly min?: number;
  /** Static bound; port-config.ts may lower it from other options (see `bound`). */
  readonly max?: number;
  /** The kernel wants a power of two (ring sizes). */
  readonly powerOfTwo?: boolean;
  readonly values?: readonly (string | number)[];
  readonly required?: boolean;
  /** The default when it is one value; `defaultText` says it otherwise. */
  readonly default?: string | number | boolean;
  readonly defaultText?: string;
  /** A tighter bound that depends on other options, in words. */
  readonly bound?: string;
  /** Passed to the addon (NativeOpenOptions) under the same name. */
  readonly native?: boolean;
  /**
   * An enum whose devarg spells its values differently (DPDK's mode=drv|skb):
   * devarg value → option value.
   */
  readonly devargValues?: Readonly<Record<string, string>>;
  /** Devarg values DPDK takes that afxdp refuses: value → why, and the fix. */
  readonly devargRefused?: Readonly<Record<string, string>>;
  readonly description: string;
}

/** Every option, in documentation order: DPDK's devargs in DPDK's order first. */
export const OPTIONS = Object.freeze({
  iface: { devarg: 'iface', kind: 'string', required: true, description: 'Interface (netdev) name, at most 15 bytes' },
  startQueue: {
    devarg: 'start_queue', kind: 'int', min: 0, max: limits.maxQueueId, default: 0, native: true,
    description: 'First queue id',
  },
  queueCount: {
    devarg: 'queue_count', kind: 'int', min: 1, max: limits.maxQueueCount, default: 1, native: true,
    description: 'Number of consecutive queues, one socket each',
  },
  sharedUmem: {
    devarg: 'shared_umem', kind: 'bool', default: false, native: true,
    description: "One UMEM for all queues (and for openPorts()' other ports with it)",
  },
  xdpProg: { devarg: 'xdp_prog', kind: 'path', description: 'XDP program (ELF) to attach instead of the redirect program' },
  busyBudget: {
    devarg: 'busy_budget', kind: 'int', min: 0, max: limits.maxBusyBudget, defaultText: '64; 0 with use_cni/use_pinned_map',
    description: 'Preferred busy polling budget (0: off)',
  },
  forceCopy: { devarg: 'force_copy', kind: 'bool', default: false, native: true, description: 'Bind in copy mode, never zero-copy' },
  useCni: { devarg: 'use_cni', kind: 'bool', default: false, description: 'Get the XSKMAP from the Device Plugin socket' },
  usePinnedMap: { devarg: 'use_pinned_map', kind: 'bool', default: false, description: 'Open the XSKMAP the Device Plugin pinned' },
  dpPath: {
    devarg: 'dp_path', kind: 'path',
    defaultText: '<runtime dir>/dpdk/<filePrefix>/afxdp_dp/<iface>/afxdp.sock if it exists, ' +
      'else /tmp/afxdp_dp/<iface>/afxdp.sock (xsks_map for use_pinned_map)',
    description: 'Device Plugin socket (use_cni) or pinned map (use_pinned_map)',
  },
  xdpMode: {
    devarg: 'mode', kind: 'enum', values: XDP_MODES, default: 'auto', native: true,
    devargValues: { drv: 'native', skb: 'generic' },
    devargRefused: {
      hw: 'mode=hw (XDP_FLAGS_HW_MODE, the program offloaded to the NIC) cannot feed AF_XDP sockets: an offloaded ' +
        'program cannot redirect into an XSKMAP, and afxdp has no offload path; use mode=drv (native) or mode=skb ' +
        '(generic), or leave mode out to let the kernel pick',
    },
    defaultText: 'auto (the kernel picks)',
    description: 'How afxdp attaches its program: native (mode=drv), generic (mode=skb) or auto; only auto in Device Plugin modes',
  },
  xdpMetaRxTsOffset: {
    devarg: 'xdp_meta_rx_ts_offset', kind: 'int', min: 8, max: limits.maxRxMetaOffset,
    bound: 'needs xdp_prog, use_cni or use_pinned_map (a program that writes its own metadata); not with rxMetadata',
    description: "Bytes before the packet where a custom program's u64 RX timestamp (ns) starts",
  },
  xdpMetaValidHintOffset: {
    devarg: 'xdp_meta_valid_hint_offset', kind: 'int', min: 4, max: limits.maxRxMetaOffset,
    bound: 'needs xdp_meta_rx_ts_offset and xdp_meta_rx_ts_valid_mask',
    description: 'Bytes before the packet of a u32 hint word saying whether the timestamp is valid',
  },
  xdpMetaRxTsValidMask: {
    devarg: 'xdp_meta_rx_ts_valid_mask', kind: 'int', min: 1, max: 0xffff_ffff,
    bound: 'decimal; needs xdp_meta_valid_hint_offset',
    description: 'The timestamp is valid when hint & mask is not 0',
  },
  rxMetadata: {
    kind: 'bool', default: false, native: true,
    description: "afxdp's program writes the driver's RX timestamp, hash and VLAN tag before each packet (native XDP, Linux >= 6.3)",
  },
  txMetadata: {
    kind: 'bool', default: false, native: true,
    description: 'UMEM with tx_metadata_len: per-packet checksum offload, TX timestamp, launch time (Linux >= 6.8)',
  },
  txSoftwareChecksum: {
    kind: 'bool', default: false, native: true,
    description: 'XDP_UMEM_TX_SW_CSUM: the kernel computes requested TX checksums (copy mode); implies txMetadata',
  },
  multiBuffer: {
    kind: 'enum', values: MULTI_BUFFER_MODES, default: 'auto', native: true,
    defaultText: 'auto (on when MTU + 18 exceeds frameSize - 256 - headroom)',
    description: 'Multi-buffer sockets (XDP_USE_SG, Linux >= 6.6): jumbo frames as chains of frames',
  },
  frameSize: {
    kind: 'enum', values: limits.frameSizes, default: 4096, native: true, description: 'UMEM frame size in bytes',
  },
  frameCount: {
    kind: 'int', min: 1, max: limits.maxFrameCount, defaultText: '4096, or fillSize + txSize if larger', native: true,
    bound: 'at least fillSize; frameCount × frameSize below 4 GiB', description: 'UMEM frames per queue',
  },
  headroom: {
    kind: 'int', min: 0, max: 4096 - limits.kernelHeadroom - limits.minFrameData, default: 0, native: true,
    bound: 'at most frameSize - 320', description: "Bytes reserved before packet data, on top of the kernel's 256",
  },
  rxSize: ringSpec('RX ring size'),
  txSize: ringSpec('TX ring size'),
  fillSize: ringSpec('Fill ring size'),
  compSize: ringSpec('Completion ring size'),
  burstSize: {
    kind: 'int', min: 1, max: limits.maxBurstSize, default: 64, native: true,
    bound: 'at most rxSize and txSize', description: 'Most packets per receive/send call',
  },
  hugepages: {
    kind: 'enum', values: HUGEPAGES_POLICIES, default: 'auto', native: true,
    description: 'UMEM in 2 MiB hugepages: try, insist, or never',
  },
  podName: { kind: 'string', defaultText: 'the host name', description: 'Pod name sent in the Device Plugin handshake' },
  handshakeTimeoutMs: {
    kind: 'int', min: 1, max: limits.maxHandshakeTimeoutMs, default: 10_000, description: 'Device Plugin handshake timeout',
  },
  netns: { kind: 'path', native: true, description: 'Network namespace of the interface: a name or a path' },
  filePrefix: {
    kind: 'string', default: 'rte',
    description: "DPDK's --file-prefix: a default dp_path is looked for first under <runtime dir>/dpdk/<filePrefix>/afxdp_dp/",
  },
  pollMode: {
    kind: 'enum', values: POLL_MODES, default: 'adaptive', description: 'How readable events and streams wait for packets',
  },
  shareUmemWith: { kind: 'port', description: 'An open port whose UMEM this one uses (openPort() only)' },
} as const satisfies Record<OptionName, OptionSpec>);

function ringSpec(description: string) {
  return {
    kind: 'int', min: limits.ringMinSize, max: limits.ringMaxSize, powerOfTwo: true, default: 2048, native: true, description,
  } as const;
}

export const OPTION_NAMES = Object.freeze(Object.keys(OPTIONS) as OptionName[]);

export function optionSpec(name: OptionName): OptionSpec {
  return OPTIONS[name];
}

type DevargOf<K extends OptionName> = K extends OptionName
  ? (typeof OPTIONS)[K] extends { devarg: infer D extends string } ? D : never
  : never;
export type DevargOption = { [K in OptionName]: [DevargOf<K>] extends [never] ? never : K }[OptionName];
export type DevargName = DevargOf<OptionName>;

/** Options with a devarg, in DPDK's order. */
export const DEVARG_OPTIONS = Object.freeze(
  OPTION_NAMES.filter((name) => optionSpec(name).devarg !== undefined) as DevargOption[],
);
/** Devargs of DPDK's net_af_xdp that afxdp understands, in DPDK's order. */
export const DEVARG_NAMES: readonly DevargName[] = Object.freeze(
  DEVARG_OPTIONS.map((name) => optionSpec(name).devarg as DevargName),
);

/** The devarg name of an option, if it has one. */
export function devargOf(name: OptionName): DevargName | undefined {
  return optionSpec(name).devarg as DevargName | undefined;
}

/** The option a devarg stands for. */
export function optionOfDevarg(devarg: string): DevargOption | undefined {
  return DEVARG_OPTIONS.find((name) => optionSpec(name).devarg === devarg);
}

/** Options passed to the addon under their own name. */
export type NativeOption = { [K in OptionName]: (typeof OPTIONS)[K] extends { native: true } ? K : never }[OptionName];
export const NATIVE_OPTIONS = Object.freeze(
  OPTION_NAMES.filter((name) => optionSpec(name).native === true) as NativeOption[],
);

type DefaultOf<K extends OptionName> = (typeof OPTIONS)[K] extends { default: infer D } ? D : never;
type Widen<T> = T extends number ? (T extends FrameSize ? FrameSize : number) : T extends boolean ? boolean : T;
type TableDefaults = {
  readonly [K in OptionName as [DefaultOf<K>] extends [never] ? never : K]: K extends 'hugepages'
    ? HugepagesPolicy
    : K extends 'xdpMode'
      ? XdpMode
      : K extends 'multiBuffer'
        ? MultiBufferMode
      : K extends 'pollMode'
        ? PollMode
        : Widen<DefaultOf<K>>;
};

export const defaults = Object.freeze({
  ...(Object.fromEntries(
    OPTION_NAMES.flatMap((name) => {
      const value = optionSpec(name).default;
      return value === undefined ? [] : [[name, value]];
    }),
  ) as unknown as TableDefaults),
  /** DPDK's default (64) where afxdp attaches the program; 0 in Device Plugin modes. */
  busyBudget: Object.freeze({ attach: 64, cni: 0, pinned: 0 }),
  /** Raised to fillSize + txSize when bigger rings are asked for without a frameCount. */
  frameCount: 4096,
});

function describeDefault(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return spec.required === true ? 'required' : '';
  return typeof spec.default === 'boolean' ? (spec.default ? '1' : '0') : String(spec.default);
}

function describeRange(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'int': {
      const range = `${spec.min}..${spec.max}${spec.powerOfTwo === true ? ', power of two' : ''}`;
      return spec.bound === undefined ? range : `${range}; ${spec.bound}`;
    }
    case 'bool':
      return '0 or 1';
    case 'enum': {
      const values = (spec.values ?? []).join(', ');
      if (spec.devargValues === undefined) return values;
      const spelled = Object.entries(spec.devargValues).map(([devarg, value]) => `${spec.devarg}=${devarg} → ${value}`);
      const refused = Object.keys(spec.devargRefused ?? {}).map((devarg) => `${spec.devarg}=${devarg} refused`);
      return `${values} (${[...spelled, ...refused].join(', ')})`;
    }
    case 'path':
      return `path, < ${limits.pathMaxBytes + 1} bytes`;
    case 'string':
      return 'text';
    case 'port':
      return 'a Port';
  }
}

/** The devargs list for CLI usage text: one line per devarg. */
export function devargsHelp(indent = '  '): string {
  const rows = DEVARG_OPTIONS.map((name): [string, string] => {
    const spec = optionSpec(name);
    const dflt = describeDefault(spec);
    const value = spec.kind === 'bool' ? '0|1' : spec.kind === 'int' ? 'N'
      : spec.devargValues !== undefined ? Object.keys(spec.devargValues).join('|') : spec.kind.toUpperCase();
    return [`${spec.devarg}=${value}`,
      `${spec.description}${dflt === '' ? '' : ` (${dflt === 'required' ? 'required' : `default ${dflt}`})`}`];
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}${right}`).join('\n');
}

/** The Markdown table of every option, for docs/options.md. */
export function optionsMarkdownTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const lines = [
    '| option | devarg | kind | values | default | description |',
    '|---|---|---|---|---|---|',
  ];
  for (const name of OPTION_NAMES) {
    const spec = optionSpec(name);
    lines.push(`| \`${name}\` | ${spec.devarg === undefined ? '' : `\`${spec.devarg}\``} | ${spec.kind} | ` +
      `${cell(describeRange(spec))} | ${cell(describeDefault(spec))} | ${cell(spec.description)} |`);
  }
  return lines.join('\n');
}
