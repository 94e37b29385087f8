// Native calls throw plain Errors carrying our codes; rethrow them typed.
import { fromNative } from '../errors';

export function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}
