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
