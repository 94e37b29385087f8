// `--metrics-port`: Prometheus text format over HTTP (prom-client), read
// from the ports at scrape time: per-port, per-queue packet and byte
// counters, every XDP statistic, the forwarder's tx drops, and gauges for
// zero-copy, hugepages, link state and frame ownership.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { TrackedPort } from './stats';
import type { QueueStats } from '../port';

type QueueCounter = (q: QueueStats, dropped: number) => number;

const QUEUE_COUNTERS: [string, string, QueueCounter][] = [
  ['afxdp_rx_packets_total', 'Packets received on the queue', (q) => q.rxPackets],
  ['afxdp_rx_bytes_total', 'Bytes received on the queue', (q) => q.rxBytes],
  ['afxdp_tx_packets_total', 'Packets posted for transmission on the queue', (q) => q.txPackets],
  ['afxdp_tx_bytes_total', 'Bytes posted for transmission on the queue', (q) => q.txBytes],
  ['afxdp_tx_dropped_total', 'Packets the forwarder dropped because the tx ring was full', (_q, d) => d],
  ['afxdp_xdp_rx_dropped_total', 'XDP_STATISTICS rx_dropped: dropped for reasons other than invalid descriptors', (q) => q.xdp.rxDropped],
  ['afxdp_xdp_rx_invalid_descs_total', 'XDP_STATISTICS rx_invalid_descs', (q) => q.xdp.rxInvalidDescs],
  ['afxdp_xdp_tx_invalid_descs_total', 'XDP_STATISTICS tx_invalid_descs', (q) => q.xdp.txInvalidDescs],
  ['afxdp_xdp_rx_ring_full_total', 'XDP_STATISTICS rx_ring_full: dropped because the rx ring was full', (q) => q.xdp.rxRingFull],
  ['afxdp_xdp_rx_fill_ring_empty_descs_total', 'XDP_STATISTICS rx_fill_ring_empty_descs', (q) => q.xdp.rxFillRingEmptyDescs],
  ['afxdp_xdp_tx_ring_empty_descs_total', 'XDP_STATISTICS tx_ring_empty_descs', (q) => q.xdp.txRingEmptyDescs],
];

/** The registry for a set of ports (closed ports are left out). */
export function metricsRegistry(ports: readonly TrackedPort[], defaults = true): Registry {
  const registry = new Registry();
  const live = () => ports.map((t, i) => ({ t, i })).filter(({ t }) => !t.port.closed);
  for (const [name, help, value] of QUEUE_COUNTERS) {
    new Counter({
      name,
      help,
      labelNames: ['port', 'iface', 'queue'],
      registers: [registry],
      collect(this: Counter) {
        this.reset();
        for (const { t, i } of live()) {
          t.port.stats().queues.forEach((q, k) => {
            this.inc({ port: String(i), iface: t.port.config.iface, queue: String(q.queueId) }, value(q, t.txDropped[k] ?? 0));
          });
        }
      },
    });
  }
  new Gauge({
    name: 'afxdp_zero_copy',
    help: '1 when the kernel bound the queue\'s socket in zero-copy mode',
    labelNames: ['port', 'iface', 'queue'],
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      for (const { t, i } of live()) {
        const info = t.port.info();
        info.zeroCopy.forEach((zc, k) => {
          this.set({ port: String(i), iface: info.iface, queue: String(info.queues[k]) }, zc ? 1 : 0);
        });
      }
    },
  });
  const portGauge = (name: string, help: string, value: (t: TrackedPort) => number) => new Gauge({
    name,
    help,
    labelNames: ['port', 'iface'],
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      for (const { t, i } of live()) this.set({ port: String(i), iface: t.port.config.iface }, value(t));
    },
  });
  portGauge('afxdp_hugepages', '1 when the port\'s UMEM is backed by hugepages', (t) => (t.port.info().hugepages ? 1 : 0));
  portGauge('afxdp_link_up', '1 when the interface has carrier', (t) => (t.port.info().linkUp ? 1 : 0));
  portGauge('afxdp_queues', 'AF_XDP sockets (queues) of the port', (t) => t.port.queues.length);
  new Gauge({
    name: 'afxdp_umem_frames',
    help: 'UMEM frames by owner (free, fill_ring, rx_ring, app, tx_ring, completion_ring, in_kernel)',
    labelNames: ['port', 'iface', 'owner'],
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      for (const { t, i } of live()) {
        const f = t.port.frames();
        const owners: [string, number][] = [['free', f.free], ['fill_ring', f.fillRing], ['rx_ring', f.rxRing], ['app', f.app],
          ['tx_ring', f.txRing], ['completion_ring', f.completionRing], ['in_kernel', f.inKernel]];
        for (const [owner, n] of owners) this.set({ port: String(i), iface: t.port.config.iface, owner }, n);
      }
    },
  });
  if (defaults) collectDefaultMetrics({ register: registry });
  return registry;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serve `registry` at http://host:port/metrics. */
export async function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('afxdp: metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
