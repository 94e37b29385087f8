// Running the `afxdp` command as a user would: bin/afxdp.js (over dist/)
// in a child process, its stdout read as JSON lines.
import { ChildProcessWithoutNullStreams, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export const ROOT = path.join(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin/afxdp.js');

/** `node bin/afxdp.js args`, behind `prefix` (e.g. setpriv ...) when given. */
function commandLine(prefix: string[], args: string[]): [string, ...string[]] {
  return [...prefix, process.execPath, BIN, ...args] as [string, ...string[]];
}

/** Run to completion (bounded). */
export function runAfxdp(args: string[], options: { timeout?: number; prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  const prefix = options.prefix ?? [];
  const [cmd, ...rest] = commandLine(prefix, args);
  return spawnSync(cmd, rest, { encoding: 'utf8', timeout: options.timeout ?? 60_000, cwd: ROOT, env: options.env ?? process.env });
}

/** A running `afxdp ...` whose stdout lines are JSON objects. */
export class Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly objects: any[] = [];
  readonly text: string[] = [];
  stderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: (() => void)[] = [];

  constructor(args: string[], prefix: string[] = [], options: { group?: boolean } = {}) {
    const [cmd, ...rest] = commandLine(prefix, args);
    // group: a process group of its own, like a job in a terminal (see interrupt()).
    this.child = spawn(cmd, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: options.group ?? false });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.text.push(line);
      try {
        this.objects.push(JSON.parse(line));
      } catch {
        // a plain line
      }
      this.#wake();
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += String(d);
    });
    this.exit = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      this.#wake();
      resolve({ code, signal });
    }));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The first object (from index `from`) matching `pred`, waiting at most `timeoutMs`. */
  async waitFor(pred: (o: any) => boolean, timeoutMs = 20_000, from = 0): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.objects.slice(from).find(pred);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() >= deadline) {
        throw new Error(`no matching output within ${timeoutMs} ms; stdout:\n${this.text.slice(-5).join('\n')}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Signal and wait for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ctrl-C in a terminal: SIGINT to the whole process group (needs group: true). */
  interrupt(): void {
    process.kill(-this.child.pid!, 'SIGINT');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
