// Parser for DPDK `--vdev` strings of the net_af_xdp driver, e.g.
//
//   net_af_xdp0,use_cni=1,iface=eth1,dp_path="/tmp/afxdp_dp/eth1/afxdp.sock"
//
// so users can paste the arguments they already give testpmd. This module
// only splits and checks syntax; the names come from the option table
// (options.ts) and the meaning of each value is checked in port-config.ts.
// It is pure and never throws anything but an AfxdpError.
//
// Stricter than DPDK's rte_kvargs on purpose: empty pairs (`,,`, a trailing
// comma) and repeated keys are errors instead of being skipped or letting
// the last one win silently.

import { AfxdpError, codes, quoteInput } from '../errors';
import { DEVARG_NAMES } from './options';
import type { DevargName } from './options';

export { DEVARG_NAMES };
export type { DevargName };

export interface DevargsMap {
  /** N of a leading `net_af_xdp<N>`; absent when the driver has no index or is not named. */
  readonly vdevIndex?: number;
  /** Values as written, with one pair of enclosing double quotes removed. */
  readonly args: Readonly<Partial<Record<DevargName, string>>>;
}

/** Longest spec accepted, in UTF-16 code units (a page: no real spec comes close). */
export const MAX_DEVARGS_LENGTH = 4096;

const DRIVER_NAME = 'net_af_xdp';
const DRIVER_TOKEN = /^net_af_xdp([0-9]*)$/;
const KEY_SYNTAX = /^[A-Za-z_][A-Za-z0-9_]*$/;
// C0/C1 controls and DEL, line/paragraph separators, bidi embedding and
// isolate controls (text that displays differently from how it parses),
// and lone surrogates (not valid Unicode, cannot become a C string).
const FORBIDDEN_CHARACTER = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u202A-\u202E\u2066-\u2069]/u;

const knownNames: ReadonlySet<string> = new Set(DEVARG_NAMES);

// Names DPDK used to accept, or that people find in DPDK's own documents.
const RETIRED_NAMES: ReadonlyMap<string, { replacement?: DevargName; note: string }> = new Map([
  ['queue', { replacement: 'start_queue', note: '`queue` was removed in DPDK 19.08' }],
  [
    'pmd_zero_copy',
    {
      note:
        '`pmd_zero_copy` was removed in DPDK 19.11; zero copy is used whenever ' +
        'the interface supports it, and force_copy=1 forces copy mode',
    },
  ],
  [
    'use_map_pinning',
    { replacement: 'use_pinned_map', note: 'the DPDK 24.07 release notes use this name; the driver never accepted it' },
  ],
  ['sock', { replacement: 'dp_path', note: '`sock` was the name used before dp_path was merged' }],
]);

export function isDevargName(name: string): name is DevargName {
  return knownNames.has(name);
}

/**
 * Parses a net_af_xdp vdev string into its devargs.
 * Throws AfxdpError (code ERR_AFXDP_DEVARGS) on any syntax error.
 */
export function parseDevargs(spec: string): DevargsMap {
  checkSpecText(spec);
  const tokens = splitPairs(spec);
  let vdevIndex: number | undefined;
  let pairs = tokens;
  const first = tokens[0];
  if (first !== undefined && !first.includes('=')) {
    vdevIndex = parseDriverToken(spec, first);
    pairs = tokens.slice(1);
  }

  const args: Partial<Record<DevargName, string>> = {};
  for (const token of pairs) {
    const [name, value] = parsePair(spec, token);
    if (args[name] !== undefined) {
      throw devargsError(spec, `${name} is given twice`, `keep a single ${name}=<value>`, name);
    }
    args[name] = value;
  }
  return vdevIndex === undefined ? { args } : { vdevIndex, args };
}

/** Builds the error every devargs problem becomes; `argument` names the devarg at fault. */
export function devargsError(spec: string, problem: string, fix: string, argument?: string): AfxdpError {
  return new AfxdpError(codes.DEVARGS, `Invalid devargs ${quoteInput(spec)}: ${problem}; ${fix}`, { argument });
}

/** Offset and code point of the first character devargs may not contain. */
export function findForbiddenCharacter(text: string): { offset: number; codePoint: number } | undefined {
  const match = FORBIDDEN_CHARACTER.exec(text);
  if (match === null) return undefined;
  return { offset: match.index, codePoint: match[0].codePointAt(0)! };
}

/**
 * The candidate closest to `name` (case-insensitive edit distance, or
 * containment), or undefined when nothing is close enough to be a typo.
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  const wanted = name.toLowerCase();
  if (wanted.length === 0 || wanted.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined || wanted.length < 4) return best;
  return candidates.find((candidate) => {
    const lower = candidate.toLowerCase();
    return lower.includes(wanted) || wanted.includes(lower);
  });
}

function checkSpecText(spec: unknown): asserts spec is string {
  if (typeof spec !== 'string') {
    throw new AfxdpError(
      codes.DEVARGS,
      `Invalid devargs: expected a string like "${DRIVER_NAME}0,iface=eth0", got ${describeType(spec)}`,
    );
  }
  if (spec.length > MAX_DEVARGS_LENGTH) {
    throw devargsError(
      spec,
      `the string is ${spec.length} characters long, more than the limit of ${MAX_DEVARGS_LENGTH}`,
      'pass only the net_af_xdp arguments',
    );
  }
  if (spec.trim() === '') {
    throw devargsError(spec, 'the string is empty or only spaces', `pass at least the interface, e.g. "${DRIVER_NAME}0,iface=eth0"`);
  }
  const bad = findForbiddenCharacter(spec);
  if (bad !== undefined) {
    const hex = bad.codePoint.toString(16).toUpperCase().padStart(4, '0');
    throw devargsError(
      spec,
      `control or invisible character U+${hex} at offset ${bad.offset}`,
      'devargs are plain text: remove it (a stray newline from a file or variable is the usual cause)',
    );
  }
}

// Splits on commas that are not inside double quotes.
function splitPairs(spec: string): string[] {
  const tokens: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i];
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      tokens.push(spec.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) {
    throw devargsError(spec, 'a double quote is not closed', 'close the quoted value with a matching "');
  }
  tokens.push(spec.slice(start));
  checkNoEmptyPairs(spec, tokens);
  return tokens;
}

function checkNoEmptyPairs(spec: string, tokens: string[]): void {
  if (!tokens.includes('')) return;
  if (tokens[0] === '') throw devargsError(spec, 'it starts with a comma', 'remove the leading comma');
  if (tokens[tokens.length - 1] === '') throw devargsError(spec, 'it ends with a comma', 'remove the trailing comma');
  throw devargsError(spec, 'it has an empty argument between two commas', 'remove the extra comma');
}

// The first token may name the driver: net_af_xdp or net_af_xdp<N>.
function parseDriverToken(spec: string, token: string): number | undefined {
  const match = DRIVER_TOKEN.exec(token);
  if (match !== null) {
    if (match[1] === '') return undefined;
    const index = Number(match[1]);
    if (!Number.isSafeInteger(index)) {
      throw devargsError(spec, `the device index in ${quoteInput(token)} is too large`, `use e.g. ${DRIVER_NAME}0`);
    }
    return index;
  }
  if (knownNames.has(token)) throw missingValueError(spec, token);
  throw devargsError(
    spec,
    `unknown driver ${quoteInput(token)}`,
    `afxdp implements only ${DRIVER_NAME} (write ${DRIVER_NAME} or ${DRIVER_NAME}<N> first, e.g. "${DRIVER_NAME}0,iface=eth0")`,
  );
}

function parsePair(spec: string, token: string): [DevargName, string] {
  const eq = token.indexOf('=');
  if (eq === -1) {
    if (DRIVER_TOKEN.test(token)) {
      throw devargsError(spec, `the driver name ${quoteInput(token)} is not first`, 'move it to the front');
    }
    if (knownNames.has(token)) throw missingValueError(spec, token);
    throw devargsError(spec, `${quoteInput(token)} is not a key=value pair`, 'write each argument as key=value');
  }
  const name = checkName(spec, token.slice(0, eq));
  const value = unquote(spec, name, token.slice(eq + 1));
  if (value === '') throw missingValueError(spec, name);
  return [name, value];
}

function checkName(spec: string, name: string): DevargName {
  if (name === '') {
    throw devargsError(spec, 'an argument has no name before "="', 'write it as key=value, e.g. iface=eth0');
  }
  if (name.trim() !== name) {
    throw devargsError(
      spec,
      `the argument name ${quoteInput(name)} has spaces around it`,
      'remove the spaces: DPDK does not trim them either',
      name.trim(),
    );
  }
  if (!KEY_SYNTAX.test(name)) {
    throw devargsError(
      spec,
      `${quoteInput(name)} is not a valid argument name`,
      `names use letters, digits and "_"; valid ones: ${DEVARG_NAMES.join(', ')}`,
    );
  }
  if (!isDevargName(name)) throw unknownNameError(spec, name);
  return name;
}

function unknownNameError(spec: string, name: string): AfxdpError {
  const retired = RETIRED_NAMES.get(name.toLowerCase());
  const suggestion = retired?.replacement ?? (retired ? undefined : closestName(name, DEVARG_NAMES));
  const hints: string[] = [];
  if (suggestion !== undefined) hints.push(`did you mean ${suggestion}?`);
  if (retired !== undefined) hints.push(`(${retired.note})`);
  return devargsError(
    spec,
    `unknown argument ${quoteInput(name)}`,
    withValidNames(hints, 'arguments', DEVARG_NAMES),
    name,
  );
}

/** `did you mean x? Valid <what>: a, b` or just `valid <what>: a, b`. */
export function withValidNames(hints: readonly string[], what: string, names: readonly string[]): string {
  const list = names.join(', ');
  if (hints.length === 0) return `valid ${what}: ${list}`;
  const lead = hints.join(' ');
  return `${lead}${lead.endsWith('?') ? '' : '.'} Valid ${what}: ${list}`;
}

function missingValueError(spec: string, name: string): AfxdpError {
  return devargsError(spec, `${name} has no value`, `write ${name}=<value>`, name);
}

// A value may be wrapped in double quotes (to protect commas, or because it
// was copied from a shell line); quotes anywhere else are an error.
function unquote(spec: string, name: DevargName, raw: string): string {
  const quotes = countQuotes(raw);
  if (quotes === 0) {
    if (raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'")) {
      throw devargsError(
        spec,
        `the value of ${name} is in single quotes`,
        `use double quotes (${name}="...") or none: single quotes would become part of the value`,
        name,
      );
    }
    return raw;
  }
  if (quotes === 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  throw devargsError(
    spec,
    `the value of ${name} has a misplaced double quote`,
    `quote the whole value (${name}="...") or not at all; a value cannot contain "`,
    name,
  );
}

function countQuotes(text: string): number {
  let count = 0;
  for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) count++;
  return count;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

// Levenshtein distance; inputs are short (names are checked for length first).
// Every index below is in range: `previous` has b.length + 1 entries and
// `current` has j entries when current[j - 1] is read.
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
