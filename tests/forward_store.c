/* tests/forward_store.c: see forward_store.h. */
#include "forward_store.h"

#define INNER(impl) (*(esr_store **)(impl))

esr_status forward_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                            void *ctx, uint64_t *next)
{
	return esr_store_read_all(INNER(impl), from, max, visit, ctx, next);
}

esr_status forward_head(void *impl, uint64_t *position)
{
	return esr_store_head(INNER(impl), position);
}

esr_status forward_wait(void *impl, uint64_t after, unsigned timeout_ms)
{
	return esr_store_wait(INNER(impl), after, timeout_ms);
}

esr_status forward_snapshot_save(void *impl, const esr_stream_id *sid,
                                 const esr_snapshot *snap)
{
	return esr_store_snapshot_save(INNER(impl), sid, snap);
}

esr_status forward_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                                 void *ctx)
{
	return esr_store_snapshot_load(INNER(impl), sid, fn, ctx);
}

esr_status forward_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	return esr_store_checkpoint_save(INNER(impl), name, position);
}

esr_status forward_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	return esr_store_checkpoint_load(INNER(impl), name, position);
}
