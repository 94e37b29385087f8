// Port configuration: DPDK net_af_xdp devargs or a typed options object,
// validated with DPDK's rules and resolved into one frozen PortConfig with
// every default filled in. Pure: nothing here touches the file system or
// the network (xdp_prog and dp_path existence is checked when the port opens).
//
// Deliberate differences from DPDK's net_af_xdp:
// - use_cni + busy_budget is allowed (DPDK: EINVAL). afxdp asks the Device
//   Plugin to set preferred busy polling with /config_busy_poll, since an
//   unprivileged pod cannot set SO_PREFER_BUSY_POLL itself.
// - use_pinned_map + an explicit busy_budget > 0 is allowed; it is attempted
//   and the outcome reported (it needs CAP_NET_ADMIN).
// - Integers are decimal digits only (leading zeros are fine, as for strtol);
//   DPDK's strtol also takes leading spaces and a sign ("-1"), afxdp does not.
//   Trailing junk ("1x") is refused by both. Booleans are exactly 0 or 1,
//   where DPDK's atoi reads "yes" as 0 and "2" as true.
// - Duplicate devargs and empty pairs are errors (see devargs.ts).
// - busy_budget defaults to 64 only when afxdp attaches the XDP program;
//   with use_cni / use_pinned_map it defaults to 0, as DPDK never sets it
//   up in those modes either.

import { Buffer } from 'node:buffer';

import { AfxdpError, codes, quoteInput } from '../errors';
import { closestName, devargsError, findForbiddenCharacter, parseDevargs, withValidNames } from './devargs';
import type { DevargName, DevargsMap } from './devargs';
import { resolveDpPath } from '../dp/paths';
import type { Port } from '../port/port';

export type PortSource = 'attach' | 'cni' | 'pinned';
export type FrameSize = 2048 | 4096;
export type HugepagesPolicy = 'auto' | 'require' | 'never';
export type XdpMode = 'auto' | 'native' | 'generic';
/**
 * How a forwarding loop, a stream or `port.on('readable')` waits for packets:
 * 'busy' spins on the rings (a core, lowest latency), 'event' sleeps on
 * readiness at once (least CPU), 'adaptive' spins while packets come and a
 * short window after, then sleeps (lib/port/poll-loop.ts; docs/design.md).
 */
export const POLL_MODES = ['busy', 'adaptive', 'event'] as const;
export type PollMode = (typeof POLL_MODES)[number];

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
  // afxdp extensions (no devarg):
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
  /** Name sent in the Device Plugin handshake; defaults to the host name at open. */
  podName?: string;
  handshakeTimeoutMs?: number;
  /** Network namespace of the interface: a name under /var/run/netns or a path. */
  netns?: string;
  /** Poll policy of this port's 'readable' events and streams (default 'adaptive'). */
  pollMode?: PollMode;
  /**
   * An open port whose UMEM this port uses (openPort() only): every queue
   * binds with XDP_SHARED_UMEM to it, also on another interface (Linux >=
   * 5.10), so frames move between the ports without a copy. frameSize,
   * frameCount, headroom and hugepages must equal that port's. Not part of
   * the resolved PortConfig.
   */
  shareUmemWith?: Port;
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
  /** DP socket (cni) or pinned map (pinned); undefined for attach. */
  readonly dpPath: string | undefined;
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
  readonly podName: string | undefined;
  readonly handshakeTimeoutMs: number;
  readonly netns: string | undefined;
  readonly pollMode: PollMode;
  /** N of a devargs string's leading net_af_xdp<N>, if any. */
  readonly vdevIndex: number | undefined;
}

export const defaults = Object.freeze({
  startQueue: 0,
  queueCount: 1,
  sharedUmem: false,
  forceCopy: false,
  useCni: false,
  usePinnedMap: false,
  /** DPDK's default (64) where afxdp attaches the program; 0 in Device Plugin modes. */
  busyBudget: Object.freeze({ attach: 64, cni: 0, pinned: 0 }),
  frameSize: 4096 as FrameSize,
  /** Raised to fillSize + txSize when bigger rings are asked for without a frameCount. */
  frameCount: 4096,
  headroom: 0,
  rxSize: 2048,
  txSize: 2048,
  fillSize: 2048,
  compSize: 2048,
  burstSize: 64,
  hugepages: 'auto' as HugepagesPolicy,
  xdpMode: 'auto' as XdpMode,
  pollMode: 'adaptive' as PollMode,
  /** The DP may spend up to 5 s asking kubelet about the pod before it answers. */
  handshakeTimeoutMs: 10_000,
});

/**
 * Bounds afxdp enforces; where DPDK has none, they only keep numbers sane.
 * The native core enforces the same (crates/afxdp-core/src/limits.rs, exported
 * as the addon's limits()); kept here so configs parse without the addon, and
 * test/faults/port.test.ts checks both tables agree.
 */
export const limits = Object.freeze({
  /** Queue ids and counts stay below 65536; the interface decides the real limit at open. */
  maxQueueId: 65_535,
  maxQueueCount: 65_535,
  /** DPDK: busy_budget 0..65535 (SO_BUSY_POLL_BUDGET is a u16 in the kernel). */
  maxBusyBudget: 65_535,
  /** IFNAMSIZ - 1. */
  ifnameMaxBytes: 15,
  /** sizeof(sun_path) - 1, for the Device Plugin socket. */
  socketPathMaxBytes: 107,
  /** PATH_MAX - 1. */
  pathMaxBytes: 4095,
  ringMinSize: 64,
  ringMaxSize: 16_384,
  frameSizes: Object.freeze([2048, 4096] as const),
  maxFrameCount: 1 << 20,
  /** One UMEM (frameCount × frameSize) stays below 4 GiB: frame addresses are u32 offsets. */
  maxUmemBytes: 2 ** 32 - 1,
  /** XDP_PACKET_HEADROOM, reserved by the kernel in every frame. */
  kernelHeadroom: 256,
  /** Room left for packet data after all headroom. */
  minFrameData: 64,
  maxBurstSize: 1024,
  /** The DP reads 64-byte records: "/connect," leaves 55 bytes for the name. */
  podNameMaxBytes: 55,
  maxHandshakeTimeoutMs: 300_000,
});

const DEVARG_OF = Object.freeze({
  iface: 'iface',
  startQueue: 'start_queue',
  queueCount: 'queue_count',
  sharedUmem: 'shared_umem',
  xdpProg: 'xdp_prog',
  busyBudget: 'busy_budget',
  forceCopy: 'force_copy',
  useCni: 'use_cni',
  usePinnedMap: 'use_pinned_map',
  dpPath: 'dp_path',
} as const satisfies Partial<Record<keyof PortOptions, DevargName>>);

type OptionName = keyof PortOptions;

// Every option, checked against PortOptions by the Record type.
const OPTION_NAMES = Object.keys({
  iface: 1, startQueue: 1, queueCount: 1, sharedUmem: 1, xdpProg: 1, busyBudget: 1, forceCopy: 1,
  useCni: 1, usePinnedMap: 1, dpPath: 1, frameSize: 1, frameCount: 1, headroom: 1, rxSize: 1, txSize: 1,
  fillSize: 1, compSize: 1, burstSize: 1, hugepages: 1, xdpMode: 1, podName: 1, handshakeTimeoutMs: 1, netns: 1,
  pollMode: 1, shareUmemWith: 1,
} satisfies Record<OptionName, 1>) as OptionName[];

/**
 * Resolves a devargs string (`net_af_xdp0,iface=eth0,...`) or an options
 * object into a frozen PortConfig.
 *
 * Errors are AfxdpError: ERR_AFXDP_DEVARGS for a devargs string,
 * ERR_AFXDP_INVALID_ARGUMENT for an options object; `argument` names the
 * devarg or option at fault.
 */
export function resolvePortConfig(spec: string | PortOptions): PortConfig {
  if (typeof spec === 'string') {
    const parsed = parseDevargs(spec);
    return resolve(optionsFromDevargs(spec, parsed), devargsContext(spec), parsed.vdevIndex);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new AfxdpError(
      codes.INVALID_ARGUMENT,
      `Invalid port options: expected a devargs string or an options object, got ${describeValue(spec)}; ` +
        'pass e.g. "net_af_xdp0,iface=eth0" or { iface: "eth0" }',
    );
  }
  checkOptionNames(spec);
  return resolve({ ...spec }, optionsContext(), undefined);
}

/**
 * The typed options a devargs string stands for (only the keys it sets), to
 * combine with afxdp extensions: resolvePortConfig({ ...devargsToOptions(s), frameSize: 2048 }).
 */
export function devargsToOptions(spec: string): PortOptions {
  const options = optionsFromDevargs(spec, parseDevargs(spec));
  checkIface(devargsContext(spec), options.iface);
  return options as PortOptions;
}

// ------------------------------------------------------------- contexts

// How errors are worded and coded: devargs names for a devargs string,
// option names for an object.
interface Context {
  form: 'devargs' | 'options';
  name(option: OptionName): string;
  fail(option: OptionName | undefined, problem: string, fix: string): AfxdpError;
}

function devargsContext(spec: string): Context {
  const name = (option: OptionName): string => (DEVARG_OF as Partial<Record<OptionName, string>>)[option] ?? option;
  return {
    form: 'devargs',
    name,
    fail: (option, problem, fix) => devargsError(spec, problem, fix, option === undefined ? undefined : name(option)),
  };
}

function optionsContext(): Context {
  return {
    form: 'options',
    name: (option) => option,
    fail: (option, problem, fix) =>
      new AfxdpError(codes.INVALID_ARGUMENT, `Invalid port options: ${problem}; ${fix}`, { argument: option }),
  };
}

function checkOptionNames(options: object): void {
  for (const key of Object.keys(options)) {
    if ((OPTION_NAMES as string[]).includes(key)) continue;
    const camel = Object.entries(DEVARG_OF).find(([, devarg]) => devarg === key)?.[0];
    const suggestion = camel ?? closestName(key, OPTION_NAMES);
    throw new AfxdpError(
      codes.INVALID_ARGUMENT,
      `Invalid port options: unknown option ${quoteInput(key)}; ` +
        withValidNames(suggestion === undefined ? [] : [`did you mean ${suggestion}?`], 'options', OPTION_NAMES),
      { argument: key },
    );
  }
}

// ------------------------------------------------------ devargs → options

type RawOptions = Partial<Record<OptionName, unknown>>;

function optionsFromDevargs(spec: string, parsed: DevargsMap): RawOptions {
  const context = devargsContext(spec);
  const { args } = parsed;
  const options: RawOptions = {};
  if (args.iface !== undefined) options.iface = args.iface;
  if (args.start_queue !== undefined) options.startQueue = decimal(context, 'startQueue', args.start_queue);
  if (args.queue_count !== undefined) options.queueCount = decimal(context, 'queueCount', args.queue_count);
  if (args.shared_umem !== undefined) options.sharedUmem = flag(context, 'sharedUmem', args.shared_umem);
  if (args.xdp_prog !== undefined) options.xdpProg = args.xdp_prog;
  if (args.busy_budget !== undefined) options.busyBudget = decimal(context, 'busyBudget', args.busy_budget);
  if (args.force_copy !== undefined) options.forceCopy = flag(context, 'forceCopy', args.force_copy);
  if (args.use_cni !== undefined) options.useCni = flag(context, 'useCni', args.use_cni);
  if (args.use_pinned_map !== undefined) options.usePinnedMap = flag(context, 'usePinnedMap', args.use_pinned_map);
  if (args.dp_path !== undefined) options.dpPath = args.dp_path;
  return options;
}

function decimal(context: Context, option: OptionName, text: string): number {
  const name = context.name(option);
  if (!/^[0-9]+$/.test(text)) {
    throw context.fail(
      option,
      `${name} must be a non-negative decimal integer, got ${quoteInput(text)}`,
      `write digits only, without sign, spaces or 0x (e.g. ${name}=1)`,
    );
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw context.fail(option, `${name}=${quoteInput(text, 24)} is far too large`, `use a value below 65536`);
  }
  return value;
}

function flag(context: Context, option: OptionName, text: string): boolean {
  if (text === '0' || text === '1') return text === '1';
  const name = context.name(option);
  throw context.fail(
    option,
    `${name} must be 0 or 1, got ${quoteInput(text)}`,
    `write ${name}=1 or ${name}=0 (DPDK would read it with atoi; afxdp takes exactly 0 or 1)`,
  );
}

// ------------------------------------------------------------- resolve

function resolve(options: RawOptions, context: Context, vdevIndex: number | undefined): PortConfig {
  const iface = checkIface(context, options.iface);
  const startQueue = integerOption(context, options, 'startQueue', 0, limits.maxQueueId) ?? defaults.startQueue;
  const queueCount = integerOption(context, options, 'queueCount', 1, limits.maxQueueCount) ?? defaults.queueCount;
  const sharedUmem = booleanOption(context, options, 'sharedUmem') ?? defaults.sharedUmem;
  const xdpProg = pathOption(context, options, 'xdpProg');
  const explicitBudget = integerOption(context, options, 'busyBudget', 0, limits.maxBusyBudget);
  const forceCopy = booleanOption(context, options, 'forceCopy') ?? defaults.forceCopy;
  const useCni = booleanOption(context, options, 'useCni') ?? defaults.useCni;
  const usePinnedMap = booleanOption(context, options, 'usePinnedMap') ?? defaults.usePinnedMap;
  const explicitDpPath = pathOption(context, options, 'dpPath');
  const xdpMode = oneOfOption(context, options, 'xdpMode', ['auto', 'native', 'generic']) ?? defaults.xdpMode;

  checkDeviceModeRules(context, { useCni, usePinnedMap, xdpProg, dpPath: explicitDpPath, xdpMode });
  const source: PortSource = useCni ? 'cni' : usePinnedMap ? 'pinned' : 'attach';
  const dpPath = source === 'attach' ? undefined : resolveDpPath(source, iface, explicitDpPath);
  if (source === 'cni') checkSocketPath(context, dpPath!);

  const memory = resolveMemory(context, options);
  return Object.freeze({
    source,
    iface,
    startQueue,
    queueCount,
    sharedUmem,
    xdpProg,
    busyBudget: explicitBudget ?? defaults.busyBudget[source],
    busyBudgetExplicit: explicitBudget !== undefined,
    forceCopy,
    useCni,
    usePinnedMap,
    dpPath,
    ...memory,
    hugepages: oneOfOption(context, options, 'hugepages', ['auto', 'require', 'never']) ?? defaults.hugepages,
    xdpMode,
    podName: checkPodName(context, options.podName),
    handshakeTimeoutMs:
      integerOption(context, options, 'handshakeTimeoutMs', 1, limits.maxHandshakeTimeoutMs) ??
      defaults.handshakeTimeoutMs,
    netns: checkNetns(context, options.netns),
    pollMode: oneOfOption(context, options, 'pollMode', POLL_MODES) ?? defaults.pollMode,
    vdevIndex,
  });
}

// DPDK's argument rules for the Device Plugin modes, each its own error.
function checkDeviceModeRules(
  context: Context,
  config: { useCni: boolean; usePinnedMap: boolean; xdpProg?: string; dpPath?: string; xdpMode: XdpMode },
): void {
  const { name } = context;
  if (config.useCni && config.usePinnedMap) {
    throw context.fail(
      'usePinnedMap',
      `${name('useCni')} and ${name('usePinnedMap')} cannot be combined`,
      `keep ${name('useCni')} to get the XSKMAP from the Device Plugin socket, ` +
        `or ${name('usePinnedMap')} to open the map the Device Plugin pinned`,
    );
  }
  const deviceMode = config.useCni ? 'useCni' : config.usePinnedMap ? 'usePinnedMap' : undefined;
  if (deviceMode !== undefined && config.xdpProg !== undefined) {
    throw context.fail(
      'xdpProg',
      `${name('xdpProg')} cannot be used with ${name(deviceMode)}: the Device Plugin loads the XDP program`,
      `remove ${name('xdpProg')}, or remove ${name(deviceMode)} and run with CAP_NET_ADMIN and CAP_BPF to attach your own`,
    );
  }
  if (deviceMode === undefined && config.dpPath !== undefined) {
    throw context.fail(
      'dpPath',
      `${name('dpPath')} needs ${name('useCni')} or ${name('usePinnedMap')}`,
      `add ${name('useCni')}${asFlag(context)} for a Device Plugin socket or ` +
        `${name('usePinnedMap')}${asFlag(context)} for a pinned map, or remove ${name('dpPath')}`,
    );
  }
  if (deviceMode !== undefined && config.xdpMode !== 'auto') {
    throw context.fail(
      'xdpMode',
      `xdpMode "${config.xdpMode}" cannot be used with ${name(deviceMode)}: the Device Plugin attaches the XDP program`,
      'remove xdpMode',
    );
  }
}

function asFlag(context: Context): string {
  return context.form === 'devargs' ? '=1' : ': true';
}

function checkSocketPath(context: Context, dpPath: string): void {
  const bytes = Buffer.byteLength(dpPath);
  if (bytes <= limits.socketPathMaxBytes) return;
  throw context.fail(
    'dpPath',
    `${context.name('dpPath')} is ${bytes} bytes long, but a Unix socket path holds at most ${limits.socketPathMaxBytes}`,
    'use a shorter path (the Device Plugin mounts its socket at /tmp/afxdp_dp/<iface>/afxdp.sock)',
  );
}

// UMEM and ring geometry (afxdp extensions).
function resolveMemory(context: Context, options: RawOptions) {
  const frameSize = (oneOfOption(context, options, 'frameSize', limits.frameSizes) ?? defaults.frameSize) as FrameSize;
  const rxSize = ringOption(context, options, 'rxSize') ?? defaults.rxSize;
  const txSize = ringOption(context, options, 'txSize') ?? defaults.txSize;
  const fillSize = ringOption(context, options, 'fillSize') ?? defaults.fillSize;
  const compSize = ringOption(context, options, 'compSize') ?? defaults.compSize;

  const maxFrames = Math.min(limits.maxFrameCount, Math.floor(limits.maxUmemBytes / frameSize));
  const frameCount =
    integerOption(context, options, 'frameCount', 1, limits.maxFrameCount) ??
    Math.min(maxFrames, Math.max(defaults.frameCount, fillSize + txSize));
  if (frameCount > maxFrames) {
    throw context.fail(
      'frameCount',
      `frameCount ${frameCount} × frameSize ${frameSize} is ${frameCount * frameSize} bytes; one UMEM must stay below 4 GiB ` +
        '(frame addresses are 32-bit offsets)',
      `use frameCount ${maxFrames} or less${frameSize === 4096 ? ', or frameSize 2048' : ''}`,
    );
  }
  if (frameCount < fillSize) {
    throw context.fail(
      'frameCount',
      `frameCount (${frameCount}) must be at least fillSize (${fillSize}) so the fill ring can be stocked`,
      'raise frameCount or lower fillSize',
    );
  }

  const maxHeadroom = frameSize - limits.kernelHeadroom - limits.minFrameData;
  const headroom = integerOption(context, options, 'headroom', 0, maxHeadroom) ?? defaults.headroom;

  const maxBurst = Math.min(limits.maxBurstSize, rxSize, txSize);
  const burstSize = integerOption(context, options, 'burstSize', 1, maxBurst) ?? Math.min(defaults.burstSize, maxBurst);
  return { frameSize, frameCount, headroom, rxSize, txSize, fillSize, compSize, burstSize };
}

// ------------------------------------------------------------- checkers

function checkIface(context: Context, value: unknown): string {
  const name = context.name('iface');
  if (value === undefined) {
    throw context.fail(
      'iface',
      `${name} is required`,
      context.form === 'devargs'
        ? 'add iface=<netdev>, e.g. net_af_xdp0,iface=eth0'
        : 'pass the netdev name, e.g. { iface: "eth0" }',
    );
  }
  const text = stringValue(context, 'iface', value);
  const bytes = Buffer.byteLength(text);
  let problem: string | undefined;
  if (bytes > limits.ifnameMaxBytes) problem = `is ${bytes} bytes long; Linux interface names have at most 15`;
  else if (text === '.' || text === '..') problem = 'cannot be "." or ".."';
  else if (/[/:\s]/.test(text)) problem = 'cannot contain "/", ":" or whitespace';
  else if (text.includes('%')) problem = 'cannot contain "%" (the kernel treats it as a name template)';
  if (problem === undefined) return text;
  throw context.fail('iface', `${name} ${quoteInput(text)} ${problem}`, 'pass the name `ip link` shows');
}

function checkPodName(context: Context, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = stringValue(context, 'podName', value);
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.podNameMaxBytes) {
    throw context.fail(
      'podName',
      `podName is ${bytes} bytes long; the Device Plugin reads at most ${limits.podNameMaxBytes}`,
      'pass the pod name as Kubernetes shows it',
    );
  }
  if (/[,\s]/.test(text)) {
    throw context.fail(
      'podName',
      `podName ${quoteInput(text)} contains a comma or whitespace, which the Device Plugin handshake cannot carry`,
      'pass the pod name as Kubernetes shows it',
    );
  }
  return text;
}

function checkNetns(context: Context, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = pathOption(context, { netns: value }, 'netns')!;
  if (!text.includes('/') && (text === '.' || text === '..')) {
    throw context.fail('netns', `netns ${quoteInput(text)} is not a namespace name`, 'pass a name from `ip netns` or a path');
  }
  return text;
}

function pathOption(context: Context, options: RawOptions, option: OptionName): string | undefined {
  const value = options[option];
  if (value === undefined) return undefined;
  const text = stringValue(context, option, value);
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.pathMaxBytes) {
    throw context.fail(option, `${context.name(option)} is ${bytes} bytes long`, `use a path below ${limits.pathMaxBytes + 1} bytes`);
  }
  return text;
}

// A non-empty string without control or invisible characters.
function stringValue(context: Context, option: OptionName, value: unknown): string {
  const name = context.name(option);
  if (typeof value !== 'string') {
    throw context.fail(option, `${name} must be a string, got ${describeValue(value)}`, `pass ${name} as a string`);
  }
  if (value === '') throw context.fail(option, `${name} is empty`, `give ${name} a value or leave it out`);
  const bad = findForbiddenCharacter(value);
  if (bad !== undefined) {
    const hex = bad.codePoint.toString(16).toUpperCase().padStart(4, '0');
    throw context.fail(
      option,
      `${name} ${quoteInput(value)} contains the control or invisible character U+${hex}`,
      'remove it',
    );
  }
  return value;
}

function integerOption(context: Context, options: RawOptions, option: OptionName, min: number, max: number) {
  const value = options[option];
  if (value === undefined) return undefined;
  const name = context.name(option);
  if (typeof value !== 'number') {
    throw context.fail(
      option,
      `${name} must be a number, got ${describeValue(value)}`,
      typeof value === 'string' && /^[0-9]+$/.test(value) ? `pass ${value} without quotes` : `pass an integer in ${min}..${max}`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw context.fail(option, `${name} must be an integer in ${min}..${max}, got ${describeValue(value)}`, `pick a value in ${min}..${max}`);
  }
  return value;
}

function ringOption(context: Context, options: RawOptions, option: OptionName): number | undefined {
  const size = integerOption(context, options, option, limits.ringMinSize, limits.ringMaxSize);
  if (size === undefined || (size & (size - 1)) === 0) return size;
  throw context.fail(
    option,
    `${context.name(option)} must be a power of two (the kernel requires it for AF_XDP rings), got ${size}`,
    `use e.g. ${2 ** Math.round(Math.log2(size))}`,
  );
}

function booleanOption(context: Context, options: RawOptions, option: OptionName): boolean | undefined {
  const value = options[option];
  if (value === undefined || typeof value === 'boolean') return value;
  const name = context.name(option);
  throw context.fail(option, `${name} must be true or false, got ${describeValue(value)}`, `pass ${name}: true or false`);
}

function oneOfOption<T extends string | number>(
  context: Context,
  options: RawOptions,
  option: OptionName,
  allowed: readonly T[],
): T | undefined {
  const value = options[option];
  if (value === undefined) return undefined;
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  const list = allowed.map((item) => (typeof item === 'string' ? `'${item}'` : String(item))).join(', ');
  throw context.fail(option, `${context.name(option)} must be one of ${list}, got ${describeValue(value)}`, `pick one of ${list}`);
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `the string ${quoteInput(value, 24)}`;
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `the bigint ${value}n`;
    case 'undefined':
      return 'undefined';
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
    default:
      return `a ${typeof value}`;
  }
}
