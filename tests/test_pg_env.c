/*
 * tests/test_pg_env.c: the test server's plumbing, without libpq.
 *
 * The `pg` fixture's settings load, name a connection string, and (when the
 * server is ours) the server script says it is running. With no server the
 * test reports itself skipped with the reason (a failure when
 * $ESR_PG_REQUIRED is 1), like every PostgreSQL test.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "pg_env.h"

int main(void)
{
	struct pg_env env;
	char why[512];
	int st;

	if (pg_env_load(&env, why, sizeof why) != 0)
		return pg_env_unavailable(why);
	if (env.conninfo[0] == '\0') {
		fprintf(stderr, "FAIL: the settings name an empty connection string\n");
		return 1;
	}
	printf("conninfo: %s\n", env.conninfo);
	if (env.script[0] == '\0') {
		/* $ESR_PG_CONNINFO: someone else's server, nothing to ask. */
		printf("no server script (ESR_PG_CONNINFO): status not checked\n");
		return 0;
	}
	if ((st = pg_env_server(&env, "status")) != 0) {
		fprintf(stderr, "FAIL: sh %s status %s: exit %d, want 0\n", env.script, env.state, st);
		return 1;
	}
	printf("server script: %s, state: %s: running\n", env.script, env.state);
	return 0;
}
