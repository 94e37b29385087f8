// Child process for fault tests: open a port from the JSON options in
// argv[2], print one JSON line ({ok, info} or {ok: false, code, message,
// errno, path}), then hold the port until stdin closes (or a signal kills
// it: no signal handlers are installed, so SIGTERM ends it the default way).
// With argv[3] === 'exit' it closes the port and exits 0 right away.
import { openPort } from '../../lib/index';

(async () => {
  const exitAfter = process.argv[3] === 'exit';
  try {
    const port = await openPort(JSON.parse(process.argv[2]!));
    process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid, info: port.info() })}\n`);
    if (exitAfter) {
      port.close();
      return;
    }
    process.stdin.resume();
    process.stdin.on('end', () => {
      port.close();
      process.exit(0);
    });
  } catch (err) {
    const e = err as { code?: string; message?: string; errno?: number; path?: string };
    process.stdout.write(`${JSON.stringify({ ok: false, code: e.code, message: e.message, errno: e.errno, path: e.path })}\n`);
  }
})();
