/*
 * tools/stress/plan.c: the command sequence and ids, generated once before
 * anything is timed so that the baseline and every strategy pay the same
 * (nothing) for generation and see the same commands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "zipf.h"

/* splitmix64: spreads any seed, 0 included, into a non-zero xorshift state. */
static uint64_t seed_state(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z != 0 ? z : 1;
}

esr_status stress_plan_init(struct stress_plan *p, const struct stress_options *opt)
{
	uint64_t rng = seed_state(opt->seed), i;
	struct zipf z;
	uint32_t k;

	memset(p, 0, sizeof *p);
	p->opt = opt;
	p->wl = opt->workload;
	p->ncmds = opt->commands != 0 ? opt->commands : STRESS_TIMED_SEQUENCE;
	p->cmds = malloc(p->ncmds * sizeof *p->cmds);
	p->ids = malloc((size_t)opt->aggregates * STRESS_ID_STRIDE);
	p->id_lens = malloc(opt->aggregates);
	if (p->cmds == NULL || p->ids == NULL || p->id_lens == NULL ||
	    zipf_init(&z, opt->aggregates, opt->skew) != 0) {
		stress_plan_free(p);
		return ESR_ENOMEM;
	}
	for (i = 0; i < p->ncmds; i++) {
		p->cmds[i].aggregate = zipf_draw(&z, &rng);
		p->wl->generate(&rng, &p->cmds[i]);
	}
	zipf_free(&z);
	for (k = 0; k < opt->aggregates; k++)
		p->id_lens[k] = (uint8_t)snprintf(p->ids + (size_t)k * STRESS_ID_STRIDE,
		                                  STRESS_ID_STRIDE, "%s-%u", p->wl->id_prefix, k);
	return ESR_OK;
}

void stress_plan_free(struct stress_plan *p)
{
	free(p->cmds);
	free(p->ids);
	free(p->id_lens);
	memset(p, 0, sizeof *p);
}

/* The plan file's layout (bench/README.md): a header, then fixed records. */
#define PLAN_HEADER 48
#define PLAN_RECORD 16

static void put32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(const unsigned char *b)
{
	return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

/* Little-endian whatever the host, so a reader needs no knowledge of ours. */
esr_status stress_plan_write(const struct stress_plan *p, const char *path)
{
	unsigned char head[PLAN_HEADER] = "ESRPLAN1", rec[PLAN_RECORD];
	FILE *f = fopen(path, "wb");
	uint64_t i;
	int bad;

	if (f == NULL)
		return ESR_EIO;
	strncpy((char *)head + 8, p->wl->name, 16); /* NUL-padded, not terminated */
	put32(head + 24, p->opt->aggregates);
	put32(head + 28, 0);
	put64(head + 32, p->ncmds);
	put64(head + 40, p->opt->seed);
	bad = fwrite(head, sizeof head, 1, f) != 1;
	for (i = 0; i < p->ncmds && !bad; i++) {
		put32(rec, p->cmds[i].aggregate);
		put32(rec + 4, p->cmds[i].kind);
		put64(rec + 8, (uint64_t)p->cmds[i].amount);
		bad = fwrite(rec, sizeof rec, 1, f) != 1;
	}
	bad |= fclose(f) != 0;
	return bad ? ESR_EIO : ESR_OK;
}


static int fail(FILE *f, struct stress_plan_file *p, char *err, size_t len, const char *why,
                const char *path)
{
	snprintf(err, len, "%s: %s", path, why);
	if (f)
		fclose(f);
	stress_plan_file_free(p);
	return -1;
}

int stress_plan_read(const char *path, struct stress_plan_file *p, char *err, size_t errlen)
{
	unsigned char head[PLAN_HEADER], rec[PLAN_RECORD];
	FILE *f = fopen(path, "rb");
	uint64_t i;
	long size;

	memset(p, 0, sizeof *p);
	if (f == NULL)
		return fail(NULL, p, err, errlen, strerror(errno), path);
	if (fread(head, 1, PLAN_HEADER, f) != PLAN_HEADER)
		return fail(f, p, err, errlen, "truncated header", path);
	if (memcmp(head, "ESRPLAN1", 8) != 0)
		return fail(f, p, err, errlen, "not a plan file (bad magic)", path);
	memcpy(p->workload, head + 8, 16);
	p->aggregates = get32(head + 24);
	p->n = get64(head + 32);
	p->seed = get64(head + 40);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, PLAN_HEADER, SEEK_SET) != 0)
		return fail(f, p, err, errlen, "cannot size the file", path);
	if (p->aggregates == 0 || p->n == 0 ||
	    (uint64_t)size != PLAN_HEADER + p->n * PLAN_RECORD)
		return fail(f, p, err, errlen, "size does not match its header (truncated?)", path);
	if ((p->cmds = malloc(p->n * sizeof *p->cmds)) == NULL)
		return fail(f, p, err, errlen, "out of memory", path);
	for (i = 0; i < p->n; i++) {
		if (fread(rec, 1, PLAN_RECORD, f) != PLAN_RECORD)
			return fail(f, p, err, errlen, "short read", path);
		p->cmds[i].aggregate = get32(rec);
		p->cmds[i].kind = get32(rec + 4);
		p->cmds[i].amount = (int64_t)get64(rec + 8);
		if (p->cmds[i].aggregate >= p->aggregates)
			return fail(f, p, err, errlen, "aggregate index out of range", path);
	}
	fclose(f);
	return 0;
}

void stress_plan_file_free(struct stress_plan_file *p)
{
	free(p->cmds);
	p->cmds = NULL;
}
