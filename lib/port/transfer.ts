// Queues on worker threads: a port's queues handed to another thread.
//
// The thread that opened the port calls `port.transfer(queues)` and posts
// the handle (plain data) to a worker; the worker calls `attachPort(handle)`
// and gets a Port over those queues: the same burst API, streams, 'readable'
// events and poll policies, with wakeups on the worker's own event loop.
// One Device Plugin session (use_cni) serves every queue: the handshake
// happened once, on the opening thread.
//
// Each queue is used by one thread at a time (crates/afxdp-core/src/lease.rs):
// while transferred, the opening thread's calls on it fail with
// ERR_AFXDP_TRANSFERRED. The worker's port.close(), or the worker's end
// (terminate(), an uncaught exception), gives the queues back. Closing the
// port on the opening thread closes the sockets under every thread: their
// next call fails with ERR_AFXDP_CLOSED, and a worker asleep on a socket
// learns it within a second (the waiter's health check).
import { AfxdpError, codes } from '../errors';
import { native } from '../native';
import { call } from './native-call';
import { Port } from './port';
import { isTransferHandle, TransferHandle } from './transfer-handle';

export { isTransferHandle } from './transfer-handle';
export type { TransferHandle } from './transfer-handle';

/**
 * A Port over the queues of `handle` (from `port.transfer()` on another
 * thread of this process), numbered 0.. in the handle's order. Each handle
 * attaches once. close() gives the queues back to their port.
 */
export function attachPort(handle: TransferHandle): Port {
  if (!isTransferHandle(handle)) {
    throw new AfxdpError(codes.INVALID_ARGUMENT,
      'attachPort() takes the object port.transfer() returned (posted to this thread as it is)', { argument: 'handle' });
  }
  const attached = call(() => native().NativeAttachedPort.attach(handle.native));
  return new Port(attached, Object.freeze({ ...handle.config }), { busyPoll: handle.busyPoll });
}
