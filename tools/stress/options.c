/*
 * tools/stress/options.c: parse and check esr-stress's flags. Every value is
 * checked in full (no trailing junk, no sign on a count, ranges enforced), and
 * a bad one is reported with the flag it came from.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

enum {
	OPT_STRATEGY = 256, OPT_WORKERS, OPT_WRITERS, OPT_AGGREGATES, OPT_SKEW,
	OPT_COMMANDS, OPT_DURATION, OPT_SEED, OPT_MAX_RETRIES, OPT_BATCH,
	OPT_MAILBOX, OPT_WINDOW, OPT_WORKLOAD, OPT_STORE, OPT_PROCESSES, OPT_JSON,
	OPT_DUMP_PLAN, OPT_RATE, OPT_QUIET,
	OPT_CHECK, OPT_HELP, OPT_SNAPSHOT_EVERY, OPT_PROJECTION, OPT_COMMAND_IDS,
	OPT_DUPLICATES
};

static const struct option longopts[] = {
	{"strategy", required_argument, NULL, OPT_STRATEGY},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"writers", required_argument, NULL, OPT_WRITERS},
	{"aggregates", required_argument, NULL, OPT_AGGREGATES},
	{"skew", required_argument, NULL, OPT_SKEW},
	{"commands", required_argument, NULL, OPT_COMMANDS},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"seed", required_argument, NULL, OPT_SEED},
	{"max-retries", required_argument, NULL, OPT_MAX_RETRIES},
	{"batch", required_argument, NULL, OPT_BATCH},
	{"mailbox-capacity", required_argument, NULL, OPT_MAILBOX},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"rate", required_argument, NULL, OPT_RATE},
	{"workload", required_argument, NULL, OPT_WORKLOAD},
	{"store", required_argument, NULL, OPT_STORE},
	{"processes", required_argument, NULL, OPT_PROCESSES},
	{"json", required_argument, NULL, OPT_JSON},
	{"dump-plan", required_argument, NULL, OPT_DUMP_PLAN},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"check", no_argument, NULL, OPT_CHECK},
	{"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
	{"projection", no_argument, NULL, OPT_PROJECTION},
	{"command-ids", no_argument, NULL, OPT_COMMAND_IDS},
	{"duplicates", required_argument, NULL, OPT_DUPLICATES},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

void stress_usage(FILE *out)
{
	fputs(
"usage: esr-stress [options]\n"
"\n"
"Runs one command sequence straight on the aggregate logic (the baseline),\n"
"then through the esr runtime under each strategy, checks every stream in the\n"
"store against the business rules, and prints the results side by side.\n"
"\n"
"  --strategy=S          optimistic, unchecked or both (default: both, or\n"
"                        $ESR_STRATEGY when set)\n"
"  --workers=N           worker threads per runtime, 1..1024 (default: online CPUs)\n"
"  --writers=W           runtimes sharing the store, 1..64, each given a share of\n"
"                        every aggregate's commands; W > 1 is several processes\n"
"                        writing the same aggregates (default: 1)\n"
"  --aggregates=K        aggregates, 1..100000000 (default: 10000)\n"
"  --skew=S              Zipf exponent over aggregates, 0..5; 0 is uniform,\n"
"                        0.99 a realistic hot set (default: 0)\n"
"  --commands=N          commands per strategy, 1..1000000000 (default: 1000000)\n"
"  --duration=SECONDS    run each strategy this long instead (0 < s <= 86400);\n"
"                        the sequence of 1048576 commands then repeats\n"
"  --seed=N              seed of the command sequence (default: 42)\n"
"  --max-retries=R       optimistic retries after a conflict, 0..1000 (default: 5)\n"
"  --batch=B             commands per submit call, 1..4096 (default: 16)\n"
"  --window=N            commands in flight per writer, batch..1048576\n"
"                        (default: 1024)\n"
"  --rate=R              offer R commands/s in all (open loop: each command is\n"
"                        due at its own time, sent when due, and its latency\n"
"                        counts from then; every command is timed); default:\n"
"                        as fast as the window allows, one command in 16 timed\n"
"  --mailbox-capacity=C  commands waiting per actor, 1..1073741824 (default: 1024)\n"
"  --workload=NAME       bank, inventory or counter (default: bank)\n"
"  --store=S             the event store: memory; file:DIR for the durable file\n"
"                        store in a new directory under DIR per strategy; or\n"
"                        postgres:CONNINFO for PostgreSQL (a libpq connection\n"
"                        string or URI; empty uses the PG* environment), in a new\n"
"                        schema per strategy; either is removed after the run\n"
"                        (default: memory)\n"
"  --processes=P         processes sharing the store, 1..16, each running\n"
"                        --writers runtimes on its share of every aggregate's\n"
"                        commands; results are merged and the store is checked\n"
"                        once all are done. P > 1 needs postgres (default: 1)\n"
"  --json=FILE           also write the results as JSON; - for standard output\n"
"  --dump-plan=FILE      write the command sequence to FILE (the format is in\n"
"                        bench/README.md) and exit without running\n"
"  --snapshot-every=N    snapshot each aggregate every N events, 0..1000000000\n"
"                        (0: never, the default); N > 0 also measures\n"
"                        activation with and without snapshots of aggregates of\n"
"                        10, 1000 and 100000 events, and reports it\n"
"  --projection          keep a read model of every aggregate (a projection fed\n"
"                        by a subscription) while the commands run, report its\n"
"                        lag, and check at the end that it equals a fresh replay\n"
"  --command-ids         give every command an id (its number), so that a\n"
"                        resent command takes effect once\n"
"  --duplicates=F        send a share F (0..1) of the commands again with the\n"
"                        same id (implies --command-ids): a third right behind\n"
"                        the first send (in flight), a third once it completed,\n"
"                        a third as the next writer's command (another runtime;\n"
"                        with --processes, often another process). The check\n"
"                        counts every command whose events appear twice\n"
"  --quiet               no table and no progress line\n"
"  --check               exit 1 if the optimistic strategy, or any strategy with\n"
"                        one writer, breaks a rule or diverges\n"
"  --help                this text\n"
"\n"
"The environment (ESR_WORKERS, ESR_MAX_RETRIES, ESR_MAILBOX_CAPACITY, ESR_BATCH,\n"
"ESR_PASSIVATE_MS, ESR_SNAPSHOT_EVERY, ESR_STRATEGY) sets runtime defaults,\n"
"which flags override.\n"
"Exit status: 0 when the run completed (violations are findings, not failures),\n"
"1 with --check and a violation, 2 for a bad flag, 3 when a run could not\n"
"complete.\n", out);
}

static enum stress_parse bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return STRESS_BAD;
}

/* A whole decimal number in [min, max]: no sign, no spaces, no junk. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (s[0] == '\0' || s[0] == ' ')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static enum stress_parse parse_strategy(const char *text, unsigned *out)
{
	if (strcmp(text, "both") == 0)
		*out = STRESS_OPTIMISTIC | STRESS_UNCHECKED;
	else if (strcmp(text, "optimistic") == 0)
		*out = STRESS_OPTIMISTIC;
	else if (strcmp(text, "unchecked") == 0)
		*out = STRESS_UNCHECKED;
	else
		return STRESS_BAD;
	return STRESS_RUN;
}

static void defaults(struct stress_options *o)
{
	memset(o, 0, sizeof *o);
	o->strategies = STRESS_OPTIMISTIC | STRESS_UNCHECKED;
	o->writers = 1;
	o->aggregates = 10000;
	o->commands = 1000000;
	o->seed = 42;
	o->batch = 16;
	o->window = 1024;
	o->workload = &stress_bank;
	o->store = "memory";
	o->processes = 1;
}

/* The defaults, then the environment. */
static enum stress_parse from_env(struct stress_options *o, char *err, size_t len)
{
	const char *field = NULL, *s = getenv("ESR_STRATEGY");

	defaults(o);
	if (esr_runtime_config_from_env(&o->runtime, &field) != ESR_OK)
		return bad(err, len, "%s: malformed value '%s'", field,
		           getenv(field) ? getenv(field) : "");
	if (s != NULL && s[0] != '\0' &&
	    (strcmp(s, "both") == 0 || parse_strategy(s, &o->strategies) != STRESS_RUN))
		return bad(err, len, "ESR_STRATEGY: expected optimistic or unchecked, got '%s'", s);
	return STRESS_RUN;
}

#define RANGE(flag, lo, hi, dst)                                                      \
	do {                                                                              \
		uint64_t v_;                                                                  \
		if (parse_u64(optarg, (lo), (hi), &v_) != 0)                                  \
			return bad(err, len, "--%s: expected an integer in %llu..%llu, got '%s'", \
			           flag, (unsigned long long)(lo), (unsigned long long)(hi),      \
			           optarg);                                                       \
		dst = v_;                                                                     \
	} while (0)

static enum stress_parse one(int c, struct stress_options *o, int *counted, char *err,
                             size_t len)
{
	switch (c) {
	case OPT_STRATEGY:
		if (parse_strategy(optarg, &o->strategies) != STRESS_RUN)
			return bad(err, len,
			           "--strategy: expected optimistic, unchecked or both, got '%s'",
			           optarg);
		break;
	case OPT_WORKERS: RANGE("workers", 1, 1024, o->runtime.workers); break;
	case OPT_WRITERS: RANGE("writers", 1, STRESS_WRITERS_MAX, o->writers); break;
	case OPT_AGGREGATES: RANGE("aggregates", 1, STRESS_AGGREGATES_MAX, o->aggregates); break;
	case OPT_COMMANDS:
		RANGE("commands", 1, STRESS_COMMANDS_MAX, o->commands);
		*counted = 1;
		break;
	case OPT_SEED: RANGE("seed", 0, UINT64_MAX, o->seed); break;
	case OPT_MAX_RETRIES: RANGE("max-retries", 0, 1000, o->runtime.max_retries); break;
	case OPT_BATCH: RANGE("batch", 1, STRESS_BATCH_MAX, o->batch); break;
	case OPT_WINDOW: RANGE("window", 1, 1u << 20, o->window); break;
	case OPT_RATE: RANGE("rate", 1, 1000000000, o->rate); break;
	case OPT_MAILBOX: RANGE("mailbox-capacity", 1, 1u << 30, o->runtime.mailbox_capacity); break;
	case OPT_SKEW:
		if (parse_double(optarg, 0, 5, &o->skew) != 0)
			return bad(err, len, "--skew: expected a number in [0, 5], got '%s'", optarg);
		break;
	case OPT_DURATION:
		if (parse_double(optarg, 0, 86400, &o->duration) != 0 || o->duration <= 0)
			return bad(err, len, "--duration: expected seconds in (0, 86400], got '%s'",
			           optarg);
		break;
	case OPT_WORKLOAD:
		if ((o->workload = stress_workload_find(optarg)) == NULL)
			return bad(err, len, "--workload: expected bank, inventory or counter, got '%s'",
			           optarg);
		break;
	case OPT_STORE:
		if (strcmp(optarg, "memory") == 0) {
			o->store = "memory";
			o->store_path = NULL;
		} else if (strncmp(optarg, "file:", 5) == 0 && optarg[5] != '\0' &&
		           strlen(optarg + 5) < 2048) {
			o->store = "file";
			o->store_path = optarg + 5;
		} else if (strncmp(optarg, "postgres:", 9) == 0 && strlen(optarg + 9) < 2048) {
			o->store = "postgres";
			o->store_path = optarg + 9;
		} else {
			return bad(err, len, "--store: expected memory, file:DIRECTORY or"
			           " postgres:CONNINFO, got '%s'", optarg);
		}
		break;
	case OPT_PROCESSES: RANGE("processes", 1, STRESS_PROCESSES_MAX, o->processes); break;
	case OPT_JSON:
		if (optarg[0] == '\0')
			return bad(err, len, "--json: expected a file name or -, got ''");
		o->json = optarg;
		break;
	case OPT_DUMP_PLAN:
		if (optarg[0] == '\0')
			return bad(err, len, "--dump-plan: expected a file name, got ''");
		o->dump_plan = optarg;
		break;
	case OPT_QUIET: o->quiet = 1; break;
	case OPT_CHECK: o->check = 1; break;
	case OPT_SNAPSHOT_EVERY:
		RANGE("snapshot-every", 0, 1000000000, o->runtime.snapshot_every);
		o->activation = o->runtime.snapshot_every != 0;
		break;
	case OPT_PROJECTION: o->projection = 1; break;
	case OPT_COMMAND_IDS: o->command_ids = 1; break;
	case OPT_DUPLICATES:
		if (parse_double(optarg, 0, 1, &o->duplicates) != 0)
			return bad(err, len, "--duplicates: expected a share in [0, 1], got '%s'", optarg);
		o->command_ids |= o->duplicates > 0;
		break;
	case OPT_HELP: return STRESS_HELP;
	default: return bad(err, len, "unknown option (see --help)");
	}
	return STRESS_RUN;
}

enum stress_parse stress_options_parse(int argc, char **argv, struct stress_options *o,
                                       char *err, size_t len)
{
	enum stress_parse r;
	int c, counted = 0;

	if ((r = from_env(o, err, len)) != STRESS_RUN)
		return r;
	opterr = 0; /* our own one-line messages */
	optind = 0; /* glibc: start afresh, so parsing can be repeated (tests) */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == '?')
			return bad(err, len, "%s: unknown option, or its value is missing (see --help)",
			           argv[optind - 1]);
		if ((r = one(c, o, &counted, err, len)) != STRESS_RUN)
			return r;
	}
	if (optind < argc)
		return bad(err, len, "%s: unexpected argument (flags take --name=value)", argv[optind]);
	if (counted && o->duration > 0)
		return bad(err, len, "--duration: cannot be combined with --commands");
	if (o->duration > 0)
		o->commands = 0;
	if (o->processes > 1 && strcmp(o->store, "postgres") != 0)
		return bad(err, len, "--processes: several processes need a store they can share"
		           " (--store=postgres:CONNINFO), not %s", o->store);
	if (o->projection && o->processes > 1)
		return bad(err, len, "--projection: runs in one process; drop --processes");
	if (o->window < o->batch)
		return bad(err, len, "--window: must be at least --batch (%u), got %u", o->batch,
		           o->window);
	return STRESS_RUN;
}
