/*
 * tests/store/store_conformance.h: the store conformance suite, written once and run
 * against every backend. A backend's test program supplies how to open a
 * fresh, empty store and calls esr_store_conformance_run.
 */
#ifndef ESR_TESTS_STORE_CONFORMANCE_H
#define ESR_TESTS_STORE_CONFORMANCE_H

#include <esr/esr.h>

struct store_backend {
	const char *name;
	/* Open a fresh, empty store. Called once per test. */
	esr_status (*open)(void *arg, esr_store **out);
	void *arg;
	/* Close *store and open the same store again into *store (a restart):
	 * what was acknowledged must be there. NULL for a backend that keeps
	 * nothing across a close (the memory store). */
	esr_status (*reopen)(void *arg, esr_store **store);
};

/*
 * What both halves of the suite share. cmocka's assertions jump back to the
 * test's frame, which only works on the test's own thread: worker threads
 * count failures with THREAD_CHECK instead, and the test asserts the count is
 * zero after joining them. conformance_open/close are every test's setup and
 * teardown: a fresh store from the backend under test, then closed.
 */
extern int conformance_thread_failures;
#define THREAD_CHECK(cond)                                                          \
	do {                                                                        \
		if (!(cond)) {                                                      \
			__atomic_add_fetch(&conformance_thread_failures, 1,          \
			                   __ATOMIC_RELAXED);                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
			        __LINE__, #cond);                                   \
		}                                                                   \
	} while (0)
int conformance_open(void **state);
int conformance_close(void **state);

/* Runs every conformance test against `backend`; returns failed test count. */
int esr_store_conformance_run(const struct store_backend *backend);

/* The section on positions, subscriptions, checkpoints and snapshots
 * (tests/store/conformance_global.c), for esr_store_conformance_run to call once it
 * has chosen the backend. */
int esr_store_conformance_global(const struct store_backend *backend);

/* The section on command ids (tests/store/conformance_ids.c). */
int esr_store_conformance_ids(const struct store_backend *backend);

#endif
