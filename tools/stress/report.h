/* tools/stress/report.h: the comparison table and its JSON twin. */
#ifndef ESR_STRESS_REPORT_H
#define ESR_STRESS_REPORT_H

#include <stdio.h>

#include "baseline.h"
#include "options.h"
#include "result.h"

struct stress_report {
	const struct stress_options *opt;
	const struct stress_baseline *baseline;
	const struct stress_result *runs;
	unsigned nruns;
};

/*
 * --check: does this run fail it? The optimistic strategy, and any strategy
 * with one writer, must keep every rule and every actor's state.
 */
int stress_check_failed(const struct stress_options *o, const struct stress_result *r);

void report_table(const struct stress_report *rep, FILE *out);
/* Write the JSON document to path ("-": standard output). 0, or -1 with errno-style
 * failure reported on stderr. */
int report_json(const struct stress_report *rep, const char *path);

#endif
