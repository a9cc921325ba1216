/*
 * store/store.c: the store handle. It checks every argument once, here, so
 * backends only see well-formed input, and it turns the vtable's completion
 * callback into the blocking esr_store_append.
 * docs/architecture.md has the map.
 */
#define _GNU_SOURCE /* syscall, for core/futex.h */
#include <ck_pr.h>
#include <stdlib.h>

#include "core/futex.h"
#include "core/internal.h"
#include "core/sync.h"
#include "store/store_internal.h"

struct esr_store {
	const esr_store_vtable *vt;
	void *impl;
	esr__prefetch_fn *prefetch; /* NULL: the backend gave none */
	int inline_only;            /* appends always complete inside the call */
	size_t turn_bytes;          /* an actor's turn's payload per append at most */
};

esr_status esr_store_create(const esr_store_vtable *vt, void *impl, esr_store **out)
{
	esr_store *s;

	if (out == NULL || vt == NULL)
		return ESR_EINVAL;
	/* Before any other field: in another version they may lie elsewhere. */
	if (vt->vtable_version != ESR_STORE_VTABLE_VERSION)
		return ESR_ENOTSUP;
	if (vt->name == NULL || vt->append == NULL ||
	    vt->read == NULL || vt->version == NULL || vt->destroy == NULL ||
	    (vt->resolve == NULL) != (vt->append_resolved == NULL) ||
	    (vt->read_all == NULL) != (vt->head == NULL) ||
	    (vt->snapshot_save == NULL) != (vt->snapshot_load == NULL) ||
	    (vt->checkpoint_save == NULL) != (vt->checkpoint_load == NULL))
		return ESR_EINVAL;
	if ((s = malloc(sizeof *s)) == NULL)
		return ESR_ENOMEM;
	s->vt = vt;
	s->impl = impl;
	s->prefetch = NULL;
	s->inline_only = 0;
	s->turn_bytes = ESR__TURN_BYTES;
	*out = s;
	return ESR_OK;
}

esr_status esr_store_close(esr_store *s)
{
	if (s == NULL)
		return ESR_OK;
	s->vt->destroy(s->impl);
	free(s);
	return ESR_OK;
}

const char *esr_store_name(const esr_store *s)
{
	return s ? s->vt->name : "";
}

static esr_status check_append(const esr_store *s, const esr_stream_id *stream,
                               const esr_event *events, size_t n)
{
	esr_status st;

	if (s == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_stream(stream)) != ESR_OK)
		return st;
	if ((st = esr__check_events(events, n)) != ESR_OK)
		return st;
	return s->vt->command == NULL && esr__events_have_ids(events, n) ? ESR_ENOTSUP : ESR_OK;
}

esr_status esr_store_command(esr_store *s, const esr_stream_id *stream, const void *id,
                             size_t len, uint64_t *first, uint64_t *last)
{
	esr_command_id cid = {id, len};
	esr_status st;

	if (s == NULL || first == NULL || last == NULL || id == NULL || len == 0)
		return ESR_EINVAL;
	if ((st = esr__check_stream(stream)) != ESR_OK || (st = esr__check_command_id(&cid)) != ESR_OK)
		return st;
	if (s->vt->command == NULL)
		return ESR_ENOTSUP;
	return s->vt->command(s->impl, stream, id, len, first, last);
}

int esr__store_records_ids(const esr_store *s)
{
	return s->vt->command != NULL;
}

esr_status esr_store_append_async(esr_store *s, const esr_stream_id *stream,
                                  uint64_t expected, const esr_event *events,
                                  size_t n, esr_append_cb done, void *ctx)
{
	esr_status st;

	if (done == NULL)
		return ESR_EINVAL;
	if ((st = check_append(s, stream, events, n)) != ESR_OK)
		return st;
	return s->vt->append(s->impl, stream, expected, events, n, done, ctx);
}

esr_status esr__store_impl(esr_store *s, const esr_store_vtable *vt, void **impl)
{
	if (s->vt != vt)
		return ESR_EINVAL;
	*impl = s->impl;
	return ESR_OK;
}

esr_status esr__store_resolve(esr_store *s, const esr_stream_id *stream, void **handle)
{
	*handle = NULL;
	return s->vt->resolve ? s->vt->resolve(s->impl, stream, handle) : ESR_OK;
}

void esr__store_set_prefetch(esr_store *s, esr__prefetch_fn *fn)
{
	s->prefetch = fn;
}

void esr__store_set_inline(esr_store *s)
{
	s->inline_only = 1;
}

int esr__store_completes_inline(const esr_store *s)
{
	return s->inline_only;
}

void esr__store_set_turn_bytes(esr_store *s, size_t bytes)
{
	s->turn_bytes = bytes;
}

size_t esr__store_turn_bytes(const esr_store *s)
{
	return s->turn_bytes;
}

void esr__store_prefetch(esr_store *s, void *handle, int depth)
{
	if (handle != NULL && s->prefetch != NULL)
		s->prefetch(s->impl, handle, depth);
}

esr_status esr__store_append_built(esr_store *s, const esr_stream_id *stream,
                                   void *handle, uint64_t expected,
                                   const esr_event *events, size_t n,
                                   esr_append_cb done, void *ctx)
{
	if (handle != NULL)
		return s->vt->append_resolved(s->impl, handle, expected, events, n, done, ctx);
	return s->vt->append(s->impl, stream, expected, events, n, done, ctx);
}

/*
 * A blocking append waits on this, on its own stack. `state` goes PENDING ->
 * DONE, or PENDING -> SLEEPER -> DONE when the appender is (about to be)
 * asleep in the kernel, as a ticket's does (runtime/ticket.c): the
 * completion writes the result, swaps DONE in (release) and calls
 * futex_wake only if it replaced SLEEPER. No mutex: a completing writer
 * thread that wakes hundreds of appenders per group commit pays one atomic
 * swap each and one system call for each one asleep, never a lock an
 * appender may hold. The wake may reach the word after the appender has
 * seen DONE and returned; a futex wake on a stale address is at worst a
 * spurious wake-up, which every futex waiter tolerates.
 */
enum { WAITER_PENDING = 0, WAITER_SLEEPER = 1, WAITER_DONE = 2 };

struct waiter {
	uint32_t state;
	esr_append_result result;
};

static void wake(void *ctx, const esr_append_result *result)
{
	struct waiter *w = ctx;

	w->result = *result;
	/* Release: the result before DONE. */
	ck_pr_fence_store_atomic();
	ESR_TSAN_RELEASE(&w->state);
	if (ck_pr_fas_32(&w->state, WAITER_DONE) == WAITER_SLEEPER)
		esr__futex_wake_all(&w->state);
}

static void wait_done(struct waiter *w)
{
	for (;;) {
		uint32_t st = ck_pr_load_32(&w->state);
		if (st == WAITER_DONE)
			break;
		/* One word: either our CAS to SLEEPER comes first and the swap
		 * returns SLEEPER (the completion wakes us), or the swap comes
		 * first and the CAS fails, or futex_wait finds DONE and returns. */
		if (st == WAITER_PENDING && !ck_pr_cas_32(&w->state, WAITER_PENDING, WAITER_SLEEPER))
			continue;
		esr__futex_wait(&w->state, WAITER_SLEEPER, NULL);
	}
	/* Acquire: pairs with the release in wake(); the result is whole. */
	ck_pr_fence_load();
	ESR_TSAN_ACQUIRE(&w->state);
}

esr_status esr_store_append(esr_store *s, const esr_stream_id *stream,
                            uint64_t expected, const esr_event *events,
                            size_t n, esr_append_result *result)
{
	struct waiter w = {.state = WAITER_PENDING};
	esr_status st;

	if ((st = check_append(s, stream, events, n)) != ESR_OK)
		goto refused;
	if ((st = s->vt->append(s->impl, stream, expected, events, n, wake, &w)) != ESR_OK)
		goto refused; /* refused directly (whatever its code): no version to report */
	wait_done(&w);
	st = w.result.status;
	if (st == ESR_OK || st == ESR_ECONFLICT || st == ESR_EDUPLICATE) {
		if (result)
			*result = w.result;
		return st;
	}
refused:
	if (result)
		*result = (esr_append_result){.status = st};
	return st;
}

esr_status esr_store_read(esr_store *s, const esr_stream_id *stream,
                          uint64_t from, esr_visit_fn visit, void *ctx)
{
	esr_status st;

	if (s == NULL || visit == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_stream(stream)) != ESR_OK)
		return st;
	return s->vt->read(s->impl, stream, from, visit, ctx);
}

esr_status esr_store_version(esr_store *s, const esr_stream_id *stream,
                             uint64_t *version)
{
	esr_status st;

	if (s == NULL || version == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_stream(stream)) != ESR_OK)
		return st;
	return s->vt->version(s->impl, stream, version);
}

/* --- global order, snapshots, checkpoints ---------------------------------------------- */

esr_status esr_store_read_all(esr_store *s, uint64_t from, size_t max,
                              esr_visit_fn visit, void *ctx, uint64_t *next)
{
	if (s == NULL || visit == NULL || next == NULL || max == 0)
		return ESR_EINVAL;
	if (max > ESR_READ_ALL_MAX)
		return ESR_ETOOBIG;
	if (s->vt->read_all == NULL)
		return ESR_ENOTSUP;
	return s->vt->read_all(s->impl, from ? from : 1, max, visit, ctx, next);
}

esr_status esr_store_head(esr_store *s, uint64_t *position)
{
	if (s == NULL || position == NULL)
		return ESR_EINVAL;
	if (s->vt->head == NULL)
		return ESR_ENOTSUP;
	return s->vt->head(s->impl, position);
}

esr_status esr_store_wait(esr_store *s, uint64_t after, unsigned timeout_ms)
{
	if (s == NULL)
		return ESR_EINVAL;
	if (s->vt->wait != NULL)
		return s->vt->wait(s->impl, after, timeout_ms);
	esr__sleep_ms(timeout_ms < 10 ? timeout_ms : 10);
	return ESR_OK;
}

static esr_status check_snapshot_call(const esr_store *s, const esr_stream_id *stream)
{
	if (s == NULL)
		return ESR_EINVAL;
	if (esr__check_stream(stream) != ESR_OK)
		return esr__check_stream(stream);
	return s->vt->snapshot_save == NULL ? ESR_ENOTSUP : ESR_OK;
}

esr_status esr_store_snapshot_save(esr_store *s, const esr_stream_id *stream,
                                   const esr_snapshot *snap)
{
	esr_status st = check_snapshot_call(s, stream);

	if (st != ESR_OK && st != ESR_ENOTSUP)
		return st;
	if (snap == NULL || snap->version == 0 || snap->version == ESR_VERSION_ANY ||
	    snap->format == 0 || (snap->data == NULL && snap->len > 0))
		return ESR_EINVAL;
	if (snap->len > ESR_SNAPSHOT_MAX)
		return ESR_ETOOBIG;
	return st != ESR_OK ? st : s->vt->snapshot_save(s->impl, stream, snap);
}

esr_status esr_store_snapshot_load(esr_store *s, const esr_stream_id *stream,
                                   esr_snapshot_fn fn, void *ctx)
{
	esr_status st = check_snapshot_call(s, stream);

	if (st != ESR_OK && st != ESR_ENOTSUP)
		return st;
	if (fn == NULL)
		return ESR_EINVAL;
	return st != ESR_OK ? st : s->vt->snapshot_load(s->impl, stream, fn, ctx);
}

esr_status esr__check_checkpoint_name(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0')
		return ESR_EINVAL;
	for (n = 0; name[n] != '\0'; n++) {
		unsigned char c = (unsigned char)name[n];
		if (n >= ESR_CHECKPOINT_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return ESR_EINVAL;
	}
	return ESR_OK;
}

esr_status esr_store_checkpoint_save(esr_store *s, const char *name, uint64_t position)
{
	if (s == NULL || esr__check_checkpoint_name(name) != ESR_OK || position == UINT64_MAX)
		return ESR_EINVAL;
	if (s->vt->checkpoint_save == NULL)
		return ESR_ENOTSUP;
	return s->vt->checkpoint_save(s->impl, name, position);
}

esr_status esr_store_checkpoint_load(esr_store *s, const char *name, uint64_t *position)
{
	uint64_t loaded = 0;
	esr_status st;

	if (s == NULL || position == NULL || esr__check_checkpoint_name(name) != ESR_OK)
		return ESR_EINVAL;
	if (s->vt->checkpoint_load == NULL)
		return ESR_ENOTSUP;
	if ((st = s->vt->checkpoint_load(s->impl, name, &loaded)) == ESR_OK)
		*position = loaded; /* written only on success */
	return st;
}

int esr__store_has_checkpoints(const esr_store *s)
{
	return s->vt->checkpoint_save != NULL;
}
