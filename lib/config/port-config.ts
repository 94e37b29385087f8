// Port configuration: DPDK net_af_xdp devargs or a typed options object,
// validated with DPDK's rules and resolved into one frozen PortConfig with
// every default filled in. Pure: nothing here touches the file system or
// the network (xdp_prog and dp_path existence is checked when the port opens).
//
// Deliberate differences from DPDK's net_af_xdp (docs/design.md, "Where
// afxdp deliberately differs from DPDK's devargs", has the list with reasons):
// - use_cni + busy_budget is allowed (DPDK: EINVAL). afxdp asks the Device
//   Plugin to set preferred busy polling with /config_busy_poll, since an
//   unprivileged pod cannot set SO_PREFER_BUSY_POLL itself.
// - use_pinned_map + an explicit busy_budget > 0 is allowed; it is attempted
//   and the outcome reported (it needs CAP_NET_ADMIN).
// - Integers are decimal digits only (leading zeros are fine, as for strtol).
//   DPDK's strtol has no end check: it takes leading spaces and "+", reads
//   "1x" as 1 and "abc" as 0; afxdp refuses all of them. Booleans are
//   exactly 0 or 1, where DPDK's strtol reads "yes" as 0 and "2" as true.
// - Duplicate devargs and empty pairs are errors (see devargs.ts); DPDK
//   applies every occurrence (two mode= values are ORed).
// - mode=hw is refused (no XSKMAP redirect from an offloaded program), and
//   mode= with use_cni / use_pinned_map is refused where DPDK ignores it.
// - busy_budget defaults to 64 only when afxdp attaches the XDP program;
//   with use_cni / use_pinned_map it defaults to 0, as DPDK never sets it
//   up in those modes either.
// - A use_cni socket path over sun_path is refused; DPDK truncates it.

import { Buffer } from 'node:buffer';

import { AfxdpError, codes, quoteInput } from '../errors';
import { closestName, devargsError, findForbiddenCharacter, parseDevargs, withValidNames } from './devargs';
import type { DevargsMap } from './devargs';
import { DP_BASE_PATH, lookupDpPath, resolveDpPath } from '../dp/paths';
import type { DpPathOrigin, DpPathProbe } from '../dp/paths';
import {
  DEVARG_OPTIONS, OPTION_NAMES, defaults, devargOf, limits, optionOfDevarg, optionSpec,
} from './options';
import type { OptionName, PortConfig, PortOptions, PortSource, XdpMode } from './options';

// The table and its types live in options.ts; re-exported where they always were.
export { POLL_MODES, defaults, limits } from './options';
export type {
  FrameSize, HugepagesPolicy, PollMode, PortConfig, PortOptions, PortSource, UmemOwner, XdpMode,
} from './options';

// Configs this module resolved: passed to resolvePortConfig again, they are
// used as they are (so `afxdp fwd` parses each --vdev once).
const resolved = new WeakSet<object>();

/** Whether `value` is a PortConfig from resolvePortConfig(). */
export function isPortConfig(value: unknown): value is PortConfig {
  return typeof value === 'object' && value !== null && resolved.has(value);
}

/**
 * Resolves a devargs string (`net_af_xdp0,iface=eth0,...`) or an options
 * object into a frozen PortConfig. `extensions` adds options a devargs
 * string cannot carry (afxdp extensions such as frameSize or netns), so a
 * devargs string is parsed once. A PortConfig this function returned is
 * returned as it is.
 *
 * Errors are AfxdpError: ERR_AFXDP_DEVARGS for a devargs string,
 * ERR_AFXDP_INVALID_ARGUMENT for an options object (or `extensions`);
 * `argument` names the devarg or option at fault.
 */
export function resolvePortConfig(spec: string | PortOptions | PortConfig, extensions?: Partial<PortOptions>): PortConfig {
  if (isPortConfig(spec) && extensions === undefined) return spec;
  if (typeof spec === 'string') {
    const parsed = parseDevargs(spec);
    const fromDevargs = optionsFromDevargs(spec, parsed);
    if (extensions === undefined) return resolve(fromDevargs, devargsContext(spec), parsed.vdevIndex);
    checkOptions(extensions);
    const extra = new Set(Object.keys(extensions).filter((key) => extensions[key as OptionName] !== undefined));
    return resolve({ ...fromDevargs, ...extensions }, devargsContext(spec, extra), parsed.vdevIndex);
  }
  checkOptions(spec);
  if (isPortConfig(spec)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT,
      'Invalid port options: extensions apply to a devargs string or an options object, not to a resolved PortConfig; ' +
        'pass the devargs string or the options instead', { argument: 'extensions' });
  }
  if (extensions !== undefined) checkOptions(extensions);
  return resolve({ ...spec, ...extensions }, optionsContext(), undefined);
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
// option names for an object (and for options added to a devargs string).
interface Context {
  form: 'devargs' | 'options';
  name(option: OptionName): string;
  fail(option: OptionName | undefined, problem: string, fix: string): AfxdpError;
}

function devargsContext(spec: string, extensions: ReadonlySet<string> = new Set()): Context {
  const options = optionsContext();
  const name = (option: OptionName): string => (extensions.has(option) ? option : devargOf(option) ?? option);
  return {
    form: 'devargs',
    name,
    fail: (option, problem, fix) =>
      option !== undefined && extensions.has(option)
        ? options.fail(option, problem, fix)
        : devargsError(spec, problem, fix, option === undefined ? undefined : name(option)),
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

function checkOptions(spec: unknown): asserts spec is PortOptions {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new AfxdpError(
      codes.INVALID_ARGUMENT,
      `Invalid port options: expected a devargs string or an options object, got ${describeValue(spec)}; ` +
        'pass e.g. "net_af_xdp0,iface=eth0" or { iface: "eth0" }',
    );
  }
  if (isPortConfig(spec)) return;
  for (const key of Object.keys(spec)) {
    if ((OPTION_NAMES as readonly string[]).includes(key)) continue;
    const suggestion = optionOfDevarg(key) ?? closestName(key, OPTION_NAMES);
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
  const options: RawOptions = {};
  for (const option of DEVARG_OPTIONS) {
    const text = parsed.args[devargOf(option)!];
    if (text === undefined) continue;
    const { kind } = optionSpec(option);
    options[option] = kind === 'int' ? decimal(context, option, text)
      : kind === 'bool' ? flag(context, option, text)
      : optionSpec(option).devargValues !== undefined ? devargValue(context, option, text)
      : text;
  }
  return options;
}

// An enum devarg spelled DPDK's way (mode=drv → xdpMode 'native').
function devargValue(context: Context, option: OptionName, text: string): string {
  const spec = optionSpec(option);
  const mapped = spec.devargValues?.[text];
  if (mapped !== undefined && Object.hasOwn(spec.devargValues!, text)) return mapped;
  const name = context.name(option);
  const refused = spec.devargRefused !== undefined && Object.hasOwn(spec.devargRefused, text) ? spec.devargRefused[text] : undefined;
  if (refused !== undefined) {
    const cut = refused.indexOf('; ');
    throw context.fail(option, refused.slice(0, cut), refused.slice(cut + 2));
  }
  const accepted = Object.keys(spec.devargValues ?? {});
  throw context.fail(
    option,
    `${name} must be ${accepted.join(' or ')}, got ${quoteInput(text)}`,
    `write ${accepted.map((value) => `${name}=${value}`).join(' or ')}` +
      (text.toLowerCase() !== text && Object.hasOwn(spec.devargValues ?? {}, text.toLowerCase())
        ? ` (values are lower case, as in DPDK: ${name}=${text.toLowerCase()})` : '') +
      ', or leave it out to let the kernel pick',
  );
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
    `write ${name}=1 or ${name}=0 (DPDK would read it with strtol; afxdp takes exactly 0 or 1)`,
  );
}

// ------------------------------------------------------------- resolve

// Options whose bounds or default depend on others (resolveMemory), and
// shareUmemWith, which is not part of the config.
const DEPENDENT: ReadonlySet<OptionName> = new Set(['frameCount', 'headroom', 'burstSize', 'shareUmemWith']);

// Checks beyond an option's kind.
const CHECKERS: Partial<Record<OptionName, (context: Context, value: unknown) => unknown>> = {
  iface: checkIface,
  podName: checkPodName,
  netns: checkNetns,
  filePrefix: checkFilePrefix,
};

function resolve(options: RawOptions, context: Context, vdevIndex: number | undefined): PortConfig {
  // Every option with a fixed default or none, in table order.
  const values: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    if (DEPENDENT.has(name)) continue;
    const checker = CHECKERS[name];
    values[name] = (checker !== undefined ? checker(context, options[name]) : readOption(context, options, name)) ??
      optionSpec(name).default;
  }
  const { useCni, usePinnedMap, iface } = values as { useCni: boolean; usePinnedMap: boolean; iface: string };
  const explicitDpPath = values.dpPath as string | undefined;
  const explicitBudget = values.busyBudget as number | undefined;
  checkDeviceModeRules(context, {
    useCni, usePinnedMap, xdpProg: values.xdpProg as string | undefined, dpPath: explicitDpPath, xdpMode: values.xdpMode as XdpMode,
  });
  const source: PortSource = useCni ? 'cni' : usePinnedMap ? 'pinned' : 'attach';
  checkMetadataRules(context, source, values);
  const dpPath = source === 'attach' ? undefined : resolveDpPath(source, iface, explicitDpPath);
  if (source === 'cni') checkSocketPath(context, dpPath!);

  const config = {
    source,
    ...values,
    busyBudget: explicitBudget ?? defaults.busyBudget[source],
    busyBudgetExplicit: explicitBudget !== undefined,
    dpPath,
    dpPathOrigin: (source === 'attach' ? undefined : explicitDpPath === undefined ? 'default' : 'explicit') as DpPathOrigin | undefined,
    dpPathSearched: Object.freeze([]) as readonly string[],
    ...resolveMemory(context, options, values as Pick<PortConfig, 'frameSize' | 'rxSize' | 'txSize' | 'fillSize'>),
    vdevIndex,
  } as PortConfig;
  resolved.add(config);
  return Object.freeze(config);
}

// An option checked by its kind and table bounds (`max` lowers the bound).
function readOption(context: Context, options: RawOptions, name: OptionName, max?: number): unknown {
  const spec = optionSpec(name);
  switch (spec.kind) {
    case 'int': {
      const value = integerOption(context, options, name, spec.min!, max ?? spec.max!);
      return spec.powerOfTwo === true ? powerOfTwo(context, name, value) : value;
    }
    case 'bool':
      return booleanOption(context, options, name);
    case 'enum':
      return oneOfOption(context, options, name, spec.values!);
    case 'path':
      return pathOption(context, options, name);
    case 'string':
      return options[name] === undefined ? undefined : stringValue(context, name, options[name]);
    case 'port':
      return undefined;
  }
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
    // DPDK ignores mode= there (it loads no program); afxdp says so instead.
    const written = name('xdpMode') === 'xdpMode' ? `xdpMode "${config.xdpMode}"`
      : `${name('xdpMode')}=${Object.entries(optionSpec('xdpMode').devargValues ?? {}).find(([, v]) => v === config.xdpMode)?.[0]}`;
    throw context.fail(
      'xdpMode',
      `${written} cannot be used with ${name(deviceMode)}: the Device Plugin attaches the XDP program, in its own mode`,
      `remove ${name('xdpMode')} (the Device Plugin's pool config sets the attach mode)`,
    );
  }
}

// RX metadata: afxdp's program (rxMetadata) or a custom one described by
// DPDK 26.11's xdp_meta_* devargs, never both; TX metadata options.
function checkMetadataRules(context: Context, source: PortSource, values: Record<string, unknown>): void {
  const { name } = context;
  const ts = values.xdpMetaRxTsOffset as number | undefined;
  const hint = values.xdpMetaValidHintOffset as number | undefined;
  const mask = values.xdpMetaRxTsValidMask as number | undefined;
  if (values.rxMetadata === true && source !== 'attach') {
    throw context.fail('rxMetadata', `rxMetadata cannot be used with ${name(source === 'cni' ? 'useCni' : 'usePinnedMap')}: ` +
      'the Device Plugin loads the XDP program, not afxdp', 'remove rxMetadata; if the Device Plugin\'s program writes ' +
      `metadata, describe it with ${name('xdpMetaRxTsOffset')}`);
  }
  if (values.rxMetadata === true && values.xdpProg !== undefined) {
    throw context.fail('rxMetadata', `rxMetadata cannot be used with ${name('xdpProg')}: it selects afxdp's own program`,
      `remove rxMetadata and describe your program's metadata with ${name('xdpMetaRxTsOffset')}`);
  }
  if (ts !== undefined && values.rxMetadata === true) {
    throw context.fail('xdpMetaRxTsOffset', `${name('xdpMetaRxTsOffset')} cannot be used with rxMetadata: afxdp's program ` +
      'writes its own layout', `remove ${name('xdpMetaRxTsOffset')} (queue.rxTimestamp reads afxdp's layout)`);
  }
  if (ts !== undefined && source === 'attach' && values.xdpProg === undefined) {
    throw context.fail('xdpMetaRxTsOffset', `${name('xdpMetaRxTsOffset')} describes metadata a custom program writes, ` +
      "but afxdp's redirect program writes none", `add ${name('xdpProg')}, or use rxMetadata for afxdp's metadata program`);
  }
  if ((hint !== undefined || mask !== undefined) && ts === undefined) {
    throw context.fail(hint !== undefined ? 'xdpMetaValidHintOffset' : 'xdpMetaRxTsValidMask',
      `${name(hint !== undefined ? 'xdpMetaValidHintOffset' : 'xdpMetaRxTsValidMask')} needs ${name('xdpMetaRxTsOffset')}`,
      `add ${name('xdpMetaRxTsOffset')}, the offset of the timestamp it validates`);
  }
  if ((hint === undefined) !== (mask === undefined)) {
    const missing = hint === undefined ? 'xdpMetaValidHintOffset' : 'xdpMetaRxTsValidMask';
    throw context.fail(missing, `${name('xdpMetaValidHintOffset')} and ${name('xdpMetaRxTsValidMask')} go together`,
      `add ${name(missing)}, or remove both (then a timestamp of 0 means none)`);
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

/**
 * DPDK 26.11's default dp_path lookup for a config whose dpPath is the
 * default ('default' origin): the runtime-directory path when `probe` finds
 * something there, else the /tmp/afxdp_dp fallback; either way the origin
 * and the paths looked at are recorded. Any other config is returned as it
 * is. Pure given `probe` (openPort passes the file system, env and uid).
 * A found socket path longer than a Unix socket path can hold is refused,
 * with the limit named, as an explicit one is.
 */
export function locateDpPath(config: PortConfig, probe: DpPathProbe): PortConfig {
  if (!isPortConfig(config)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, 'locateDpPath takes a config from resolvePortConfig()', { argument: 'config' });
  }
  if (config.source === 'attach' || config.dpPathOrigin !== 'default') return config;
  const found = lookupDpPath(config.source, config.iface, config.filePrefix, probe);
  if (config.source === 'cni' && Buffer.byteLength(found.path) > limits.socketPathMaxBytes) {
    throw new AfxdpError(
      codes.INVALID_ARGUMENT,
      `Invalid port options: the default dp_path ${quoteInput(found.path, 160)} (found under the DPDK runtime directory) is ` +
        `${Buffer.byteLength(found.path)} bytes long, but a Unix socket path holds at most ${limits.socketPathMaxBytes}; ` +
        `pass dp_path explicitly (the Device Plugin's own mount is ${DP_BASE_PATH}/${config.iface}/afxdp.sock), ` +
        'or a shorter filePrefix / runtime directory (RUNTIME_DIRECTORY, XDG_RUNTIME_DIR)',
      { argument: 'dpPath', path: found.path },
    );
  }
  const located = Object.freeze({
    ...config, dpPath: found.path, dpPathOrigin: found.origin, dpPathSearched: Object.freeze([...found.searched]),
  }) as PortConfig;
  resolved.add(located);
  return located;
}

// UMEM geometry whose bounds or default depend on other options.
function resolveMemory(context: Context, options: RawOptions, rings: Pick<PortConfig, 'frameSize' | 'rxSize' | 'txSize' | 'fillSize'>) {
  const { frameSize, rxSize, txSize, fillSize } = rings;
  const maxFrames = Math.min(limits.maxFrameCount, Math.floor(limits.maxUmemBytes / frameSize));
  const frameCount =
    (readOption(context, options, 'frameCount') as number | undefined) ??
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
  const headroom = (readOption(context, options, 'headroom', maxHeadroom) as number | undefined) ?? defaults.headroom;

  const maxBurst = Math.min(limits.maxBurstSize, rxSize, txSize);
  const burstSize = (readOption(context, options, 'burstSize', maxBurst) as number | undefined) ??
    Math.min(defaults.burstSize, maxBurst);
  return { frameCount, headroom, burstSize };
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

// DPDK's --file-prefix becomes one directory name under <runtime dir>/dpdk/.
function checkFilePrefix(context: Context, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = stringValue(context, 'filePrefix', value);
  const bytes = Buffer.byteLength(text);
  let problem: string | undefined;
  if (text === '.' || text === '..') problem = 'cannot be "." or ".."';
  else if (text.includes('/')) problem = 'cannot contain "/"';
  else if (bytes > limits.fileNameMaxBytes) problem = `is ${bytes} bytes long; a directory name has at most ${limits.fileNameMaxBytes}`;
  if (problem === undefined) return text;
  throw context.fail('filePrefix', `filePrefix ${quoteInput(text)} ${problem}`, "pass DPDK's --file-prefix as it is given to EAL (default rte)");
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

function powerOfTwo(context: Context, option: OptionName, size: number | undefined): number | undefined {
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
