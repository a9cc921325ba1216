/* tools/stress/zipf.c: see zipf.h. */
#include <math.h>
#include <stdlib.h>

#include "workload.h"
#include "zipf.h"

int zipf_init(struct zipf *z, uint32_t n, double s)
{
	double sum = 0;
	uint32_t k;

	z->n = n;
	z->s = s;
	z->cdf = NULL;
	if (s == 0)
		return 0;
	if ((z->cdf = malloc((size_t)n * sizeof *z->cdf)) == NULL)
		return -1;
	for (k = 0; k < n; k++)
		z->cdf[k] = (sum += pow((double)k + 1, -s));
	for (k = 0; k < n; k++)
		z->cdf[k] /= sum;
	z->cdf[n - 1] = 1.0; /* no rounding gap at the end */
	return 0;
}

void zipf_free(struct zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
}

uint32_t zipf_draw(const struct zipf *z, uint64_t *rng)
{
	double u;
	uint32_t lo = 0, hi;

	if (z->cdf == NULL)
		return (uint32_t)(stress_random(rng) % z->n);
	u = (double)(stress_random(rng) >> 11) * 0x1p-53; /* [0, 1) */
	hi = z->n - 1;
	while (lo < hi) { /* the first rank whose cumulative weight passes u */
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}
