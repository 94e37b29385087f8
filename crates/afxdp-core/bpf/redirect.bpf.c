// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * afxdp's own XDP program: hand every packet that arrives on RX queue q to
 * the AF_XDP socket stored at key q of `xsks_map`; when no socket sits at
 * that key, XDP_PASS so the kernel stack keeps seeing normal traffic.
 *
 * Self-contained on purpose: only <linux/bpf.h> (linux-libc-dev) is needed,
 * no vmlinux.h and no libbpf headers. The few declarations libbpf's
 * bpf_helpers.h would provide are written out below.
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
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]

/* long bpf_redirect_map(void *map, u64 key, u64 flags): since 5.3 the low
 * bits of flags are the action returned when key has no entry. */
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)BPF_FUNC_redirect_map;

/* key = RX queue id (u32), value = AF_XDP socket fd on update (u32).
 * key_size/value_size instead of BTF types: XSKMAP takes no BTF key/value. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 64);
} xsks_map SEC(".maps");

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
