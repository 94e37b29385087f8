export { Batch, BatchPool } from './batch';
export type { BatchPoolOptions } from './batch';
export { PortReadable } from './readable';
export type { PortReadableOptions } from './readable';
export { PortWritable } from './writable';
export type { PortWritableOptions } from './writable';
export { BatchTransform, batchTransform, macswap } from './transform';
export type { BatchFunction, BatchTransformOptions } from './transform';
