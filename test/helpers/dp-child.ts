// A Device-Plugin-compatible server (startDpServer) with injected faults in
// a process of its own (dp-server-child.ts), so that the test process's fd
// count and event loop see only the client.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

const ROOT = path.join(__dirname, '../..');
const DP_CHILD = path.join(__dirname, 'dp-server-child.ts');

/** The server in its own process. */
export class DpChild {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #objects: any[] = [];
  #wake: (() => void) | undefined;
  stderr = '';

  constructor(options: object) {
    this.child = spawn(process.execPath, ['--import', 'tsx', DP_CHILD, JSON.stringify(options)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.#objects.push(JSON.parse(line));
      this.#wake?.();
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += String(d);
    });
    this.child.on('exit', () => this.#wake?.());
  }

  async next(type: string, timeoutMs = 20_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#objects.findIndex((o) => o.type === type);
      if (i >= 0) return this.#objects.splice(i, 1)[0];
      if (this.child.exitCode !== null || Date.now() >= deadline) throw new Error(`dp-server child: no ${type} line; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  async log(): Promise<string[]> {
    this.child.stdin.write('log\n');
    return (await this.next('log')).log;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end('stop\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

