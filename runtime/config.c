/* runtime/config.c: strategy names and configuration from the environment. */
#include <stdlib.h>
#include <string.h>

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

esr_status esr_repository_config_default(esr_repository_config *config)
{
	if (config == NULL)
		return ESR_EINVAL;
	config->strategy = ESR_OPTIMISTIC;
	return ESR_OK;
}

esr_status esr_repository_config_from_env(esr_repository_config *config)
{
	esr_repository_config c;
	const char *v;
	esr_status st;

	if ((st = esr_repository_config_default(&c)) != ESR_OK)
		return st;
	v = getenv("ESR_STRATEGY");
	if (v != NULL && v[0] != '\0' && (st = esr_strategy_parse(v, &c.strategy)) != ESR_OK)
		return st;
	*config = c;
	return ESR_OK;
}
