/* tools/stress/options.h: esr-stress's command line. */
#ifndef ESR_STRESS_OPTIONS_H
#define ESR_STRESS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <esr/esr.h>

#include "workload.h"

#define STRESS_WRITERS_MAX 64
#define STRESS_PROCESSES_MAX 16
#define STRESS_AGGREGATES_MAX 100000000u
#define STRESS_COMMANDS_MAX 1000000000ull
#define STRESS_BATCH_MAX 4096u

enum { STRESS_OPTIMISTIC = 1, STRESS_UNCHECKED = 2 };

struct stress_options {
	unsigned strategies; /* STRESS_OPTIMISTIC | STRESS_UNCHECKED */
	esr_runtime_config runtime; /* workers, max_retries, mailbox_capacity, ... */
	unsigned writers;
	uint32_t aggregates;
	double skew;
	uint64_t commands; /* 0 when the run is timed */
	double duration;   /* seconds; 0 when the run is counted */
	uint64_t seed;
	unsigned batch;  /* commands per submit call */
	unsigned window; /* commands in flight per writer */
	uint64_t rate;   /* commands/s offered over all writers; 0: as fast as possible */
	const struct stress_workload *workload;
	const char *store;      /* "memory", "file" or "postgres" */
	const char *store_path; /* file: the directory; postgres: the connection string */
	unsigned processes;     /* --processes: processes sharing the store, each
	                           running `writers` runtimes */
	const char *json; /* NULL, "-" for standard output, or a path */
	const char *dump_plan; /* write the sequence here and run nothing */
	int quiet, check;
	int projection; /* --projection */
	int command_ids;   /* --command-ids, or implied by --duplicates */
	double duplicates; /* --duplicates: the share of commands sent again */
	int activation; /* measure activation times (set by --snapshot-every) */
};

enum stress_parse { STRESS_RUN, STRESS_HELP, STRESS_BAD };

/*
 * Parse argv into *o. STRESS_BAD leaves a one-line message naming the flag
 * in err (without the program name or a newline).
 */
enum stress_parse stress_options_parse(int argc, char **argv, struct stress_options *o,
                                       char *err, size_t errlen);
void stress_usage(FILE *out);

#endif
