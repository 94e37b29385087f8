// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * afxdp's metadata-writing XDP program (the `rxMetadata` option): the same
 * redirect as redirect.bpf.c, but first it asks the driver for the
 * packet's RX metadata through the XDP metadata kfuncs
 * (Documentation/networking/xdp-rx-metadata.rst) and stores the answers in
 * the metadata area right before the packet, where the AF_XDP application
 * finds them at rx address - sizeof(struct afxdp_rx_meta):
 *
 *   | XDP_PACKET_HEADROOM ... | struct afxdp_rx_meta (24) | packet ... |
 *                                                         ^ rx desc addr
 *
 * The layout is afxdp's ABI, mirrored in lib/port/rx-metadata.ts (offsets)
 * and src/bpf/meta.rs (RX_META_LEN); keep the three in step.
 *
 * A program calling these kfuncs must be device-bound: the loader
 * (src/bpf/program.rs `load_meta`) sets prog_ifindex and
 * BPF_F_XDP_DEV_BOUND_ONLY, and the kernel then replaces each call with the
 * driver's implementation (or one returning -EOPNOTSUPP when the driver has
 * none). Device-bound programs attach in native mode only.
 *
 * Self-contained like redirect.bpf.c: only <linux/bpf.h>; the kfuncs are
 * declared as __ksym externs, which libbpf resolves against the kernel's
 * BTF (/sys/kernel/btf/vmlinux) at load. rx_timestamp and rx_hash exist
 * since Linux 6.3 and are required (libbpf names the missing one);
 * rx_vlan_tag (6.8) is weak, so older kernels load the program and simply
 * never set AFXDP_META_VLAN.
 */
#include "xsks_map.h"

#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

static long (*bpf_xdp_adjust_meta)(struct xdp_md *ctx, int delta) = (void *)BPF_FUNC_xdp_adjust_meta;
static long (*bpf_xdp_adjust_head)(struct xdp_md *ctx, int delta) = (void *)BPF_FUNC_xdp_adjust_head;

/* The kernel's enum (include/net/xdp.h); libbpf matches enum kinds, not values. */
enum xdp_rss_hash_type { XDP_RSS_TYPE_NONE = 0 };

extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym;
extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash, enum xdp_rss_hash_type *rss_type) __ksym;
extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx, __be16 *vlan_proto, __u16 *vlan_tci) __ksym __weak;

/* Bits of afxdp_rx_meta.valid: which fields the driver filled. */
#define AFXDP_META_TIMESTAMP (1u << 0)
#define AFXDP_META_HASH      (1u << 1)
#define AFXDP_META_VLAN      (1u << 2)

struct afxdp_rx_meta {
	__u64 rx_timestamp; /* ns, the driver's clock (a NIC's PHC; 0 = none) */
	__u32 rx_hash;
	__u32 hash_type;    /* enum xdp_rss_hash_type */
	__u16 vlan_proto;   /* network byte order, as the kfunc gives it */
	__u16 vlan_tci;
	__u32 valid;        /* AFXDP_META_* */
};

_Static_assert(sizeof(struct afxdp_rx_meta) == 24, "afxdp_rx_meta is afxdp's ABI: 24 bytes");


/* Ask the driver; the answers go to `out` (stack), then to the packet's
 * memory in one copy (kfunc arguments stay plain stack pointers). */
static __always_inline void read_meta(struct xdp_md *ctx, struct afxdp_rx_meta *out)
{
	enum xdp_rss_hash_type type = XDP_RSS_TYPE_NONE;
	__u64 ts = 0;
	__u32 hash = 0;
	__be16 proto = 0;
	__u16 tci = 0;

	out->rx_timestamp = 0;
	out->rx_hash = 0;
	out->hash_type = 0;
	out->vlan_proto = 0;
	out->vlan_tci = 0;
	out->valid = 0;
	/* A driver may succeed with a zero timestamp (veth gives the skb's
	 * hardware timestamp, 0 for software-made packets): zero is "none". */
	if (!bpf_xdp_metadata_rx_timestamp(ctx, &ts) && ts) {
		out->rx_timestamp = ts;
		out->valid |= AFXDP_META_TIMESTAMP;
	}
	if (!bpf_xdp_metadata_rx_hash(ctx, &hash, &type)) {
		out->rx_hash = hash;
		out->hash_type = type;
		out->valid |= AFXDP_META_HASH;
	}
	if (bpf_xdp_metadata_rx_vlan_tag && !bpf_xdp_metadata_rx_vlan_tag(ctx, &proto, &tci)) {
		out->vlan_proto = proto;
		out->vlan_tci = tci;
		out->valid |= AFXDP_META_VLAN;
	}
}

/* The metadata area (bpf_xdp_adjust_meta): the standard place. */
static __always_inline int meta_redirect(struct xdp_md *ctx)
{
	struct afxdp_rx_meta m, *meta;

	read_meta(ctx, &m);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return XDP_PASS;
	*meta = m;
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

/* Kernels whose XDP programs may not call bpf_xdp_adjust_meta (the verifier
 * says "program of this type cannot use helper bpf_xdp_adjust_meta", seen on
 * a 6.18 build): the struct is prepended to the packet with
 * bpf_xdp_adjust_head instead, and afxdp's receive path moves the
 * descriptor past it (addr += 24, len -= 24), so the application sees the
 * same layout: the struct right before the packet. Packets this program
 * passes to the stack (no socket on the queue) go without the prefix. */
static __always_inline int prefix_redirect(struct xdp_md *ctx)
{
	struct afxdp_rx_meta m, *meta;
	long act;

	act = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	if (act != XDP_REDIRECT)
		return act;
	read_meta(ctx, &m);
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*meta)))
		return XDP_DROP; /* the socket would misread the packet */
	meta = (void *)(long)ctx->data;
	if ((void *)(meta + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	*meta = m;
	return XDP_REDIRECT;
}

SEC("xdp")
int afxdp_meta(struct xdp_md *ctx)
{
	return meta_redirect(ctx);
}

SEC("xdp.frags")
int afxdp_meta_frags(struct xdp_md *ctx)
{
	return meta_redirect(ctx);
}

SEC("xdp")
int afxdp_meta_prefix(struct xdp_md *ctx)
{
	return prefix_redirect(ctx);
}

SEC("xdp.frags")
int afxdp_meta_prefix_frags(struct xdp_md *ctx)
{
	return prefix_redirect(ctx);
}

char _license[] SEC("license") = "Dual MIT/GPL";
