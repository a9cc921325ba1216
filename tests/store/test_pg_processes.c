/*
 * tests/store/test_pg_processes.c: several processes appending to the same streams
 * through one database, each with a store of its own.
 *
 * Optimistic: each process appends at the version it last saw, and on a
 * conflict retries from the actual version the store reported. Afterwards
 * every stream's versions are contiguous, every append a process was told
 * succeeded is there exactly once, and nothing else is. Unchecked (any
 * version): nothing conflicts or fails, and every append is there exactly
 * once. Every event carries (process, append number), so duplicates show.
 * Then a global read from position 1 finds every stored event exactly once,
 * at positions 1, 2, 3, ... without a gap, each stream's in version order.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <esr/esr.h>

#include "check.h"
#include "pg_env.h"

#define PROCESSES 4
#define STREAMS 6
#define APPENDS 120 /* per process */

static struct pg_env env;

struct tag {
	uint32_t process, n;
};

static void stream_of(esr_stream_id *sid, char *buf, unsigned k)
{
	sid->type = "Account";
	sid->id = buf;
	sid->id_len = (size_t)snprintf(buf, 16, "shared-%u", k);
}

/* One process: APPENDS appends round-robin over the streams. It writes one
 * byte per append to `out`: 1 if it was acknowledged, 0 if not. */
static int child(const char *schema, unsigned p, int checked, int out)
{
	esr_pg_store_options o;
	esr_store *s;
	uint64_t seen[STREAMS] = {0};
	unsigned i, conflicts = 0;

	esr_pg_store_options_default(&o);
	o.schema = schema;
	if (esr_pg_store_open(env.conninfo, &o, &s) != ESR_OK)
		return 2;
	for (i = 0; i < APPENDS; i++) {
		struct tag t = {p, i};
		esr_event ev = {.type = 1, .payload = &t, .payload_len = sizeof t};
		unsigned k = (i + p) % STREAMS;
		char id[16];
		esr_stream_id sid;
		esr_append_result r;
		esr_status st;
		uint8_t ok = 0;

		stream_of(&sid, id, k);
		for (;;) {
			st = esr_store_append(s, &sid, checked ? seen[k] : ESR_VERSION_ANY, &ev, 1, &r);
			if (st != ESR_ECONFLICT)
				break;
			conflicts++;
			seen[k] = r.version; /* retry from where the stream is */
		}
		if (st == ESR_OK) {
			ok = 1;
			seen[k] = r.version;
		}
		if (write(out, &ok, 1) != 1)
			return 2;
	}
	esr_store_close(s);
	fprintf(stderr, "  process %u: %u conflicts retried\n", p, conflicts);
	return 0;
}

/* All of len bytes from fd (a pipe hands them over in pieces). */
static int read_all(int fd, uint8_t *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, buf, len)) <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

struct verify {
	uint8_t times[PROCESSES][APPENDS];
	uint64_t next, gaps, junk;
};

static esr_status visit(void *ctx, const esr_recorded_event *e)
{
	struct verify *v = ctx;
	struct tag t;

	v->gaps += e->version != ++v->next;
	if (e->event.payload_len != sizeof t) {
		v->junk++;
		return ESR_OK;
	}
	memcpy(&t, e->event.payload, sizeof t);
	if (t.process >= PROCESSES || t.n >= APPENDS)
		v->junk++;
	else
		v->times[t.process][t.n]++;
	return ESR_OK;
}

struct global {
	uint64_t expect, bad_positions, bad_versions, junk;
	uint64_t version[STREAMS];
	uint8_t times[PROCESSES][APPENDS];
};

static esr_status visit_global(void *ctx, const esr_recorded_event *e)
{
	struct global *g = ctx;
	struct tag t;
	unsigned k;

	g->bad_positions += e->position != g->expect;
	g->expect = e->position + 1;
	if (e->stream.id_len < 8 || sscanf((const char *)e->stream.id + 7, "%u", &k) != 1 ||
	    k >= STREAMS || e->event.payload_len != sizeof t) {
		g->junk++;
		return ESR_OK;
	}
	g->bad_versions += e->version != g->version[k] + 1;
	g->version[k] = e->version;
	memcpy(&t, e->event.payload, sizeof t);
	if (t.process >= PROCESSES || t.n >= APPENDS)
		g->junk++;
	else
		g->times[t.process][t.n]++;
	return ESR_OK;
}

/* Everything from position 1, a page at a time, against what the streams hold. */
static void check_global(esr_store *s, const struct verify *v, unsigned stored)
{
	static struct global g;
	uint64_t from = 1, next, head = 0;
	unsigned p, i;

	memset(&g, 0, sizeof g);
	g.expect = 1;
	do {
		CHECK(esr_store_read_all(s, from, 50, visit_global, &g, &next) == ESR_OK, "read_all");
		if (next == from)
			break;
		from = next;
	} while (1);
	CHECK(g.bad_positions == 0 && g.bad_versions == 0 && g.junk == 0,
	      "global read: %llu positions out of place, %llu versions, %llu foreign",
	      (unsigned long long)g.bad_positions, (unsigned long long)g.bad_versions,
	      (unsigned long long)g.junk);
	CHECK(g.expect - 1 == stored, "global read: %llu events, the streams hold %u",
	      (unsigned long long)(g.expect - 1), stored);
	CHECK(esr_store_head(s, &head) == ESR_OK && head == stored, "head %llu",
	      (unsigned long long)head);
	for (p = 0; p < PROCESSES; p++)
		for (i = 0; i < APPENDS; i++)
			CHECK(g.times[p][i] == v->times[p][i], "process %u append %u: %u times in the"
			      " global read, %u in its stream", p, i, g.times[p][i], v->times[p][i]);
}

static void run(int checked)
{
	const char *schema = checked ? "t_procs_opt" : "t_procs_any";
	static struct verify v;
	uint8_t acked[PROCESSES][APPENDS];
	pid_t pid[PROCESSES];
	int fds[PROCESSES][2], status;
	esr_store *s;
	esr_pg_store_options o;
	unsigned p, k, i, stored = 0, acknowledged = 0;
	char why[256];

	memset(&v, 0, sizeof v);
	CHECK(esr_pg_drop(env.conninfo, schema, why, sizeof why) == ESR_OK, "%s", why);
	CHECK(esr_pg_migrate(env.conninfo, schema, why, sizeof why) == ESR_OK, "%s", why);
	for (p = 0; p < PROCESSES; p++) {
		if (pipe(fds[p]) != 0 || (pid[p] = fork()) < 0) {
			CHECK(0, "fork");
			return;
		}
		if (pid[p] == 0) {
			close(fds[p][0]);
			_exit(child(schema, p, checked, fds[p][1]));
		}
		close(fds[p][1]);
	}
	for (p = 0; p < PROCESSES; p++) {
		memset(acked[p], 0, APPENDS);
		CHECK(read_all(fds[p][0], acked[p], APPENDS) == 0, "process %u reported", p);
		close(fds[p][0]);
		waitpid(pid[p], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %u exit", p);
	}
	esr_pg_store_options_default(&o);
	o.schema = schema;
	if (esr_pg_store_open(env.conninfo, &o, &s) != ESR_OK) {
		CHECK(0, "reopen");
		return;
	}
	for (k = 0; k < STREAMS; k++) {
		char id[16];
		esr_stream_id sid;
		stream_of(&sid, id, k);
		v.next = 0;
		CHECK(esr_store_read(s, &sid, 1, visit, &v) == ESR_OK, "read");
		stored += (unsigned)v.next;
	}
	CHECK(v.gaps == 0 && v.junk == 0, "%llu gaps, %llu foreign events",
	      (unsigned long long)v.gaps, (unsigned long long)v.junk);
	for (p = 0; p < PROCESSES; p++)
		for (i = 0; i < APPENDS; i++) {
			acknowledged += acked[p][i];
			CHECK(v.times[p][i] == acked[p][i], "process %u append %u: acknowledged %u,"
			      " stored %u times", p, i, acked[p][i], v.times[p][i]);
		}
	CHECK(acknowledged == PROCESSES * APPENDS, "%u of %u acknowledged", acknowledged,
	      PROCESSES * APPENDS);
	check_global(s, &v, stored);
	printf("%s: %u processes, %u appends acknowledged, %u events stored\n",
	       checked ? "optimistic" : "any version", PROCESSES, acknowledged, stored);
	esr_store_close(s);
	esr_pg_drop(env.conninfo, schema, NULL, 0);
}

int main(void)
{
	char why[512];

	if (pg_env_load(&env, why, sizeof why) != 0)
		return pg_env_unavailable(why);
	run(1);
	run(0);
	if (check_failures)
		fprintf(stderr, "test_pg_processes: %d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}
