/*
 * runtime/config.c: the runtime's configuration (defaults, checks, the
 * environment), and the strategy names it shares with the repository's.
 * See docs/architecture.md for the map.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esr/esr.h"

esr_status esr_strategy_parse(const char *text, esr_strategy *out)
{
	if (text == NULL || out == NULL)
		return ESR_EINVAL;
	if (strcmp(text, "optimistic") == 0)
		*out = ESR_OPTIMISTIC;
	else if (strcmp(text, "unchecked") == 0)
		*out = ESR_UNCHECKED;
	else
		return ESR_EINVAL;
	return ESR_OK;
}

const char *esr_strategy_name(esr_strategy strategy)
{
	switch (strategy) {
	case ESR_OPTIMISTIC:
		return "optimistic";
	case ESR_UNCHECKED:
		return "unchecked";
	}
	return "?";
}

#define WORKERS_MAX 1024
#define MAILBOX_MAX (1u << 30)

esr_status esr_runtime_config_default(esr_runtime_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (c == NULL)
		return ESR_EINVAL;
	c->workers = cpus > 0 ? (unsigned)(cpus < WORKERS_MAX ? cpus : WORKERS_MAX) : 1;
	c->strategy = ESR_OPTIMISTIC;
	c->max_retries = ESR_DEFAULT_MAX_RETRIES;
	c->mailbox_capacity = 1024;
	c->overflow = ESR_OVERFLOW_BLOCK;
	c->batch = 64;
	c->passivate_ms = 60000;
	c->snapshot_every = 0;
	c->warn = NULL;
	c->warn_ctx = NULL;
	return ESR_OK;
}

esr_status esr_runtime_config_check(const esr_runtime_config *c, const char **field)
{
	const char *bad = NULL;

	if (c == NULL)
		bad = "config";
	else if (c->workers == 0 || c->workers > WORKERS_MAX)
		bad = "workers";
	else if (c->strategy != ESR_OPTIMISTIC && c->strategy != ESR_UNCHECKED)
		bad = "strategy";
	else if (c->mailbox_capacity == 0 || c->mailbox_capacity > MAILBOX_MAX)
		bad = "mailbox_capacity";
	else if (c->overflow != ESR_OVERFLOW_BLOCK && c->overflow != ESR_OVERFLOW_FAIL)
		bad = "overflow";
	else if (c->batch == 0)
		bad = "batch";
	else if (c->max_retries > ESR_RETRIES_MAX)
		bad = "max_retries";
	if (field)
		*field = bad;
	return bad ? ESR_EINVAL : ESR_OK;
}

/* A whole decimal number that fits an unsigned. */
static int parse_unsigned(const char *text, unsigned *out)
{
	unsigned long v;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return 0;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return 0;
	*out = (unsigned)v;
	return 1;
}

esr_status esr_runtime_config_from_env(esr_runtime_config *config, const char **field)
{
	static const struct {
		const char *name;
		size_t offset;
	} numbers[] = {
		{"ESR_WORKERS", offsetof(esr_runtime_config, workers)},
		{"ESR_MAX_RETRIES", offsetof(esr_runtime_config, max_retries)},
		{"ESR_MAILBOX_CAPACITY", offsetof(esr_runtime_config, mailbox_capacity)},
		{"ESR_BATCH", offsetof(esr_runtime_config, batch)},
		{"ESR_PASSIVATE_MS", offsetof(esr_runtime_config, passivate_ms)},
		{"ESR_SNAPSHOT_EVERY", offsetof(esr_runtime_config, snapshot_every)},
	};
	esr_runtime_config c;
	const char *v, *bad = NULL;
	size_t i;

	if (field)
		*field = NULL;
	if (esr_runtime_config_default(&c) != ESR_OK)
		return ESR_EINVAL;
	for (i = 0; i < sizeof numbers / sizeof numbers[0] && !bad; i++) {
		v = getenv(numbers[i].name);
		if (v && *v && !parse_unsigned(v, (unsigned *)((char *)&c + numbers[i].offset)))
			bad = numbers[i].name;
	}
	v = getenv("ESR_STRATEGY");
	if (!bad && v && *v && esr_strategy_parse(v, &c.strategy) != ESR_OK)
		bad = "ESR_STRATEGY";
	v = getenv("ESR_OVERFLOW");
	if (!bad && v && *v) {
		if (strcmp(v, "block") == 0)
			c.overflow = ESR_OVERFLOW_BLOCK;
		else if (strcmp(v, "fail") == 0)
			c.overflow = ESR_OVERFLOW_FAIL;
		else
			bad = "ESR_OVERFLOW";
	}
	if (bad || config == NULL) {
		if (field)
			*field = bad;
		return ESR_EINVAL;
	}
	*config = c;
	return ESR_OK;
}
