/*
 * tests/store/test_file_faults.c: the file store under failing I/O. The store's
 * I/O goes through a table (store/file/file_io.h) whose write, fdatasync and
 * open this test replaces, making the Nth call fail, or write short and then
 * fail (and its ftruncate, until the reopen).
 * For every N, with one appender and with several appending threads at once:
 * after a reopen with working I/O every append acknowledged ESR_OK is there,
 * every append that completed ESR_EIO is not, and one that completed
 * ESR_EUNKNOWN may be either; the append that met the fault and every later
 * one fail; the store's version never counts an append it did not
 * acknowledge; and nothing crashes or leaks (ASan build). The same holds for
 * commands when two runtimes share the store and its aggregates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/file/file_io.h"

#include <esr/esr.h>

enum fault { FAIL_WRITE, SHORT_WRITE, FAIL_SYNC, FAIL_OPEN };

static struct esr__file_io real;
static enum fault kind;
static long countdown; /* calls of that kind until the fault; < 0: none */
static int truncate_fails; /* the store cannot take a failed batch back out */
static int disarmed;       /* I/O works again, truncates too: the reopen after */
static int unknown;        /* appends that completed ESR_EUNKNOWN */

/* The writer thread and readers (which open segments) call the hooks. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

/* Is this call, of kind k (or either write kind), the one to fail? */
static int due(enum fault k)
{
	int yes;

	pthread_mutex_lock(&fault_lock);
	yes = (kind == k || (k == FAIL_WRITE && kind == SHORT_WRITE)) && countdown >= 0 &&
	      countdown-- == 0;
	if (yes && kind == SHORT_WRITE) {
		countdown = 0; /* the rest fails: a disk that filled up */
		kind = FAIL_WRITE;
		yes = 2;
	}
	pthread_mutex_unlock(&fault_lock);
	return yes;
}

static void arm(enum fault k, long n)
{
	pthread_mutex_lock(&fault_lock);
	kind = k;
	countdown = n;
	disarmed = 0;
	pthread_mutex_unlock(&fault_lock);
}

/* Disarm; whether the fault fired. */
static int disarm(void)
{
	int fired;

	pthread_mutex_lock(&fault_lock);
	fired = countdown < 0;
	countdown = -1;
	disarmed = 1;
	pthread_mutex_unlock(&fault_lock);
	return fired;
}

static ssize_t faulty_write(int fd, const void *buf, size_t n)
{
	int fault = due(FAIL_WRITE);

	if (fault == 2 && n > 1)
		return real.write(fd, buf, n / 2);
	if (fault) {
		errno = ENOSPC;
		return -1;
	}
	return real.write(fd, buf, n);
}

static int faulty_sync(int fd)
{
	if (due(FAIL_SYNC)) {
		errno = EIO;
		return -1;
	}
	return real.fdatasync(fd);
}

static int faulty_open(const char *path, int flags, mode_t mode)
{
	if (due(FAIL_OPEN)) {
		errno = EACCES;
		return -1;
	}
	return real.open(path, flags, mode);
}

static int faulty_ftruncate(int fd, off_t length)
{
	int fails;

	pthread_mutex_lock(&fault_lock);
	fails = truncate_fails && !disarmed;
	pthread_mutex_unlock(&fault_lock);
	if (fails) {
		errno = EIO;
		return -1;
	}
	return real.ftruncate(fd, length);
}

static char root[] = "/tmp/esr-faults-XXXXXX";
static int serial;

static esr_file_store_options small(void)
{
	esr_file_store_options o;

	esr_file_store_options_default(&o);
	o.segment_bytes = 2u << 20;
	return o;
}

/* An append that did not succeed: ESR_EIO (not stored) or ESR_EUNKNOWN. */
static void assert_failure(esr_status st)
{
	if (st != ESR_EIO && st != ESR_EUNKNOWN)
		fail_msg("an append failed with %s", esr_status_name(st));
	unknown += st == ESR_EUNKNOWN;
}

/*
 * One scenario: arm the fault at call n (counted from the first append), make
 * 12 appends of a 700 KB event (so segments roll over too), check, reopen.
 * Returns whether the fault fired.
 */
static int scenario(enum fault k, long n)
{
	static uint8_t big[700000];
	esr_file_store_options o = small();
	esr_stream_id sid = {"Doc", "d", 1};
	esr_event ev = {.type = 1, .payload = big, .payload_len = sizeof big};
	uint64_t acked = 0, version = 99;
	esr_status first_failure = ESR_OK;
	char dir[256];
	esr_store *s;
	int i, fired;

	snprintf(dir, sizeof dir, "%s/%d", root, ++serial);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	arm(k, n);
	for (i = 0; i < 12; i++) {
		esr_append_result r;
		esr_status st;
		big[0] = (uint8_t)i;
		st = esr_store_append(s, &sid, acked, &ev, 1, &r);
		if (st == ESR_OK) {
			assert_int_equal(first_failure, ESR_OK); /* nothing succeeds after a failure */
			acked = r.version;
		} else {
			assert_failure(st);
			if (first_failure == ESR_OK)
				first_failure = st;
			else
				assert_int_equal(st, ESR_EIO); /* refused: never written */
		}
		assert_int_equal(esr_store_version(s, &sid, &version), ESR_OK);
		assert_int_equal(version, acked); /* memory never runs ahead of the disk */
	}
	fired = disarm() || first_failure != ESR_OK;
	esr_store_close(s);
	/* Reopen with working I/O: every acknowledged append is there, and the
	 * one that failed is absent unless its outcome was unknown. */
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	assert_int_equal(esr_store_version(s, &sid, &version), ESR_OK);
	if (version != acked && !(first_failure == ESR_EUNKNOWN && version == acked + 1))
		fail_msg("%ld: %llu acknowledged, then %s, but %llu after reopen", n,
		         (unsigned long long)acked, esr_status_name(first_failure),
		         (unsigned long long)version);
	esr_store_close(s);
	return fired && first_failure != ESR_OK;
}

#define THREADS 8
#define PER_THREAD 24

struct appender {
	esr_store *s;
	int t;
	esr_status st[PER_THREAD];
};

static void stream_of(int t, char *id, esr_stream_id *sid)
{
	sid->type = "Fault";
	sid->id = id;
	sid->id_len = (size_t)snprintf(id, 16, "t-%d", t);
}

/* One stream per thread, appends in order with the expected version, each
 * event's payload naming (thread, append). */
static void *append_many(void *arg)
{
	struct appender *a = arg;
	uint8_t payload[64];
	esr_event ev = {.type = 2, .payload = payload, .payload_len = sizeof payload};
	esr_stream_id sid;
	uint64_t acked = 0;
	char id[16];
	int i;

	stream_of(a->t, id, &sid);
	for (i = 0; i < PER_THREAD; i++) {
		esr_append_result r;
		memset(payload, a->t, sizeof payload);
		payload[0] = (uint8_t)i;
		a->st[i] = esr_store_append(a->s, &sid, acked, &ev, 1, &r);
		if (a->st[i] == ESR_OK)
			acked = r.version;
	}
	return NULL;
}

struct seen {
	int t;
	uint64_t n;
};

static esr_status check_event(void *ctx, const esr_recorded_event *e)
{
	struct seen *v = ctx;
	const uint8_t *p = e->event.payload;

	v->n++;
	if (e->event.payload_len != 64 || p[0] != (uint8_t)(e->version - 1) || p[1] != v->t)
		return ESR_ECORRUPT;
	return ESR_OK;
}

/*
 * Append i of a thread is stored iff the stream holds more than i events
 * after the reopen: then it must not be ESR_EIO; if not stored, not ESR_OK.
 * Returns how many appends failed.
 */
static int check_threads(esr_store *s, const struct appender *a, long n, int *lost)
{
	int t, i, failed = 0;

	for (t = 0; t < THREADS; t++) {
		struct seen v = {t, 0};
		esr_stream_id sid;
		char id[16];
		stream_of(t, id, &sid);
		assert_int_equal(esr_store_read(s, &sid, 1, check_event, &v), ESR_OK);
		for (i = 0; i < PER_THREAD; i++) {
			esr_status st = a[t].st[i];
			int stored = (uint64_t)i < v.n;
			if (st != ESR_OK)
				failed++, assert_failure(st);
			if ((stored && st == ESR_EIO) || (!stored && st == ESR_OK)) {
				print_message("fault at %ld: thread %d append %d: %s, %s after reopen\n",
				              n, t, i, esr_status_name(st), stored ? "stored" : "absent");
				(*lost)++;
			}
		}
	}
	return failed;
}

/* THREADS appenders at once, the fault at call n: batches of several appends
 * meet it, so a short write leaves whole appends before the cut. */
static int threaded_scenario(enum fault k, long n, int *lost)
{
	esr_file_store_options o = small();
	struct appender a[THREADS];
	pthread_t th[THREADS];
	char dir[256];
	esr_store *s;
	int t, failed;

	snprintf(dir, sizeof dir, "%s/%d", root, ++serial);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	arm(k, n);
	for (t = 0; t < THREADS; t++) {
		a[t] = (struct appender){.s = s, .t = t};
		assert_int_equal(pthread_create(&th[t], NULL, append_many, &a[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	disarm();
	esr_store_close(s);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	failed = check_threads(s, a, n, lost);
	esr_store_close(s);
	return failed > 0;
}

static void run_kind(enum fault k, const char *name)
{
	long n;
	int fired = 0, threaded = 0, lost = 0;

	unknown = 0;
	for (n = 0; n < 40; n++)
		fired += scenario(k, n);
	for (n = 0; n < 30 && k != FAIL_OPEN; n++)
		threaded += threaded_scenario(k, n, &lost);
	print_message("%s%s: %d of 40 placements failed an append; %d of 30 with %d threads,"
	              " %d outcomes wrong, %d unknown\n", name,
	              truncate_fails ? " (and so does the truncate)" : "", fired, threaded,
	              THREADS, lost, unknown);
	assert_true(fired > 0); /* the fault did reach the appends */
	assert_true(k == FAIL_OPEN || threaded > 0);
	assert_int_equal(lost, 0); /* OK stored, EIO absent, every time */
	/* A failed batch taken back out is absent: ESR_EIO; left in, unknown. */
	if (!truncate_fails)
		assert_int_equal(unknown, 0);
	else if (k == FAIL_SYNC || k == SHORT_WRITE)
		assert_true(unknown > 0);
}

static void failed_writes(void **state)
{
	(void)state;
	truncate_fails = 0;
	run_kind(FAIL_WRITE, "write fails");
}

static void short_writes(void **state)
{
	(void)state;
	truncate_fails = 0;
	run_kind(SHORT_WRITE, "write short, then fails");
}

static void failed_syncs(void **state)
{
	(void)state;
	truncate_fails = 0;
	run_kind(FAIL_SYNC, "fdatasync fails");
}

static void failed_opens(void **state)
{
	(void)state;
	truncate_fails = 0;
	run_kind(FAIL_OPEN, "open of a new segment fails");
}

/* When the failed batch cannot be cut off again, what it wrote may be found
 * at the next open: those appends are ESR_EUNKNOWN, never ESR_EIO. */
static void short_writes_left_in(void **state)
{
	(void)state;
	truncate_fails = 1;
	run_kind(SHORT_WRITE, "write short, then fails");
	truncate_fails = 0;
}

static void failed_syncs_left_in(void **state)
{
	(void)state;
	truncate_fails = 1;
	run_kind(FAIL_SYNC, "fdatasync fails");
	truncate_fails = 0;
}

/* --- two runtimes on one store ----------------------------------------------------- */

#define RUNTIMES 2
#define HOSTS 2        /* submitting threads per runtime */
#define COMMANDS 16    /* per submitting thread */
#define TALLIES 3      /* aggregates, shared by every runtime */
#define ALL_COMMANDS (RUNTIMES * HOSTS * COMMANDS)

struct tally {
	uint32_t count;
};

/* An event: the command's id and the count it brings the tally to. */
struct tallied {
	uint32_t command, count;
};

static void tally_apply(void *state, const esr_event *e)
{
	((struct tally *)state)->count++;
	(void)e;
}

static int tally_handle(const void *state, const void *command, esr_emitter *emit)
{
	struct tallied t = {*(const uint32_t *)command, ((const struct tally *)state)->count + 1};

	return esr_emit(emit, 1, &t, sizeof t) == ESR_OK ? 0 : 1;
}

static const esr_aggregate_type tally_type = {
	.name = "Tally",
	.state_size = sizeof(struct tally),
	.apply = tally_apply,
	.handle = tally_handle,
};

struct host {
	esr_runtime *rt;
	uint32_t first; /* its command ids: first .. first + COMMANDS - 1 */
	esr_status *outcome;
};

static void *host_main(void *arg)
{
	struct host *h = arg;
	uint32_t i;

	for (i = 0; i < COMMANDS; i++) {
		uint32_t id = h->first + i;
		char name[8];
		esr_result r;
		snprintf(name, sizeof name, "t-%u", (unsigned)(id % TALLIES));
		h->outcome[id] = esr_execute(h->rt, "Tally", name, strlen(name), &id, &r);
	}
	return NULL;
}

struct found {
	int stored[ALL_COMMANDS];
	int bad;
};

static esr_status found_event(void *ctx, const esr_recorded_event *e)
{
	struct found *f = ctx;
	struct tallied t;

	if (e->event.payload_len != sizeof t)
		return ESR_ECORRUPT;
	memcpy(&t, e->event.payload, sizeof t);
	/* Decided on the state the stream had: never on a guess after a fault. */
	if (t.command >= ALL_COMMANDS || t.count != e->version)
		f->bad++;
	else
		f->stored[t.command]++;
	return ESR_OK;
}

/*
 * Two runtimes on one store handle, optimistic, submitting to the same
 * aggregates while the fault is armed at call n. After a reopen: every
 * command that returned ESR_OK is stored once, every ESR_EIO one (or a
 * conflict) not at all, an ESR_EUNKNOWN one at most once.
 */
static int two_runtimes_scenario(enum fault k, long n, int *wrong)
{
	static esr_status outcome[ALL_COMMANDS];
	esr_file_store_options o = small();
	esr_runtime_config cfg;
	esr_runtime *rt[RUNTIMES];
	struct host hosts[RUNTIMES * HOSTS];
	pthread_t th[RUNTIMES * HOSTS];
	struct found f;
	char dir[256];
	esr_store *s;
	int i, failed = 0;

	snprintf(dir, sizeof dir, "%s/%d", root, ++serial);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	esr_runtime_config_default(&cfg);
	cfg.workers = 2;
	cfg.strategy = ESR_OPTIMISTIC;
	cfg.max_retries = 50;
	for (i = 0; i < RUNTIMES; i++) {
		assert_int_equal(esr_runtime_start(&cfg, s, &rt[i]), ESR_OK);
		assert_int_equal(esr_runtime_register(rt[i], &tally_type), ESR_OK);
	}
	arm(k, n);
	for (i = 0; i < RUNTIMES * HOSTS; i++) {
		hosts[i] = (struct host){rt[i % RUNTIMES], (uint32_t)i * COMMANDS, outcome};
		assert_int_equal(pthread_create(&th[i], NULL, host_main, &hosts[i]), 0);
	}
	for (i = 0; i < RUNTIMES * HOSTS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < RUNTIMES; i++)
		assert_int_equal(esr_runtime_destroy(rt[i]), ESR_OK);
	disarm();
	esr_store_close(s);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	memset(&f, 0, sizeof f);
	for (i = 0; i < TALLIES; i++) {
		char name[8];
		esr_stream_id sid = {"Tally", name, (size_t)snprintf(name, sizeof name, "t-%d", i)};
		assert_int_equal(esr_store_read(s, &sid, 1, found_event, &f), ESR_OK);
	}
	esr_store_close(s);
	*wrong += f.bad;
	for (i = 0; i < ALL_COMMANDS; i++) {
		esr_status st = outcome[i];
		int ok = st == ESR_OK ? f.stored[i] == 1
		       : st == ESR_EUNKNOWN ? f.stored[i] <= 1
		       : (st == ESR_EIO || st == ESR_ECONFLICT) && f.stored[i] == 0;
		failed += st != ESR_OK;
		unknown += st == ESR_EUNKNOWN;
		if (!ok) {
			print_message("fault at %ld: command %d: %s, stored %d times\n", n, i,
			              esr_status_name(st), f.stored[i]);
			(*wrong)++;
		}
	}
	return failed > 0;
}

static void run_two_runtimes(enum fault k, const char *name)
{
	int fired = 0, wrong = 0;
	long n;

	unknown = 0;
	for (n = 0; n < 16; n++)
		fired += two_runtimes_scenario(k, n, &wrong);
	print_message("%s%s, two runtimes: %d of 16 placements failed a command,"
	              " %d outcomes wrong, %d unknown\n", name,
	              truncate_fails ? " (and so does the truncate)" : "", fired, wrong, unknown);
	assert_true(fired > 0);
	assert_int_equal(wrong, 0);
}

static void two_runtimes_meet_faults(void **state)
{
	(void)state;
	truncate_fails = 0;
	run_two_runtimes(SHORT_WRITE, "write short, then fails");
	run_two_runtimes(FAIL_SYNC, "fdatasync fails");
	truncate_fails = 1;
	run_two_runtimes(SHORT_WRITE, "write short, then fails");
	run_two_runtimes(FAIL_SYNC, "fdatasync fails");
	truncate_fails = 0;
}

/* A store that cannot open its files reports it and leaves nothing open. */
static void open_itself_fails_cleanly(void **state)
{
	char dir[256];
	esr_store *s, *const untouched = (esr_store *)dir;
	esr_status st;
	int refused = 0;
	long n;

	(void)state;
	for (n = 0; n < 4; n++) {
		snprintf(dir, sizeof dir, "%s/open-%ld", root, n);
		arm(FAIL_OPEN, n);
		s = untouched;
		if ((st = esr_file_store_open(dir, NULL, &s)) == ESR_OK) {
			esr_store_close(s);
		} else {
			assert_int_equal(st, ESR_EIO);
			assert_ptr_equal(s, untouched); /* out is written only on success */
			refused++;
		}
		disarm();
	}
	assert_true(refused > 0); /* the lock file's and the first segment's opens */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_writes),
		cmocka_unit_test(short_writes),
		cmocka_unit_test(failed_syncs),
		cmocka_unit_test(failed_opens),
		cmocka_unit_test(short_writes_left_in),
		cmocka_unit_test(failed_syncs_left_in),
		cmocka_unit_test(two_runtimes_meet_faults),
		cmocka_unit_test(open_itself_fails_cleanly),
	};
	char cmd[128];
	int failed;

	if (mkdtemp(root) == NULL)
		return 1;
	real = esr__fio;
	countdown = -1;
	esr__fio = (struct esr__file_io){faulty_write, faulty_sync, faulty_open, faulty_ftruncate, real.pread,
		real.pwrite, real.rename, real.link, real.unlink, real.close};
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
