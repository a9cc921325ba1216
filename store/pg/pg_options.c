/*
 * store/pg/pg_options.c: the PostgreSQL store's default options, in every build
 * (with libpq or without), so a host can fill them whatever it links.
 * docs/architecture.md has the map.
 */
#include <string.h>

#include "esr/pg_store.h"

esr_status esr_pg_store_options_default(esr_pg_store_options *o)
{
	if (o == NULL)
		return ESR_EINVAL;
	memset(o, 0, sizeof *o);
	o->schema = "esr";
	o->connections = 2;
	o->batch_max = 256;
	o->timeout_ms = 10000;
	o->backoff_min_ms = 10;
	o->backoff_max_ms = 1000;
	o->migrate = 1;
	return ESR_OK;
}
