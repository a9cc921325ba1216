/*
 * tools/stress/histogram.h: a log-linear latency histogram.
 *
 * Values below 32 have a bucket each; above, every power of two is split into
 * 32 equal buckets, so a reported percentile is at most 1/32 (about 3 %) above
 * the true value. Values are clamped to 2^48 - 1 (78 hours in nanoseconds).
 * Recording is a shift and an increment; one histogram per thread, merged at
 * the end.
 */
#ifndef ESR_STRESS_HISTOGRAM_H
#define ESR_STRESS_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BIT 48
#define HIST_BUCKETS ((HIST_MAX_BIT - HIST_SUB_BITS + 1) * HIST_SUB)

/*
 * A closed-loop program (esr-stress without --rate, bench_mutex) times one
 * command in HIST_TIME_EVERY. Two clock reads a command are not the cost
 * being measured, yet on a worker the one at completion takes about a tenth
 * of a command's time; the CAF peer times no fire-and-forget command at all.
 * 16 still leaves 62 500 values per million commands. An open loop (--rate)
 * times every command: there latency is the measurement.
 */
#define HIST_TIME_EVERY 16

/* Whether a closed loop times its command number n (0, 16, 32, ...). */
static inline int hist_timed(uint64_t n)
{
	return n % HIST_TIME_EVERY == 0;
}

struct histogram {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct histogram *h);
void hist_record(struct histogram *h, uint64_t value);
void hist_merge(struct histogram *into, const struct histogram *from);
/*
 * The value at quantile q (0 < q <= 1): the upper edge of the bucket holding
 * the ceil(q * count)-th smallest value, never above the exact maximum.
 * 0 for an empty histogram.
 */
uint64_t hist_quantile(const struct histogram *h, double q);

#endif
