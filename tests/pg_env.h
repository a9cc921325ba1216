/*
 * tests/pg_env.h: where the PostgreSQL tests find their server.
 *
 * ctest starts a throwaway server first (scripts/pg-server.sh, the `pg`
 * fixture) and points $ESR_PG_ENV at the file of settings it wrote. A test
 * run by hand may instead set $ESR_PG_CONNINFO to a server of its own (then
 * nothing can restart it). With neither, a test reports itself skipped, with
 * the reason; with $ESR_PG_REQUIRED=1 (CI) it fails instead.
 */
#ifndef ESR_TESTS_PG_ENV_H
#define ESR_TESTS_PG_ENV_H

#include <stddef.h>

struct pg_env {
	char conninfo[1024];
	char script[1024]; /* scripts/pg-server.sh; "" if the server is not ours */
	char state[1024];  /* its state directory */
};

/* 0 on success; -1 with a one-line reason in why. */
int pg_env_load(struct pg_env *e, char *why, size_t why_size);

/* The exit code for "no server": 77 (ctest's skip), or 1 when
 * $ESR_PG_REQUIRED is 1. Says which, and why, on stderr. */
int pg_env_unavailable(const char *why);

/* Run the server script with one verb (restart, status, ...): its exit
 * status, or -1 when there is no script. */
int pg_env_server(const struct pg_env *e, const char *verb);

#endif
