// A Device-Plugin-compatible server (startDpServer) in a process of its own,
// so that a test's fd count and event loop see only the client. Options are
// the JSON in argv[2]. Prints {type:'info', info} once listening; answers
// the stdin line "log" with {type:'log', log}; stops on "stop", on the end of
// stdin or on SIGTERM, then prints {type:'stopped'} and exits.
import readline from 'node:readline';
import { startDpServer } from '../../lib/dp';

const server = startDpServer(JSON.parse(process.argv[2]!));
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
let stopped = false;
const stop = () => {
  if (stopped) return;
  stopped = true;
  server.stop();
  say({ type: 'stopped' });
  process.exit(0);
};
process.on('SIGTERM', stop);
say({ type: 'info', info: server.info() });
readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'log') say({ type: 'log', log: server.log() });
    else if (line === 'stop') stop();
  })
  .on('close', stop);
