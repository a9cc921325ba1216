/*
 * store/pg/pg_none.c: the PostgreSQL store's entry points in a build without
 * libpq (ESR_WITH_POSTGRES=OFF): each says so with ESR_ENOTSUP.
 * docs/architecture.md has the map.
 */
#include "core/internal.h"
#include "esr/pg_store.h"

static const char reason[] = "esr was built without PostgreSQL support (ESR_WITH_POSTGRES=OFF)";

esr_status esr_pg_store_open(const char *conninfo, const esr_pg_store_options *o,
                             esr_store **out)
{
	(void)conninfo;
	(void)out;
	if (o != NULL)
		esr__why(o->why, o->why_size, "%s", reason);
	return ESR_ENOTSUP;
}

esr_status esr_pg_migrate(const char *conninfo, const char *schema, char *why, size_t n)
{
	(void)conninfo;
	(void)schema;
	esr__why(why, n, "%s", reason);
	return ESR_ENOTSUP;
}

esr_status esr_pg_drop(const char *conninfo, const char *schema, char *why, size_t n)
{
	(void)conninfo;
	(void)schema;
	esr__why(why, n, "%s", reason);
	return ESR_ENOTSUP;
}

esr_status esr_pg_store_stats_get(esr_store *store, esr_pg_store_stats *out)
{
	(void)store;
	(void)out;
	return ESR_EINVAL;
}
