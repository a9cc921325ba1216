/*
 * tests/test_file_faults.c: the file store under failing I/O. The store's
 * write, fdatasync and open go through a table (store/file_io.h) that this
 * test replaces, making the Nth call fail, or write short and then fail.
 * For every N: appends acknowledged before the fault are all there after a
 * reopen with working I/O; the append that met the fault and every later one
 * get ESR_EIO; the store's version never counts an append it did not
 * acknowledge; and nothing crashes or leaks (ASan build).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/file_io.h"

#include <esr/esr.h>

enum fault { FAIL_WRITE, SHORT_WRITE, FAIL_SYNC, FAIL_OPEN };

static struct file_io real;
static enum fault kind;
static long countdown; /* calls of that kind until the fault; < 0: none */

static int due(void)
{
	return countdown >= 0 && countdown-- == 0;
}

static ssize_t faulty_write(int fd, const void *buf, size_t n)
{
	if ((kind == FAIL_WRITE || kind == SHORT_WRITE) && due()) {
		if (kind == SHORT_WRITE && n > 1) {
			countdown = 0; /* the rest fails: a disk that filled up */
			kind = FAIL_WRITE;
			return real.write(fd, buf, n / 2);
		}
		errno = ENOSPC;
		return -1;
	}
	return real.write(fd, buf, n);
}

static int faulty_sync(int fd)
{
	if (kind == FAIL_SYNC && due()) {
		errno = EIO;
		return -1;
	}
	return real.fdatasync(fd);
}

static int faulty_open(const char *path, int flags, mode_t mode)
{
	if (kind == FAIL_OPEN && due()) {
		errno = EACCES;
		return -1;
	}
	return real.open(path, flags, mode);
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
	char dir[256];
	esr_store *s;
	int i, failed = 0, fired;

	snprintf(dir, sizeof dir, "%s/%d", root, ++serial);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	kind = k;
	countdown = n;
	for (i = 0; i < 12; i++) {
		esr_append_result r;
		esr_status st;
		big[0] = (uint8_t)i;
		st = esr_store_append(s, &sid, acked, &ev, 1, &r);
		if (st == ESR_OK) {
			assert_false(failed); /* nothing succeeds after a failure */
			acked = r.version;
		} else {
			assert_int_equal(st, ESR_EIO);
			failed = 1;
		}
		assert_int_equal(esr_store_version(s, &sid, &version), ESR_OK);
		assert_int_equal(version, acked); /* memory never runs ahead of the disk */
	}
	fired = countdown < 0 || failed;
	countdown = -1;
	esr_store_close(s);
	/* Reopen with working I/O: every acknowledged append is there. */
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	assert_int_equal(esr_store_version(s, &sid, &version), ESR_OK);
	assert_true(version >= acked); /* unacknowledged ones may have landed */
	esr_store_close(s);
	return fired && failed;
}

static void run_kind(enum fault k, const char *name)
{
	long n;
	int fired = 0;

	for (n = 0; n < 40; n++)
		fired += scenario(k, n);
	print_message("%s: %d of 40 placements failed an append\n", name, fired);
	assert_true(fired > 0); /* the fault did reach the appends */
}

static void failed_writes(void **state)
{
	(void)state;
	run_kind(FAIL_WRITE, "write fails");
}

static void short_writes(void **state)
{
	(void)state;
	run_kind(SHORT_WRITE, "write short, then fails");
}

static void failed_syncs(void **state)
{
	(void)state;
	run_kind(FAIL_SYNC, "fdatasync fails");
}

static void failed_opens(void **state)
{
	(void)state;
	run_kind(FAIL_OPEN, "open of a new segment fails");
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
		kind = FAIL_OPEN;
		countdown = n;
		s = untouched;
		if ((st = esr_file_store_open(dir, NULL, &s)) == ESR_OK) {
			esr_store_close(s);
		} else {
			assert_int_equal(st, ESR_EIO);
			assert_ptr_equal(s, untouched); /* out is written only on success */
			refused++;
		}
		countdown = -1;
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
		cmocka_unit_test(open_itself_fails_cleanly),
	};
	char cmd[128];
	int failed;

	if (mkdtemp(root) == NULL)
		return 1;
	real = fio;
	countdown = -1;
	fio = (struct file_io){faulty_write, faulty_sync, faulty_open};
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
