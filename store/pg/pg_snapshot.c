/*
 * store/pg/pg_snapshot.c: the PostgreSQL store's snapshots and checkpoints.
 * docs/architecture.md has the map.
 *
 * One row per stream in `snapshots` and one per name in `checkpoints`
 * (schema 2, pg_sql.c), each saved by one upsert and loaded by one select on
 * the read pool, never through the append batches: a snapshot is a cache of
 * state the events already hold, and must not delay or fail an append. The
 * last save wins, whatever its version (esr/store.h): a snapshot claiming a
 * version its stream never reached must be replaceable by the next good one.
 */
#include <string.h>

#include "store/pg/pg_internal.h"

esr_status esr__pg_snapshot_save(void *impl, const esr_stream_id *sid, const esr_snapshot *snap)
{
	char v[8], f[4];
	const char *values[5] = {sid->type, sid->id, v, f, snap->len ? snap->data : ""};
	int lengths[5] = {(int)strlen(sid->type), (int)sid->id_len, 8, 4, (int)snap->len};

	esr__pg_put64(v, snap->version);
	esr__pg_put32(f, snap->format);
	return esr__pg_run_then(impl, ESR__PG_STMT_SNAP_SAVE, 5, values, lengths, NULL, NULL);
}

struct snap_call {
	esr_snapshot_fn fn;
	void *ctx;
};

/* A row that does not decode (a column the wrong size, a version or format
 * out of range) loads as none: the runtime replays the events instead. */
static esr_status snap_row(const PGresult *r, void *ctx)
{
	struct snap_call *c = ctx;
	esr_snapshot snap;

	if (PQntuples(r) != 1 || PQnfields(r) != 3 || PQgetlength(r, 0, 0) != 8 ||
	    PQgetlength(r, 0, 1) != 4 || PQgetlength(r, 0, 2) > (int)ESR_SNAPSHOT_MAX)
		return ESR_OK;
	snap.version = esr__pg_get64(PQgetvalue(r, 0, 0));
	snap.format = esr__pg_get32(PQgetvalue(r, 0, 1));
	snap.len = (uint32_t)PQgetlength(r, 0, 2);
	snap.data = PQgetvalue(r, 0, 2);
	if (snap.version == 0 || snap.version > INT64_MAX || snap.format == 0 ||
	    snap.format > INT32_MAX)
		return ESR_OK;
	return c->fn(c->ctx, &snap);
}

esr_status esr__pg_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                            void *ctx)
{
	const char *values[2] = {sid->type, sid->id};
	int lengths[2] = {(int)strlen(sid->type), (int)sid->id_len};
	struct snap_call c = {fn, ctx};

	return esr__pg_run_then(impl, ESR__PG_STMT_SNAP_LOAD, 2, values, lengths, snap_row, &c);
}

esr_status esr__pg_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	char p[8];
	const char *values[2] = {name, p};
	int lengths[2] = {(int)strlen(name), 8};

	esr__pg_put64(p, position); /* bigint holds all 64 bits: any position round-trips */
	return esr__pg_run_then(impl, ESR__PG_STMT_CP_SAVE, 2, values, lengths, NULL, NULL);
}

esr_status esr__pg_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	const char *values[1] = {name};
	int lengths[1] = {(int)strlen(name)};

	return esr__pg_run_then(impl, ESR__PG_STMT_CP_LOAD, 1, values, lengths, esr__pg_one_int8, position);
}
