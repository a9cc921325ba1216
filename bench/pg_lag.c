/*
 * bench/pg_lag.c: how soon a subscription sees an append another process
 * made, on PostgreSQL.
 *
 *   bench_pg_lag CONNINFO [EVENTS [PER_SECOND]]
 *
 * A child process appends EVENTS events (default 2000), one append at a time
 * at about PER_SECOND a second (default 500), each through its own store
 * handle, and notes when each append returned (CLOCK_MONOTONIC, which both
 * processes share) in memory shared with the parent. The parent subscribes
 * from position 1 with a poll of 1 s, so only the store's wake-up on other
 * processes' commits can deliver in less, and notes when each event reached
 * its handler. Lag is seen minus acknowledged (0 when the event was seen
 * first: the notification can beat the commit's reply). Prints one JSON
 * line with p50, p99, p99.9 and max in microseconds. Uses, and drops, the
 * schema "esr_lag". Every wait is bounded (60 s).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <esr/esr.h>

#define SCHEMA "esr_lag"

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static esr_store *open_store(const char *conninfo)
{
	esr_pg_store_options o;
	esr_store *s;
	char why[256] = "";

	esr_pg_store_options_default(&o);
	o.schema = SCHEMA;
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(conninfo, &o, &s) != ESR_OK) {
		fprintf(stderr, "bench_pg_lag: open: %s\n", why);
		exit(1);
	}
	return s;
}

/* The other process: append n events, noting when each was acknowledged. */
static int append_all(const char *conninfo, unsigned n, unsigned rate, uint64_t *acked)
{
	esr_store *s = open_store(conninfo);
	uint64_t gap = 1000000000u / rate, next = now_ns();
	esr_append_result r;
	char id[16];
	unsigned i;

	for (i = 0; i < n; i++) {
		esr_event ev = {.type = 1, .payload = &i, .payload_len = sizeof i};
		esr_stream_id sid = {"Lag", id, 0};
		sid.id_len = (size_t)snprintf(id, sizeof id, "lag-%u", i % 16);
		while (now_ns() < next)
			nanosleep(&(struct timespec){0, 100000}, NULL);
		next += gap;
		if (esr_store_append(s, &sid, ESR_VERSION_ANY, &ev, 1, &r) != ESR_OK ||
		    r.position == 0 || r.position > n)
			return 1;
		acked[r.position - 1] = now_ns();
	}
	esr_store_close(s);
	return 0;
}

struct seen {
	uint64_t *at;
	unsigned n, count;
};

static esr_status note(void *ctx, const esr_recorded_event *ev)
{
	struct seen *s = ctx;

	if (ev->position >= 1 && ev->position <= s->n && s->at[ev->position - 1] == 0) {
		s->at[ev->position - 1] = now_ns();
		__atomic_add_fetch(&s->count, 1, __ATOMIC_RELEASE);
	}
	return ESR_OK;
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	unsigned rate = argc > 3 ? (unsigned)atoi(argv[3]) : 500;
	struct seen seen = {NULL, n, 0};
	esr_subscription_options so;
	esr_subscription *sub;
	uint64_t *acked, *lag, until;
	esr_store *s;
	pid_t child;
	int status = 0;
	unsigned i;

	if (argc < 2 || n == 0 || rate == 0) {
		fprintf(stderr, "usage: bench_pg_lag CONNINFO [EVENTS [PER_SECOND]] (all > 0)\n");
		return 2;
	}
	acked = mmap(NULL, n * sizeof *acked, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	             -1, 0);
	seen.at = calloc(n, sizeof *seen.at);
	lag = calloc(n, sizeof *lag);
	if (acked == MAP_FAILED || seen.at == NULL || lag == NULL)
		return 1;
	memset(acked, 0, n * sizeof *acked);
	esr_pg_drop(argv[1], SCHEMA, NULL, 0);
	s = open_store(argv[1]);
	esr_subscription_options_default(&so);
	so.poll_ms = 1000;
	if (esr_subscribe(s, 1, note, &seen, &so, &sub) != ESR_OK)
		return 1;
	nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL); /* at the head, listening */
	if ((child = fork()) == 0)
		_exit(append_all(argv[1], n, rate, acked));
	until = now_ns() + 60 * 1000000000ull;
	while (__atomic_load_n(&seen.count, __ATOMIC_ACQUIRE) < n && now_ns() < until)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	waitpid(child, &status, 0);
	esr_subscription_stop(sub);
	esr_store_close(s);
	esr_pg_drop(argv[1], SCHEMA, NULL, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || seen.count < n) {
		fprintf(stderr, "bench_pg_lag: %u of %u events seen, appender status %d\n",
		        seen.count, n, status);
		return 1;
	}
	for (i = 0; i < n; i++)
		lag[i] = seen.at[i] > acked[i] ? (seen.at[i] - acked[i]) / 1000 : 0;
	qsort(lag, n, sizeof *lag, by_value);
	printf("{\"events\": %u, \"per_second\": %u, \"poll_ms\": 1000, \"lag_us\": {\"p50\": %" PRIu64
	       ", \"p99\": %" PRIu64 ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64 "}}\n",
	       n, rate, lag[n / 2], lag[(size_t)n * 99 / 100], lag[(size_t)n * 999 / 1000],
	       lag[n - 1]);
	return 0;
}
