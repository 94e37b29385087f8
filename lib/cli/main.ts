// The `afxdp` command.
import { AfxdpError } from '../errors';
import { dpServe, dpServeUsage } from './dp-serve';
import { UsageError } from './usage';

const usage = `Usage: afxdp <command> [options]

Commands:
  dp-serve    serve the AF_XDP Device Plugin protocol for unprivileged ports

Run 'afxdp <command> --help' for a command's options; 'afxdp --version'.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dp-serve':
        return await dpServe(rest);
      case '--version':
      case '-v':
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        console.log(require('../../package.json').version);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        console.log(usage);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`, usage);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`afxdp: ${(err as Error).message}\n\n${err instanceof UsageError ? err.usage : command === 'dp-serve' ? dpServeUsage : usage}`);
      return 2;
    }
    if (err instanceof AfxdpError) {
      console.error(`afxdp: ${err.message} [${err.code}]`);
      return 1;
    }
    throw err;
  }
}
