/* SPDX-License-Identifier: MIT
 *
 * How fast this CPU runs right now: a fixed dependent-arithmetic loop,
 * median of 5 rounds, printed as {"ns":N}. bench/run.js runs it on both CPUs before
 * and after every window; on a VM whose host is busy the same loop takes
 * longer (steal time does not always show it), and such a window is
 * repeated like one disturbed by local processes.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	uint64_t t_round[5];
	volatile uint64_t sink = 0;
	for (int round = 0; round < 5; round++) {
		uint64_t x = 88172645463325252ull, t = now_ns();
		for (int i = 0; i < 2000000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		sink += x;
		t_round[round] = now_ns() - t;
	}
	for (int i = 1; i < 5; i++)
		for (int j = i; j > 0 && t_round[j - 1] > t_round[j]; j--) {
			uint64_t tmp = t_round[j];
			t_round[j] = t_round[j - 1];
			t_round[j - 1] = tmp;
		}
	printf("{\"ns\":%llu}\n", (unsigned long long)t_round[2]);
	return sink == 42;
}
