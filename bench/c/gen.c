/* SPDX-License-Identifier: MIT
 *
 * The benchmark's traffic generator: one AF_XDP socket on raw rings.
 * --mode tx   offer 64-byte UDP frames (at --rate pps, 0 = as fast as it
 *             can) and count the benchmark frames that come back;
 * --mode rx   send nothing, count what arrives (the forwarder's txonly).
 * Sends from --start... until --t1, counts arrivals inside [--t0, --t1)
 * (epoch milliseconds), exits at --tend, prints one JSON line.
 */
#include "xsk.h"

int main(int argc, char **argv)
{
	const char *netns = NULL, *iface = NULL, *mode = "tx", *peer_mac_s = NULL;
	uint64_t rate = 0, t0 = 0, t1 = 0, tend = 0;
	struct xsk_opts o = { .queue = 0, .frame_size = 2048, .frame_count = 8192,
			      .rx_size = 2048, .tx_size = 2048, .fill_size = 4096, .comp_size = 2048,
			      .xdp_flags = XDP_FLAGS_DRV_MODE };
	uint32_t batch = 64, tx_budget = 0;
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
		else if (!strcmp(a, "--xdp")) o.xdp_flags = !strcmp(v, "skb") ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
		else DIE("unknown option %s", a);
	}
	if (!iface || !t0 || !t1 || !tend || t0 > t1 || t1 > tend)
		DIE("usage: gen --netns NS --iface IF --mode tx|rx [--rate PPS] --t0 MS --t1 MS --tend MS [--peer-mac MAC]");
	if (batch == 0 || batch > 1024)
		DIE("--batch must be 1..1024");
	if (tend - now_ns() > 7300ull * 1000000000ull)
		DIE("--tend is more than 2 hours away");
	int sending = !strcmp(mode, "tx");
	if (sending && !peer_mac_s)
		DIE("--mode tx needs --peer-mac");

	enter_netns(netns);
	o.ifname = iface;
	struct xsk x;
	xsk_open(&x, &o);
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif
	if (tx_budget)
		setsockopt(x.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &tx_budget, sizeof(tx_budget));

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
	uint32_t ntx = x.frame_count - nfill;
	uint64_t *stack = malloc(sizeof(uint64_t) * ntx);
	uint32_t top = 0;
	for (uint32_t i = 0; i < ntx; i++) {
		uint64_t addr = (uint64_t)(nfill + i) * x.frame_size;
		build_frame(x.umem + addr, peer_mac, x.mac);
		stack[top++] = addr;
	}
	uint32_t k = prod_free(&x.fill, nfill);
	for (uint32_t i = 0; i < k; i++)
		*fill_addr(&x.fill, i) = (uint64_t)i * x.frame_size;
	prod_submit(&x.fill, k);

	uint64_t start = now_ns();
	uint64_t sent = 0, sent_window = 0, rx_match = 0, rx_window = 0, rx_other = 0, kicks = 0;
	uint64_t frame_mask = ~(uint64_t)(x.frame_size - 1);
	for (;;) {
		uint64_t t = now_ns();
		if (t >= tend)
			break;
		int in_window = t >= t0 && t < t1;

		/* completions -> tx pool */
		uint32_t n = cons_avail(&x.comp, x.comp.size);
		for (uint32_t i = 0; i < n; i++)
			stack[top++] = comp_addr(&x.comp, i) & frame_mask;
		if (n)
			cons_release(&x.comp, n);

		if (sending && t < t1) {
			uint64_t want = batch;
			if (rate) {
				uint64_t allowed = (t - start) / 1000 * rate / 1000000;
				want = allowed > sent ? allowed - sent : 0;
				if (want > batch)
					want = batch;
			}
			if (want > top)
				want = top;
			uint32_t m = prod_free(&x.tx, (uint32_t)want);
			for (uint32_t i = 0; i < m; i++) {
				struct xdp_desc *d = tx_desc(&x.tx, i);
				d->addr = stack[--top];
				d->len = BENCH_FRAME_LEN;
				d->options = 0;
			}
			if (m) {
				prod_submit(&x.tx, m);
				sent += m;
				if (in_window)
					sent_window += m;
			}
		}
		if (x.tx.cached_prod != __atomic_load_n(x.tx.consumer, __ATOMIC_ACQUIRE)) {
			kick_tx(&x);
			kicks++;
		}

		/* rx: count, give the frames straight back to the fill ring */
		n = cons_avail(&x.rx, batch);
		if (n) {
			uint32_t f = prod_free(&x.fill, n); /* always n, see nfill */
			for (uint32_t i = 0; i < n; i++) {
				const struct xdp_desc *d = rx_desc(&x.rx, i);
				if (is_bench_frame(x.umem + d->addr, d->len)) {
					rx_match++;
					rx_window += in_window;
				} else {
					rx_other++;
				}
				if (i < f)
					*fill_addr(&x.fill, i) = d->addr & frame_mask;
			}
			cons_release(&x.rx, n);
			prod_submit(&x.fill, f);
		}
		if (needs_wakeup(&x.fill))
			wake_rx(&x);
	}
	struct xdp_statistics s = xsk_stats(&x);
	printf("{\"sent\":%llu,\"sentWindow\":%llu,\"rx\":%llu,\"rxWindow\":%llu,\"rxOther\":%llu,\"kicks\":%llu,"
	       "\"windowS\":%.6f,\"xdp\":",
	       (unsigned long long)sent, (unsigned long long)sent_window, (unsigned long long)rx_match,
	       (unsigned long long)rx_window, (unsigned long long)rx_other, (unsigned long long)kicks,
	       (double)(t1 - t0) / 1e9);
	print_stats_json(stdout, &s);
	printf("}\n");
	return 0;
}
