// The AF_XDP Device Plugin handshake: a pure state machine and its driver.
export { createHandshake } from './state-machine';
export type {
  Handshake,
  HandshakeAction,
  HandshakeOptions,
  HandshakeReply,
  HandshakeResult,
  HandshakeStep,
  BusyPollOutcome,
  BusyPollRequest,
  FdDisposition,
  XskRef,
} from './state-machine';
export { HANDSHAKE_VERSION, MAX_REPLY_BYTES, MAX_REQUEST_BYTES, decodeReply, isFdAck, replies, requests } from './messages';
export { DpSession, fetchXskMaps, withPath } from './client';
export type { DpSessionOptions, XskResolver } from './client';
