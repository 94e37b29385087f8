/* SPDX-License-Identifier: MIT
 *
 * The C reference forwarder: one AF_XDP socket on raw rings, the same
 * frame policy as afxdp (a free-frame pool, at most half the fill ring lent
 * to the kernel, refill before and after each receive, kick until the tx
 * ring is drained, bounded) and the same sizes (4096 frames of 4096 bytes,
 * rings of 2048, bursts of 64), so the comparison measures the binding and
 * the JavaScript, not a different policy.
 *
 * --mode macswap  receive, swap the Ethernet addresses, transmit back
 * --mode rxdrop   receive and drop (frames straight back to the pool)
 * --mode txonly   transmit prebuilt 64-byte frames as fast as possible
 * --sg 1          multi-buffer (XDP_USE_SG, a BPF_F_XDP_HAS_FRAGS program):
 *                 macswap forwards chains whole (XDP_PKT_CONTD on all but
 *                 the last fragment), swapping the first fragment only;
 *                 "tx" counts packets (bench/jumbo.sh IMPL=c)
 *
 * Protocol with bench/run.js: prints {"ready":true} once the socket is
 * bound, reads one line "T0 T1 TEND" (epoch ms) from stdin, counts inside
 * [T0, T1), exits at TEND printing one JSON line.
 *
 * --poll-mode, what it does when the rx ring is empty:
 *   adaptive  (default) spin --idle-spin-us (100), then sleep in poll()
 *             until the socket is readable (or the next of T0, T1, TEND)
 *   busy      spin, never sleep (a full core at any rate, as DPDK)
 *   event     sleep in poll() at once
 */
#include "xsk.h"

struct fwd {
	struct xsk x;
	uint64_t *stack;
	uint32_t top;
	uint32_t fill_target, fill_owned;
	uint32_t batch;
	uint64_t frame_mask;
	uint64_t kicks, polls;
};

static void reap(struct fwd *f)
{
	uint32_t n = cons_avail(&f->x.comp, f->x.comp.size);
	for (uint32_t i = 0; i < n; i++)
		f->stack[f->top++] = comp_addr(&f->x.comp, i) & f->frame_mask;
	if (n)
		cons_release(&f->x.comp, n);
}

static void refill(struct fwd *f)
{
	uint32_t want = f->fill_target - f->fill_owned;
	if (want > f->top)
		want = f->top;
	if (!want)
		return;
	uint32_t k = prod_free(&f->x.fill, want);
	for (uint32_t i = 0; i < k; i++)
		*fill_addr(&f->x.fill, i) = f->stack[--f->top];
	prod_submit(&f->x.fill, k);
	f->fill_owned += k;
}

/* Copy mode moves at most a small batch per sendto() and says EAGAIN when
 * more is left: kick until the ring is empty, a bounded number of times. */
static void kick(struct fwd *f)
{
	/* Our producer store before the flag load (StoreLoad), as afxdp does. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!needs_wakeup(&f->x.tx))
		return;
	for (int i = 0; i < 2 + (int)(f->x.tx.size / 16); i++) {
		f->kicks++;
		if (sendto(f->x.fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0 || errno != EAGAIN)
			break;
		reap(f);
		if (f->x.tx.cached_prod == __atomic_load_n(f->x.tx.consumer, __ATOMIC_ACQUIRE))
			break;
	}
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *iface = NULL, *mode = "macswap", *poll_mode = "adaptive";
	uint64_t idle_spin_ns = 100000;
	struct xsk_opts o = { .queue = 0, .frame_size = 4096, .frame_count = 4096,
			      .rx_size = 2048, .tx_size = 2048, .fill_size = 2048, .comp_size = 2048,
			      .xdp_flags = XDP_FLAGS_DRV_MODE };
	struct fwd f;
	memset(&f, 0, sizeof(f));
	f.batch = 64;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			DIE("%s needs a value", a);
		i++;
		if (!strcmp(a, "--netns")) netns = v;
		else if (!strcmp(a, "--iface")) iface = v;
		else if (!strcmp(a, "--mode")) mode = v;
		else if (!strcmp(a, "--batch")) f.batch = arg_u64(v);
		else if (!strcmp(a, "--idle-spin-us")) idle_spin_ns = arg_u64(v) * 1000;
		else if (!strcmp(a, "--poll-mode")) poll_mode = v;
		else if (!strcmp(a, "--fill-target")) f.fill_target = arg_u64(v);
		else if (!strcmp(a, "--frame-size")) o.frame_size = arg_u64(v);
		else if (!strcmp(a, "--busy-budget")) o.busy_budget = arg_u64(v);
		else if (!strcmp(a, "--sg")) o.sg = arg_u64(v) != 0;
		else if (!strcmp(a, "--xdp")) o.xdp_flags = !strcmp(v, "skb") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		else DIE("unknown option %s", a);
	}
	int m_swap = !strcmp(mode, "macswap"), m_drop = !strcmp(mode, "rxdrop"), m_tx = !strcmp(mode, "txonly");
	if (!iface || !(m_swap || m_drop || m_tx))
		DIE("usage: fwd --netns NS --iface IF --mode macswap|rxdrop|txonly");
	if (f.batch == 0 || f.batch > 1024)
		DIE("--batch must be 1..1024");
	int p_busy = !strcmp(poll_mode, "busy"), p_event = !strcmp(poll_mode, "event");
	if (!p_busy && !p_event && strcmp(poll_mode, "adaptive"))
		DIE("--poll-mode must be adaptive, busy or event, not %s", poll_mode);
	if (p_event)
		idle_spin_ns = 0;

	enter_netns(netns);
	o.ifname = iface;
	xsk_open(&f.x, &o);
	f.frame_mask = ~(uint64_t)(o.frame_size - 1);
	f.stack = malloc(sizeof(uint64_t) * o.frame_count);
	for (uint32_t i = o.frame_count; i-- > 0;) {
		uint64_t addr = (uint64_t)i * o.frame_size;
		if (m_tx)
			build_frame(f.x.umem + addr, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0 }, f.x.mac);
		f.stack[f.top++] = addr;
	}
	if (!f.fill_target)
		f.fill_target = o.fill_size / 2 < o.frame_count / 2 ? o.fill_size / 2 : o.frame_count / 2;
	refill(&f);

	printf("{\"ready\":true,\"busyPoll\":%s,\"pollMode\":\"%s\"}\n", o.busy_budget ? "true" : "false", poll_mode);
	fflush(stdout);
	char line[256];
	unsigned long long a0, a1, a2;
	if (!fgets(line, sizeof(line), stdin) || sscanf(line, "%llu %llu %llu", &a0, &a1, &a2) != 3)
		DIE("expected \"T0 T1 TEND\" on stdin");
	uint64_t t0 = a0 * 1000000ull, t1 = a1 * 1000000ull, tend = a2 * 1000000ull;
	if (tend > now_ns() + 600ull * 1000000000ull)
		DIE("TEND is more than 10 minutes away");
	if (m_tx) {
		/* txonly frames go to the generator's MAC, passed as the 4th field. */
		unsigned mm[6];
		char *p = line;
		for (int i = 0; i < 3 && p; i++)
			p = strchr(p + 1, ' ');
		if (!p || sscanf(p + 1, "%x:%x:%x:%x:%x:%x", &mm[0], &mm[1], &mm[2], &mm[3], &mm[4], &mm[5]) != 6)
			DIE("txonly needs the destination MAC after TEND");
		uint8_t dst[6];
		for (int i = 0; i < 6; i++)
			dst[i] = (uint8_t)mm[i];
		for (uint32_t i = 0; i < o.frame_count; i++)
			memcpy(f.x.umem + (uint64_t)i * o.frame_size, dst, 6);
	}

	uint64_t rx = 0, tx = 0, rx_w0 = 0, tx_w0 = 0, rx_w1 = 0, tx_w1 = 0;
	int phase = 0; /* 0 before t0, 1 inside the window, 2 after t1 */
	uint64_t idle_since = 0;
	struct pollfd pfd = { .fd = f.x.fd, .events = POLLIN };
	for (;;) {
		uint64_t t = now_ns();
		if (phase == 0 && t >= t0) { phase = 1; rx_w0 = rx; tx_w0 = tx; }
		if (phase == 1 && t >= t1) { phase = 2; rx_w1 = rx; tx_w1 = tx; }
		if (t >= tend)
			break;
		if (m_tx) {
			reap(&f);
			uint32_t want = f.batch < f.top ? f.batch : f.top;
			uint32_t k = prod_free(&f.x.tx, want);
			for (uint32_t i = 0; i < k; i++) {
				struct xdp_desc *d = tx_desc(&f.x.tx, i);
				d->addr = f.stack[--f.top];
				d->len = BENCH_FRAME_LEN;
				d->options = 0;
			}
			prod_submit(&f.x.tx, k);
			tx += k;
			if (k)
				kick(&f);
			continue;
		}
		refill(&f);
		uint32_t n = cons_avail(&f.x.rx, f.batch);
		if (n == 0 && o.busy_budget) {
			/* Busy polling: this syscall is what runs the NAPI loop (as
			 * afxdp's receive() and DPDK's rx burst do). */
			recvfrom(f.x.fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			n = cons_avail(&f.x.rx, f.batch);
		}
		if (n == 0 && f.fill_owned < f.fill_target && f.top == 0) {
			/* Starved: every free frame sits on the tx ring, which in copy
			 * mode drains only on a kick (one that met EAGAIN left them
			 * there); as afxdp's receive does, kick and reap here. */
			kick(&f);
			reap(&f);
			refill(&f);
		}
		if (n == 0) {
			if (p_busy)
				continue;
			if (!idle_since && !p_event) {
				idle_since = t;
			} else if (p_event || t - idle_since > idle_spin_ns) {
				/* Sleep until packets arrive or the next window edge. */
				uint64_t next = phase == 0 ? t0 : phase == 1 ? t1 : tend;
				f.polls++;
				poll(&pfd, 1, (int)((next - t) / 1000000 + 1));
				idle_since = 0;
			}
			continue;
		}
		idle_since = 0;
		rx += n;
		if (m_drop) {
			for (uint32_t i = 0; i < n; i++)
				f.stack[f.top++] = rx_desc(&f.x.rx, i)->addr & f.frame_mask;
			cons_release(&f.x.rx, n);
			f.fill_owned -= n;
			refill(&f);
			continue;
		}
		/* macswap */
		if (o.sg) {
			/* Multi-buffer: whole chains only (XDP_PKT_CONTD on all but
			 * the last fragment); a cut chain stays on the rx ring. */
			while (n > 0 && (rx_desc(&f.x.rx, n - 1)->options & XDP_PKT_CONTD))
				n--;
			if (n == 0)
				continue;
		}
		reap(&f);
		uint32_t k = prod_free(&f.x.tx, n);
		if (k < n) {
			kick(&f);
			k = prod_free(&f.x.tx, n);
		}
		if (o.sg)
			while (k > 0 && (rx_desc(&f.x.rx, k - 1)->options & XDP_PKT_CONTD))
				k--;
		uint64_t packets = 0;
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = rx_desc(&f.x.rx, i);
			if (i >= k) {
				f.stack[f.top++] = d->addr & f.frame_mask;
				continue;
			}
			/* The Ethernet header is in a chain's first fragment only. */
			if (i == 0 || !(rx_desc(&f.x.rx, i - 1)->options & XDP_PKT_CONTD)) {
				uint8_t *p = f.x.umem + d->addr, tmp[6];
				memcpy(tmp, p, 6);
				memcpy(p, p + 6, 6);
				memcpy(p + 6, tmp, 6);
			}
			struct xdp_desc *o2 = tx_desc(&f.x.tx, i);
			o2->addr = d->addr;
			o2->len = d->len;
			o2->options = d->options & XDP_PKT_CONTD;
			packets += !(d->options & XDP_PKT_CONTD);
		}
		cons_release(&f.x.rx, n);
		f.fill_owned -= n;
		prod_submit(&f.x.tx, k);
		tx += packets;
		refill(&f);
		if (k)
			kick(&f);
	}
	if (phase < 2) { rx_w1 = rx; tx_w1 = tx; }
	if (phase < 1) { rx_w0 = rx; tx_w0 = tx; }
	struct xdp_statistics s = xsk_stats(&f.x);
	printf("{\"impl\":\"c\",\"mode\":\"%s\",\"rx\":%llu,\"tx\":%llu,\"rxWindow\":%llu,\"txWindow\":%llu,"
	       "\"kicks\":%llu,\"waits\":%llu,\"xdp\":",
	       mode, (unsigned long long)rx, (unsigned long long)tx, (unsigned long long)(rx_w1 - rx_w0),
	       (unsigned long long)(tx_w1 - tx_w0), (unsigned long long)f.kicks, (unsigned long long)f.polls);
	print_stats_json(stdout, &s);
	printf("}\n");
	return 0;
}
