// Forwarding: testpmd-style engines over lanes, the forwarder that runs one
// engine on every lane of one or two ports, and the poll loop that schedules it.
export { ENGINES, FORWARD_MODES, DEFAULT_TX, engineOf, generatedOn } from './engines';
export type { EngineOptions, EnginePortInfo, ForwardEngine, ForwardMode, TxConfig } from './engines';
export { Lane, sendReceived } from './lane';
export type { LaneOptions, LanePath, LaneQueue } from './lane';
export { Forwarder } from './forwarder';
export type { ForwardedPort, ForwarderOptions, ForwardPort } from './forwarder';
export { ThreadedForwarder } from './threads';
export type { ThreadReport } from './threads';
export { PollLoop, runLoop } from './poll-loop';
export type { LoopOptions } from './poll-loop';
export { txFrame, txFrameSeq, TX_MAX_LENGTH, TX_MIN_LENGTH, TX_SEQ_OFFSET } from './txframe';
export type { TxFrameOptions } from './txframe';
