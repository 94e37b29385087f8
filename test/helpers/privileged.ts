// Tests that need root (namespaces, XDP, AF_XDP). Without root they are
// skipped locally, but fail when AFXDP_REQUIRE_PRIVILEGED is set (CI), so a
// skip can never pass for a success there.
import anyTest, { TestFn } from 'ava';
import { isRoot } from './lab';

export function privileged(): TestFn {
  if (isRoot()) return anyTest;
  if (process.env.AFXDP_REQUIRE_PRIVILEGED) {
    const failing = ((title: string) =>
      anyTest(title, (t) => t.fail('this test needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW)'))) as unknown as TestFn;
    (failing as unknown as { serial: unknown }).serial = failing;
    return failing;
  }
  const skipping = ((title: string) => anyTest.skip(title, () => {})) as unknown as TestFn;
  (skipping as unknown as { serial: unknown }).serial = skipping;
  return skipping;
}
