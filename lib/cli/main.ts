// The `afxdp` command.
import { AfxdpError, codes } from '../errors';
import { dpServe, dpServeUsage } from './dp-serve';
import { fwd, fwdUsage } from './fwd';
import { demo, demoUsage } from './demo';
import { doctor, doctorUsage } from './doctor';
import { UsageError } from './usage';

export const usage = `Usage: afxdp <command> [options]

Commands:
  demo        as root, on any Linux box: a lab, a Device Plugin, an unprivileged
              forwarder and traffic, with live statistics; removes everything on exit
  fwd         forward packets between AF_XDP ports, like dpdk-testpmd
              (io, macswap, rxonly, txonly; DPDK --vdev devargs)
  doctor      check this machine (and an interface) for what AF_XDP ports need
  dp-serve    serve the AF_XDP Device Plugin protocol for unprivileged ports

Run 'afxdp <command> --help' for a command's options; 'afxdp --version'.`;

const usageOf: Record<string, string> = { 'dp-serve': dpServeUsage, fwd: fwdUsage, demo: demoUsage, doctor: doctorUsage };

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dp-serve':
        return await dpServe(rest);
      case 'fwd':
        return await fwd(rest);
      case 'demo':
        return await demo(rest);
      case 'doctor':
        return await doctor(rest);
      case '--version':
      case '-v':
      case '-V':
      case 'version':
        console.log(require('../../package.json').version);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        if (command === 'help' && rest[0] !== undefined && usageOf[rest[0]] !== undefined) {
          console.log(usageOf[rest[0]]);
          return 0;
        }
        (command === undefined ? console.error : console.log)(usage);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`, usage);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      const text = err instanceof UsageError ? err.usage : usageOf[command ?? ''] ?? usage;
      console.error(`afxdp: ${(err as Error).message}\n\n${text}`);
      return 2;
    }
    if (err instanceof AfxdpError) {
      if (err.code === codes.DEVARGS) {
        console.error(`afxdp: ${err.message}\n\n${usageOf[command ?? ''] ?? usage}`);
        return 2;
      }
      console.error(`afxdp: ${err.message} [${err.code}]`);
      return 1;
    }
    throw err;
  }
}
