// Client side of the AF_XDP Device Plugin handshake (dp-protocol.md §2, §3,
// §11, §12) as a state machine without I/O: it says which record to send and
// when to read; the driver (client.ts) moves the bytes and the fds.
//
//   /connect,<pod>         → /host_ok        (/error [+ /host_nak], /host_nak: fatal)
//   /version               → 0.1
//   /xsk_map_fd,<iface>    → /fd_ack + fd    (one request per entry of `interfaces`)
//   [sockets]                                (only with busyPoll: the caller creates the
//                                             XSKs, then calls socketsReady())
//   /config_busy_poll,<timeout>,<budget> + XSK fd → _ack | _nak  (per queue; nak not fatal)
//   /fin                   → /fin_ack
//
// After a nak (/host_nak, /fd_nak, /nak) the machine still sends /fin and
// waits briefly for /fin_ack before it reports the failure: the Device Plugin
// logs an error when a client just hangs up.
//
// Replies are compared exactly after stripping trailing NULs (no strncmp
// prefix tricks), except `/fd_ack,<n>` (CNDP). Every failure is an AfxdpError
// with code ERR_AFXDP_DEVICE_PLUGIN whose message quotes the reply, names
// dp_path and the step, and says the likely fix.

import { AfxdpError, codes, quoteInput } from '../errors';
import {
  HANDSHAKE_VERSION,
  MAX_REPLY_BYTES,
  MAX_REQUEST_BYTES,
  byteLength,
  decodeReply,
  isFdAck,
  replies,
  requests,
  showBytes,
} from './messages';

export type HandshakeStep = 'connect' | 'version' | 'xsk_map_fd' | 'config_busy_poll' | 'fin';

/** One XSK of a port: `map` indexes `interfaces`, `queue` is the socket's position in that port. */
export interface XskRef {
  map: number;
  queue: number;
}

export interface BusyPollRequest {
  /** SO_BUSY_POLL, microseconds. */
  timeoutUs: number;
  /** SO_BUSY_POLL_BUDGET (one number: the same for all entries of `interfaces`). */
  budget: number | readonly number[];
  /** Sockets per entry of `interfaces` (one number: the same for all). */
  queues: number | readonly number[];
}

export interface HandshakeOptions {
  /** Sent in /connect; the Device Plugin looks the pod up by this name. */
  podName: string;
  /** Where podName came from, for messages: the podName option or the host name. */
  podNameFrom?: 'option' | 'hostname';
  /** One /xsk_map_fd request each, in order; a name may repeat (one fd per request). */
  interfaces: readonly string[];
  /** The socket, for messages. */
  dpPath: string;
  /** The per-step timeout the driver applies, for messages. */
  timeoutMs?: number;
  /** Ask the Device Plugin to set preferred busy polling on each socket. */
  busyPoll?: BusyPollRequest;
  /** Netdevs the Device Plugin allocated (AFXDP_DEVICES_*), for the /fd_nak message. */
  allocatedDevices?: readonly string[];
}

export type HandshakeAction =
  | {
      type: 'send';
      step: HandshakeStep;
      record: string;
      /** Attach this XSK's fd (SCM_RIGHTS). */
      attachXsk?: XskRef;
      /** The /fin after a nak: if it cannot be sent, call receive('eof'); the failure stands either way. */
      optional?: true;
    }
  | {
      type: 'receive';
      step: HandshakeStep;
      /** A record that may not come (the /host_nak after /error): wait briefly, EOF and timeout are fine. */
      optional?: true;
    }
  /** Every map fd is in hand: create the sockets, then call socketsReady(). */
  | { type: 'sockets' }
  | { type: 'done'; result: HandshakeResult }
  | { type: 'failed'; error: AfxdpError };

/** A received record, or EOF (also: the peer closed before a send), or no reply in time. */
export type HandshakeReply =
  | {
      data: Uint8Array;
      /** A file descriptor came with the record. */
      hasFd: boolean;
      /** The record was longer than the receive buffer (MSG_TRUNC). */
      truncated: boolean;
      /** How many fds beyond the first came (the transport closed them). */
      fdsDropped?: number;
      /** The control data was cut (MSG_CTRUNC): even more fds were sent than arrived. */
      controlTruncated?: boolean;
    }
  | 'eof'
  | 'timeout';

/** What the driver does with the fd that came with a reply. */
export type FdDisposition =
  | { fd: 'none' }
  /** The XSKMAP of request `map`: hand it on. */
  | { fd: 'keep'; map: number }
  /** Not wanted: close it. */
  | { fd: 'close' };

export interface BusyPollOutcome extends XskRef {
  enabled: boolean;
  reason?: string;
}

export interface HandshakeResult {
  /** The Device Plugin's handshake version. */
  version: string;
  /** The interface of each map fd, in request order. */
  maps: readonly string[];
  /** Per requested socket (empty without busyPoll). */
  busyPoll: readonly BusyPollOutcome[];
  /** Tolerated oddities (an fd on the wrong reply, an early close after a refusal). */
  notes: readonly string[];
}

export interface Handshake {
  next(): HandshakeAction;
  receive(reply: HandshakeReply): FdDisposition;
  /** After a 'sockets' action: the sockets exist, go on with busy polling. */
  socketsReady(): void;
  readonly step: HandshakeStep | undefined;
}

interface Request {
  step: HandshakeStep;
  record: string;
  map?: number;
  xsk?: XskRef;
}

type Phase = 'send' | 'reply' | 'second-reply' | 'sockets' | 'fin-send' | 'fin-reply' | 'done' | 'failed';

const NO_FD: FdDisposition = Object.freeze({ fd: 'none' });
const CLOSE_FD: FdDisposition = Object.freeze({ fd: 'close' });

export function createHandshake(options: HandshakeOptions): Handshake {
  return new HandshakeMachine(options);
}

class HandshakeMachine implements Handshake {
  readonly #o: HandshakeOptions;
  readonly #plan: Request[] = [];
  readonly #busyPoll: BusyPollOutcome[] = [];
  readonly #notes: string[] = [];
  #phase: Phase = 'send';
  #current: Request | undefined;
  #version = '';
  #error: AfxdpError | undefined;
  #result: HandshakeResult | undefined;
  /** Set after a busy-poll refusal: the Device Plugin closes the session then (setsockopt failed). */
  #refusedAt: XskRef | undefined;

  constructor(options: HandshakeOptions) {
    this.#o = { ...options, interfaces: [...options.interfaces] };
    checkOptions(this.#o);
    this.#plan.push({ step: 'connect', record: requests.connect(options.podName) });
    this.#plan.push({ step: 'version', record: requests.version });
    this.#o.interfaces.forEach((iface, map) => {
      this.#plan.push({ step: 'xsk_map_fd', record: requests.xskMapFd(iface), map });
    });
  }

  get step(): HandshakeStep | undefined {
    return this.#current?.step;
  }

  next(): HandshakeAction {
    switch (this.#phase) {
      case 'failed':
        return { type: 'failed', error: this.#error! };
      case 'done':
        return { type: 'done', result: this.#result! };
      case 'sockets':
        return { type: 'sockets' };
      case 'reply':
        return { type: 'receive', step: this.#current!.step };
      case 'second-reply':
        return { type: 'receive', step: this.#current!.step, optional: true };
      case 'fin-send':
        this.#phase = 'fin-reply';
        return { type: 'send', step: 'fin', record: requests.fin, optional: true };
      case 'fin-reply':
        return { type: 'receive', step: 'fin', optional: true };
      case 'send': {
        const request = this.#plan.shift()!;
        this.#current = request;
        this.#phase = 'reply';
        return request.xsk === undefined
          ? { type: 'send', step: request.step, record: request.record }
          : { type: 'send', step: request.step, record: request.record, attachXsk: { ...request.xsk } };
      }
    }
  }

  socketsReady(): void {
    if (this.#phase !== 'sockets') {
      throw new Error(`socketsReady() called in phase ${this.#phase}; call it after a 'sockets' action`);
    }
    const busyPoll = this.#o.busyPoll!;
    for (const [map] of this.#o.interfaces.entries()) {
      const count = perMap(busyPoll.queues, map);
      const record = requests.configBusyPoll(busyPoll.timeoutUs, perMap(busyPoll.budget, map));
      for (let queue = 0; queue < count; queue++) {
        this.#plan.push({ step: 'config_busy_poll', record, xsk: { map, queue } });
      }
    }
    this.#plan.push({ step: 'fin', record: requests.fin });
    this.#phase = 'send';
  }

  receive(reply: HandshakeReply): FdDisposition {
    if (this.#phase !== 'reply' && this.#phase !== 'second-reply' && this.#phase !== 'fin-reply') {
      throw new Error(`receive() called in phase ${this.#phase}; call it after a 'receive' action`);
    }
    const request = this.#current!;
    const hasFd = typeof reply === 'object' && reply.hasFd;
    const unwanted = hasFd ? CLOSE_FD : NO_FD;

    if (this.#phase === 'fin-reply') {
      // Whatever the answer to the /fin after a nak: the failure stands.
      this.#phase = 'failed';
      return unwanted;
    }

    if (this.#phase === 'second-reply') {
      this.#fail(request, this.#afterError(reply));
      return unwanted;
    }
    if (reply === 'timeout') {
      this.#fail(request, [
        `no reply within ${this.#o.timeoutMs ?? 'the timeout'} ms`,
        'the Device Plugin may be slow to ask kubelet about the pod (up to 5 s) or stuck; check its log, ' +
          'or raise handshakeTimeoutMs',
      ]);
      return NO_FD;
    }
    if (reply === 'eof') {
      if (this.#refusedAt !== undefined && (request.step === 'config_busy_poll' || request.step === 'fin')) {
        this.#endAfterRefusal();
      } else {
        this.#fail(request, this.#eofProblem(request));
      }
      return NO_FD;
    }
    const fdNote = hasFd ? ' (a file descriptor came with it; afxdp closed it)' : '';
    if (reply.truncated) {
      this.#fail(request, [
        `the reply is longer than ${MAX_REPLY_BYTES} bytes; it starts ${showBytes(reply.data, 40)}${fdNote}`,
        notDevicePluginFix(),
      ]);
      return unwanted;
    }
    const decoded = decodeReply(reply.data);
    if (!decoded.ok) {
      this.#fail(request, [`the reply is not a text record: ${decoded.shown}${fdNote}`, notDevicePluginFix()]);
      return unwanted;
    }
    const text = decoded.text;
    const dropped = reply.fdsDropped ?? 0;

    if (request.step === 'xsk_map_fd' && isFdAck(text)) {
      if (!hasFd) {
        this.#fail(request, [
          `the Device Plugin answered ${quoteInput(text)} without a file descriptor`,
          'the XSKMAP fd was not passed (SCM_RIGHTS); check the Device Plugin\'s log',
        ]);
        return NO_FD;
      }
      if (dropped > 0 || reply.controlTruncated) {
        const arrived = dropped + 1;
        const count = reply.controlTruncated ? `more than ${arrived === 1 ? 'one' : arrived}` : String(arrived);
        this.#fail(request, [
          `the Device Plugin answered ${quoteInput(text)} with ${count} file descriptor${count === 'more than one' ? '' : 's'} ` +
            '(the protocol carries exactly one); afxdp closed them all',
          'check that dp_path is the Device Plugin\'s socket',
        ]);
        return CLOSE_FD;
      }
      this.#advance();
      return { fd: 'keep', map: request.map! };
    }

    if (hasFd || dropped > 0) {
      this.#notes.push(`the Device Plugin sent ${hasFd ? 'a file descriptor' : 'file descriptors'} with ` +
        `${quoteInput(text)} (reply to ${request.record}); afxdp closed ${hasFd ? 'it' : 'them'}`);
    }
    this.#handleText(request, text, fdNote);
    return unwanted;
  }

  // ------------------------------------------------------------- replies

  #handleText(request: Request, text: string, fdNote: string): void {
    const got = `the Device Plugin answered ${quoteInput(text)}${fdNote}`;
    switch (request.step) {
      case 'connect':
        if (text === replies.hostOk) return this.#advance();
        if (text === replies.hostNak) return this.#failThenFin(request, [`${got}: it did not find pod ${quoteInput(this.#o.podName)} with this device`, this.#podFix()]);
        if (text === replies.error) {
          // The Device Plugin sends /host_nak right after /error: consume it.
          this.#phase = 'second-reply';
          return;
        }
        break;
      case 'version':
        if (text === HANDSHAKE_VERSION) {
          this.#version = text;
          return this.#advance();
        }
        if (text === replies.nak) {
          return this.#failThenFin(request, [`${got}: it does not know the /version request`, protocolFix()]);
        }
        if (/^[0-9]+(\.[0-9]+)+$/.test(text)) {
          return this.#fail(request, [
            `the Device Plugin speaks handshake version ${quoteInput(text)}; afxdp speaks ${HANDSHAKE_VERSION}`,
            'use a Device Plugin release with handshake version 0.1 (redhat-et/afxdp-plugins-for-kubernetes)',
          ]);
        }
        break;
      case 'xsk_map_fd': {
        const iface = this.#o.interfaces[request.map!]!;
        if (text === replies.fdNak) {
          const allocated = this.#o.allocatedDevices;
          const which = allocated === undefined
            ? 'see the AFXDP_DEVICES_* environment variables for the ones it allocated'
            : allocated.length === 0
              ? 'no AFXDP_DEVICES_* environment variable lists any device in this container'
              : `the environment (AFXDP_DEVICES_*) lists ${allocated.map((d) => quoteInput(d)).join(', ')}`;
          return this.#failThenFin(request, [
            `${got}: interface ${quoteInput(iface)} is not one of the devices allocated to this pod (AFXDP_DEVICES_*)`,
            `set iface to an allocated device (${which}), and dp_path to that device's socket`,
          ]);
        }
        if (text === replies.nak) return this.#failThenFin(request, [`${got}: it rejected ${quoteInput(request.record)} as malformed`, protocolFix()]);
        break;
      }
      case 'config_busy_poll': {
        const xsk = request.xsk!;
        if (text === replies.busyPollAck) {
          this.#busyPoll.push({ ...xsk, enabled: true });
          return this.#advance();
        }
        if (text === replies.busyPollNak || text === replies.nak) {
          const reason = text === replies.nak
            ? `the Device Plugin does not support /config_busy_poll (it answered "/nak")`
            : 'busy polling refused by the Device Plugin ("/config_busy_poll_nak"): it could not set ' +
              'SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on the socket (they need Linux 5.11+); see its log';
          this.#busyPoll.push({ ...xsk, enabled: false, reason });
          this.#refusedAt ??= xsk;
          return this.#advance();
        }
        break;
      }
      case 'fin':
        if (text === replies.finAck) return this.#finish();
        break;
    }
    const problem: [string, string] = [`expected ${this.#expected(request.step)}, but ${got}`, this.#unexpectedFix(text)];
    if (text === replies.nak && request.step !== 'fin') this.#failThenFin(request, problem);
    else this.#fail(request, problem);
  }

  // After /error: the /host_nak that should follow, or not.
  #afterError(reply: HandshakeReply): [string, string] {
    const base = 'the Device Plugin answered "/error"';
    const then = reply === 'eof' || reply === 'timeout'
      ? ''
      : (() => {
        const decoded = decodeReply(reply.data);
        const shown = decoded.ok ? quoteInput(decoded.text) : decoded.shown;
        return decoded.ok && decoded.text === replies.hostNak ? ' then "/host_nak"' : ` then ${shown}`;
      })();
    return [
      `${base}${then}: it could not query kubelet's pod-resources API to validate pod ${quoteInput(this.#o.podName)}`,
      'check the Device Plugin\'s log and that kubelet\'s pod-resources socket ' +
        '(/var/lib/kubelet/pod-resources/kubelet.sock) is mounted into the Device Plugin DaemonSet; ' +
        'then restart this pod for a fresh allocation',
    ];
  }

  #eofProblem(request: Request): [string, string] {
    const record = quoteInput(request.record);
    if (request.step === 'connect') {
      return [
        `the Device Plugin closed the connection without answering ${record}`,
        'the Device Plugin serves one connection per allocation and closes after a timeout ' +
          '(UdsTimeout, default 30 s after the container was allocated): open every port of this ' +
          'socket in one openPorts() call, make sure no other process used it, connect sooner, ' +
          'or restart the pod for a fresh allocation',
      ];
    }
    return [
      `the Device Plugin closed the connection after ${record} without a reply`,
      'it ends the session on an error it does not report and after UdsTimeout (default 30 s) without a request; ' +
        'check the Device Plugin\'s log',
    ];
  }

  #podFix(): string {
    const from = this.#o.podNameFrom === 'hostname'
      ? 'afxdp sent the host name, as DPDK does; pass podName if it differs from the pod name'
      : 'podName option; DPDK sends the host name';
    return `check the pod name (${from}) and that the pod requested the afxdp/<pool> resource that this device belongs to`;
  }

  #expected(step: HandshakeStep): string {
    switch (step) {
      case 'connect':
        return '"/host_ok"';
      case 'version':
        return `"${HANDSHAKE_VERSION}"`;
      case 'xsk_map_fd':
        return '"/fd_ack" with the XSKMAP fd';
      case 'config_busy_poll':
        return '"/config_busy_poll_ack" or "/config_busy_poll_nak"';
      case 'fin':
        return '"/fin_ack"';
    }
  }

  #unexpectedFix(text: string): string {
    if (text === replies.nak) return protocolFix();
    return notDevicePluginFix();
  }

  // ------------------------------------------------------------- transitions

  #advance(): void {
    if (this.#plan.length > 0) {
      this.#phase = 'send';
      return;
    }
    // Every map fd is in hand (the plan after /xsk_map_fd is built on the way).
    if (this.#current!.step === 'xsk_map_fd') {
      if (this.#o.busyPoll !== undefined) {
        this.#phase = 'sockets';
      } else {
        this.#plan.push({ step: 'fin', record: requests.fin });
        this.#phase = 'send';
      }
      return;
    }
    this.#phase = 'send';
  }

  // The Device Plugin closes the session after a failed setsockopt: the maps
  // are in hand and the sockets in them, so the port works without busy polling.
  #endAfterRefusal(): void {
    const refused = this.#refusedAt!;
    const reason = `not requested: the Device Plugin ended the session after refusing busy polling on queue ` +
      `${refused.queue} of ${quoteInput(this.#o.interfaces[refused.map]!)}`;
    const pending = [this.#current!, ...this.#plan].filter((r) => r.step === 'config_busy_poll');
    for (const request of pending) this.#busyPoll.push({ ...request.xsk!, enabled: false, reason });
    this.#plan.length = 0;
    this.#notes.push('the Device Plugin closed the session after refusing busy polling (it does so when setsockopt fails); ' +
      'the XSKMAP fds were already received');
    this.#finish();
  }

  #finish(): void {
    this.#phase = 'done';
    this.#result = Object.freeze({
      version: this.#version,
      maps: Object.freeze([...this.#o.interfaces]),
      busyPoll: Object.freeze(this.#busyPoll.map((o) => Object.freeze(o))),
      notes: Object.freeze([...this.#notes]),
    });
  }

  // A nak: the Device Plugin still reads, so end the session with /fin first.
  #failThenFin(request: Request, problem: [string, string]): void {
    this.#fail(request, problem);
    this.#phase = 'fin-send';
  }

  #fail(request: Request, [problem, fix]: [string, string]): void {
    this.#phase = 'failed';
    this.#plan.length = 0;
    this.#error = new AfxdpError(
      codes.DEVICE_PLUGIN,
      `Device Plugin handshake on ${this.#o.dpPath} failed at ${describeStep(request, this.#o)}: ${problem}; ${fix}`,
      { path: this.#o.dpPath },
    );
  }
}

function perMap(value: number | readonly number[], map: number): number {
  return typeof value === 'number' ? value : value[map]!;
}

function describeStep(request: Request, options: HandshakeOptions): string {
  switch (request.step) {
    case 'connect':
      return `step /connect (pod ${quoteInput(options.podName)})`;
    case 'version':
      return 'step /version';
    case 'xsk_map_fd':
      return `step /xsk_map_fd (interface ${quoteInput(options.interfaces[request.map!]!)})`;
    case 'config_busy_poll':
      return `step /config_busy_poll (queue ${request.xsk!.queue} of interface ${quoteInput(options.interfaces[request.xsk!.map]!)})`;
    case 'fin':
      return 'step /fin';
  }
}

function protocolFix(): string {
  return 'afxdp and this Device Plugin disagree on the protocol; report it with the Device Plugin version';
}

function notDevicePluginFix(): string {
  return 'check that dp_path is the socket of the AF_XDP Device Plugin (redhat-et/afxdp-plugins-for-kubernetes) ' +
    'and not some other service';
}

// ------------------------------------------------------------- options

function invalid(argument: string, message: string): AfxdpError {
  return new AfxdpError(codes.INVALID_ARGUMENT, message, { argument });
}

function checkOptions(options: HandshakeOptions): void {
  const { podName, interfaces, busyPoll } = options;
  if (typeof options.dpPath !== 'string' || options.dpPath === '') {
    throw invalid('dpPath', 'Device Plugin handshake: dpPath must be a non-empty string (the socket path)');
  }
  const from = options.podNameFrom === 'hostname' ? 'the host name' : 'podName';
  const fix = options.podNameFrom === 'hostname'
    ? 'pass the pod name with the podName option'
    : 'pass the pod name as Kubernetes shows it';
  if (typeof podName !== 'string' || podName === '') {
    throw invalid('podName', `Device Plugin handshake: ${from} is empty; ${fix}`);
  }
  // The Device Plugin splits on ',' (exactly two parts) and deletes spaces.
  if (!/^[\x21-\x7e]+$/.test(podName) || podName.includes(',')) {
    throw invalid('podName', `Device Plugin handshake: ${from} ${quoteInput(podName)} has a comma, whitespace or a ` +
      `non-ASCII or control character, which the /connect record cannot carry; ${fix}`);
  }
  const connect = requests.connect(podName);
  if (byteLength(connect) > MAX_REQUEST_BYTES) {
    throw invalid('podName', `Device Plugin handshake: ${from} ${quoteInput(podName)} is ${byteLength(podName)} bytes; ` +
      `"/connect,<name>" must fit the Device Plugin's ${MAX_REQUEST_BYTES}-byte record, so the name may have at most ` +
      `${MAX_REQUEST_BYTES - byteLength(requests.connect(''))} bytes; ${fix}`);
  }
  if (!Array.isArray(interfaces) || interfaces.length === 0) {
    throw invalid('interfaces', 'Device Plugin handshake: interfaces must list at least one netdev name');
  }
  for (const iface of interfaces) {
    if (typeof iface !== 'string' || !/^[\x21-\x7e]+$/.test(iface) || iface.includes(',') ||
        byteLength(requests.xskMapFd(iface)) > MAX_REQUEST_BYTES) {
      throw invalid('iface', `Device Plugin handshake: interface ${quoteInput(String(iface))} cannot be sent in ` +
        '/xsk_map_fd (empty, too long, or with a comma, whitespace or control character); pass the netdev name');
    }
  }
  if (busyPoll !== undefined) {
    const { timeoutUs, budget, queues } = busyPoll;
    if (!Number.isInteger(timeoutUs) || timeoutUs < 0 || timeoutUs > 0x7fffffff) {
      throw invalid('busyPoll.timeoutUs', `Device Plugin handshake: busy poll timeout ${String(timeoutUs)} must be an integer in 0..2147483647 µs`);
    }
    const valid = (value: number | readonly number[]): boolean => {
      const list = typeof value === 'number' ? [value] : value;
      return (typeof value === 'number' || (Array.isArray(value) && value.length === interfaces.length)) &&
        list.every((n) => Number.isInteger(n) && n >= 0 && n <= 65_535);
    };
    if (!valid(budget)) {
      throw invalid('busyPoll.budget', 'Device Plugin handshake: busyPoll.budget must be an integer in 0..65535, or one per interface');
    }
    if (!valid(queues)) {
      throw invalid('busyPoll.queues', 'Device Plugin handshake: busyPoll.queues must be a socket count, or one count per interface');
    }
  }
}
