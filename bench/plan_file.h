/*
 * bench/plan_file.h: reading the command sequence esr-stress --dump-plan
 * writes (the format is in bench/README.md), for the bench programs in C.
 */
#ifndef ESR_BENCH_PLAN_FILE_H
#define ESR_BENCH_PLAN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "workload.h"

struct plan_file {
	char workload[17];     /* NUL-terminated */
	uint32_t aggregates;
	uint64_t seed;
	uint64_t n;            /* commands in the file */
	struct stress_cmd *cmds;
};

/*
 * Read `path` into *p. 0 on success; otherwise -1 with a one-line reason in
 * err (a missing file, a bad magic, a truncated or oversized file, an
 * aggregate index out of range).
 */
int plan_file_read(const char *path, struct plan_file *p, char *err, size_t errlen);
void plan_file_free(struct plan_file *p);

#endif
