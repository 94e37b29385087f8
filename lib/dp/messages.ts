// The records of the AF_XDP Device Plugin handshake (dp-protocol.md §2) and
// how afxdp reads a reply: trailing NULs stripped (CNDP sends them), then
// compared exactly. Pure.

import { Buffer } from 'node:buffer';
import { quoteInput } from '../errors';

/** Handshake version the Device Plugin has answered since 2022. */
export const HANDSHAKE_VERSION = '0.1';
/** The Device Plugin reads requests into a 64-byte buffer. */
export const MAX_REQUEST_BYTES = 64;
/** afxdp receives replies into a 128-byte buffer, as DPDK does. */
export const MAX_REPLY_BYTES = 128;

export const requests = Object.freeze({
  connect: (podName: string) => `/connect,${podName}`,
  version: '/version',
  xskMapFd: (iface: string) => `/xsk_map_fd,${iface}`,
  configBusyPoll: (timeoutUs: number, budget: number) => `/config_busy_poll,${timeoutUs},${budget}`,
  fin: '/fin',
});

export const replies = Object.freeze({
  hostOk: '/host_ok',
  hostNak: '/host_nak',
  error: '/error',
  fdAck: '/fd_ack',
  fdNak: '/fd_nak',
  busyPollAck: '/config_busy_poll_ack',
  busyPollNak: '/config_busy_poll_nak',
  finAck: '/fin_ack',
  nak: '/nak',
});

/** `/fd_ack`, or CNDP's `/fd_ack,<fd number>`. */
export function isFdAck(text: string): boolean {
  return text === replies.fdAck || /^\/fd_ack,[0-9]{1,10}$/.test(text);
}

/** A reply read as text, or why it is not text. */
export type DecodedReply = { ok: true; text: string } | { ok: false; shown: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Strips trailing NULs and decodes the record. Text means printable ASCII
 * only: every record of the protocol is, and anything else (control bytes,
 * inner NULs, non-ASCII) is shown escaped rather than compared.
 */
export function decodeReply(data: Uint8Array): DecodedReply {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  const bytes = data.subarray(0, end);
  if (bytes.every((b) => b >= 0x20 && b <= 0x7e)) {
    return { ok: true, text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') };
  }
  return { ok: false, shown: showBytes(data) };
}

/** How a received record appears in an error message: quoted and escaped. */
export function showBytes(data: Uint8Array, limit = 80): string {
  try {
    return quoteInput(utf8.decode(data), limit);
  } catch {
    const shown = Array.from(data.subarray(0, 32), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return `${data.length} bytes that are not UTF-8 (hex ${shown}${data.length > 32 ? ' …' : ''})`;
  }
}

export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
