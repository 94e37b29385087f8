/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * What every afxdp XDP program shares: the few libbpf declarations we write
 * out (no libbpf headers needed) and `xsks_map`, key = RX queue id (u32),
 * value = AF_XDP socket fd on update (u32); key_size/value_size instead of
 * BTF types: XSKMAP takes no BTF key/value. 64 entries, raised by the loader
 * (src/bpf/program.rs) to the interface's queue count when larger.
 */
#ifndef AFXDP_XSKS_MAP_H
#define AFXDP_XSKS_MAP_H
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]

/* long bpf_redirect_map(void *map, u64 key, u64 flags): since 5.3 the low
 * bits of flags are the action returned when key has no entry. */
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)BPF_FUNC_redirect_map;

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 64);
} xsks_map SEC(".maps");

#endif
