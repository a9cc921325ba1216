/*
 * bench/idle_memory.c: esr's resident memory per live, idle aggregate.
 *
 *   bench_idle --aggregates N --workers T [--events 0|1]
 *
 * Starts a runtime over the memory store with passivation off, sends one
 * command to each of N aggregates (an 8-byte counter) and waits for all, so
 * that N actors are live and idle. With --events 0 (the default) the command
 * emits nothing, so what is measured is the runtime alone: actor, mailbox,
 * registry entry. With --events 1 it emits one 16-byte event, and the
 * stream the store keeps for it is counted too. Reports (VmRSS after - VmRSS
 * before) / N - the state's 8 bytes as one JSON line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <esr/esr.h>

#define BATCH 1024
#define ID_STRIDE 16

struct counter {
	int64_t value;
};

static int handle(const void *state, const void *command, esr_emitter *em)
{
	const int *emit = command;
	int64_t payload[2] = {1, 0};

	(void)state;
	return *emit ? (int)esr_emit(em, 1, payload, sizeof payload) : 0;
}

static void apply(void *state, const esr_event *ev)
{
	(void)ev;
	((struct counter *)state)->value++;
}

static const esr_aggregate_type counter_type = {
	.name = "Idle", .state_size = sizeof(struct counter), .apply = apply, .handle = handle,
};

static long long rss_bytes(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static int fail(const char *what, esr_status st)
{
	fprintf(stderr, "bench_idle: %s: %s\n", what, esr_strerror(st));
	return 3;
}

/* Send one command to each of n aggregates, BATCH at a time, and wait. */
static int touch_all(esr_runtime *rt, const char *ids, unsigned long n, const int *emit)
{
	static esr_submission subs[BATCH];
	static esr_ticket *tickets[BATCH];
	unsigned long i, j, k;
	esr_status st, outcome;
	size_t accepted;

	for (i = 0; i < n; i += k) {
		k = n - i < BATCH ? n - i : BATCH;
		for (j = 0; j < k; j++)
			subs[j] = (esr_submission){"Idle", ids + (i + j) * ID_STRIDE,
			                           strlen(ids + (i + j) * ID_STRIDE), emit, NULL, {NULL, 0}};
		if ((st = esr_submit_many(rt, subs, k, tickets, &accepted)) != ESR_OK)
			return fail("submit", st);
		for (j = 0; j < k; j++) {
			esr_ticket_wait(tickets[j], -1);
			esr_ticket_result(tickets[j], &outcome, NULL);
			esr_ticket_release(tickets[j]);
			if (outcome != ESR_OK)
				return fail("command", outcome);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"aggregates", required_argument, NULL, 'n'},
	                                     {"workers", required_argument, NULL, 'w'},
	                                     {"events", required_argument, NULL, 'e'},
	                                     {NULL, 0, NULL, 0}};
	unsigned long n = 1000000, workers = 2, i;
	long long before, after;
	esr_runtime_config cfg;
	esr_runtime *rt;
	esr_store *store;
	esr_status st;
	char *ids, *end;
	int emit = 0, c, code;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, &end, 10) : 0;
		if (c == '?' || optarg[0] == '-' || *end != '\0' || (c != 'e' && v == 0) ||
		    (c == 'e' && v > 1) || (c == 'w' && v > 1024) || (c == 'n' && v > 100000000)) {
			fprintf(stderr, "bench_idle: bad option\nusage: bench_idle --aggregates N "
			                "--workers T [--events 0|1]\n");
			return 2;
		}
		if (c == 'n')
			n = v;
		else if (c == 'w')
			workers = v;
		else
			emit = (int)v;
	}
	if ((ids = malloc(n * ID_STRIDE)) == NULL)
		return fail("ids", ESR_ENOMEM);
	for (i = 0; i < n; i++)
		snprintf(ids + i * ID_STRIDE, ID_STRIDE, "idle-%u", (unsigned)i);
	esr_runtime_config_default(&cfg);
	cfg.workers = (unsigned)workers;
	cfg.passivate_ms = 0; /* they must stay live */
	if ((st = esr_memory_store_open(&store)) != ESR_OK)
		return fail("store", st);
	if ((st = esr_runtime_start(&cfg, store, &rt)) != ESR_OK ||
	    (st = esr_runtime_register(rt, &counter_type)) != ESR_OK)
		return fail("runtime", st);
	before = rss_bytes();
	code = touch_all(rt, ids, n, &emit);
	after = rss_bytes();
	if (code == 0)
		printf("{\"system\":\"esr\",\"idle_aggregates\":%lu,\"events_each\":%d,"
		       "\"rss_before_bytes\":%lld,\"rss_after_bytes\":%lld,"
		       "\"bytes_per_aggregate\":%.1f,\"state_bytes\":%zu}\n",
		       n, emit, before, after, (double)(after - before) / (double)n - 8.0,
		       sizeof(struct counter));
	esr_runtime_destroy(rt);
	esr_store_close(store);
	free(ids);
	return code;
}
