/* SPDX-License-Identifier: MIT
 *
 * Minimal AF_XDP on raw system calls for the benchmark's generator and C
 * reference forwarder: no libbpf, no libxdp, only kernel UAPI headers
 * (linux-libc-dev). One socket on one queue, its UMEM, the four rings, and
 * a five-instruction XDP program (rx queue -> XSKMAP) attached with a
 * bpf_link, so it detaches by itself when the process exits.
 *
 * Ring protocol (see Documentation/networking/af_xdp.rst): a producer
 * writes descriptors, then publishes with a release store of the producer
 * index; a consumer reads the producer index with an acquire load, reads
 * descriptors, then publishes its consumer index with a release store.
 */
#ifndef BENCH_XSK_H
#define BENCH_XSK_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

#define DIE(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(2); } while (0)
#define DIE_ERRNO(what) DIE("%s: %s", what, strerror(errno))

struct ring {
	uint32_t *producer;
	uint32_t *consumer;
	uint32_t *flags;
	void *descs;
	uint32_t size;
	uint32_t mask;
	uint32_t cached_prod;
	uint32_t cached_cons;
	void *map;
	size_t map_len;
};

struct xsk {
	int fd;
	int ifindex;
	uint8_t *umem;
	size_t umem_len;
	uint32_t frame_size;
	uint32_t frame_count;
	struct ring rx, tx, fill, comp;
	int map_fd, prog_fd, link_fd;
	uint8_t mac[6];
};

struct xsk_opts {
	const char *ifname;
	uint32_t queue;
	uint32_t frame_size;   /* 2048 or 4096 */
	uint32_t frame_count;
	uint32_t rx_size, tx_size, fill_size, comp_size; /* ring sizes (powers of two) */
	int xdp_flags;         /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	uint32_t busy_budget;  /* > 0: preferred busy polling with DPDK's values (20 us, this budget) */
	int sg;                /* multi-buffer: bind with XDP_USE_SG, load the program with BPF_F_XDP_HAS_FRAGS */
};

#ifndef BPF_F_XDP_HAS_FRAGS
#define BPF_F_XDP_HAS_FRAGS (1U << 5)
#endif
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

/* A decimal command-line number, or exit saying which argument was not one. */
static inline uint64_t arg_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		DIE("not a number: %s", s);
	return v;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Round trips are timed on CLOCK_MONOTONIC (windows stay on the epoch clock). */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cpu_ticks_self(void)
{
	/* utime + stime of the whole process, in clock ticks (as /proc/<pid>/stat). */
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return 0;
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long ut = 0, st = 0;
	/* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static inline void enter_netns(const char *name)
{
	if (!name || !*name)
		return;
	char path[256];
	snprintf(path, sizeof(path), strchr(name, '/') ? "%s" : "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		DIE("open %s: %s", path, strerror(errno));
	if (setns(fd, CLONE_NEWNET) != 0)
		DIE("setns %s: %s", path, strerror(errno));
	close(fd);
}

static inline long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* r2 = ctx->rx_queue_index; return bpf_redirect_map(&xsks_map, r2, XDP_PASS) */
static inline void xdp_attach(struct xsk *x, int xdp_flags, int frags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_XSKMAP;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 64;
	x->map_fd = sys_bpf(BPF_MAP_CREATE, &a);
	if (x->map_fd < 0)
		DIE_ERRNO("bpf(BPF_MAP_CREATE, XSKMAP)");

	struct bpf_insn insns[] = {
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, rx_queue_index) },
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = x->map_fd },
		{ 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	static char log[4096];
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_XDP;
	a.prog_flags = frags ? BPF_F_XDP_HAS_FRAGS : 0;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	x->prog_fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (x->prog_fd < 0)
		DIE("bpf(BPF_PROG_LOAD): %s\n%s", strerror(errno), log);

	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = x->prog_fd;
	a.link_create.target_ifindex = x->ifindex;
	a.link_create.attach_type = BPF_XDP;
	a.link_create.flags = xdp_flags;
	x->link_fd = sys_bpf(BPF_LINK_CREATE, &a);
	if (x->link_fd < 0)
		DIE("bpf(BPF_LINK_CREATE, XDP, ifindex %d, flags %d): %s", x->ifindex, xdp_flags, strerror(errno));
}

static inline void xskmap_insert(struct xsk *x, uint32_t queue)
{
	union bpf_attr a;
	uint32_t fd = x->fd;
	memset(&a, 0, sizeof(a));
	a.map_fd = x->map_fd;
	a.key = (uint64_t)(uintptr_t)&queue;
	a.value = (uint64_t)(uintptr_t)&fd;
	if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) != 0)
		DIE_ERRNO("bpf(BPF_MAP_UPDATE_ELEM, XSKMAP)");
}

static inline void ring_map(struct ring *r, int fd, const struct xdp_ring_offset *off, uint32_t size,
			    size_t desc_size, off_t pgoff)
{
	r->map_len = off->desc + size * desc_size;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
	if (r->map == MAP_FAILED)
		DIE_ERRNO("mmap(ring)");
	r->producer = (uint32_t *)((char *)r->map + off->producer);
	r->consumer = (uint32_t *)((char *)r->map + off->consumer);
	r->flags = (uint32_t *)((char *)r->map + off->flags);
	r->descs = (char *)r->map + off->desc;
	r->size = size;
	r->mask = size - 1;
	r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
	r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
}

static inline void mac_of(const char *ifname, uint8_t mac[6])
{
	/* ioctl, not /sys: after setns() /sys still shows the old namespace. */
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
		DIE("SIOCGIFHWADDR %s: %s", ifname, strerror(errno));
	close(fd);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
}

/* The socket, its UMEM and rings, bound to o->queue; no XDP program yet. */
static inline void xsk_socket(struct xsk *x, const struct xsk_opts *o)
{
	memset(x, 0, sizeof(*x));
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	x->ifindex = if_nametoindex(o->ifname);
	if (!x->ifindex)
		DIE("no interface %s in this namespace", o->ifname);
	mac_of(o->ifname, x->mac);
	x->frame_size = o->frame_size;
	x->frame_count = o->frame_count;
	x->umem_len = (size_t)o->frame_size * o->frame_count;
	x->umem = mmap(NULL, x->umem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x->umem == MAP_FAILED)
		DIE_ERRNO("mmap(umem)");

	x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		DIE_ERRNO("socket(AF_XDP)");
	struct xdp_umem_reg reg = {
		.addr = (uint64_t)(uintptr_t)x->umem,
		.len = x->umem_len,
		.chunk_size = o->frame_size,
		.headroom = 0,
	};
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)))
		DIE_ERRNO("setsockopt(XDP_UMEM_REG)");
	int fr = o->fill_size, cr = o->comp_size, rx = o->rx_size, tx = o->tx_size;
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &fr, sizeof(fr)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &cr, sizeof(cr)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &rx, sizeof(rx)) ||
	    setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &tx, sizeof(tx)))
		DIE_ERRNO("setsockopt(ring sizes)");
	struct xdp_mmap_offsets off;
	socklen_t optlen = sizeof(off);
	if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen))
		DIE_ERRNO("getsockopt(XDP_MMAP_OFFSETS)");
	ring_map(&x->rx, x->fd, &off.rx, rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING);
	ring_map(&x->tx, x->fd, &off.tx, tx, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING);
	ring_map(&x->fill, x->fd, &off.fr, fr, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING);
	ring_map(&x->comp, x->fd, &off.cr, cr, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING);

	struct sockaddr_xdp sxdp = {
		.sxdp_family = AF_XDP,
		.sxdp_flags = XDP_USE_NEED_WAKEUP | (o->sg ? XDP_USE_SG : 0),
		.sxdp_ifindex = x->ifindex,
		.sxdp_queue_id = o->queue,
	};
	/* A queue released by a process that just exited is freed from a
	 * workqueue: retry EBUSY for up to 2 s. */
	for (int i = 0;; i++) {
		if (bind(x->fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) == 0)
			break;
		if (errno != EBUSY || i >= 200)
			DIE("bind(AF_XDP, %s queue %u): %s", o->ifname, o->queue, strerror(errno));
		usleep(10000);
	}
	if (o->busy_budget) {
		/* What afxdp's busy_budget (and DPDK's) sets; the caller then makes
		 * a recvfrom() on every empty rx poll to drive the NAPI loop. */
		int one = 1, usecs = 20, budget = (int)o->busy_budget;
		if (setsockopt(x->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) ||
		    setsockopt(x->fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof(usecs)) ||
		    setsockopt(x->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)))
			DIE_ERRNO("setsockopt(busy polling)");
	}
}

/* One socket on o->queue, and the interface's XDP program with its XSKMAP. */
static inline void xsk_open(struct xsk *x, const struct xsk_opts *o)
{
	xsk_socket(x, o);
	xdp_attach(x, o->xdp_flags, o->sg);
	xskmap_insert(x, o->queue);
}

/* Another queue of the same interface: its own socket and UMEM (as libxdp
 * applications have one per queue), redirected to by `owner`'s program
 * (an interface has one XDP program: the XSKMAP is keyed by rx queue). */
static inline void xsk_open_queue(struct xsk *x, const struct xsk_opts *o, const struct xsk *owner)
{
	xsk_socket(x, o);
	x->map_fd = owner->map_fd;
	x->prog_fd = -1;
	x->link_fd = -1;
	xskmap_insert(x, o->queue);
}

/* The sum of several sockets' XDP_STATISTICS. */
static inline void stats_add(struct xdp_statistics *sum, const struct xdp_statistics *s)
{
	sum->rx_dropped += s->rx_dropped;
	sum->rx_invalid_descs += s->rx_invalid_descs;
	sum->tx_invalid_descs += s->tx_invalid_descs;
	sum->rx_ring_full += s->rx_ring_full;
	sum->rx_fill_ring_empty_descs += s->rx_fill_ring_empty_descs;
	sum->tx_ring_empty_descs += s->tx_ring_empty_descs;
}

/* ---- producer rings (fill, tx) ---- */

static inline uint32_t prod_free(struct ring *r, uint32_t want)
{
	uint32_t free = r->size - (r->cached_prod - r->cached_cons);
	if (free >= want)
		return want;
	r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
	free = r->size - (r->cached_prod - r->cached_cons);
	return free < want ? free : want;
}

static inline uint64_t *fill_addr(struct ring *r, uint32_t i)
{
	return &((uint64_t *)r->descs)[(r->cached_prod + i) & r->mask];
}

static inline struct xdp_desc *tx_desc(struct ring *r, uint32_t i)
{
	return &((struct xdp_desc *)r->descs)[(r->cached_prod + i) & r->mask];
}

static inline void prod_submit(struct ring *r, uint32_t n)
{
	r->cached_prod += n;
	__atomic_store_n(r->producer, r->cached_prod, __ATOMIC_RELEASE);
}

/* ---- consumer rings (rx, completion) ---- */

static inline uint32_t cons_avail(struct ring *r, uint32_t max)
{
	uint32_t n = r->cached_prod - r->cached_cons;
	if (n == 0) {
		r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
		n = r->cached_prod - r->cached_cons;
	}
	return n < max ? n : max;
}

static inline const struct xdp_desc *rx_desc(struct ring *r, uint32_t i)
{
	return &((const struct xdp_desc *)r->descs)[(r->cached_cons + i) & r->mask];
}

static inline uint64_t comp_addr(struct ring *r, uint32_t i)
{
	return ((const uint64_t *)r->descs)[(r->cached_cons + i) & r->mask];
}

static inline void cons_release(struct ring *r, uint32_t n)
{
	r->cached_cons += n;
	__atomic_store_n(r->consumer, r->cached_cons, __ATOMIC_RELEASE);
}

static inline int needs_wakeup(struct ring *r)
{
	return __atomic_load_n(r->flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP;
}

static inline void kick_tx(struct xsk *x)
{
	/* EAGAIN (copy mode moved a batch, more is left), EBUSY, ENOBUFS and
	 * ENETDOWN are transient: the next kick continues. */
	sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
}

static inline void wake_rx(struct xsk *x)
{
	recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static inline struct xdp_statistics xsk_stats(struct xsk *x)
{
	struct xdp_statistics s;
	socklen_t len = sizeof(s);
	memset(&s, 0, sizeof(s));
	getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &s, &len);
	return s;
}

static inline void print_stats_json(FILE *f, const struct xdp_statistics *s)
{
	fprintf(f, "{\"rxDropped\":%llu,\"rxInvalidDescs\":%llu,\"txInvalidDescs\":%llu,\"rxRingFull\":%llu,"
		   "\"rxFillRingEmptyDescs\":%llu,\"txRingEmptyDescs\":%llu}",
		(unsigned long long)s->rx_dropped, (unsigned long long)s->rx_invalid_descs,
		(unsigned long long)s->tx_invalid_descs, (unsigned long long)s->rx_ring_full,
		(unsigned long long)s->rx_fill_ring_empty_descs, (unsigned long long)s->tx_ring_empty_descs);
}

/* ---- the benchmark's 64-byte UDP frame ---- */

#define BENCH_FRAME_LEN 64
#define BENCH_MAGIC 0x41465842u /* "AFXB" at offset 42 (UDP payload) */

static inline uint16_t ip_csum(const uint8_t *p, int len)
{
	uint32_t s = 0;
	for (int i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Ethernet / IPv4 198.18.0.1 -> 198.18.0.2 / UDP 9 -> 9, 22-byte payload
 * starting with the magic: 64 bytes (without FCS). */
static inline void build_frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6])
{
	memset(f, 0, BENCH_FRAME_LEN);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08; f[13] = 0x00;
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	uint16_t tot = BENCH_FRAME_LEN - 14;
	ip[2] = tot >> 8; ip[3] = tot & 0xff;
	ip[8] = 64;      /* ttl */
	ip[9] = 17;      /* udp */
	ip[12] = 198; ip[13] = 18; ip[14] = 0; ip[15] = 1;
	ip[16] = 198; ip[17] = 18; ip[18] = 0; ip[19] = 2;
	uint16_t c = ip_csum(ip, 20);
	ip[10] = c >> 8; ip[11] = c & 0xff;
	uint8_t *udp = ip + 20;
	udp[0] = 0; udp[1] = 9; udp[2] = 0; udp[3] = 9;
	uint16_t ulen = tot - 20;
	udp[4] = ulen >> 8; udp[5] = ulen & 0xff;
	/* checksum 0: none */
	f[42] = 'A'; f[43] = 'F'; f[44] = 'X'; f[45] = 'B';
}

/* The latency generator's sequence number: 4 bytes after the magic. */
#define BENCH_SEQ_OFF 46

static inline int is_bench_frame(const uint8_t *f, uint32_t len)
{
	return len >= 46 && f[42] == 'A' && f[43] == 'F' && f[44] == 'X' && f[45] == 'B';
}

#endif
