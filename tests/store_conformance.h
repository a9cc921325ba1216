/*
 * tests/store_conformance.h: the store conformance suite, written once and run
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
};

/* Runs every conformance test against `backend`; returns failed test count. */
int esr_store_conformance_run(const struct store_backend *backend);

/* The section on positions, subscriptions, checkpoints and snapshots
 * (tests/conformance_global.c); esr_store_conformance_run runs it too. */
int esr_store_conformance_global(const struct store_backend *backend);

#endif
