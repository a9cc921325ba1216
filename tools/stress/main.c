/*
 * tools/stress/main.c: esr-stress. The same command sequence runs first in
 * one thread straight on the aggregate logic (the baseline), then through the
 * runtime under each chosen strategy; every run is checked against the store
 * and the results are printed side by side (see --help).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "activation.h"
#include "baseline.h"
#include "options.h"
#include "plan.h"
#include "procs.h"
#include "report.h"
#include "run.h"
#include "sys.h"

enum { EXIT_FINDING = 1, EXIT_USAGE = 2, EXIT_INCOMPLETE = 3 };

/* One strategy's run: in this process, or as --processes processes. */
static esr_status run_strategy(const struct stress_plan *plan, esr_strategy strategy,
                               FILE *progress, struct stress_result *r)
{
	if (plan->opt->processes > 1)
		return stress_run_processes(plan, strategy, r);
	return stress_run(plan, strategy, progress, r);
}

/*
 * Each strategy runs in a child process of its own, so that neither inherits
 * the other's heap: peak memory and allocator state are the strategy's own.
 * The result (plain data) comes back through a pipe.
 */
static esr_status run_isolated(const struct stress_plan *plan, esr_strategy strategy,
                               FILE *progress, struct stress_result *r)
{
	esr_status st = ESR_EIO;
	int fds[2], status;
	pid_t pid;

	fflush(NULL);
	if (pipe(fds) != 0 || (pid = fork()) < 0)
		return run_strategy(plan, strategy, progress, r); /* in this process then */
	if (pid == 0) {
		close(fds[0]);
		st = run_strategy(plan, strategy, progress, r);
		_exit(write(fds[1], &st, sizeof st) == sizeof st &&
		      write(fds[1], r, sizeof *r) == sizeof *r ? 0 : 1);
	}
	close(fds[1]);
	if (stress_read_all(fds[0], &st, sizeof st) != 0 || stress_read_all(fds[0], r, sizeof *r) != 0)
		st = ESR_EIO;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (st == ESR_EIO && WIFSIGNALED(status))
		fprintf(stderr, "esr-stress: the %s run died of signal %d\n",
		        esr_strategy_name(strategy), WTERMSIG(status));
	return st;
}

static int run_all(const struct stress_options *o, const struct stress_plan *plan,
                   struct stress_baseline *b, struct stress_result *runs, unsigned *n)
{
	static const esr_strategy order[] = {ESR_OPTIMISTIC, ESR_UNCHECKED};
	FILE *progress = !o->quiet && isatty(STDERR_FILENO) ? stderr : NULL;
	esr_status st;
	unsigned i;

	if ((st = stress_baseline_run(plan, b)) != ESR_OK) {
		fprintf(stderr, "esr-stress: baseline: %s\n", esr_strerror(st));
		return -1;
	}
	for (*n = 0, i = 0; i < 2; i++) {
		if (!(o->strategies & (i == 0 ? STRESS_OPTIMISTIC : STRESS_UNCHECKED)))
			continue;
		if ((st = run_isolated(plan, order[i], progress, &runs[*n])) != ESR_OK) {
			fprintf(stderr, "esr-stress: %s run could not complete: %s\n",
			        esr_strategy_name(order[i]), esr_strerror(st));
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* --snapshot-every: activation with and without snapshots, after the runs. */
static int activation(const struct stress_options *o)
{
	struct stress_activation a;
	esr_status st = stress_activation_run(o, &a);

	if (st != ESR_OK) {
		fprintf(stderr, "esr-stress: activation measurement: %s\n", esr_strerror(st));
		return -1;
	}
	if (!o->quiet)
		stress_activation_print(&a, o->json && strcmp(o->json, "-") == 0 ? stderr : stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct stress_options o;
	struct stress_plan plan;
	struct stress_baseline b;
	struct stress_result runs[2];
	struct stress_report rep = {&o, &b, runs, 0};
	char err[256];
	int code = 0;
	unsigned i;

	switch (stress_options_parse(argc, argv, &o, err, sizeof err)) {
	case STRESS_HELP:
		stress_usage(stdout);
		return 0;
	case STRESS_BAD:
		fprintf(stderr, "esr-stress: %s\n", err);
		return EXIT_USAGE;
	case STRESS_RUN:
		break;
	}
	if (stress_plan_init(&plan, &o) != ESR_OK) {
		fprintf(stderr, "esr-stress: cannot hold the command sequence: %s\n",
		        esr_strerror(ESR_ENOMEM));
		return EXIT_INCOMPLETE;
	}
	if (o.dump_plan != NULL) {
		esr_status st = stress_plan_write(&plan, o.dump_plan);
		if (st != ESR_OK)
			fprintf(stderr, "esr-stress: --dump-plan %s: %s (%s)\n", o.dump_plan,
			        esr_strerror(st), strerror(errno));
		stress_plan_free(&plan);
		return st == ESR_OK ? 0 : EXIT_INCOMPLETE;
	}
	if (run_all(&o, &plan, &b, runs, &rep.nruns) != 0) {
		stress_plan_free(&plan);
		return EXIT_INCOMPLETE;
	}
	stress_plan_free(&plan);
	if (!o.quiet) /* standard output may be taken by the JSON */
		report_table(&rep, o.json && strcmp(o.json, "-") == 0 ? stderr : stdout);
	if (o.json && report_json(&rep, o.json) != 0)
		code = EXIT_INCOMPLETE;
	if (o.activation && activation(&o) != 0)
		code = EXIT_INCOMPLETE;
	for (i = 0; i < rep.nruns; i++) {
		if (runs[i].errors != 0)
			code = EXIT_INCOMPLETE;
		if (code == 0 && o.check && stress_check_failed(&o, &runs[i]))
			code = EXIT_FINDING;
	}
	return code;
}
