// `afxdp dp-serve`: run the Device-Plugin-compatible server until SIGINT,
// SIGTERM or its allocations are used up, then clean up everything.
import { parseArgs } from 'node:util';
import { startDpServer, DpServerOptions } from '../dp-server';
import { UsageError } from './usage';

export const dpServeUsage = `Usage: afxdp dp-serve --iface IF [--iface IF ...] [options]

Serve the AF_XDP Device Plugin's protocol for unprivileged afxdp ports
(as root): attaches afxdp's redirect program to each interface and hands
out its XSKMAP over the UDS handshake and/or as a pinned map.

  --iface IF          interface to serve (repeatable)
  --netns NS          find the interfaces in this network namespace
  --uid UID           owner of sockets and pins, and the only client uid allowed
  --gid GID           group of sockets and pins
  --pod NAME          pod name a client may give in /connect (repeatable; default any)
  --pod-dir DIR       pod-visible sockets DIR/<iface>/afxdp.sock (default /tmp/afxdp_dp)
  --uds-dir DIR       host sockets DIR/<uuid>.sock (default /tmp/afxdp_dp/afxdp_pool)
  --no-uds            no UDS handshake (pinned maps only)
  --pin-dir DIR       pin each XSKMAP at DIR/<iface>/xsks_map (mounts a bpffs there)
  --sessions N        allocations to serve: 1 like the Device Plugin (default), 0 = until stopped
  --timeout S         accept and read deadline in seconds (default 30, -1 = none)
  --xdp-mode MODE     auto (default), native or generic
  --fault MODE        fault injection for client tests (see docs)
  --verbose           print the protocol log on stderr
  -h, --help          this text`;

export async function dpServe(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      iface: { type: 'string', multiple: true },
      netns: { type: 'string' },
      uid: { type: 'string' },
      gid: { type: 'string' },
      pod: { type: 'string', multiple: true },
      'pod-dir': { type: 'string' },
      'uds-dir': { type: 'string' },
      'no-uds': { type: 'boolean' },
      'pin-dir': { type: 'string' },
      sessions: { type: 'string' },
      timeout: { type: 'string' },
      'xdp-mode': { type: 'string' },
      fault: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(dpServeUsage);
    return 0;
  }
  if (!values.iface?.length) throw new UsageError('dp-serve needs at least one --iface', dpServeUsage);
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer >= ${min}, not ${JSON.stringify(v)}`, dpServeUsage);
    return Number(v);
  };
  const uid = int('uid', values.uid, 0);
  const timeout = int('timeout', values.timeout, -1);
  const options: DpServerOptions = {
    devices: values.iface.map((iface) => ({ iface, netns: values.netns })),
    uds: !values['no-uds'],
    podDir: values['pod-dir'],
    udsDir: values['uds-dir'],
    pinDir: values['pin-dir'],
    ownerUid: uid,
    ownerGid: int('gid', values.gid, 0),
    allowedUids: uid === undefined ? undefined : [uid],
    allowedPods: values.pod,
    sessions: int('sessions', values.sessions, 0),
    acceptTimeoutMs: timeout === undefined ? undefined : timeout < 0 ? -1 : timeout * 1000,
    readTimeoutMs: timeout === undefined ? undefined : timeout < 0 ? -1 : timeout * 1000,
    xdpMode: values['xdp-mode'],
    fault: values.fault,
    logToStderr: values.verbose ?? false,
  };
  const server = startDpServer(options);
  const info = server.info();
  console.log(JSON.stringify({ event: 'ready', socket: info.socketPath, podSockets: info.podSocketPaths, pins: info.pinPaths, programIds: info.programIds }));
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (reason: string) => {
      if (done) return;
      done = true;
      clearInterval(poll);
      const served = server.sessionsServed();
      server.stop();
      console.log(JSON.stringify({ event: 'stopped', reason, sessionsServed: served }));
      resolve(0);
    };
    process.once('SIGINT', () => finish('SIGINT'));
    process.once('SIGTERM', () => finish('SIGTERM'));
    // The native server thread ends once its allocations are used up.
    const poll = setInterval(() => {
      if (server.info().finished && !(info.pinPaths.length > 0)) finish('allocations used up');
    }, 200);
  });
}
