/* tests/pg_env.c: see pg_env.h. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pg_env.h"

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src);
}

/* The `unavailable` file beside the settings file, if the script left one. */
static void unavailable_reason(const char *env_path, char *why, size_t n)
{
	char path[1200], line[512] = "";
	const char *slash = strrchr(env_path, '/');
	FILE *f;

	snprintf(path, sizeof path, "%.*s/unavailable", slash ? (int)(slash - env_path) : 1,
	         slash ? env_path : ".");
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(line, sizeof line, f) != NULL)
			line[strcspn(line, "\n")] = '\0';
		fclose(f);
	}
	if (line[0] != '\0')
		snprintf(why, n, "no PostgreSQL server: %s", line);
	else
		snprintf(why, n, "no PostgreSQL server: %s was not written (did the pg_server_start"
		         " fixture run?)", env_path);
}

int pg_env_load(struct pg_env *e, char *why, size_t n)
{
	const char *path = getenv("ESR_PG_ENV"), *direct = getenv("ESR_PG_CONNINFO");
	char line[1200];
	FILE *f;

	memset(e, 0, sizeof *e);
	if (direct != NULL) {
		copy(e->conninfo, sizeof e->conninfo, direct);
		return 0;
	}
	if (path == NULL) {
		snprintf(why, n, "no PostgreSQL server: set ESR_PG_CONNINFO, or run through ctest");
		return -1;
	}
	if ((f = fopen(path, "r")) == NULL) {
		unavailable_reason(path, why, n);
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *eq = strchr(line, '=');
		line[strcspn(line, "\n")] = '\0';
		if (eq == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, "ESR_PG_CONNINFO") == 0)
			copy(e->conninfo, sizeof e->conninfo, eq);
		else if (strcmp(line, "ESR_PG_SCRIPT") == 0)
			copy(e->script, sizeof e->script, eq);
		else if (strcmp(line, "ESR_PG_STATE") == 0)
			copy(e->state, sizeof e->state, eq);
	}
	fclose(f);
	if (e->conninfo[0] == '\0') {
		snprintf(why, n, "no PostgreSQL server: %s names no ESR_PG_CONNINFO", path);
		return -1;
	}
	return 0;
}

int pg_env_unavailable(const char *why)
{
	const char *required = getenv("ESR_PG_REQUIRED");

	if (required != NULL && strcmp(required, "1") == 0) {
		fprintf(stderr, "FAIL: %s (ESR_PG_REQUIRED=1)\n", why);
		return 1;
	}
	fprintf(stderr, "SKIP: %s\n", why);
	return 77;
}

int pg_env_server(const struct pg_env *e, const char *verb)
{
	char cmd[2200];
	int st;

	if (e->script[0] == '\0' || e->state[0] == '\0')
		return -1;
	snprintf(cmd, sizeof cmd, "sh '%s' %s '%s' >/dev/null", e->script, verb, e->state);
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
