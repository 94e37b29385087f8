// `afxdp dp-serve`: run the Device-Plugin-compatible server until SIGINT,
// SIGTERM or its allocations are used up, then clean up everything. Its
// XDP programs outlive a crash (kill -9): the next run adopts them, so pods
// keep their traffic meanwhile; a clean stop detaches them (unless
// --keep-programs).
import { parseArgs } from 'node:util';
import { startDpServer, DpServerInfo, DpServerOptions } from '../dp/server';
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
  --concurrency N     sessions served at once (default 64); past it new clients wait
                      unaccepted (in the listen backlog) until a session ends
  --timeout S         accept, read and total session deadline in seconds (default 30,
                      -1 = none); a session ends S seconds after its accept
  --check-interval MS how often to check the programs are still attached and re-attach
                      a removed one (default 1000, -1 = never)
  --state-dir DIR     records of the attached programs (default /run/afxdp/dp-serve)
  --keep-programs     on SIGINT/SIGTERM leave the programs attached for the next run
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
      concurrency: { type: 'string' },
      'check-interval': { type: 'string' },
      'state-dir': { type: 'string' },
      'keep-programs': { type: 'boolean' },
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
  const timeoutMs = timeout === undefined ? undefined : timeout < 0 ? -1 : timeout * 1000;
  const checkInterval = int('check-interval', values['check-interval'], -1);
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
    acceptTimeoutMs: timeoutMs,
    readTimeoutMs: timeoutMs,
    sessionTimeoutMs: timeoutMs,
    maxConcurrent: int('concurrency', values.concurrency, 1),
    checkIntervalMs: checkInterval === 0 ? undefined : checkInterval,
    stateDir: values['state-dir'],
    keepPrograms: values['keep-programs'] ?? false,
    xdpMode: values['xdp-mode'],
    fault: values.fault,
    logToStderr: values.verbose ?? false,
  };
  const server = startDpServer(options);
  const info = server.info();
  console.log(JSON.stringify({
    event: 'ready', pid: process.pid, socket: info.socketPath, podSockets: info.podSocketPaths, pins: info.pinPaths,
    programIds: info.programIds, adopted: info.devices.filter((d) => d.adopted).map((d) => d.iface),
  }));
  // What the watcher found, printed once per change: a program re-attached
  // after it was removed, or a problem (another program in its place).
  const seen = info.devices.map((d) => ({ reattached: d.reattached, problem: d.problem }));
  const report = (now: DpServerInfo) => {
    now.devices.forEach((d, i) => {
      const was = seen[i];
      if (d.reattached !== was?.reattached) console.log(JSON.stringify({ event: 'reattached', iface: d.iface, programId: d.programId, times: d.reattached }));
      if (d.problem !== was?.problem && d.problem !== null) console.error(`afxdp dp-serve: ${d.iface}: ${d.problem}`);
      if (d.problem !== was?.problem) console.log(JSON.stringify({ event: 'problem', iface: d.iface, problem: d.problem }));
      seen[i] = { reattached: d.reattached, problem: d.problem };
    });
  };
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
      const now = server.info();
      report(now);
      if (now.finished && !(info.pinPaths.length > 0)) finish('allocations used up');
    }, 200);
  });
}
