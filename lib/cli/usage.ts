// A bad flag or argument: print the message and the usage, exit 2.
export class UsageError extends Error {
  constructor(message: string, readonly usage: string) {
    super(message);
  }
}
