// The AF_XDP Device Plugin as one concept (docs/dp-protocol.md): the
// handshake's records (messages), its pure state machine, the client session
// that drives it (session), the Device-Plugin-compatible server (server),
// the well-known paths (paths) and the pool devices it announces (devices-env).
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
export { DpSession, fetchXskMaps, withPath } from './session';
export type { DpSessionOptions, XskResolver } from './session';
export { startDpServer, DpServer } from './server';
export type { DpServerOptions, DpServerInfo } from './server';
export {
  defaultDpPath, dpdkRuntimeDir, lookupDpPath, runtimeDirDpPath, DEFAULT_FILE_PREFIX, DP_BASE_PATH, LEGACY_UDS_PATH,
  LEGACY_PINNED_PATH,
} from './paths';
export type { DpPathLookup, DpPathOrigin, DpPathProbe, RuntimeEnv } from './paths';
export { devicesFromEnv } from './devices-env';
