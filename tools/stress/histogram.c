/* tools/stress/histogram.c: see histogram.h. */
#include <math.h>
#include <string.h>

#include "histogram.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v >= (1ull << HIST_MAX_BIT))
		v = (1ull << HIST_MAX_BIT) - 1;
	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* v's top bit, >= HIST_SUB_BITS */
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)(v >> (e - HIST_SUB_BITS)) - HIST_SUB;
}

/* The largest value bucket i holds. */
static uint64_t bucket_top(unsigned i)
{
	unsigned group = i / HIST_SUB, sub = i % HIST_SUB, shift;

	if (group == 0)
		return i;
	shift = group - 1;
	return (((uint64_t)HIST_SUB + sub) << shift) + ((1ull << shift) - 1);
}

void hist_init(struct histogram *h)
{
	memset(h, 0, sizeof *h);
}

void hist_record(struct histogram *h, uint64_t value)
{
	h->buckets[bucket_of(value)]++;
	h->count++;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct histogram *into, const struct histogram *from)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const struct histogram *h, double q)
{
	uint64_t rank, seen = 0, top;
	unsigned i;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			top = bucket_top(i);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
