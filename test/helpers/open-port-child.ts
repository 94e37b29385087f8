// Child process for privilege tests: open a port from the JSON options in
// argv[2], report {ok, info} or {code, message} as JSON on stdout, close.
import { openPort } from '../../lib/index';

(async () => {
  try {
    const port = await openPort(JSON.parse(process.argv[2]!));
    const info = port.info();
    port.close();
    process.stdout.write(JSON.stringify({ ok: true, info }));
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }));
  }
})();
