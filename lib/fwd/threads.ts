// Forwarding on several threads, testpmd's --nb-cores: the ports stay open
// on this thread (one Device Plugin session for all their queues), and
// each forwarding thread (a worker) gets every queue index k with
// k % threads === its number, of every port, and runs the engine on its
// lanes under the poll policy with its own event loop.
//
// Counters: the kernel's and the rings' per-queue counters are read here
// from the ports (stats() reads a queue whoever holds it); each worker
// writes the packets its lanes dropped into a SharedArrayBuffer per port,
// which refreshDrops() folds into `ports[p].txDropped`. Each worker reports
// its CPU time (its own /proc/thread-self/stat) when it finishes.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Port } from '../port/port';
import type { TransferHandle } from '../port/transfer';
import type { PollMode } from '../port/poll-policy';
import { AfxdpError, codes } from '../errors';
import type { EngineOptions, ForwardMode } from './engines';
import type { ForwardedPort } from './forwarder';
import type { PcapStats, PcapWriterOptions } from '../pcap/writer';
import { captureFile } from '../pcap/files';

/** Capture what the ports receive (`afxdp fwd --pcap`): each thread writes its own files (captureFile names them). */
export interface CaptureOptions {
  file: string;
  options?: PcapWriterOptions;
}

/** One capture file's totals, with the port (and forwarding thread) it captured. */
export interface CaptureReport extends PcapStats {
  port: number;
  thread?: number;
}

/** What one forwarding thread is told (structured-cloned). */
export interface ThreadJob {
  handles: TransferHandle[];
  mode: ForwardMode;
  pollMode: PollMode;
  engine: EngineOptions;
  /** Per port: this thread's drop counters by its own queue numbering. */
  drops: SharedArrayBuffer[];
  /** Per port: the capture file this thread writes, and the writer's options. */
  capture?: { files: string[]; options: PcapWriterOptions };
}

/** What a forwarding thread reports when it finishes. */
export interface ThreadReport {
  thread: number;
  threadId: number;
  /** Kernel queue ids it served, per port. */
  queues: number[][];
  /** CPU time of the thread, ms, from attach to stop. */
  cpuMs: number;
  elapsedMs: number;
  /** Its capture files' totals (with --pcap). */
  pcap?: CaptureReport[];
}

type Message =
  | { type: 'attached'; threadId: number; path: 'descriptor' | 'copy' | 'none' }
  | ({ type: 'done' } & Omit<ThreadReport, 'thread' | 'queues' | 'pcap'> & { pcap?: PcapStats[] })
  | { type: 'error'; code?: string; message: string };

/**
 * The calling thread's CPU time, ms: utime + stime of /proc/thread-self/stat
 * (in USER_HZ, 100 on Linux). Synchronous fs calls run on the calling
 * thread, so in a worker this is the worker's own time.
 */
export function threadCpuMs(): number {
  const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A worker running lib/fwd/thread-main (compiled, or TypeScript under tsx in tests). */
function startWorker(): Worker {
  const ts = __filename.endsWith('.ts');
  const main = path.join(__dirname, ts ? 'thread-main.ts' : 'thread-main.js');
  return ts
    ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(main)});`, { eval: true })
    : new Worker(main);
}

/**
 * The part of `total` (a count or rate) for `weight` queues after `sumBefore`
 * of `all`: consecutive parts add up to `total` exactly.
 */
function share(total: number | undefined, weight: number, sumBefore: number, all: number): number | undefined {
  if (total === undefined) return undefined;
  return Math.floor((total * (sumBefore + weight)) / all) - Math.floor((total * sumBefore) / all);
}

export class ThreadedForwarder {
  readonly ports: readonly ForwardedPort[];
  /** Queue indexes per thread (the same for every port). */
  readonly assignment: readonly number[][];
  readonly #workers: Worker[] = [];
  readonly #drops: { view: Float64Array; queues: number[] }[][] = [];
  readonly #reports: ThreadReport[] = [];
  #path: 'descriptor' | 'copy' | 'none' = 'none';
  #done!: Promise<void>;

  private constructor(ports: readonly Port[], threads: number) {
    this.ports = ports.map((port) => ({ port, txDropped: new Float64Array(port.queues.length) }));
    const queues = ports[0]!.queues.length;
    this.assignment = Array.from({ length: threads }, (_, w) =>
      Array.from({ length: queues }, (_, k) => k).filter((k) => k % threads === w));
  }

  /**
   * Start `threads` forwarding threads over the queues of `ports` (at most
   * one per queue: more are not started, as testpmd limits --nb-cores to
   * its streams). Resolves once every thread has attached its queues.
   */
  static async start(ports: readonly Port[], mode: ForwardMode, threads: number,
    options: { pollMode: PollMode; engine?: EngineOptions; capture?: CaptureOptions }): Promise<ThreadedForwarder> {
    const counts = new Set(ports.map((p) => p.queues.length));
    if (counts.size !== 1) {
      throw new AfxdpError(codes.INVALID_ARGUMENT,
        `forwarding threads need ports with the same queue_count (got ${ports.map((p) => p.queues.length).join(' and ')}); ` +
        'give both --vdev the same queue_count, or use one thread');
    }
    const fwd = new ThreadedForwarder(ports, Math.min(threads, ports[0]!.queues.length));
    await fwd.#start(mode, options.pollMode, options.engine ?? {}, options.capture);
    return fwd;
  }

  get threads(): number {
    return this.assignment.length;
  }

  /** How packets move between ports, as the threads' forwarders report it. */
  get path(): 'descriptor' | 'copy' | 'none' {
    return this.#path;
  }

  /** Resolves when every thread has stopped; rejects with the first thread's error. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The threads' reports (complete once `done` resolved). */
  get reports(): readonly ThreadReport[] {
    return this.#reports;
  }

  /** The capture files, per thread and port (empty without capture). */
  captureFiles: string[][] = [];

  async #start(mode: ForwardMode, pollMode: PollMode, engine: EngineOptions, capture: CaptureOptions | undefined): Promise<void> {
    const attached: Promise<void>[] = [];
    const finished: Promise<void>[] = [];
    let lanesBefore = 0;
    const queueCount = this.ports[0]!.port.queues.length;
    for (const [w, queues] of this.assignment.entries()) {
      const tx = engine.tx === undefined ? undefined : {
        ...engine.tx,
        count: share(engine.tx.count, queues.length, lanesBefore, queueCount),
        rate: engine.tx.rate === undefined ? undefined : Math.max(1, share(engine.tx.rate, queues.length, lanesBefore, queueCount)!),
      };
      lanesBefore += queues.length;
      const drops = this.ports.map(() => new SharedArrayBuffer(8 * queues.length));
      this.#drops.push(drops.map((sab) => ({ view: new Float64Array(sab), queues })));
      const handles = this.ports.map((t) => t.port.transfer(queues));
      const worker = startWorker();
      this.#workers.push(worker);
      let onAttached!: () => void;
      let failAttach!: (err: Error) => void;
      attached.push(new Promise<void>((resolve, reject) => {
        onAttached = resolve;
        failAttach = reject;
      }));
      finished.push(new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => {
          failAttach(err);
          reject(err);
        };
        worker.on('message', (m: Message) => {
          if (m.type === 'attached') {
            this.#path = m.path;
            onAttached();
          } else if (m.type === 'done') {
            this.#reports[w] = { thread: w, threadId: m.threadId, cpuMs: m.cpuMs, elapsedMs: m.elapsedMs,
              queues: this.ports.map((t) => queues.map((k) => t.port.queues[k]!.id)),
              ...(m.pcap === undefined ? {} : { pcap: m.pcap.map((stats, port) => ({ ...stats, port, thread: w })) }) };
            resolve();
          } else {
            fail(new AfxdpError((m.code as never) ?? codes.SYSTEM, `forwarding thread ${w}: ${m.message}`));
          }
        });
        worker.on('error', (err) => fail(err));
        worker.on('exit', (code) => fail(new AfxdpError(codes.SYSTEM, `forwarding thread ${w} exited (code ${code}) before it finished`)));
      }));
      const files = capture === undefined ? undefined
        : this.ports.map((_, p) => captureFile(capture.file, p, this.ports.length, w, this.assignment.length));
      if (files !== undefined) this.captureFiles.push(files);
      const job: ThreadJob = { handles, mode, pollMode, engine: tx === undefined ? engine : { ...engine, tx }, drops,
        ...(files === undefined ? {} : { capture: { files, options: capture!.options ?? {} } }) };
      worker.postMessage(job);
    }
    this.#done = Promise.all(finished).then(() => undefined);
    this.#done.catch(() => undefined); // observed by the caller through `done`
    try {
      await Promise.all(attached);
    } catch (err) {
      await this.terminate();
      throw err;
    }
  }

  /** Fold the threads' drop counters into `ports[p].txDropped`. */
  refreshDrops(): void {
    for (const perPort of this.#drops) {
      perPort.forEach(({ view, queues }, p) => {
        const out = this.ports[p]!.txDropped;
        queues.forEach((k, j) => {
          out[k] = view[j]!;
        });
      });
    }
  }

  /** Ask every thread to stop (it reports, gives its queues back and exits). */
  stop(): void {
    for (const w of this.#workers) w.postMessage('stop');
  }

  /** End every thread now (their queues go back to the ports). */
  async terminate(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
