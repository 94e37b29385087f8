// A stopped DpServer throws a typed ERR_AFXDP_CLOSED, never a bare Error.
import test from 'ava';

import { AfxdpError, codes } from '../../lib/errors';
import { DpServer } from '../../lib/dp/server';

test('DpServer: info() after stop() throws AfxdpError ERR_AFXDP_CLOSED; the rest stays quiet', (t) => {
  let stops = 0;
  const server = new DpServer({
    stop: () => void stops++,
    info: () => ({}) as never,
    sessionsServed: () => 3,
    log: () => ['a'],
  });
  t.notThrows(() => server.info());
  server.stop();
  server.stop();
  t.is(stops, 1, 'stop() is idempotent');
  t.true(server.stopped);
  const err = t.throws(() => server.info(), { instanceOf: AfxdpError });
  t.is(err?.code, codes.CLOSED);
  t.regex(err?.message ?? '', /stopped.*startDpServer/);
  t.is(server.sessionsServed(), 0);
  t.deepEqual(server.log(), []);
});
