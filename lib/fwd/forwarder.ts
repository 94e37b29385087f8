// The forwarder: ports, one engine, the lanes between them (testpmd's
// streams), and a step that runs the engine once on every lane.
//
// One port forwards back out of itself (queue k to queue k); two ports
// forward to each other (port 0's queue k to port 1's queue k mod its
// count, and back). A generator engine (txonly) gets one lane per queue.
import type { Port } from '../port/port';
import type { FrameAccounting, PortInfo } from '../port/port';
import { engineOf, ForwardEngine, ForwardMode, EngineOptions } from './engines';
import { Lane, LaneQueue } from './lane';
import { LoopOptions, PollLoop } from './poll-loop';

/** What the forwarder uses of a port: `Port` has it; unit tests pass fakes. */
export interface ForwardPort {
  readonly queues: readonly LaneQueue[];
  readonly closed: boolean;
  info(): Pick<PortInfo, 'mac' | 'frameSize' | 'dataOffset'> & Partial<Pick<PortInfo, 'multiBuffer'>>;
  frames(umem?: number): Pick<FrameAccounting, 'txRing' | 'completionRing'>;
}

/** A port and the packets the forwarder dropped per queue (tx ring full). */
export interface ForwardedPort<P extends ForwardPort = Port> {
  port: P;
  /** Indexed by queue index. */
  txDropped: Float64Array;
}

export interface ForwarderOptions extends EngineOptions {
  /** Per port, where the lanes count their drops by queue index (default: new arrays; a forwarding thread passes shared memory). */
  txDropped?: readonly Float64Array[];
}

export class Forwarder<P extends ForwardPort = Port> {
  readonly engine: ForwardEngine;
  readonly ports: readonly ForwardedPort<P>[];
  readonly lanes: readonly Lane[];

  constructor(ports: readonly P[], mode: ForwardMode | ForwardEngine, options: ForwarderOptions = {}) {
    this.engine = typeof mode === 'string' ? engineOf(mode) : mode;
    this.ports = ports.map((port, p) => ({ port, txDropped: options.txDropped?.[p] ?? new Float64Array(port.queues.length) }));
    const lanes: Lane[] = [];
    const laneTo = (rx: LaneQueue, to: number, tx: LaneQueue) => {
      const info = ports[to]!.info();
      lanes.push(new Lane(rx, tx, {
        txRoom: info.frameSize - info.dataOffset,
        dropped: this.ports[to]!.txDropped,
        droppedIndex: tx.index,
        txPort: to,
        txMultiBuffer: info.multiBuffer ?? true,
      }));
    };
    ports.forEach((port, p) => {
      if (!this.engine.receives) {
        for (const q of port.queues) laneTo(q, p, q);
        return;
      }
      const to = ports.length === 1 ? 0 : 1 - p;
      const target = ports[to]!.queues;
      port.queues.forEach((rx, k) => {
        laneTo(rx, to, target[k % target.length]!);
      });
    });
    this.lanes = lanes;
    this.engine.begin?.(lanes, ports.map((port) => port.info()), options);
  }

  /** One burst on every lane; returns the packets moved. Allocates nothing. */
  readonly step = (): number => {
    const engine = this.engine;
    const lanes = this.lanes;
    let moved = 0;
    for (let i = 0; i < lanes.length; i++) moved += engine.forward(lanes[i]!);
    return moved;
  };

  /** How packets move between ports: 'descriptor' (shared UMEM, no copy) or 'copy'; 'none' for one port or txonly. */
  get path(): 'descriptor' | 'copy' | 'none' {
    const between = this.lanes.filter((l) => !l.same);
    if (between.length === 0) return 'none';
    return between.every((l) => l.byDescriptor) ? 'descriptor' : 'copy';
  }

  /** The rx queues a sleeping loop waits on: none for a generator (its sleeps are 1 ms polls). */
  get wakeOn(): P['queues'][number][] {
    const queues: P['queues'][number][] = [];
    if (this.engine.receives) for (const t of this.ports) queues.push(...t.port.queues);
    return queues;
  }

  /** Run step() under a poll policy until stopped or `options.signal` aborts (see PollLoop). */
  run(this: Forwarder<Port>, options: LoopOptions = {}): PollLoop {
    return new PollLoop(this.wakeOn, this.step, options);
  }

  /** Let posted frames leave and completions come back (bounded). */
  async drain(maxMs = 200): Promise<void> {
    const deadline = Date.now() + maxMs;
    for (const t of this.ports) {
      while (!t.port.closed && Date.now() < deadline) {
        let inFlight = 0;
        for (const q of t.port.queues) q.reap();
        const seen = new Set<number>();
        for (const q of t.port.queues) {
          if (seen.has(q.umemIndex)) continue;
          seen.add(q.umemIndex);
          const f = t.port.frames(q.umemIndex);
          inFlight += f.txRing + f.completionRing;
        }
        if (inFlight === 0) break;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }
}
