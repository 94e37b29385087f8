// Which netdevs the AF_XDP Device Plugin gave this container, read from the
// environment it sets at Allocate:
//
//   AFXDP_DEVICES_<POOL>=<netdev> <netdev> ...   current DP, pool name upper-cased
//   AFXDP_DEVICES=<netdev> ...                   DP at or before commit 38317c2
//
// Pure: the environment is a parameter.

export const DEVICES_ENV_PREFIX = 'AFXDP_DEVICES_';
export const LEGACY_DEVICES_ENV = 'AFXDP_DEVICES';

export interface PoolDevices {
  /** Pool name as it appears in the variable (upper case); '' for the legacy variable. */
  pool: string;
  /** Netdev names in the order given, without duplicates. */
  devices: string[];
}

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Lists the pools and devices the Device Plugin allocated, sorted by pool.
 * With `pool` ("myPool", "MYPOOL" or the resource name "afxdp/myPool"),
 * only that pool; the legacy variable has no pool and is then left out.
 */
export function devicesFromEnv(env: Environment = process.env, pool?: string): PoolDevices[] {
  const wanted = pool === undefined ? undefined : normalizePool(pool);
  const found: PoolDevices[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const poolName = poolOfVariable(name);
    if (poolName === undefined) continue;
    if (wanted !== undefined && (poolName === '' || poolName !== wanted)) continue;
    found.push({ pool: poolName, devices: splitDevices(value) });
  }
  return found.sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
}

// '' for the legacy variable, undefined for unrelated ones (and for the bare
// "AFXDP_DEVICES_" prefix, which no DP sets).
function poolOfVariable(name: string): string | undefined {
  if (name === LEGACY_DEVICES_ENV) return '';
  if (!name.startsWith(DEVICES_ENV_PREFIX) || name.length === DEVICES_ENV_PREFIX.length) return undefined;
  return name.slice(DEVICES_ENV_PREFIX.length);
}

// The DP names the variable after the pool upper-cased (poolManager.go).
function normalizePool(pool: string): string {
  return pool.replace(/^afxdp\//, '').toUpperCase();
}

// The DP joins device IDs with single spaces; accept any whitespace.
function splitDevices(value: string): string[] {
  return [...new Set(value.split(/\s+/).filter((device) => device !== ''))];
}
