/*
 * tools/stress/plan.h: the plan every strategy shares: the command sequence
 * and the ids (plan.c), and the plan file that carries it to other programs.
 */
#ifndef ESR_STRESS_PLAN_H
#define ESR_STRESS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <esr/esr.h>

#include "options.h"
#include "workload.h"

#define STRESS_ID_STRIDE 24        /* bytes per id in the id table */
#define STRESS_TIMED_SEQUENCE (1u << 20) /* commands generated for a timed run */

/* What the baseline and every strategy run: the same commands, the same ids. */
struct stress_plan {
	const struct stress_options *opt;
	const struct stress_workload *wl;
	struct stress_cmd *cmds; /* the sequence; command i is cmds[i % ncmds] */
	uint64_t ncmds;
	char *ids;               /* K ids, STRESS_ID_STRIDE apart */
	uint8_t *id_lens;
};

esr_status stress_plan_init(struct stress_plan *p, const struct stress_options *opt);
void stress_plan_free(struct stress_plan *p);

/*
 * Write the sequence to `path` in the plan file format of bench/README.md,
 * so that programs outside esr run exactly the same commands. ESR_EIO (with
 * errno kept) when the file cannot be written in full.
 */
esr_status stress_plan_write(const struct stress_plan *p, const char *path);

/* A plan file read back (by the bench programs that run the same commands). */
struct stress_plan_file {
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
int stress_plan_read(const char *path, struct stress_plan_file *p, char *err, size_t errlen);
void stress_plan_file_free(struct stress_plan_file *p);

static inline const char *stress_plan_id(const struct stress_plan *p, uint32_t k)
{
	return p->ids + (size_t)k * STRESS_ID_STRIDE;
}

#endif
