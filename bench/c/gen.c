/* SPDX-License-Identifier: MIT
 *
 * The benchmark's traffic generator: one AF_XDP socket on raw rings.
 * --mode tx   offer 64-byte UDP frames (at --rate pps, 0 = as fast as it
 *             can) and count the benchmark frames that come back;
 * --mode rx   send nothing, count what arrives (the forwarder's txonly).
 * --mode lat  round trips: offer frames at --rate pps, each carrying a
 *             sequence number; the CLOCK_MONOTONIC time it is posted at is
 *             kept in an array indexed by it. Spins on its rx ring; a frame
 *             back gives now - posted. Frames posted inside [--t0, --t1)
 *             are the sample: percentiles of their round trips (exact, from
 *             the sorted sample), and lost = posted - back by --tend.
 * Sends from the start until --t1, counts arrivals inside [--t0, --t1)
 * (epoch milliseconds), exits at --tend, prints one JSON line.
 *
 * --queues Q (tx and rx modes): Q sockets on queues 0..Q-1, each with its
 * own UMEM, visited in turn by the one thread (so the generator stays on
 * one CPU). On veth a frame sent on queue k arrives on the peer's rx queue
 * k (the skb's queue_mapping), so this spreads the load evenly over the
 * forwarder's queues; --rate is split evenly between them. With Q > 1 the
 * line adds "perQueue" (each socket's counts and XDP_STATISTICS); the
 * top-level counts and "xdp" are the sums.
 * --match any counts every frame that arrives as the forwarder's (default
 * bench: only frames with the benchmark's magic; `afxdp fwd`'s txonly frames
 * carry testpmd's payload, and the lab's veth carries nothing else).
 */
#include "xsk.h"

/* Round trips up to 2^62 ns; the top bit marks a sequence number as back. */
#define BACK (1ull << 63)

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static uint64_t percentile(const uint64_t *v, uint64_t n, double p)
{
	if (n == 0)
		return 0;
	uint64_t rank = (uint64_t)(p * (double)n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* --mode lat: see the top of this file. Frames [nfill, frame_count) are the
 * prebuilt tx frames in `stack`. */
static int latency(struct xsk *x, uint64_t *stack, uint32_t top, uint64_t rate, uint64_t t0, uint64_t t1,
		   uint64_t tend, uint32_t batch)
{
	uint64_t start = now_ns();
	/* Every frame ever posted has a slot: rate x (start .. t1), plus a batch. */
	uint64_t cap = (t1 - start) / 1000 * rate / 1000000 + batch + 16;
	if (cap > (32ull << 20))
		DIE("--rate %llu over %.1f s is more than %llu frames: lower the rate or the window",
		    (unsigned long long)rate, (double)(t1 - start) / 1e9, 32ull << 20);
	uint64_t *posted = calloc(cap, sizeof(uint64_t));
	if (!posted)
		DIE("out of memory for %llu send times", (unsigned long long)cap);

	uint64_t sent = 0, seq_t0 = UINT64_MAX, back = 0, back_window = 0, dup = 0, rx_other = 0, kicks = 0;
	uint64_t rx_in_window = 0;
	uint64_t frame_mask = ~(uint64_t)(x->frame_size - 1);
	for (;;) {
		uint64_t t = now_ns();
		if (t >= tend)
			break;
		if (t >= t0 && seq_t0 == UINT64_MAX)
			seq_t0 = sent;
		uint32_t n = cons_avail(&x->comp, x->comp.size);
		for (uint32_t i = 0; i < n; i++)
			stack[top++] = comp_addr(&x->comp, i) & frame_mask;
		if (n)
			cons_release(&x->comp, n);

		if (t < t1) {
			uint64_t allowed = (t - start) / 1000 * rate / 1000000;
			uint64_t want = allowed > sent ? allowed - sent : 0;
			if (want > batch)
				want = batch;
			if (want > top)
				want = top;
			if (want > cap - sent)
				want = cap - sent;
			uint32_t m = prod_free(&x->tx, (uint32_t)want);
			for (uint32_t i = 0; i < m; i++) {
				struct xdp_desc *d = tx_desc(&x->tx, i);
				d->addr = stack[--top];
				d->len = BENCH_FRAME_LEN;
				d->options = 0;
				uint32_t seq = (uint32_t)(sent + i);
				memcpy(x->umem + d->addr + BENCH_SEQ_OFF, &seq, sizeof(seq));
			}
			if (m) {
				/* The send time: frames written, just before they are
				 * published and the kernel is kicked to send them. */
				uint64_t ts = mono_ns();
				for (uint32_t i = 0; i < m; i++)
					posted[sent + i] = ts;
				prod_submit(&x->tx, m);
				sent += m;
			}
		}
		if (x->tx.cached_prod != __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE)) {
			kick_tx(x);
			kicks++;
		}

		n = cons_avail(&x->rx, batch);
		if (n) {
			uint64_t now = mono_ns();
			int in_window = t >= t0 && t < t1;
			uint32_t f = prod_free(&x->fill, n); /* always n, as in the tx mode */
			for (uint32_t i = 0; i < n; i++) {
				const struct xdp_desc *d = rx_desc(&x->rx, i);
				const uint8_t *p = x->umem + d->addr;
				uint32_t seq;
				memcpy(&seq, p + BENCH_SEQ_OFF, sizeof(seq));
				if (!is_bench_frame(p, d->len) || d->len < BENCH_SEQ_OFF + 4 || seq >= sent) {
					rx_other++;
				} else if (posted[seq] & BACK) {
					dup++;
				} else {
					posted[seq] = BACK | (now - posted[seq]);
					back++;
					back_window += seq >= seq_t0;
					rx_in_window += in_window;
				}
				if (i < f)
					*fill_addr(&x->fill, i) = d->addr & frame_mask;
			}
			cons_release(&x->rx, n);
			prod_submit(&x->fill, f);
		}
		if (needs_wakeup(&x->fill))
			wake_rx(x);
	}
	if (seq_t0 == UINT64_MAX)
		seq_t0 = sent;
	/* The window's round trips, compacted in place (k <= seq) and sorted. */
	uint64_t k = 0;
	double sum = 0;
	for (uint64_t seq = seq_t0; seq < sent; seq++) {
		if (posted[seq] & BACK) {
			posted[k] = posted[seq] & ~BACK;
			sum += (double)posted[k];
			k++;
		}
	}
	qsort(posted, k, sizeof(uint64_t), cmp_u64);
	uint64_t sent_window = sent - seq_t0;
	struct xdp_statistics s = xsk_stats(x);
	printf("{\"mode\":\"lat\",\"rate\":%llu,\"sent\":%llu,\"sentWindow\":%llu,\"back\":%llu,\"backWindow\":%llu,"
	       "\"lost\":%llu,\"dup\":%llu,\"rx\":%llu,\"rxWindow\":%llu,\"rxOther\":%llu,\"kicks\":%llu,\"windowS\":%.6f,"
	       "\"lat\":{\"samples\":%llu,\"minNs\":%llu,\"meanNs\":%.0f,\"p50Ns\":%llu,\"p90Ns\":%llu,\"p99Ns\":%llu,"
	       "\"p999Ns\":%llu,\"maxNs\":%llu},\"xdp\":",
	       (unsigned long long)rate, (unsigned long long)sent, (unsigned long long)sent_window,
	       (unsigned long long)back, (unsigned long long)k, (unsigned long long)(sent_window - k),
	       (unsigned long long)dup, (unsigned long long)back, (unsigned long long)rx_in_window,
	       (unsigned long long)rx_other, (unsigned long long)kicks, (double)(t1 - t0) / 1e9, (unsigned long long)k,
	       (unsigned long long)(k ? posted[0] : 0), k ? sum / (double)k : 0.0,
	       (unsigned long long)percentile(posted, k, 0.50), (unsigned long long)percentile(posted, k, 0.90),
	       (unsigned long long)percentile(posted, k, 0.99), (unsigned long long)percentile(posted, k, 0.999),
	       (unsigned long long)(k ? posted[k - 1] : 0));
	print_stats_json(stdout, &s);
	printf("}\n");
	free(posted);
	return 0;
}

#define MAX_QUEUES 64

static int match_any;

/* One socket of the tx/rx modes: frames [0, nfill) cycle through fill/rx,
 * the rest are prebuilt tx frames in `stack`. */
struct gq {
	struct xsk x;
	uint64_t *stack;
	uint32_t top;
	uint32_t queue;
	uint64_t sent, sent_window, rx_match, rx_window, rx_other, kicks;
	struct xdp_statistics stats;
};

/* One pass of the tx/rx loop over one socket. */
static void gen_step(struct gq *q, int sending, uint64_t t, uint64_t start, uint64_t t1, int in_window,
		     uint64_t rate, uint32_t batch, uint64_t frame_mask)
{
	struct xsk *x = &q->x;
	/* completions -> tx pool */
	uint32_t n = cons_avail(&x->comp, x->comp.size);
	for (uint32_t i = 0; i < n; i++)
		q->stack[q->top++] = comp_addr(&x->comp, i) & frame_mask;
	if (n)
		cons_release(&x->comp, n);

	if (sending && t < t1) {
		uint64_t want = batch;
		if (rate) {
			uint64_t allowed = (t - start) / 1000 * rate / 1000000;
			want = allowed > q->sent ? allowed - q->sent : 0;
			if (want > batch)
				want = batch;
		}
		if (want > q->top)
			want = q->top;
		uint32_t m = prod_free(&x->tx, (uint32_t)want);
		for (uint32_t i = 0; i < m; i++) {
			struct xdp_desc *d = tx_desc(&x->tx, i);
			d->addr = q->stack[--q->top];
			d->len = BENCH_FRAME_LEN;
			d->options = 0;
		}
		if (m) {
			prod_submit(&x->tx, m);
			q->sent += m;
			if (in_window)
				q->sent_window += m;
		}
	}
	if (x->tx.cached_prod != __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE)) {
		kick_tx(x);
		q->kicks++;
	}

	/* rx: count, give the frames straight back to the fill ring */
	n = cons_avail(&x->rx, batch);
	if (n) {
		uint32_t f = prod_free(&x->fill, n); /* always n, see nfill */
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = rx_desc(&x->rx, i);
			if (match_any || is_bench_frame(x->umem + d->addr, d->len)) {
				q->rx_match++;
				q->rx_window += in_window;
			} else {
				q->rx_other++;
			}
			if (i < f)
				*fill_addr(&x->fill, i) = d->addr & frame_mask;
		}
		cons_release(&x->rx, n);
		prod_submit(&x->fill, f);
	}
	if (needs_wakeup(&x->fill))
		wake_rx(x);
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *iface = NULL, *mode = "tx", *peer_mac_s = NULL;
	uint64_t rate = 0, t0 = 0, t1 = 0, tend = 0;
	struct xsk_opts o = { .queue = 0, .frame_size = 2048, .frame_count = 8192,
			      .rx_size = 2048, .tx_size = 2048, .fill_size = 4096, .comp_size = 2048,
			      .xdp_flags = XDP_FLAGS_DRV_MODE };
	uint32_t batch = 64, tx_budget = 0, nqueues = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			DIE("%s needs a value", a);
		i++;
		if (!strcmp(a, "--netns")) netns = v;
		else if (!strcmp(a, "--iface")) iface = v;
		else if (!strcmp(a, "--mode")) mode = v;
		else if (!strcmp(a, "--peer-mac")) peer_mac_s = v;
		else if (!strcmp(a, "--rate")) rate = arg_u64(v);
		else if (!strcmp(a, "--t0")) t0 = arg_u64(v) * 1000000ull;
		else if (!strcmp(a, "--t1")) t1 = arg_u64(v) * 1000000ull;
		else if (!strcmp(a, "--tend")) tend = arg_u64(v) * 1000000ull;
		else if (!strcmp(a, "--batch")) batch = arg_u64(v);
		else if (!strcmp(a, "--tx-budget")) tx_budget = arg_u64(v);
		else if (!strcmp(a, "--queues")) nqueues = arg_u64(v);
		else if (!strcmp(a, "--match")) {
			if (strcmp(v, "any") && strcmp(v, "bench"))
				DIE("--match must be bench or any");
			match_any = !strcmp(v, "any");
		}
		else if (!strcmp(a, "--xdp")) o.xdp_flags = !strcmp(v, "skb") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		else DIE("unknown option %s", a);
	}
	if (!iface || !t0 || !t1 || !tend || t0 > t1 || t1 > tend)
		DIE("usage: gen --netns NS --iface IF --mode tx|rx|lat [--rate PPS] --t0 MS --t1 MS --tend MS [--peer-mac MAC]");
	if (batch == 0 || batch > 1024)
		DIE("--batch must be 1..1024");
	if (tend - now_ns() > 7300ull * 1000000000ull)
		DIE("--tend is more than 2 hours away");
	int lat = !strcmp(mode, "lat");
	int sending = !strcmp(mode, "tx") || lat;
	if (!sending && strcmp(mode, "rx"))
		DIE("--mode must be tx, rx or lat");
	if (sending && !peer_mac_s)
		DIE("--mode %s needs --peer-mac", mode);
	if (lat && !rate)
		DIE("--mode lat needs --rate");
	if (nqueues == 0 || nqueues > MAX_QUEUES || (lat && nqueues != 1))
		DIE("--queues must be 1..%d (1 in --mode lat)", MAX_QUEUES);

	enter_netns(netns);
	o.ifname = iface;
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif
	uint8_t peer_mac[6] = { 0 };
	if (peer_mac_s) {
		unsigned m[6];
		if (sscanf(peer_mac_s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
			DIE("bad --peer-mac %s", peer_mac_s);
		for (int i = 0; i < 6; i++)
			peer_mac[i] = (uint8_t)m[i];
	}

	/* Frames [0, nfill) cycle through fill/rx; the rest are prebuilt tx
	 * frames. The fill ring is twice nfill, so returning received frames
	 * always finds room even while the kernel has not yet published how
	 * far it has consumed. */
	uint32_t nfill = o.fill_size / 2;
	struct gq *qs = calloc(nqueues, sizeof(struct gq));
	if (!qs)
		DIE("out of memory");
	for (uint32_t qi = 0; qi < nqueues; qi++) {
		struct gq *q = &qs[qi];
		struct xsk *x = &q->x;
		o.queue = qi;
		q->queue = qi;
		if (qi == 0)
			xsk_open(x, &o);
		else
			xsk_open_queue(x, &o, &qs[0].x);
		if (tx_budget)
			setsockopt(x->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &tx_budget, sizeof(tx_budget));
		uint32_t ntx = x->frame_count - nfill;
		q->stack = malloc(sizeof(uint64_t) * ntx);
		for (uint32_t i = 0; i < ntx; i++) {
			uint64_t addr = (uint64_t)(nfill + i) * x->frame_size;
			build_frame(x->umem + addr, peer_mac, x->mac);
			q->stack[q->top++] = addr;
		}
		uint32_t k = prod_free(&x->fill, nfill);
		for (uint32_t i = 0; i < k; i++)
			*fill_addr(&x->fill, i) = (uint64_t)i * x->frame_size;
		prod_submit(&x->fill, k);
	}
	if (lat)
		return latency(&qs[0].x, qs[0].stack, qs[0].top, rate, t0, t1, tend, batch);

	uint64_t start = now_ns();
	uint64_t frame_mask = ~(uint64_t)(qs[0].x.frame_size - 1);
	/* --rate is the total: each queue offers its share. */
	uint64_t qrate = rate / nqueues + (rate && rate < nqueues);
	for (;;) {
		uint64_t t = now_ns();
		if (t >= tend)
			break;
		int in_window = t >= t0 && t < t1;
		for (uint32_t qi = 0; qi < nqueues; qi++)
			gen_step(&qs[qi], sending, t, start, t1, in_window, qrate, batch, frame_mask);
	}
	uint64_t sent = 0, sent_window = 0, rx_match = 0, rx_window = 0, rx_other = 0, kicks = 0;
	struct xdp_statistics s;
	memset(&s, 0, sizeof(s));
	for (uint32_t qi = 0; qi < nqueues; qi++) {
		struct gq *q = &qs[qi];
		q->stats = xsk_stats(&q->x);
		stats_add(&s, &q->stats);
		sent += q->sent;
		sent_window += q->sent_window;
		rx_match += q->rx_match;
		rx_window += q->rx_window;
		rx_other += q->rx_other;
		kicks += q->kicks;
	}
	printf("{\"sent\":%llu,\"sentWindow\":%llu,\"rx\":%llu,\"rxWindow\":%llu,\"rxOther\":%llu,\"kicks\":%llu,"
	       "\"windowS\":%.6f,\"xdp\":",
	       (unsigned long long)sent, (unsigned long long)sent_window, (unsigned long long)rx_match,
	       (unsigned long long)rx_window, (unsigned long long)rx_other, (unsigned long long)kicks,
	       (double)(t1 - t0) / 1e9);
	print_stats_json(stdout, &s);
	if (nqueues > 1) {
		printf(",\"perQueue\":[");
		for (uint32_t qi = 0; qi < nqueues; qi++) {
			struct gq *q = &qs[qi];
			printf("%s{\"queue\":%u,\"sent\":%llu,\"sentWindow\":%llu,\"rx\":%llu,\"rxWindow\":%llu,\"rxOther\":%llu,"
			       "\"kicks\":%llu,\"xdp\":",
			       qi ? "," : "", qi, (unsigned long long)q->sent, (unsigned long long)q->sent_window,
			       (unsigned long long)q->rx_match, (unsigned long long)q->rx_window,
			       (unsigned long long)q->rx_other, (unsigned long long)q->kicks);
			print_stats_json(stdout, &q->stats);
			printf("}");
		}
		printf("]");
	}
	printf("}\n");
	return 0;
}
