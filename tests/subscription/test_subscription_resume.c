/*
 * tests/subscription/test_subscription_resume.c: a projection killed with SIGKILL resumes from its
 * checkpoint. A child process subscribes with a checkpoint in the store
 * (saved every SAVE_EVERY events) and reports each position it handles
 * through a pipe; the parent kills it mid-way, then subscribes again with
 * the same checkpoint. Every position must be delivered, in order; the second
 * life must start right after the checkpoint the store holds, and the only
 * events delivered twice are those handled after that checkpoint was saved.
 *
 * Built twice: for the file store (test_subscription_resume_file) and, with RESUME_PG, for
 * PostgreSQL (test_subscription_resume_pg, against the test server).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <esr/esr.h>

#include "check.h"
#ifdef RESUME_PG
#include "pg_env.h"
#endif

#define EVENTS 600
#define KILL_AFTER 250
#define SAVE_EVERY 16

static char spec[2048];

static esr_store *open_store(void)
{
	char why[512] = "";
	esr_store *s = NULL;

	if (esr_store_open_spec(spec, why, sizeof why, &s) != ESR_OK) {
		fprintf(stderr, "test_subscription_resume: open %s: %s\n", spec, why);
		exit(1);
	}
	return s;
}

static void fill(void)
{
	esr_store *s = open_store();
	char id[16];
	int i;

	for (i = 0; i < EVENTS; i++) {
		int n = snprintf(id, sizeof id, "s%d", i % 7);
		esr_stream_id sid = {"Resume", id, (size_t)n};
		esr_event ev = {.type = (uint32_t)i};
		CHECK(esr_store_append(s, &sid, ESR_VERSION_ANY, &ev, 1, NULL) == ESR_OK, "append %d\n",
		      i);
	}
	esr_store_close(s);
}

/* The child's handler: report the position, then take a little time, so the
 * kill lands between checkpoints. */
static esr_status report(void *ctx, const esr_recorded_event *ev)
{
	int fd = *(int *)ctx;
	struct timespec pause = {0, 200000};

	if (write(fd, &ev->position, sizeof ev->position) != sizeof ev->position)
		return ESR_EIO;
	nanosleep(&pause, NULL);
	return ESR_OK;
}

static void child(int fd)
{
	esr_subscription_options o;
	esr_subscription *sub;
	esr_store *s = open_store();

	esr_subscription_options_default(&o);
	o.checkpoint_name = "resume";
	o.checkpoint_every = SAVE_EVERY;
	o.batch = 32;
	if (esr_subscribe(s, 1, report, &fd, &o, &sub) != ESR_OK)
		_exit(3);
	for (;;)
		pause(); /* until killed */
}

struct second {
	uint64_t first, count, last;
	int in_order;
};

static esr_status collect(void *ctx, const esr_recorded_event *ev)
{
	struct second *s = ctx;

	if (s->count == 0)
		s->first = ev->position;
	else if (ev->position != s->last + 1)
		s->in_order = 0;
	s->last = ev->position;
	s->count++;
	return ESR_OK;
}

int main(void)
{
	uint64_t pos, seen = 0, last = 0, saved = 0;
	struct second again = {0, 0, 0, 1};
	esr_subscription_options o;
	esr_subscription *sub;
	esr_store *s;
	int fds[2], status;
	pid_t pid;

#ifdef RESUME_PG
	struct pg_env env;
	char why[512];
	if (pg_env_load(&env, why, sizeof why) != 0)
		return pg_env_unavailable(why);
	/* The selector opens the default schema, "esr": start it afresh (the
	 * test server is this suite's alone). */
	snprintf(spec, sizeof spec, "postgres:%s", env.conninfo);
	esr_pg_drop(env.conninfo, "esr", NULL, 0);
#else
	char dir[] = "/tmp/esr-resume.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(spec, sizeof spec, "file:%s/store", dir);
#endif
	fill();
	if (pipe(fds) != 0 || (pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		close(fds[0]);
		child(fds[1]);
	}
	close(fds[1]);
	while (seen < KILL_AFTER && read(fds[0], &pos, sizeof pos) == sizeof pos) {
		CHECK(pos == last + 1, "first life: position %llu after %llu\n",
		      (unsigned long long)pos, (unsigned long long)last);
		last = pos;
		seen++;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	while (read(fds[0], &pos, sizeof pos) == sizeof pos) /* what it sent before dying */
		last = pos;
	close(fds[0]);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child was not killed\n");

	s = open_store();
	CHECK(esr_store_checkpoint_load(s, "resume", &saved) == ESR_OK, "load the checkpoint\n");
	CHECK(saved > 0 && saved <= last && last - saved < SAVE_EVERY + 32,
	      "checkpoint %llu, last handled %llu\n", (unsigned long long)saved,
	      (unsigned long long)last);
	esr_subscription_options_default(&o);
	o.checkpoint_name = "resume";
	CHECK(esr_subscribe(s, 1, collect, &again, &o, &sub) == ESR_OK, "subscribe again\n");
	CHECK(esr_subscription_wait(sub, EVENTS, 60000) == ESR_OK, "the second life finishes\n");
	CHECK(esr_subscription_stop(sub) == ESR_OK, "stop\n");
	CHECK(again.first == saved + 1, "resumed at %llu, checkpoint %llu\n",
	      (unsigned long long)again.first, (unsigned long long)saved);
	CHECK(again.in_order && again.last == EVENTS, "second life: in order to %llu\n",
	      (unsigned long long)again.last);
	printf("killed after handling %llu events; checkpoint %llu; %llu delivered again; "
	       "%llu in the second life\n", (unsigned long long)last, (unsigned long long)saved,
	       (unsigned long long)(last - saved), (unsigned long long)again.count);
	esr_store_close(s);
#ifndef RESUME_PG
	{
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_subscription_resume: could not remove %s\n", dir);
	}
#endif
	return check_failures ? 1 : 0;
}
