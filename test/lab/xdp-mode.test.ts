// DPDK 25.11's mode= devarg on a real veth pair: mode=skb attaches afxdp's
// program in generic mode, mode=drv in native mode; the port's info() and
// the kernel's own view (ip -d link) agree, and the program goes at close.
import { execFileSync } from 'node:child_process';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import { attachedXdp } from '../helpers/faults';
import { openPort, resolvePortConfig } from '../../lib/index';

const test = privileged();

// XDP_ATTACHED_* of the link (include/uapi/linux/if_link.h): 1 drv, 2 skb, 3 hw.
function kernelXdpMode(ns: string, dev: string): number | undefined {
  const [link] = JSON.parse(execFileSync('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev], { encoding: 'utf8' })) as
    { xdp?: { mode?: number } }[];
  return link?.xdp?.mode;
}

for (const [devarg, infoMode, kernelMode] of [['skb', 'generic', 2], ['drv', 'native', 1]] as const) {
  test.serial(`mode=${devarg} attaches in ${infoMode} mode`, async (t) => {
    const lab = createLab();
    try {
      const config = resolvePortConfig(`net_af_xdp0,iface=${lab.portIf},mode=${devarg}`, { netns: lab.portNs });
      t.is(config.xdpMode, infoMode);
      const port = await openPort(config);
      try {
        const info = port.info();
        t.is(info.xdpMode, infoMode);
        t.is(info.source, 'attach');
        t.false('dpPath' in info, 'no Device Plugin path for a port that attaches its own program');
        t.deepEqual(attachedXdp(lab.portNs, lab.portIf), [info.xdpProgramId]);
        t.is(kernelXdpMode(lab.portNs, lab.portIf), kernelMode);
      } finally {
        port.close();
      }
      t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
    } finally {
      lab.destroy();
    }
  });
}

test.serial('mode=hw is refused before anything is attached', async (t) => {
  const lab = createLab();
  try {
    // openPort() rejects (never throws) on a bad spec.
    await t.throwsAsync(openPort(`net_af_xdp0,iface=${lab.portIf},mode=hw`), { code: 'ERR_AFXDP_DEVARGS', message: /offload/ });
    t.deepEqual(attachedXdp(lab.portNs, lab.portIf), []);
  } finally {
    lab.destroy();
  }
});
