/* tools/stress/activation.h: activation with and without snapshots (--snapshot-every). */
#ifndef ESR_STRESS_ACTIVATION_H
#define ESR_STRESS_ACTIVATION_H

#include <stdio.h>

#include <stdint.h>

#include <esr/esr.h>

#include "options.h"

#define STRESS_ACTIVATION_SIZES 3

struct stress_activation_row {
	uint64_t events;      /* per aggregate */
	unsigned aggregates;  /* timed, of this size */
	double without_us, with_us; /* mean first-command time */
	uint64_t replayed_without, replayed_with; /* events applied per activation */
	uint64_t loaded;      /* activations that started from a snapshot */
};

struct stress_activation {
	uint64_t every;
	unsigned nrows;
	struct stress_activation_row rows[STRESS_ACTIVATION_SIZES];
};

/* Build, time and fill *out in a fresh store of the run's kind. */
esr_status stress_activation_run(const struct stress_options *o, struct stress_activation *out);
void stress_activation_print(const struct stress_activation *a, FILE *out);

#endif
