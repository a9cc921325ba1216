/*
 * tests/cli/test_stress.c: esr-stress's parts: the histogram, the Zipf draw, the
 * command line, the checker (each finding provoked on a hand-made log), and
 * whole runs showing where the strategies part.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, mkstemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "baseline.h"
#include "checker.h"
#include "histogram.h"
#include "options.h"
#include "plan.h"
#include "report.h"
#include "run.h"
#include "zipf.h"

/* --- histogram ------------------------------------------------------------------ */

static void histogram_is_exact_below_32_and_within_1_32_above(void **state)
{
	struct histogram h;
	uint64_t v, q;

	(void)state;
	hist_init(&h);
	assert_int_equal(hist_quantile(&h, 0.5), 0);
	for (v = 0; v < 32; v++)
		hist_record(&h, v);
	assert_int_equal(hist_quantile(&h, 0.5), 15);
	assert_int_equal(hist_quantile(&h, 1.0), 31);
	hist_init(&h);
	for (v = 1; v <= 100000; v++)
		hist_record(&h, v);
	q = hist_quantile(&h, 0.99); /* true value 99000 */
	assert_true(q >= 99000 && q <= 99000 + 99000 / 32);
	q = hist_quantile(&h, 0.5);
	assert_true(q >= 50000 && q <= 50000 + 50000 / 32);
	assert_int_equal(hist_quantile(&h, 1.0), 100000); /* never above the max */
	assert_int_equal(h.max, 100000);
}

static void histogram_merges_and_clamps(void **state)
{
	struct histogram a, b;

	(void)state;
	hist_init(&a);
	hist_init(&b);
	hist_record(&a, 10);
	hist_record(&b, UINT64_MAX); /* clamped into the last bucket, max kept */
	hist_merge(&a, &b);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.max, UINT64_MAX);
	assert_int_equal(hist_quantile(&a, 0.5), 10);
	assert_true(hist_quantile(&a, 1.0) >= (1ull << 47));
}

/* --- zipf ------------------------------------------------------------------------- */

static void zipf_uniform_and_skewed(void **state)
{
	enum { N = 100, DRAWS = 400000 };
	static unsigned hits[N];
	struct zipf z;
	uint64_t rng = 12345;
	double h = 0;
	unsigned i;

	(void)state;
	assert_int_equal(zipf_init(&z, N, 0), 0);
	for (i = 0; i < DRAWS; i++)
		hits[zipf_draw(&z, &rng)]++;
	for (i = 0; i < N; i++) /* 4000 expected each */
		assert_true(hits[i] > 3400 && hits[i] < 4600);
	zipf_free(&z);

	memset(hits, 0, sizeof hits);
	assert_int_equal(zipf_init(&z, N, 1.0), 0);
	for (i = 0; i < DRAWS; i++)
		hits[zipf_draw(&z, &rng)]++;
	for (i = 1; i <= N; i++)
		h += 1.0 / i;
	/* rank 0 has weight 1/H(100) = 0.193; rank 9 one tenth of that */
	assert_true(abs((int)hits[0] - (int)(DRAWS / h)) < DRAWS / 100);
	assert_true(abs((int)hits[9] - (int)(DRAWS / h / 10)) < DRAWS / 200);
	assert_true(hits[N - 1] > 0);
	zipf_free(&z);
}

/* --- options ----------------------------------------------------------------------- */

static enum stress_parse parse(struct stress_options *o, char *err, ...)
{
	char *argv[16] = {"esr-stress"};
	int argc = 1;
	va_list ap;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	return stress_options_parse(argc, argv, o, err, 256);
}

static void options_defaults_and_values(void **state)
{
	struct stress_options o;
	char err[256];

	(void)state;
	unsetenv("ESR_STRATEGY");
	assert_int_equal(parse(&o, err, NULL), STRESS_RUN);
	assert_int_equal(o.strategies, STRESS_OPTIMISTIC | STRESS_UNCHECKED);
	assert_int_equal(o.writers, 1);
	assert_int_equal(o.aggregates, 10000);
	assert_int_equal(o.commands, 1000000);
	assert_string_equal(o.workload->name, "bank");
	assert_int_equal(parse(&o, err, "--strategy=unchecked", "--writers", "3", "--skew=0.99",
	                       "--duration=2.5", "--workload=counter", "--batch=8",
	                       "--window=8", "--max-retries=0", NULL), STRESS_RUN);
	assert_int_equal(o.strategies, STRESS_UNCHECKED);
	assert_int_equal(o.writers, 3);
	assert_true(o.skew == 0.99);
	assert_int_equal(o.commands, 0); /* timed */
	assert_true(o.duration == 2.5);
	assert_int_equal(o.runtime.max_retries, 0);
	assert_string_equal(o.workload->name, "counter");
	setenv("ESR_STRATEGY", "optimistic", 1);
	assert_int_equal(parse(&o, err, NULL), STRESS_RUN);
	assert_int_equal(o.strategies, STRESS_OPTIMISTIC);
	assert_int_equal(parse(&o, err, "--strategy=both", NULL), STRESS_RUN);
	assert_int_equal(o.strategies, STRESS_OPTIMISTIC | STRESS_UNCHECKED);
	setenv("ESR_STRATEGY", "sometimes", 1);
	assert_int_equal(parse(&o, err, NULL), STRESS_BAD);
	assert_non_null(strstr(err, "ESR_STRATEGY"));
	unsetenv("ESR_STRATEGY");
	assert_int_equal(parse(&o, err, "--help", NULL), STRESS_HELP);
}

static void options_refuse_bad_values_naming_the_flag(void **state)
{
	static const char *const cases[][2] = {
		{"--workers=-3", "--workers"}, {"--workers=0", "--workers"},
		{"--workers=2x", "--workers"}, {"--writers=65", "--writers"},
		{"--aggregates=0", "--aggregates"}, {"--commands=-1", "--commands"},
		{"--commands=+5", "--commands"}, {"--skew=5.01", "--skew"},
		{"--skew=-0.1", "--skew"}, {"--skew=nan", "--skew"},
		{"--duration=0", "--duration"}, {"--strategy=fast", "--strategy"},
		{"--workload=orders", "--workload"}, {"--store=file:", "--store"},
		{"--store=mysql:x", "--store"}, {"--processes=2", "--processes"},
		{"--processes=17", "--processes"}, {"--processes=0", "--processes"},
		{"--batch=0", "--batch"}, {"--mailbox-capacity=0", "--mailbox-capacity"},
		{"--max-retries=1001", "--max-retries"}, {"--frobnicate", "--frobnicate"},
		{"--seed=", "--seed"}, {"--json=", "--json"},
	};
	struct stress_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *argv[] = {"esr-stress", (char *)cases[i][0], NULL};
		assert_int_equal(stress_options_parse(2, argv, &o, err, sizeof err), STRESS_BAD);
		if (strstr(err, cases[i][1]) == NULL || strchr(err, '\n') != NULL)
			fail_msg("%s: message '%s' does not name %s on one line", cases[i][0], err,
			         cases[i][1]);
	}
	assert_int_equal(parse(&o, err, "--commands=10", "--duration=1", NULL), STRESS_BAD);
	assert_non_null(strstr(err, "--duration"));
	assert_int_equal(parse(&o, err, "--batch=64", "--window=32", NULL), STRESS_BAD);
	assert_non_null(strstr(err, "--window"));
	assert_int_equal(parse(&o, err, "--workers", NULL), STRESS_BAD); /* no value */
	assert_non_null(strstr(err, "--workers"));
	assert_int_equal(parse(&o, err, "extra", NULL), STRESS_BAD);
	assert_non_null(strstr(err, "extra"));
}

/* --- the checker on hand-made logs ------------------------------------------------ */

/* The bank workload's codes: commands deposit 0 / withdraw 1; events
 * opened 1, deposited 2, withdrawn 3. */
enum { DEPOSIT = 0, WITHDRAW = 1, OPENED = 1, DEPOSITED = 2, WITHDRAWN = 3 };

struct fixture {
	struct stress_options o;
	struct stress_plan p;
	esr_store *store;
	uint8_t outcome[4];
	uint8_t *by_writer[1];
	uint64_t count[1];
	struct stress_outcomes out;
	uint64_t pv[2];
	int64_t ps[2]; /* a bank state is its balance */
	struct stress_probes pr;
	struct stress_check c;
};

static void append(struct fixture *f, uint32_t k, uint32_t type, int64_t amount, uint64_t seq)
{
	struct stress_payload pl = {amount, seq};
	esr_event ev = {.type = type, .payload = &pl, .payload_len = sizeof pl};
	esr_stream_id sid = {"BankAccount", stress_plan_id(&f->p, k), f->p.id_lens[k]};
	esr_append_result ar;

	assert_int_equal(esr_store_append(f->store, &sid, ESR_VERSION_ANY, &ev, 1, &ar), ESR_OK);
}

/*
 * Two accounts at 1000. Command 0 deposits 10 to account 0, command 1
 * withdraws 500 from it, command 2 (withdraw 2000 from account 1) was
 * rejected, command 3 deposits 5 to account 1. Each test writes the log.
 */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	static const struct stress_cmd cmds[4] = {
		{0, DEPOSIT, 10}, {0, WITHDRAW, 500}, {1, WITHDRAW, 2000}, {1, DEPOSIT, 5}};

	unsetenv("ESR_STRATEGY");
	assert_int_equal(parse(&f->o, (char[256]){0}, "--aggregates=2", "--commands=4", NULL),
	                 STRESS_RUN);
	assert_int_equal(stress_plan_init(&f->p, &f->o), ESR_OK);
	memcpy(f->p.cmds, cmds, sizeof cmds);
	assert_int_equal(esr_memory_store_open(&f->store), ESR_OK);
	append(f, 0, OPENED, 1000, STRESS_SEQ_SETUP);
	append(f, 1, OPENED, 1000, STRESS_SEQ_SETUP);
	memcpy(f->outcome, (uint8_t[]){OUT_ACCEPTED, OUT_ACCEPTED, OUT_REJECTED, OUT_ACCEPTED}, 4);
	f->by_writer[0] = f->outcome;
	f->count[0] = 4;
	f->out = (struct stress_outcomes){1, f->by_writer, f->count, 4};
	f->pv[0] = STRESS_PROBE_NONE;
	f->pv[1] = STRESS_PROBE_NONE;
	f->pr = (struct stress_probes){1, 2, sizeof(int64_t), f->pv, (unsigned char *)f->ps};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	esr_store_close(f->store);
	stress_plan_free(&f->p);
	free(f);
	return 0;
}

static void check(struct fixture *f)
{
	assert_int_equal(stress_check_run(&f->p, f->store, &f->out, &f->pr, &f->c), ESR_OK);
}

static void write_good_log(struct fixture *f)
{
	append(f, 0, DEPOSITED, 10, 0);
	append(f, 0, WITHDRAWN, 500, 1);
	append(f, 1, DEPOSITED, 5, 3);
}

static void checker_passes_a_good_log(void **state)
{
	struct fixture *f = *state;

	write_good_log(f);
	f->pv[0] = 3, f->ps[0] = 510;  /* what the actors held */
	f->pv[1] = 2, f->ps[1] = 1005;
	check(f);
	assert_int_equal(f->c.events, 5);
	assert_int_equal(stress_violations(&f->c), 0);
	assert_int_equal(f->c.divergent, 0);
	assert_int_equal(f->c.expected[0], 1515);
	assert_int_equal(f->c.replayed[0], 1515);
	/* A stale probe is not a divergent one: version 2 of account 0 is 1010. */
	f->pv[0] = 2, f->ps[0] = 1010;
	f->pv[1] = 0, f->ps[1] = 0; /* an actor that never loaded: the empty state */
	check(f);
	assert_int_equal(f->c.divergent, 0);
}

static void checker_finds_a_broken_rule(void **state)
{
	struct fixture *f = *state;

	f->p.cmds[1].amount = 1500; /* accepted on stale state: 1010 - 1500 */
	append(f, 0, DEPOSITED, 10, 0);
	append(f, 0, WITHDRAWN, 1500, 1);
	append(f, 1, DEPOSITED, 5, 3);
	check(f);
	assert_int_equal(f->c.rule_broken, 1);
	assert_int_equal(stress_violations(&f->c), 1);
}

static void checker_finds_lost_and_duplicated_events(void **state)
{
	struct fixture *f = *state;

	append(f, 0, DEPOSITED, 10, 0);
	append(f, 0, DEPOSITED, 10, 0); /* command 0 twice */
	append(f, 0, WITHDRAWN, 500, 1);
	/* command 3 accepted but not in the log */
	check(f);
	assert_int_equal(f->c.missing, 2);
	assert_int_equal(f->c.totals_off, 1); /* 1515 expected, 1520 - 5 replayed */
	assert_int_equal(f->c.replayed[0], 1520);
}

static void checker_finds_unexplained_events(void **state)
{
	struct fixture *f = *state;

	write_good_log(f);
	append(f, 1, WITHDRAWN, 2000, 2);  /* a rejected command's event */
	append(f, 0, DEPOSITED, 5, 3);     /* command 3, on the wrong account */
	append(f, 0, DEPOSITED, 10, 99);   /* a command that never was */
	append(f, 0, WITHDRAWN, 10, 0);    /* command 0's seq, wrong event type */
	append(f, 1, OPENED, 1000, STRESS_SEQ_SETUP); /* a second opening */
	check(f);
	assert_int_equal(f->c.unexplained, 5);
	assert_int_equal(f->c.missing, 0);
	assert_int_equal(f->c.rule_broken, 0); /* unexplained events are not folded */
}

static void checker_finds_divergent_actors(void **state)
{
	struct fixture *f = *state;

	write_good_log(f);
	f->pv[0] = 3, f->ps[0] = 511;  /* wrong state for version 3 */
	f->pv[1] = 9, f->ps[1] = 1005; /* a version the stream does not have */
	check(f);
	assert_int_equal(f->c.divergent, 2);
	assert_int_equal(stress_violations(&f->c), 0);
}

/* --- whole runs ----------------------------------------------------------------------- */

static unsigned long scaled(unsigned long n)
{
	const char *s = getenv("ESR_STRESS_COMMANDS");

	return s != NULL && atol(s) > 0 ? (unsigned long)atol(s) : n;
}

static void run(const char *workload, const char *writers, const char *aggregates,
                struct stress_baseline *b, struct stress_result r[2])
{
	struct stress_options o;
	struct stress_plan p;
	char commands[32], err[256];

	snprintf(commands, sizeof commands, "--commands=%lu", scaled(20000));
	assert_int_equal(parse(&o, err, "--workers=2", commands, "--workload", workload,
	                       "--writers", writers, "--aggregates", aggregates, NULL),
	                 STRESS_RUN);
	assert_int_equal(stress_plan_init(&p, &o), ESR_OK);
	assert_int_equal(stress_baseline_run(&p, b), ESR_OK);
	assert_int_equal(stress_run(&p, ESR_OPTIMISTIC, NULL, &r[0]), ESR_OK);
	assert_int_equal(stress_run(&p, ESR_UNCHECKED, NULL, &r[1]), ESR_OK);
	stress_plan_free(&p);
}

/* One writer: both strategies keep every rule and decide exactly as the
 * baseline did (the same commands in the same order per aggregate). */
static void one_writer_keeps_every_rule(void **state)
{
	static const char *const workloads[] = {"bank", "inventory", "counter"};
	struct stress_baseline b;
	struct stress_result r[2];
	size_t w;
	int i;

	(void)state;
	for (w = 0; w < 3; w++) {
		run(workloads[w], "1", "100", &b, r);
		for (i = 0; i < 2; i++) {
			assert_int_equal(r[i].commands, b.commands);
			assert_int_equal(r[i].accepted, b.accepted);
			assert_int_equal(r[i].errors, 0);
			assert_int_equal(r[i].conflicts, 0);
			assert_int_equal(stress_violations(&r[i].check), 0);
			assert_int_equal(r[i].check.divergent, 0);
			/* One writer times its commands 0, 16, 32, ... */
			assert_int_equal(r[i].latency.count,
			                 (r[i].commands + HIST_TIME_EVERY - 1) / HIST_TIME_EVERY);
		}
		assert_true(b.accepted > 0);
	}
}

/* Three writers on 64 accounts: optimistic pays in conflicts and keeps the
 * rules; unchecked loses updates. */
static void three_writers_part_the_strategies(void **state)
{
	struct stress_baseline b;
	struct stress_result r[2];

	(void)state;
	run("bank", "3", "64", &b, r);
	assert_int_equal(stress_violations(&r[0].check), 0);
	assert_int_equal(r[0].check.divergent, 0);
	assert_true(r[0].conflicts > 0);
	assert_true(r[0].retries > 0);
	assert_int_equal(r[0].accepted + r[0].rejected + r[0].exhausted, r[0].commands);
	assert_int_equal(r[1].conflicts, 0);
	assert_true(r[1].check.rule_broken + r[1].check.divergent > 0);
	assert_int_equal(r[1].check.missing + r[1].check.unexplained + r[1].check.gaps, 0);
	/* Writer w sends commands w, w + 3, ... and times its own 0th, 16th, ... */
	for (int i = 0; i < 2; i++) {
		uint64_t timed = 0;
		for (uint64_t w = 0; w < 3; w++) {
			uint64_t sent = (r[i].commands - w + 2) / 3;
			timed += (sent + HIST_TIME_EVERY - 1) / HIST_TIME_EVERY;
		}
		assert_int_equal(r[i].latency.count, timed);
	}
}

/* The JSON document carries every key the issue names. */
static void json_has_the_documented_keys(void **state)
{
	static const char *const keys[] = {
		"strategy", "workers", "writers", "aggregates", "skew", "commands", "accepted",
		"rejected", "conflicts", "retries", "exhausted", "invariant_violations",
		"divergent_aggregates", "throughput_cps", "vs_raw", "peak_rss_bytes"};
	struct stress_options o;
	struct stress_baseline b = {1000, 900, 900, 0.5};
	struct stress_result r[2];
	struct stress_report rep = {&o, &b, r, 2};
	char path[] = "/tmp/esr-stress-json-XXXXXX", err[256];
	json_t *doc, *run0;
	json_error_t jerr;
	size_t i;
	int fd;

	(void)state;
	assert_int_equal(parse(&o, err, NULL), STRESS_RUN);
	memset(r, 0, sizeof r);
	r[0].strategy = ESR_OPTIMISTIC, r[0].commands = 1000, r[0].seconds = 1.0;
	r[1].strategy = ESR_UNCHECKED, r[1].commands = 500, r[1].seconds = 1.0;
	hist_init(&r[0].latency);
	hist_init(&r[1].latency);
	hist_record(&r[0].latency, 1234);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(report_json(&rep, path), 0);
	assert_non_null(doc = json_load_file(path, 0, &jerr));
	unlink(path);
	close(fd);
	assert_true(json_real_value(json_object_get(json_object_get(doc, "baseline"),
	                                            "raw_cps")) == 2000.0);
	assert_int_equal(json_array_size(json_object_get(doc, "runs")), 2);
	run0 = json_array_get(json_object_get(doc, "runs"), 0);
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (json_object_get(run0, keys[i]) == NULL)
			fail_msg("runs[0] has no '%s'", keys[i]);
	assert_string_equal(json_string_value(json_object_get(run0, "strategy")), "optimistic");
	assert_true(json_real_value(json_object_get(run0, "vs_raw")) == 0.5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(run0, "latency_ns"),
	                                                    "max")), 1234);
	json_decref(doc);
}

/* --check binds optimistic always, unchecked only with one writer in one
 * process. */
static void check_flag_binds_what_must_hold(void **state)
{
	struct stress_options o = {.writers = 3, .processes = 1};
	struct stress_result r = {.strategy = ESR_UNCHECKED};

	(void)state;
	assert_false(stress_check_failed(&o, &r));
	r.check.rule_broken = 5;
	assert_false(stress_check_failed(&o, &r)); /* a finding, with three writers */
	r.strategy = ESR_OPTIMISTIC;
	assert_true(stress_check_failed(&o, &r));
	r.check.rule_broken = 0;
	r.check.divergent = 1;
	assert_true(stress_check_failed(&o, &r));
	r.strategy = ESR_UNCHECKED;
	o.writers = 1;
	assert_true(stress_check_failed(&o, &r));
	r.check.divergent = 0;
	r.check.missing = 1;
	assert_true(stress_check_failed(&o, &r));
	o.processes = 2; /* one writer in each of two processes: two writers */
	assert_false(stress_check_failed(&o, &r));
	r.strategy = ESR_OPTIMISTIC;
	assert_true(stress_check_failed(&o, &r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(histogram_is_exact_below_32_and_within_1_32_above),
		cmocka_unit_test(histogram_merges_and_clamps),
		cmocka_unit_test(zipf_uniform_and_skewed),
		cmocka_unit_test(options_defaults_and_values),
		cmocka_unit_test(options_refuse_bad_values_naming_the_flag),
		cmocka_unit_test_setup_teardown(checker_passes_a_good_log, setup, teardown),
		cmocka_unit_test_setup_teardown(checker_finds_a_broken_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(checker_finds_lost_and_duplicated_events, setup, teardown),
		cmocka_unit_test_setup_teardown(checker_finds_unexplained_events, setup, teardown),
		cmocka_unit_test_setup_teardown(checker_finds_divergent_actors, setup, teardown),
		cmocka_unit_test(one_writer_keeps_every_rule),
		cmocka_unit_test(three_writers_part_the_strategies),
		cmocka_unit_test(json_has_the_documented_keys),
		cmocka_unit_test(check_flag_binds_what_must_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
