/*
 * bench/sqlite_peer.c: an event table in SQLite, as most people would store
 * events durably without a server, against which the file store is compared.
 *
 *   bench_sqlite DBFILE APPENDERS SECONDS [per-command|batched]
 *
 * WAL mode, synchronous=FULL (a commit is synced), a primary key on
 * (stream, version) so that an append at a version already taken fails: the
 * database enforces the expected version. Each appender thread has its own
 * connection and stream and appends one 64-byte event per command:
 * per-command commits each in its own transaction (how most code does it);
 * batched commits 100 per transaction (SQLite's best case, though then an
 * append is not durable when it returns). Prints JSON.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 100

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct shared {
	const char *path;
	int batched;
	double until;
	atomic_ullong appends;
	atomic_int errors;
};

struct appender {
	struct shared *sh;
	int index;
};

static int exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	fprintf(stderr, "bench_sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
	return -1;
}

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	struct shared *sh = a->sh;
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	uint8_t payload[64];
	char stream[32];
	long version = 0;
	int i, per = sh->batched ? BATCH : 1;

	snprintf(stream, sizeof stream, "appender-%d", a->index);
	memset(payload, a->index, sizeof payload);
	/* The busy timeout first: every later statement may meet another
	 * connection's lock (reading the schema included). */
	if (sqlite3_open(sh->path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 60000) != SQLITE_OK ||
	    exec(db, "PRAGMA synchronous=FULL") ||
	    sqlite3_prepare_v2(db, "INSERT INTO events(stream, version, type, payload) "
	                           "VALUES (?1, ?2, 1, ?3)", -1, &ins, NULL) != SQLITE_OK) {
		atomic_fetch_add(&sh->errors, 1);
		goto out;
	}
	while (now() < sh->until) {
		if (exec(db, "BEGIN IMMEDIATE")) {
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		for (i = 0; i < per; i++) {
			sqlite3_bind_text(ins, 1, stream, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, version + 1 + i); /* the expected version + 1 */
			sqlite3_bind_blob(ins, 3, payload, sizeof payload, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				fprintf(stderr, "bench_sqlite: insert: %s\n", sqlite3_errmsg(db));
				break;
			}
			sqlite3_reset(ins);
		}
		if (i < per || exec(db, "COMMIT")) {
			exec(db, "ROLLBACK");
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		version += per;
		atomic_fetch_add(&sh->appends, (unsigned long long)per);
	}
out:
	sqlite3_finalize(ins);
	sqlite3_close(db);
	return NULL;
}

int main(int argc, char **argv)
{
	struct shared sh = {0};
	struct appender *as;
	pthread_t *ts;
	sqlite3 *db;
	double secs, start;
	int n, i;

	if (argc < 4 || (n = atoi(argv[2])) <= 0 || n > 4096 || (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench_sqlite DBFILE APPENDERS SECONDS [per-command|batched]\n");
		return 2;
	}
	sh.path = argv[1];
	sh.batched = argc > 4 && strcmp(argv[4], "batched") == 0;
	unlink(argv[1]);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK || exec(db, "PRAGMA journal_mode=WAL") ||
	    exec(db, "CREATE TABLE events(stream TEXT NOT NULL, version INTEGER NOT NULL, "
	             "type INTEGER NOT NULL, payload BLOB, PRIMARY KEY(stream, version))")) {
		fprintf(stderr, "bench_sqlite: %s\n", sqlite3_errmsg(db));
		return 3;
	}
	sqlite3_close(db);
	as = calloc((size_t)n, sizeof *as);
	ts = calloc((size_t)n, sizeof *ts);
	start = now();
	sh.until = start + secs;
	for (i = 0; i < n; i++) {
		as[i] = (struct appender){&sh, i};
		pthread_create(&ts[i], NULL, append_loop, &as[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(ts[i], NULL);
	secs = now() - start;
	printf("{\"system\":\"sqlite\",\"mode\":\"%s\",\"appenders\":%d,\"appends_per_s\":%.0f,"
	       "\"appends\":%llu,\"errors\":%d,\"seconds\":%.3f}\n",
	       sh.batched ? "batched" : "per-command", n,
	       (double)atomic_load(&sh.appends) / secs, (unsigned long long)atomic_load(&sh.appends),
	       atomic_load(&sh.errors), secs);
	free(as);
	free(ts);
	return atomic_load(&sh.errors) ? 1 : 0;
}
