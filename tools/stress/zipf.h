/*
 * tools/stress/zipf.h: draw aggregate indexes with a Zipf distribution:
 * P(rank k) proportional to 1 / (k + 1)^s over n ranks. s = 0 is uniform.
 * Rank 0 is the hottest aggregate. The cumulative table costs 8 bytes per
 * aggregate and is built only when s > 0; a draw is a binary search.
 */
#ifndef ESR_STRESS_ZIPF_H
#define ESR_STRESS_ZIPF_H

#include <stdint.h>

struct zipf {
	uint32_t n;
	double s;
	double *cdf; /* NULL when s == 0 */
};

/* 0 on success, -1 when the table cannot be allocated. */
int zipf_init(struct zipf *z, uint32_t n, double s);
void zipf_free(struct zipf *z);
uint32_t zipf_draw(const struct zipf *z, uint64_t *rng);

#endif
