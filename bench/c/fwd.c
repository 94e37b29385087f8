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
 *
 * --queues Q --threads N (or -t N): Q sockets on queues 0..Q-1 of the
 * interface, each with its own UMEM (as libxdp applications have), served by
 * N pthreads, queue k by thread k mod N; --cpus LIST pins thread k to the
 * k-th CPU of the list (modulo its length; default: the process's affinity).
 * One thread on several sockets visits them in turn and sleeps in poll() on
 * all of them. With Q = N = 1 (the default) the output is the single-socket
 * line above; otherwise it adds "threads", "queueCount", "perThread" (each
 * thread's tid, queues, window counts and window CPU time from
 * getrusage(RUSAGE_THREAD)) and "perQueue" (each socket's counts and
 * XDP_STATISTICS); the top-level counts and "xdp" are the sums.
 * --sg 1          multi-buffer (XDP_USE_SG, a BPF_F_XDP_HAS_FRAGS program):
 *                 macswap forwards chains whole (XDP_PKT_CONTD on all but
 *                 the last fragment), swapping the first fragment only;
 *                 "tx" counts packets (bench/jumbo.sh IMPL=c)
 */
#include "xsk.h"
#include <pthread.h>

#define MAX_QUEUES 64
#define MAX_CPUS 64

struct fwd {
	struct xsk x;
	uint64_t *stack;
	uint32_t top;
	uint32_t fill_target, fill_owned;
	uint32_t batch;
	uint64_t frame_mask;
	uint64_t kicks, polls;
	uint32_t queue;
	uint64_t rx, tx, rx_w0, tx_w0, rx_w1, tx_w1;
	struct xdp_statistics stats;
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

/* What every thread shares: the mode, the window, the policy. */
static struct {
	int m_swap, m_drop, m_tx, p_busy, p_event;
	uint64_t idle_spin_ns, t0, t1, tend;
	uint32_t busy_budget;
	int sg; /* multi-buffer: chains of descriptors */
} g;

struct worker {
	pthread_t th;
	uint32_t index;
	struct fwd *socks[MAX_QUEUES];
	uint32_t nsocks;
	int cpu; /* -1: not pinned */
	long tid;
	struct rusage ru0, ru1; /* at T0 and T1 */
	uint64_t polls;
};

/* txonly: post a batch. */
static void tx_step(struct fwd *f)
{
	reap(f);
	uint32_t want = f->batch < f->top ? f->batch : f->top;
	uint32_t k = prod_free(&f->x.tx, want);
	for (uint32_t i = 0; i < k; i++) {
		struct xdp_desc *d = tx_desc(&f->x.tx, i);
		d->addr = f->stack[--f->top];
		d->len = BENCH_FRAME_LEN;
		d->options = 0;
	}
	prod_submit(&f->x.tx, k);
	f->tx += k;
	if (k)
		kick(f);
}

/* rxdrop and macswap: one receive; returns the packets received. */
static uint32_t rx_step(struct fwd *f)
{
	refill(f);
	uint32_t n = cons_avail(&f->x.rx, f->batch);
	if (n == 0 && g.busy_budget) {
		/* Busy polling: this syscall is what runs the NAPI loop (as
		 * afxdp's receive() and DPDK's rx burst do). */
		recvfrom(f->x.fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		n = cons_avail(&f->x.rx, f->batch);
	}
	if (n == 0 && f->fill_owned < f->fill_target && f->top == 0) {
		/* Starved: every free frame sits on the tx ring, which in copy
		 * mode drains only on a kick (one that met EAGAIN left them
		 * there); as afxdp's receive does, kick and reap here. */
		kick(f);
		reap(f);
		refill(f);
	}
	if (n == 0)
		return 0;
	f->rx += n;
	if (g.m_drop) {
		for (uint32_t i = 0; i < n; i++)
			f->stack[f->top++] = rx_desc(&f->x.rx, i)->addr & f->frame_mask;
		cons_release(&f->x.rx, n);
		f->fill_owned -= n;
		refill(f);
		return n;
	}
	/* macswap */
	if (g.sg) {
		/* Multi-buffer: whole chains only (XDP_PKT_CONTD on all but
		 * the last fragment); a cut chain stays on the rx ring. */
		while (n > 0 && (rx_desc(&f->x.rx, n - 1)->options & XDP_PKT_CONTD))
			n--;
		if (n == 0)
			return 0;
	}
	reap(f);
	uint32_t k = prod_free(&f->x.tx, n);
	if (k < n) {
		kick(f);
		k = prod_free(&f->x.tx, n);
	}
	if (g.sg)
		while (k > 0 && (rx_desc(&f->x.rx, k - 1)->options & XDP_PKT_CONTD))
			k--;
	uint64_t packets = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = rx_desc(&f->x.rx, i);
		if (i >= k) {
			f->stack[f->top++] = d->addr & f->frame_mask;
			continue;
		}
		/* The Ethernet header is in a chain's first fragment only. */
		if (i == 0 || !(rx_desc(&f->x.rx, i - 1)->options & XDP_PKT_CONTD)) {
			uint8_t *p = f->x.umem + d->addr, tmp[6];
			memcpy(tmp, p, 6);
			memcpy(p, p + 6, 6);
			memcpy(p + 6, tmp, 6);
		}
		struct xdp_desc *o2 = tx_desc(&f->x.tx, i);
		o2->addr = d->addr;
		o2->len = d->len;
		o2->options = d->options & XDP_PKT_CONTD;
		packets += !(d->options & XDP_PKT_CONTD);
	}
	cons_release(&f->x.rx, n);
	f->fill_owned -= n;
	prod_submit(&f->x.tx, k);
	f->tx += packets;
	refill(f);
	if (k)
		kick(f);
	return n;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	w->tid = (long)syscall(SYS_gettid);
	if (w->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			DIE("thread %u: cannot pin to CPU %d", w->index, w->cpu);
	}
	struct pollfd pfd[MAX_QUEUES];
	for (uint32_t i = 0; i < w->nsocks; i++)
		pfd[i] = (struct pollfd){ .fd = w->socks[i]->x.fd, .events = POLLIN };
	int phase = 0; /* 0 before t0, 1 inside the window, 2 after t1 */
	uint64_t idle_since = 0;
	for (;;) {
		uint64_t t = now_ns();
		if (phase == 0 && t >= g.t0) {
			phase = 1;
			getrusage(RUSAGE_THREAD, &w->ru0);
			for (uint32_t i = 0; i < w->nsocks; i++) { w->socks[i]->rx_w0 = w->socks[i]->rx; w->socks[i]->tx_w0 = w->socks[i]->tx; }
		}
		if (phase == 1 && t >= g.t1) {
			phase = 2;
			getrusage(RUSAGE_THREAD, &w->ru1);
			for (uint32_t i = 0; i < w->nsocks; i++) { w->socks[i]->rx_w1 = w->socks[i]->rx; w->socks[i]->tx_w1 = w->socks[i]->tx; }
		}
		if (t >= g.tend)
			break;
		if (g.m_tx) {
			for (uint32_t i = 0; i < w->nsocks; i++)
				tx_step(w->socks[i]);
			continue;
		}
		uint32_t n = 0;
		for (uint32_t i = 0; i < w->nsocks; i++)
			n += rx_step(w->socks[i]);
		if (n == 0) {
			if (g.p_busy)
				continue;
			if (!idle_since && !g.p_event) {
				idle_since = t;
			} else if (g.p_event || t - idle_since > g.idle_spin_ns) {
				/* Sleep until packets arrive or the next window edge. */
				uint64_t next = phase == 0 ? g.t0 : phase == 1 ? g.t1 : g.tend;
				w->polls++;
				poll(pfd, w->nsocks, (int)((next - t) / 1000000 + 1));
				idle_since = 0;
			}
			continue;
		}
		idle_since = 0;
	}
	if (phase < 2) {
		getrusage(RUSAGE_THREAD, &w->ru1);
		for (uint32_t i = 0; i < w->nsocks; i++) { w->socks[i]->rx_w1 = w->socks[i]->rx; w->socks[i]->tx_w1 = w->socks[i]->tx; }
	}
	if (phase < 1) {
		w->ru0 = w->ru1;
		for (uint32_t i = 0; i < w->nsocks; i++) { w->socks[i]->rx_w0 = w->socks[i]->rx; w->socks[i]->tx_w0 = w->socks[i]->tx; }
	}
	return NULL;
}

static uint64_t tv_us(const struct timeval *a, const struct timeval *b)
{
	return (uint64_t)((b->tv_sec - a->tv_sec) * 1000000ll + (b->tv_usec - a->tv_usec));
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *iface = NULL, *mode = "macswap", *poll_mode = "adaptive", *cpus_s = NULL;
	uint32_t batch = 64, fill_target = 0, nqueues = 1, nthreads = 1;
	g.idle_spin_ns = 100000;
	struct xsk_opts o = { .queue = 0, .frame_size = 4096, .frame_count = 4096,
			      .rx_size = 2048, .tx_size = 2048, .fill_size = 2048, .comp_size = 2048,
			      .xdp_flags = XDP_FLAGS_DRV_MODE };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			DIE("%s needs a value", a);
		i++;
		if (!strcmp(a, "--netns")) netns = v;
		else if (!strcmp(a, "--iface")) iface = v;
		else if (!strcmp(a, "--mode")) mode = v;
		else if (!strcmp(a, "--batch")) batch = arg_u64(v);
		else if (!strcmp(a, "--idle-spin-us")) g.idle_spin_ns = arg_u64(v) * 1000;
		else if (!strcmp(a, "--poll-mode")) poll_mode = v;
		else if (!strcmp(a, "--fill-target")) fill_target = arg_u64(v);
		else if (!strcmp(a, "--frame-size")) o.frame_size = arg_u64(v);
		else if (!strcmp(a, "--busy-budget")) o.busy_budget = arg_u64(v);
		else if (!strcmp(a, "--sg")) o.sg = arg_u64(v) != 0;
		else if (!strcmp(a, "--xdp")) o.xdp_flags = !strcmp(v, "skb") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		else if (!strcmp(a, "--queues")) nqueues = arg_u64(v);
		else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) nthreads = arg_u64(v);
		else if (!strcmp(a, "--cpus")) cpus_s = v;
		else DIE("unknown option %s", a);
	}
	g.m_swap = !strcmp(mode, "macswap");
	g.m_drop = !strcmp(mode, "rxdrop");
	g.m_tx = !strcmp(mode, "txonly");
	if (!iface || !(g.m_swap || g.m_drop || g.m_tx))
		DIE("usage: fwd --netns NS --iface IF --mode macswap|rxdrop|txonly [--queues Q] [--threads N] [--cpus LIST]");
	if (batch == 0 || batch > 1024)
		DIE("--batch must be 1..1024");
	if (nqueues == 0 || nqueues > MAX_QUEUES)
		DIE("--queues must be 1..%d", MAX_QUEUES);
	if (nthreads == 0 || nthreads > nqueues)
		DIE("--threads must be 1..--queues (%u): a thread without a queue has nothing to do", nqueues);
	int cpus[MAX_CPUS], ncpus = 0;
	for (const char *p = cpus_s; p && *p && ncpus < MAX_CPUS;) {
		char *end;
		long c = strtol(p, &end, 10);
		if (end == p || c < 0 || c >= CPU_SETSIZE || (*end && *end != ','))
			DIE("--cpus takes a comma-separated list of CPU numbers, not %s", cpus_s);
		cpus[ncpus++] = (int)c;
		p = *end ? end + 1 : end;
	}
	g.p_busy = !strcmp(poll_mode, "busy");
	g.p_event = !strcmp(poll_mode, "event");
	if (!g.p_busy && !g.p_event && strcmp(poll_mode, "adaptive"))
		DIE("--poll-mode must be adaptive, busy or event, not %s", poll_mode);
	if (g.p_event)
		g.idle_spin_ns = 0;
	g.busy_budget = o.busy_budget;
	g.sg = o.sg;

	enter_netns(netns);
	o.ifname = iface;
	struct fwd *socks = calloc(nqueues, sizeof(struct fwd));
	if (!socks)
		DIE("out of memory");
	for (uint32_t q = 0; q < nqueues; q++) {
		struct fwd *f = &socks[q];
		f->batch = batch;
		f->queue = q;
		o.queue = q;
		if (q == 0)
			xsk_open(&f->x, &o);
		else
			xsk_open_queue(&f->x, &o, &socks[0].x);
		f->frame_mask = ~(uint64_t)(o.frame_size - 1);
		f->stack = malloc(sizeof(uint64_t) * o.frame_count);
		for (uint32_t i = o.frame_count; i-- > 0;) {
			uint64_t addr = (uint64_t)i * o.frame_size;
			if (g.m_tx)
				build_frame(f->x.umem + addr, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0 }, f->x.mac);
			f->stack[f->top++] = addr;
		}
		f->fill_target = fill_target;
		if (!f->fill_target)
			f->fill_target = o.fill_size / 2 < o.frame_count / 2 ? o.fill_size / 2 : o.frame_count / 2;
		refill(f);
	}

	printf("{\"ready\":true,\"busyPoll\":%s,\"pollMode\":\"%s\"}\n", o.busy_budget ? "true" : "false", poll_mode);
	fflush(stdout);
	char line[256];
	unsigned long long a0, a1, a2;
	if (!fgets(line, sizeof(line), stdin) || sscanf(line, "%llu %llu %llu", &a0, &a1, &a2) != 3)
		DIE("expected \"T0 T1 TEND\" on stdin");
	g.t0 = a0 * 1000000ull;
	g.t1 = a1 * 1000000ull;
	g.tend = a2 * 1000000ull;
	if (g.tend > now_ns() + 600ull * 1000000000ull)
		DIE("TEND is more than 10 minutes away");
	if (g.m_tx) {
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
		for (uint32_t q = 0; q < nqueues; q++)
			for (uint32_t i = 0; i < o.frame_count; i++)
				memcpy(socks[q].x.umem + (uint64_t)i * o.frame_size, dst, 6);
	}

	struct worker *workers = calloc(nthreads, sizeof(struct worker));
	if (!workers)
		DIE("out of memory");
	for (uint32_t k = 0; k < nthreads; k++) {
		workers[k].index = k;
		workers[k].cpu = ncpus ? cpus[k % ncpus] : -1;
	}
	for (uint32_t q = 0; q < nqueues; q++) {
		struct worker *w = &workers[q % nthreads];
		w->socks[w->nsocks++] = &socks[q];
	}
	if (nthreads == 1) {
		/* One thread: the main thread (as before threads existed). */
		run(&workers[0]);
	} else {
		for (uint32_t k = 0; k < nthreads; k++)
			if (pthread_create(&workers[k].th, NULL, run, &workers[k]) != 0)
				DIE("pthread_create: %s", strerror(errno));
		for (uint32_t k = 0; k < nthreads; k++)
			pthread_join(workers[k].th, NULL);
	}

	uint64_t rx = 0, tx = 0, rxw = 0, txw = 0, kicks = 0, polls = 0;
	struct xdp_statistics sum;
	memset(&sum, 0, sizeof(sum));
	for (uint32_t q = 0; q < nqueues; q++) {
		struct fwd *f = &socks[q];
		f->stats = xsk_stats(&f->x);
		stats_add(&sum, &f->stats);
		rx += f->rx;
		tx += f->tx;
		rxw += f->rx_w1 - f->rx_w0;
		txw += f->tx_w1 - f->tx_w0;
		kicks += f->kicks;
	}
	for (uint32_t k = 0; k < nthreads; k++)
		polls += workers[k].polls;
	printf("{\"impl\":\"c\",\"mode\":\"%s\",\"rx\":%llu,\"tx\":%llu,\"rxWindow\":%llu,\"txWindow\":%llu,"
	       "\"kicks\":%llu,\"waits\":%llu,\"xdp\":",
	       mode, (unsigned long long)rx, (unsigned long long)tx, (unsigned long long)rxw,
	       (unsigned long long)txw, (unsigned long long)kicks, (unsigned long long)polls);
	print_stats_json(stdout, &sum);
	if (nqueues > 1 || nthreads > 1) {
		printf(",\"threads\":%u,\"queueCount\":%u,\"perThread\":[", nthreads, nqueues);
		for (uint32_t k = 0; k < nthreads; k++) {
			struct worker *w = &workers[k];
			uint64_t wrx = 0, wtx = 0;
			printf("%s{\"thread\":%u,\"tid\":%ld,\"cpu\":%d,\"queues\":[", k ? "," : "", k, w->tid, w->cpu);
			for (uint32_t i = 0; i < w->nsocks; i++) {
				printf("%s%u", i ? "," : "", w->socks[i]->queue);
				wrx += w->socks[i]->rx_w1 - w->socks[i]->rx_w0;
				wtx += w->socks[i]->tx_w1 - w->socks[i]->tx_w0;
			}
			printf("],\"rxWindow\":%llu,\"txWindow\":%llu,\"waits\":%llu,\"userUs\":%llu,\"sysUs\":%llu}",
			       (unsigned long long)wrx, (unsigned long long)wtx, (unsigned long long)w->polls,
			       (unsigned long long)tv_us(&w->ru0.ru_utime, &w->ru1.ru_utime),
			       (unsigned long long)tv_us(&w->ru0.ru_stime, &w->ru1.ru_stime));
		}
		printf("],\"perQueue\":[");
		for (uint32_t q = 0; q < nqueues; q++) {
			struct fwd *f = &socks[q];
			printf("%s{\"queue\":%u,\"thread\":%u,\"rx\":%llu,\"tx\":%llu,\"rxWindow\":%llu,\"txWindow\":%llu,\"kicks\":%llu,\"xdp\":",
			       q ? "," : "", q, q % nthreads, (unsigned long long)f->rx, (unsigned long long)f->tx,
			       (unsigned long long)(f->rx_w1 - f->rx_w0), (unsigned long long)(f->tx_w1 - f->tx_w0),
			       (unsigned long long)f->kicks);
			print_stats_json(stdout, &f->stats);
			printf("}");
		}
		printf("]");
	}
	printf("}\n");
	return 0;
}
