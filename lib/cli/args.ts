// Small argument helpers shared by the commands: numbers, MACs, IPv4
// addresses, and the testpmd/EAL words a user may paste along with the
// options afxdp understands.
import { UsageError } from './usage';

/** testpmd / EAL flags accepted and ignored, so a testpmd line can be pasted. */
export const IGNORED_BOOLEAN_FLAGS = ['-i', '--interactive', '-a', '--a', '--auto-start', '--no-pci', '--no-mlockall', '--in-memory', '--no-huge'];
/**
 * testpmd / EAL options with a value, accepted and ignored. (EAL's
 * --file-prefix is not one: `afxdp fwd` uses it, as DPDK 26.11 does, to find
 * a default dp_path under the runtime directory.)
 */
export const IGNORED_VALUE_FLAGS = ['-l', '--lcores', '-c', '-n', '--rxq', '--txq', '--socket-mem', '--nb-ports', '--rxd', '--txd'];

export interface PastedWords {
  /** The arguments left for parseArgs. */
  rest: string[];
  /** What was dropped, to mention with --verbose. */
  ignored: string[];
}

/**
 * Drops testpmd's `--` separator and the harmless testpmd/EAL words above
 * (`-i`, `--auto-start`, `-l 0,1`, `--rxq=2`, ...).
 */
export function dropPastedWords(argv: readonly string[]): PastedWords {
  const rest: string[] = [];
  const ignored: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === undefined) break;
    if (arg === '--') {
      ignored.push(arg);
      continue;
    }
    const name = arg.split('=', 1)[0] ?? arg;
    if (IGNORED_BOOLEAN_FLAGS.includes(arg)) {
      ignored.push(arg);
      continue;
    }
    if (IGNORED_VALUE_FLAGS.includes(name)) {
      if (arg.includes('=')) {
        ignored.push(arg);
      } else {
        ignored.push(arg, argv[i + 1] ?? '');
        i++;
      }
      continue;
    }
    rest.push(arg);
  }
  return { rest, ignored };
}

export function integer(name: string, value: string | undefined, min: number, max: number, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`, usage);
  }
  return Number(value);
}

export function seconds(name: string, value: string | undefined, min: number, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || Number(value) < min) {
    throw new UsageError(`--${name} must be a number of seconds >= ${min}, not ${JSON.stringify(value)}`, usage);
  }
  return Number(value);
}

export function mac(name: string, value: string, usage: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(value)) {
    throw new UsageError(`--${name} must be a MAC address like 02:00:00:00:00:01, not ${JSON.stringify(value)}`, usage);
  }
  return Buffer.from(value.split(':').map((h) => parseInt(h, 16)));
}

export function ipv4(name: string, value: string, usage: string): Buffer {
  const parts = value.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) {
    throw new UsageError(`--${name} needs IPv4 addresses like 198.51.100.1, not ${JSON.stringify(value)}`, usage);
  }
  return Buffer.from(parts.map(Number));
}

export function udpPort(name: string, value: string, usage: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) {
    throw new UsageError(`--${name} needs UDP ports from 0 to 65535, not ${JSON.stringify(value)}`, usage);
  }
  return Number(value);
}

export function macString(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
