/* tests/wrap_store.c: the counting, interfering store (see wrap_store.h). */
#include "bank.h"
#include "forward_store.h"
#include "wrap_store.h"

static esr_status wrap_append(void *impl, const esr_stream_id *sid, uint64_t expected,
                              const esr_event *events, size_t n, esr_append_cb done,
                              void *ctx)
{
	struct wrap *w = impl;

	if (w->interfere > 0) {
		struct bank_payload p = {1, 999, 0};
		esr_event other = {.type = BANK_DEPOSITED, .payload = &p, .payload_len = sizeof p};
		w->interfere--;
		esr_store_append(w->inner, sid, ESR_VERSION_ANY, &other, 1, NULL);
	}
	w->appends++;
	w->checked_appends += expected != ESR_VERSION_ANY;
	return esr_store_append_async(w->inner, sid, expected, events, n, done, ctx);
}

struct counting {
	struct wrap *w;
	esr_visit_fn visit;
	void *ctx;
};

static esr_status count_event(void *ctx, const esr_recorded_event *rec)
{
	struct counting *c = ctx;

	c->w->events_read++;
	return c->visit(c->ctx, rec);
}

static esr_status wrap_read(void *impl, const esr_stream_id *sid, uint64_t from,
                            esr_visit_fn visit, void *ctx)
{
	struct counting c = {impl, visit, ctx};

	c.w->reads++;
	return esr_store_read(c.w->inner, sid, from, count_event, &c);
}

static esr_status wrap_version(void *impl, const esr_stream_id *sid, uint64_t *v)
{
	return esr_store_version(((struct wrap *)impl)->inner, sid, v);
}

static esr_status wrap_snapshot_load(void *impl, const esr_stream_id *sid,
                                     esr_snapshot_fn fn, void *ctx)
{
	struct wrap *w = impl;

	return w->forged ? fn(ctx, w->forged) : forward_snapshot_load(impl, sid, fn, ctx);
}

static void wrap_destroy(void *impl)
{
	(void)impl;
}

static const esr_store_vtable wrap_vtable = {
	.name = "wrap",
	.append = wrap_append,
	.read = wrap_read,
	.version = wrap_version,
	.destroy = wrap_destroy,
	.read_all = forward_read_all,
	.head = forward_head,
	.wait = forward_wait,
	.snapshot_save = forward_snapshot_save,
	.snapshot_load = wrap_snapshot_load,
	.checkpoint_save = forward_checkpoint_save,
	.checkpoint_load = forward_checkpoint_load,
};

esr_status wrap_store_open(struct wrap *w, esr_store **out)
{
	return esr_store_create(&wrap_vtable, w, out);
}
