/* bench/plan_file.c: the plan file reader (format: bench/README.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_file.h"

#define HEADER 48
#define RECORD 16

static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(const unsigned char *b)
{
	return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

static int fail(FILE *f, struct plan_file *p, char *err, size_t len, const char *why,
                const char *path)
{
	snprintf(err, len, "%s: %s", path, why);
	if (f)
		fclose(f);
	plan_file_free(p);
	return -1;
}

int plan_file_read(const char *path, struct plan_file *p, char *err, size_t errlen)
{
	unsigned char head[HEADER], rec[RECORD];
	FILE *f = fopen(path, "rb");
	uint64_t i;
	long size;

	memset(p, 0, sizeof *p);
	if (f == NULL)
		return fail(NULL, p, err, errlen, strerror(errno), path);
	if (fread(head, 1, HEADER, f) != HEADER)
		return fail(f, p, err, errlen, "truncated header", path);
	if (memcmp(head, "ESRPLAN1", 8) != 0)
		return fail(f, p, err, errlen, "not a plan file (bad magic)", path);
	memcpy(p->workload, head + 8, 16);
	p->aggregates = get32(head + 24);
	p->n = get64(head + 32);
	p->seed = get64(head + 40);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, HEADER, SEEK_SET) != 0)
		return fail(f, p, err, errlen, "cannot size the file", path);
	if (p->aggregates == 0 || p->n == 0 ||
	    (uint64_t)size != HEADER + p->n * RECORD)
		return fail(f, p, err, errlen, "size does not match its header (truncated?)", path);
	if ((p->cmds = malloc(p->n * sizeof *p->cmds)) == NULL)
		return fail(f, p, err, errlen, "out of memory", path);
	for (i = 0; i < p->n; i++) {
		if (fread(rec, 1, RECORD, f) != RECORD)
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

void plan_file_free(struct plan_file *p)
{
	free(p->cmds);
	p->cmds = NULL;
}
