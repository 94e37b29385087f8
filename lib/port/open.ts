// openPort() / openPorts(): devargs or options → resolved config → XSKMAP
// source → native sockets → Port.
//
// XSKMAP sources (PortConfig.source):
//   attach  afxdp attaches its redirect program (or xdp_prog) itself;
//   pinned  the native side opens the map the Device Plugin pinned at dp_path;
//   cni     one handshake session with the Device Plugin at dp_path gives the
//           map fd; the sockets are created without loading any program and
//           inserted at their queue ids; then, if busy_budget > 0, the Device
//           Plugin is asked to set busy polling on each socket; then /fin.
// The Device Plugin accepts one connection per allocation, so ports whose
// dp_path is the same socket must share one session: openPorts() does that.
import fs from 'node:fs';
import path from 'node:path';

import { locateDpPath, resolvePortConfig } from '../config/port-config';
import type { PortConfig, PortOptions } from '../config/port-config';
import { NATIVE_OPTIONS } from '../config/options';
import type { NativeOption } from '../config/options';
import { native, NativeFd, NativeOpenOptions, NativePort } from '../native';
import { AfxdpError, codes, fromNative, quoteInput } from '../errors';
import { DpSession, withPath } from '../dp/session';
import type { HandshakeResult } from '../dp/state-machine';
import { Port, BusyPollStatus } from './port';
import { call } from './native-call';
import { checkUmemSharing } from './umem-share';
import { abortError } from './waiter';

/** SO_BUSY_POLL in µs when busy polling is on (DPDK's default). */
export const BUSY_POLL_TIMEOUT_US = 20;

/** What crosses into the addon: the table's `native` options as they are, plus where the XSKMAP comes from. */
export function nativeOptions(config: PortConfig): NativeOpenOptions {
  const same = Object.fromEntries(NATIVE_OPTIONS.map((name) => [name, config[name]])) as Pick<PortConfig, NativeOption>;
  return {
    ...same,
    ifname: config.iface,
    xdpProg: config.source === 'attach' ? config.xdpProg : undefined,
    pinnedMap: config.source === 'pinned' ? config.dpPath : undefined,
  };
}

export interface OpenOptions {
  /**
   * Aborting rejects with an AbortError (name 'AbortError', code
   * 'ABORT_ERR', cause signal.reason) at once, also in the middle of a
   * Device Plugin handshake, and releases everything: the connection, the
   * fds received, the ports opened so far.
   */
  signal?: AbortSignal;
}

/** A devargs string, an options object, or a config from resolvePortConfig(). */
export type PortSpec = string | PortOptions | PortConfig;

/**
 * Open a port from a DPDK devargs string (`net_af_xdp0,iface=eth0,...`,
 * prefix optional), a typed options object or a resolved PortConfig.
 */
export async function openPort(spec: PortSpec, options: OpenOptions = {}): Promise<Port> {
  const signal = signalOf(options);
  const config = locate(resolvePortConfig(spec));
  const owner = shareUmemWithOf(spec);
  if (owner !== undefined) checkUmemSharing(owner, config, spec);
  try {
    return await openResolved(config, owner, signal);
  } catch (err) {
    throw withSearched(err, [config]);
  }
}

// DPDK 26.11's default dp_path: the runtime directory first, then /tmp/afxdp_dp
// (lib/dp/paths.ts lookupDpPath), looked at on this machine, as this process.
function locate(config: PortConfig): PortConfig {
  return locateDpPath(config, {
    exists: (file) => fs.existsSync(file),
    env: process.env,
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
  });
}

// A default dp_path that failed at the /tmp fallback also names the runtime
// directory path looked at first.
function withSearched(err: unknown, configs: readonly PortConfig[]): unknown {
  if (!(err instanceof AfxdpError) || err.path === undefined) return err;
  const config = configs.find((c) => c.dpPathOrigin === 'tmp' && c.dpPath === err.path && c.dpPathSearched.length > 1);
  if (config !== undefined) {
    err.message += ` (nothing at ${config.dpPathSearched[0]} under the DPDK runtime directory either, looked at first)`;
  }
  return err;
}

function signalOf(options: OpenOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, 'options.signal must be an AbortSignal (e.g. AbortSignal.timeout(5000))', { argument: 'signal' });
  }
  if (signal?.aborted) throw abortError(signal);
  return signal;
}

/** The `shareUmemWith` port of an options object, checked to be a Port. */
function shareUmemWithOf(spec: PortSpec): Port | undefined {
  if (typeof spec !== 'object' || !('shareUmemWith' in spec) || spec.shareUmemWith === undefined) return undefined;
  const owner: unknown = spec.shareUmemWith;
  if (!(owner instanceof Port)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT,
      'Invalid port options: shareUmemWith must be a Port from openPort() or openPorts(); ' +
      'pass the port whose UMEM this one should use, or leave it out', { argument: 'shareUmemWith' });
  }
  return owner;
}

/**
 * @internal Which port's UMEM each port of openPorts() joins: the first
 * port with sharedUmem owns the UMEM and every later one with sharedUmem
 * joins it (DPDK: ports with shared_umem=1 on one mempool share a UMEM);
 * undefined for a port with its own UMEM(s). Needs two such ports.
 */
export function planUmemSharing(configs: readonly PortConfig[]): (number | undefined)[] {
  const sharing = configs.flatMap((c, i) => (c.sharedUmem ? [i] : []));
  return configs.map((_, i) => (sharing.length > 1 && i !== sharing[0] && sharing.includes(i) ? sharing[0] : undefined));
}

/**
 * Open several ports at once. Ports with use_cni whose dp_path is the same
 * Device Plugin socket (the same file, also through different mounts) share
 * one handshake session that fetches each interface's XSKMAP, as the Device
 * Plugin serves one connection per allocation. All or nothing: if one port
 * fails, the ones already open are closed. Ports come back in spec order.
 */
export async function openPorts(specs: readonly PortSpec[], options: OpenOptions = {}): Promise<Port[]> {
  if (!Array.isArray(specs)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT, 'openPorts() takes an array of devargs strings or options objects');
  }
  const signal = signalOf(options);
  const configs = specs.map((spec) => locate(resolvePortConfig(spec)));
  const plan = planUmemSharing(configs);
  const explicit = specs.map(shareUmemWithOf);
  // plan, explicit and specs have one entry per config; owners index configs.
  configs.forEach((config, i) => {
    const owner = plan[i];
    const shared = explicit[i];
    if (shared !== undefined) checkUmemSharing(shared, config, specs[i]!);
    else if (owner !== undefined) checkUmemSharing({ closed: false, config: configs[owner]! }, config, specs[i]!);
  });
  const ports: (Port | undefined)[] = new Array(configs.length).fill(undefined);
  // The port (or group member) whose UMEM spec i joins.
  const umemOf = (i: number, group: readonly number[]): Port | number | undefined => {
    if (explicit[i] !== undefined) return explicit[i];
    const owner = plan[i];
    if (owner === undefined) return undefined;
    if (group.includes(owner)) return group.indexOf(owner);
    const port = ports[owner];
    if (port === undefined) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        `the port on ${configs[i]!.iface} shares the UMEM of the port on ${configs[owner]!.iface}, which opens later ` +
        '(ports of one Device Plugin socket open together); list that port first');
    }
    return port;
  };
  try {
    for (const group of groupBySocket(configs)) {
      if (signal?.aborted) throw abortError(signal);
      const [head] = group;
      const headConfig = configs[head]!;
      if (group.length === 1 && headConfig.source !== 'cni') {
        ports[head] = await openResolved(headConfig, umemOf(head, group) as Port | undefined, signal);
        continue;
      }
      const opened = await openCniGroup(group.map((i) => configs[i]!), group.map((i) => umemOf(i, group)), signal);
      group.forEach((index, k) => {
        ports[index] = opened[k];
      });
    }
  } catch (err) {
    for (const port of ports) port?.close();
    throw withSearched(err, configs);
  }
  return ports as Port[];
}

export async function openResolved(resolvedConfig: PortConfig, umemOf?: Port, signal?: AbortSignal): Promise<Port> {
  const config = locate(resolvedConfig);
  if (config.source === 'cni') return (await openCniGroup([config], [umemOf], signal))[0]!;
  if (signal?.aborted) throw abortError(signal);
  const binding = native();
  const shareWith = umemOf?.nativePort();
  const nativePort = call(() => {
    try {
      return binding.NativePort.open(nativeOptions(config), null, shareWith);
    } catch (err) {
      throw config.dpPath === undefined ? err : withPath(fromNative(err), config.dpPath);
    }
  });
  try {
    return new Port(nativePort, config, { busyPoll: localBusyPoll(nativePort, config), umemOf });
  } catch (err) {
    nativePort.close([]);
    throw err;
  }
}

// ------------------------------------------------------------- use_cni

// One session for every port of one socket. `umemOf[k]`: the port, or the
// earlier member of this group, whose UMEM member k joins.
async function openCniGroup(configs: readonly PortConfig[], umemOf: readonly (Port | number | undefined)[] = [],
  signal?: AbortSignal): Promise<Port[]> {
  const first = configs[0]!; // a group is never empty
  const dpPath = first.dpPath!;
  const podName = sessionPodName(configs);
  const busy = configs.map((c) => c.busyBudget > 0);
  const session = await DpSession.start({
    dpPath,
    interfaces: configs.map((c) => c.iface),
    podName,
    signal,
    timeoutMs: Math.max(...configs.map((c) => c.handshakeTimeoutMs)),
    busyPoll: busy.some(Boolean)
      ? {
          timeoutUs: BUSY_POLL_TIMEOUT_US,
          budget: configs.map((c) => c.busyBudget),
          queues: configs.map((c, i) => (busy[i] ? c.queueCount : 0)),
        }
      : undefined,
  });
  const natives: NativePort[] = [];
  const ports: Port[] = [];
  try {
    const maps: readonly NativeFd[] = session.maps;
    const binding = native();
    configs.forEach((config, i) => {
      natives.push(call(() => {
        try {
          // Takes the fd over: no program load, each XSK inserted at its queue id.
          const owner = umemOf[i];
          const shareWith = typeof owner === 'number' ? natives[owner] : owner?.nativePort();
          return binding.NativePort.open(nativeOptions(config), maps[i], shareWith);
        } catch (err) {
          throw withPath(fromNative(err), dpPath);
        }
      }));
    });
    const result = busy.some(Boolean)
      ? await session.finish(({ map, queue }) => ({ port: natives[map]!, queue })) // map indexes `interfaces`
      : await session.finish();
    if (signal?.aborted) throw abortError(signal);
    configs.forEach((config, i) => {
      const owner = umemOf[i];
      ports.push(new Port(natives[i]!, config, {
        busyPoll: cniBusyPoll(result, i, config),
        umemOf: typeof owner === 'number' ? ports[owner] : owner,
      }));
    });
    return ports;
  } catch (err) {
    for (const port of ports) port.close();
    for (const nativePort of natives.slice(ports.length)) {
      try {
        nativePort.close([]);
      } catch {
        // already failing; keep the first error
      }
    }
    throw err;
  } finally {
    session.close();
  }
}

/** @internal All ports of one session send one pod name. */
export function sessionPodName(configs: readonly PortConfig[]): string | undefined {
  const names = [...new Set(configs.map((c) => c.podName).filter((n): n is string => n !== undefined))];
  if (names.length > 1) {
    throw new AfxdpError(
      codes.INVALID_ARGUMENT,
      `ports sharing the Device Plugin socket ${configs[0]?.dpPath} give different podName values ` +
        `(${names.map((n) => quoteInput(n)).join(', ')}); one session sends one pod name: give them the same podName`,
      { argument: 'podName', path: configs[0]?.dpPath },
    );
  }
  return names[0];
}

/** @internal */
export function cniBusyPoll(result: HandshakeResult, map: number, config: PortConfig): BusyPollStatus {
  if (config.busyBudget === 0) {
    return {
      enabled: false,
      reason: 'busy_budget is 0 (the default with use_cni); set busy_budget (e.g. 64) to ask the Device Plugin for preferred busy polling',
    };
  }
  const outcomes = result.busyPoll.filter((o) => o.map === map);
  const refused = outcomes.filter((o) => !o.enabled);
  if (outcomes.length === config.queueCount && refused.length === 0) {
    return { enabled: true, timeoutUs: BUSY_POLL_TIMEOUT_US, budget: config.busyBudget, via: 'device-plugin' };
  }
  const first = refused[0];
  const on = outcomes.filter((o) => o.enabled).map((o) => o.queue);
  return {
    enabled: false,
    reason: `${first === undefined ? 'busy polling was not confirmed' : `queue ${first.queue}: ${first.reason}`}` +
      (on.length > 0 ? ` (on for queue ${on.join(', ')} only)` : ''),
    via: 'device-plugin',
  };
}

// ------------------------------------------------------------- attach / pinned

// Busy polling set by afxdp itself (needs CAP_NET_ADMIN); never fatal.
function localBusyPoll(nativePort: NativePort, config: PortConfig): BusyPollStatus {
  if (config.busyBudget === 0) {
    return {
      enabled: false,
      reason: config.source === 'pinned'
        ? 'busy_budget is 0 (the default with use_pinned_map); set busy_budget to try preferred busy polling (needs CAP_NET_ADMIN)'
        : 'busy_budget is 0',
    };
  }
  if (typeof nativePort.setBusyPoll !== 'function') {
    return { enabled: false, reason: 'this build of the native addon cannot set preferred busy polling on its sockets' };
  }
  try {
    nativePort.setBusyPoll(BUSY_POLL_TIMEOUT_US, config.busyBudget);
    return { enabled: true, timeoutUs: BUSY_POLL_TIMEOUT_US, budget: config.busyBudget, via: 'socket-options' };
  } catch (err) {
    const e = fromNative(err) as Error;
    return {
      enabled: false,
      reason: `setting preferred busy polling failed: ${e.message}` +
        (config.source === 'pinned' ? '; in a pod, use use_cni=1 so the Device Plugin sets it' : ''),
      via: 'socket-options',
    };
  }
}

// ------------------------------------------------------------- grouping

/** @internal Groups of spec indexes: use_cni ports by socket file, every other port alone. */
export function groupBySocket(configs: readonly PortConfig[]): [number, ...number[]][] {
  const groups: [number, ...number[]][] = [];
  const byKey = new Map<string, [number, ...number[]]>();
  configs.forEach((config, i) => {
    if (config.source !== 'cni') {
      groups.push([i]);
      return;
    }
    const key = socketKey(config.dpPath!);
    const group = byKey.get(key);
    if (group === undefined) {
      const fresh: [number, ...number[]] = [i];
      byKey.set(key, fresh);
      groups.push(fresh);
    } else {
      group.push(i);
    }
  });
  return groups;
}

// The Device Plugin mounts one host socket at /tmp/afxdp_dp/<netdev>/afxdp.sock
// for every netdev of an allocation: same file, different paths.
function socketKey(dpPath: string): string {
  try {
    const st = fs.statSync(dpPath, { bigint: true });
    return `inode:${st.dev}:${st.ino}`;
  } catch {
    return `path:${path.resolve(dpPath)}`;
  }
}
