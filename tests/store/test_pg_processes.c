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
 *
 * Command ids: every process appends the same commands (the same ids, to
 * the same streams, in the same order, released together), half of them
 * at exact versions (retrying conflicts), half at any version. Each id's
 * events are stored exactly once, by one process told ESR_OK; every other
 * is told ESR_EDUPLICATE with the versions the winner's events got.
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

/* --- the same command ids from every process ------------------------------------ */

#define ID_COMMANDS 150 /* per process: the same ids in every one */
#define ID_EVENTS 2     /* per command */

/* What a process was told of one command. */
struct told {
	int32_t status;
	uint32_t pad;
	uint64_t first, last;
};

static void id_stream(esr_stream_id *sid, char *buf, unsigned i)
{
	sid->type = "Ledger";
	sid->id = buf;
	sid->id_len = (size_t)snprintf(buf, 16, "ids-%u", i % STREAMS);
}

/* Command i: ID_EVENTS events with id "cmd-i", tagged with (p, i). At an
 * exact version (retrying each conflict from the actual version, at most
 * 1000 times) when `checked`, else at any. */
static struct told id_command(esr_store *s, unsigned p, unsigned i, int checked, uint64_t *seen)
{
	struct tag t = {p, i};
	char cmd[16], sbuf[16];
	esr_event ev[ID_EVENTS];
	esr_stream_id sid;
	esr_append_result r;
	struct told told = {0, 0, 0, 0};
	esr_status st = ESR_ECONFLICT;
	unsigned k, tries;

	id_stream(&sid, sbuf, i);
	for (k = 0; k < ID_EVENTS; k++)
		ev[k] = (esr_event){.type = 1, .payload = &t, .payload_len = sizeof t,
		                    .command_id = {cmd, (size_t)snprintf(cmd, sizeof cmd, "cmd-%u", i)}};
	for (tries = 0; tries < 1000 && st == ESR_ECONFLICT; tries++) {
		st = esr_store_append(s, &sid, checked ? seen[i % STREAMS] : ESR_VERSION_ANY, ev,
		                      ID_EVENTS, &r);
		if (st == ESR_ECONFLICT || st == ESR_OK)
			seen[i % STREAMS] = r.version;
	}
	told.status = (int32_t)st;
	if (st == ESR_OK)
		told.first = r.version - ID_EVENTS + 1, told.last = r.version;
	else if (st == ESR_EDUPLICATE)
		told.first = r.recorded_first, told.last = r.version;
	return told;
}

static int id_child(const char *schema, unsigned p, int out, int go)
{
	static struct told told[ID_COMMANDS];
	uint64_t seen[STREAMS] = {0};
	esr_pg_store_options o;
	esr_store *s;
	unsigned i;
	char byte;

	esr_pg_store_options_default(&o);
	o.schema = schema;
	if (esr_pg_store_open(env.conninfo, &o, &s) != ESR_OK)
		return 2;
	if (write(out, "O", 1) != 1 || read(go, &byte, 1) != 1) /* all start together */
		return 2;
	for (i = 0; i < ID_COMMANDS; i++)
		told[i] = id_command(s, p, i, p % 2 == 0, seen);
	esr_store_close(s);
	return write(out, told, sizeof told) == (ssize_t)sizeof told ? 0 : 2;
}

/* Per command: how many of its events are stored, by whom, at which versions. */
struct id_seen {
	unsigned times[ID_COMMANDS], by[ID_COMMANDS], mixed, junk;
	uint64_t first[ID_COMMANDS], last[ID_COMMANDS];
};

static esr_status visit_ids(void *ctx, const esr_recorded_event *e)
{
	struct id_seen *v = ctx;
	const esr_command_id *c = &e->event.command_id;
	char cmd[ESR_COMMAND_ID_MAX + 1];
	struct tag t;
	unsigned i;

	if (c->len == 0 || c->len > ESR_COMMAND_ID_MAX || e->event.payload_len != sizeof t) {
		v->junk++;
		return ESR_OK;
	}
	memcpy(cmd, c->bytes, c->len);
	cmd[c->len] = '\0';
	memcpy(&t, e->event.payload, sizeof t);
	if (sscanf(cmd, "cmd-%u", &i) != 1 || i >= ID_COMMANDS || t.n != i || t.process >= PROCESSES) {
		v->junk++;
		return ESR_OK;
	}
	if (v->times[i]++ == 0) {
		v->by[i] = t.process;
		v->first[i] = e->version;
	}
	v->mixed += v->by[i] != t.process;
	v->last[i] = e->version;
	return ESR_OK;
}

/* What the processes were told of command i against what is stored. */
static void check_id(esr_store *s, struct told told[PROCESSES][ID_COMMANDS],
                     const struct id_seen *v, unsigned i, unsigned *dups)
{
	unsigned p, winners = 0;
	uint64_t f = 0, l = 0;
	char cmd[16], sbuf[16];
	esr_stream_id sid;

	CHECK(v->times[i] == ID_EVENTS && v->last[i] == v->first[i] + ID_EVENTS - 1,
	      "cmd-%u: %u events stored", i, v->times[i]);
	for (p = 0; p < PROCESSES; p++) {
		const struct told *t = &told[p][i];
		winners += t->status == ESR_OK;
		*dups += t->status == ESR_EDUPLICATE;
		CHECK(t->status == ESR_OK || t->status == ESR_EDUPLICATE, "cmd-%u: process %u told %s",
		      i, p, esr_status_name(t->status));
		CHECK(t->first == v->first[i] && t->last == v->last[i], "cmd-%u: process %u told"
		      " %llu..%llu, stored at %llu..%llu", i, p, (unsigned long long)t->first,
		      (unsigned long long)t->last, (unsigned long long)v->first[i],
		      (unsigned long long)v->last[i]);
		if (t->status == ESR_OK)
			CHECK(v->by[i] == p, "cmd-%u: process %u told ESR_OK, stored by %u", i, p, v->by[i]);
	}
	CHECK(winners == 1, "cmd-%u: %u processes told ESR_OK", i, winners);
	id_stream(&sid, sbuf, i);
	snprintf(cmd, sizeof cmd, "cmd-%u", i);
	CHECK(esr_store_command(s, &sid, cmd, strlen(cmd), &f, &l) == ESR_OK && f == v->first[i] &&
	      l == v->last[i], "cmd-%u: recorded at %llu..%llu", i, (unsigned long long)f,
	      (unsigned long long)l);
}

static void run_ids(void)
{
	const char *schema = "t_procs_ids";
	static struct told told[PROCESSES][ID_COMMANDS];
	static struct id_seen v;
	int out[PROCESSES][2], go[PROCESSES][2], status;
	pid_t pid[PROCESSES];
	esr_pg_store_options o;
	esr_store *s;
	unsigned p, i, k, dups = 0;
	char why[256], byte;

	memset(&v, 0, sizeof v);
	memset(told, 0, sizeof told);
	CHECK(esr_pg_drop(env.conninfo, schema, why, sizeof why) == ESR_OK, "%s", why);
	CHECK(esr_pg_migrate(env.conninfo, schema, why, sizeof why) == ESR_OK, "%s", why);
	for (p = 0; p < PROCESSES; p++) {
		if (pipe(out[p]) != 0 || pipe(go[p]) != 0 || (pid[p] = fork()) < 0) {
			CHECK(0, "fork");
			return;
		}
		if (pid[p] == 0) {
			close(out[p][0]);
			close(go[p][1]);
			_exit(id_child(schema, p, out[p][1], go[p][0]));
		}
		close(out[p][1]);
		close(go[p][0]);
	}
	for (p = 0; p < PROCESSES; p++)
		CHECK(read_all(out[p][0], (uint8_t *)&byte, 1) == 0, "process %u opened", p);
	for (p = 0; p < PROCESSES; p++)
		CHECK(write(go[p][1], "g", 1) == 1, "go");
	for (p = 0; p < PROCESSES; p++) {
		CHECK(read_all(out[p][0], (uint8_t *)told[p], sizeof told[p]) == 0, "process %u"
		      " reported", p);
		close(out[p][0]);
		close(go[p][1]);
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
		char sbuf[16];
		esr_stream_id sid;
		id_stream(&sid, sbuf, k);
		CHECK(esr_store_read(s, &sid, 1, visit_ids, &v) == ESR_OK, "read");
	}
	CHECK(v.junk == 0 && v.mixed == 0, "%u foreign events, %u mixed commands", v.junk, v.mixed);
	for (i = 0; i < ID_COMMANDS; i++)
		check_id(s, told, &v, i, &dups);
	printf("command ids: %u processes, %u commands each, each stored once, %u duplicates"
	       " refused\n", PROCESSES, ID_COMMANDS, dups);
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
	run_ids();
	if (check_failures)
		fprintf(stderr, "test_pg_processes: %d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}
