// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * afxdp's own XDP program: hand every packet that arrives on RX queue q to
 * the AF_XDP socket stored at key q of `xsks_map`; when no socket sits at
 * that key, XDP_PASS so the kernel stack keeps seeing normal traffic.
 *
 * Self-contained on purpose: only <linux/bpf.h> (linux-libc-dev) and our own
 * xsks_map.h (the map and the few declarations libbpf's bpf_helpers.h would
 * provide, shared with meta.bpf.c) are needed: no vmlinux.h, no libbpf headers.
 *
 * Map sizing: the object declares 64 entries (what the Kubernetes AF_XDP
 * Device Plugin uses, so a pinned map from either source looks alike). The
 * loader (src/bpf/program.rs) raises max_entries before load to the
 * interface's maximum queue count when that is larger, so queue ids >= 64
 * work on big NICs; it never shrinks below 64, so `ethtool -L` raising the
 * channel count later does not make the map too small.
 *
 * Two programs, identical bodies:
 *  - `afxdp_redirect`        SEC("xdp"): the default.
 *  - `afxdp_redirect_frags`  SEC("xdp.frags"): multi-buffer aware (kernel
 *    >= 5.18). Needed to attach in native mode when the MTU exceeds what
 *    fits one page; the loader picks it only then (and never for generic
 *    mode), because in generic mode a frags-aware program makes the kernel
 *    hand over non-linear skbs as multi-buffer frames, which an XSK bound
 *    without XDP_USE_SG drops, where a plain program gets them linearised.
 */
#include "xsks_map.h"

SEC("xdp")
int afxdp_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp.frags")
int afxdp_redirect_frags(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

/* bpf_redirect_map is not GPL-only; the kernel accepts "Dual MIT/GPL" as
 * GPL-compatible, which keeps every helper available should one be added. */
char _license[] SEC("license") = "Dual MIT/GPL";
