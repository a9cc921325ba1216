/*
 * store/memory/memory.c: the embedded in-memory event store at run time:
 * streams, appends and per-stream reads (reads in global order are in
 * memory_all.c, snapshots and checkpoints in memory_snapshot.c, the shared
 * structures in memory_internal.h). docs/architecture.md has the map.
 *
 * Finding a stream
 *   Streams live in a keyset (core/keyset.c): shards of Concurrency Kit ck_hs
 *   hash sets, whose lookups are lock-free, so the hot path (append to or read
 *   from an existing stream) never takes a lock. Only creating a stream takes
 *   one shard's lock, because ck_hs allows one writer at a time; sharding keeps
 *   creations of different streams from queueing on one lock. Streams are
 *   never removed, so a stream found stays valid until the store closes.
 *
 * One stream
 *   Events live in a chain of chunks whose capacity doubles (CHUNK_FIRST,
 *   2*CHUNK_FIRST, ... up to CHUNK_MAX). A chunk never moves once linked, so
 *   readers walk the chain without any reclamation protocol; chunks are cut
 *   from the store's arena (memory_arena.c) and freed with it at close.
 *   Two counters:
 *     reserved   the versions writers have claimed: ck_pr_cas_64 moves it from
 *                `expected` to `expected + n`. That CAS is the linearization
 *                point of an append and its optimistic version check in one.
 *     committed  the versions readers may see. A writer fills its slots, waits
 *                until committed == its first version - 1 (earlier batches are
 *                visible), then publishes committed = its last version.
 *   ESR_VERSION_ANY appends take their slots with the same CAS, retried on
 *   change, rather than a fetch-and-add: a writer must allocate its chunks
 *   *before* it owns any slots, because a reservation can never be undone once
 *   later writers have reserved behind it, and only a CAS lets it learn its
 *   slot range before committing to it. An allocation failure therefore always
 *   happens before the reservation and leaves no hole.
 *
 * Memory ordering (each pair is also told to ThreadSanitizer, core/sync.h)
 *   - Slot contents -> readers: the writer's stores to its slots come before
 *     ck_pr_fence_release() and the store to `committed`; a reader loads
 *     `committed`, issues ck_pr_fence_acquire(), and reads only slots at or
 *     below what it loaded. A reader therefore never sees part of a batch.
 *   - Batch -> next batch: a writer waiting for its turn loads `committed`
 *     and issues ck_pr_fence_acquire() before publishing, so publications form
 *     one chain and a reader that sees version v sees every version below it.
 *   - New chunk -> other threads: the chunk is initialized, then
 *     ck_pr_fence_store(), then linked by ck_pr_cas_ptr on `next`; users load
 *     `next` and depend on the pointer.
 *   - New stream -> other threads: initialized, then published by
 *     esr__keyset_insert (fence, then ck_hs_put); readers depend on the pointer.
 *
 * The global order
 *   memory_all.c hands out positions and publishes them. A writer asks for
 *   its batch's positions after its turn in its stream has come (so a
 *   stream's events get positions in version order) and before it
 *   publishes the stream (so a stream reader sees a position in every slot
 *   it reads): one fetch-and-add, then a release store per event into the
 *   index, with no lock and no wait for writers of other streams.
 *
 * Progress: reservation is lock-free. Publication waits for writers that
 * reserved earlier versions of the same stream; each of those holds every
 * resource it needs and only copies events, so the wait is short, but a writer
 * descheduled in that window delays the stream's later writers (never other
 * streams, never readers). Waiters spin, then yield, then sleep on a futex
 * over `committed`, so that with more threads than cores they give their CPU
 * to the descheduled writer instead of taking turns spinning on it. A sleeper
 * counts itself in `sleepers`, fences, re-reads `committed` and sleeps; a
 * publisher stores `committed` and wakes if it then sees a sleeper. The
 * publisher does not fence between that store and that load: a full fence
 * there waits for the slot stores just made, cache misses on a cold stream,
 * and was a third of the append's time (one writer per stream never sleeps,
 * yet paid it on every append). Without it both sides can miss each other,
 * so a sleeper never sleeps longer than SLEEP_NS before it looks again: a
 * missed wake costs at most that, and only when writers share a stream.
 */
#define _GNU_SOURCE /* syscall, for core/futex.h */
#include <ck_backoff.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/futex.h"
#include "core/internal.h"
#include "core/keyset.h"
#include "core/sync.h"
#include "store/memory/memory_internal.h"
#include "store/store_internal.h"

#define CHUNK_FIRST 2 /* most streams are short; longer ones double */
/* Longest a publication waiter sleeps before it looks again (see above). */
#define SLEEP_NS 200000
#define CHUNK_MAX 65536
/* Slots faulted in at a time, ahead of a long chunk's writer (fault_in). */
#define FAULT_IN 2048
/* Highest version a stream may reach; ESR_VERSION_ANY is reserved. */
#define VERSION_MAX (ESR_VERSION_ANY - 1)

/* --- streams and chunks ------------------------------------------------- */

void esr__memory_key(const struct esr__memory_store *ms, const esr_stream_id *sid,
                     struct esr__key *k)
{
	esr__keyset_key(ms->streams, sid->type, sid->id, sid->id_len, k);
}

static struct esr__chunk *chunk_new(struct esr__memory_store *ms, uint64_t first, uint64_t cap)
{
	struct esr__chunk *c = esr__arena_alloc(&ms->chunks, sizeof *c + cap * sizeof(struct esr__slot));

	if (c != NULL) {
		c->next = NULL;
		c->first = first;
		c->cap = cap;
		/* Only long chunks are faulted in ahead (fault_in). */
		c->ready = cap > FAULT_IN ? first : first + cap;
	}
	return c;
}

/*
 * The writer of version v of chunk c, when v is past what is faulted in:
 * the next FAULT_IN slots, in one call. A long chunk is filled in order,
 * so this saves a page fault per 4 KiB (with one aggregate, page faults in
 * the append had been a sixth of all samples, `perf record -e cpu-clock
 * -g` on the counter workload) and never maps more than a window ahead of
 * the last event. Short chunks are left to the arena, which faults each
 * thread's slab in 64 KiB ahead of where it cuts them (memory_arena.c). Two
 * writers of one stream may both fault a window in: harmless.
 */
static void fault_in(struct esr__chunk *c, uint64_t v)
{
	uint64_t end = v + FAULT_IN < c->first + c->cap ? v + FAULT_IN : c->first + c->cap;

	esr__arena_fault_in(&c->slots[v - c->first], (size_t)(end - v) * sizeof(struct esr__slot));
	ck_pr_store_64(&c->ready, end);
}

/* A stream whose first chunk holds at least `n` events. */
static struct esr__stream *stream_new(struct esr__memory_store *ms, const struct esr__key *k,
                                      size_t n)
{
	size_t size = sizeof(struct esr__stream) + esr__key_storage(k);
	struct esr__stream *s = NULL;
	uint64_t cap = CHUNK_FIRST;

	while (cap < n)
		cap *= 2;
	if (posix_memalign((void **)&s, ESR__STREAM_ALIGN, size) != 0)
		return NULL;
	if ((s->head = chunk_new(ms, 1, cap)) == NULL) {
		free(s);
		return NULL;
	}
	esr__key_copy(&s->key, k, s + 1);
	s->reserved = 0;
	s->committed = 0;
	s->sleepers = 0;
	s->tail = s->head;
	s->snap = NULL;
	s->ids = NULL;
	return s;
}

/* Frees a stream no thread is using any more, with every batch in it (its
 * chunks go with the store's arena). */
static void stream_free(struct esr__stream *s)
{
	struct esr__chunk *c;
	uint64_t v;

	if (s == NULL)
		return;
	for (c = s->head; c != NULL; c = c->next)
		for (v = c->first; v < c->first + c->cap && v <= s->committed; v++)
			if (c->slots[v - c->first].len_flags & ESR__SLOT_BLOCK)
				free((void *)esr__slot_block_part(&c->slots[v - c->first]));
	free(s->snap);
	esr__memory_ids_free(s->ids);
	free(s);
}

/* The chunk after c, which must be linked. */
static struct esr__chunk *chunk_next(struct esr__chunk *c)
{
	struct esr__chunk *next = ck_pr_load_ptr(&c->next);

	ESR_TSAN_ACQUIRE(next);
	return next;
}

/* Link and return the chunk after c, allocating it if nobody has yet. */
static struct esr__chunk *chunk_grow(struct esr__memory_store *ms, struct esr__chunk *c)
{
	struct esr__chunk *next = ck_pr_load_ptr(&c->next), *fresh;

	if (next != NULL) {
		ESR_TSAN_ACQUIRE(next);
		return next;
	}
	fresh = chunk_new(ms, c->first + c->cap, c->cap < CHUNK_MAX ? c->cap * 2 : CHUNK_MAX);
	if (fresh == NULL)
		return NULL;
	ck_pr_fence_store();
	ESR_TSAN_RELEASE(fresh);
	if (ck_pr_cas_ptr(&c->next, NULL, fresh))
		return fresh;
	/* Another writer linked one first: ours stays unused in the arena
	 * (only writers of one stream racing each other get here). */
	return chunk_next(c);
}

/* A writer's starting point: the tail hint if it is not past v, else head. */
static struct esr__chunk *writer_start(struct esr__stream *s, uint64_t v)
{
	struct esr__chunk *c = ck_pr_load_ptr(&s->tail);

	ESR_TSAN_ACQUIRE(c);
	return c->first <= v ? c : s->head;
}

/* Make sure slots up to version `last` exist. Runs before reserving them. */
static esr_status ensure_slots(struct esr__memory_store *ms, struct esr__stream *s,
                               uint64_t last)
{
	struct esr__chunk *hint = ck_pr_load_ptr(&s->tail), *c;

	ESR_TSAN_ACQUIRE(hint);
	for (c = hint; last >= c->first + c->cap;)
		if ((c = chunk_grow(ms, c)) == NULL)
			return ESR_ENOMEM;
	if (c != hint) /* losing this race only leaves the hint further back */
		ck_pr_cas_ptr(&s->tail, hint, c);
	return ESR_OK;
}

/* --- append ------------------------------------------------------------- */

/*
 * Wait until `committed` reaches v, then return it. Acquire: what the writers
 * of versions up to v stored is visible afterwards.
 */
static uint64_t await_committed(struct esr__stream *s, uint64_t v)
{
	static const struct timespec nap = {0, SLEEP_NS};
	unsigned spins = 0;
	uint64_t c;

	while ((c = ck_pr_load_64(&s->committed)) < v) {
		if (++spins < 128) {
			ck_pr_stall();
		} else if (spins < 160) {
			sched_yield(); /* the earlier writer may need this core */
		} else {
			ck_pr_inc_32(&s->sleepers);
			ck_pr_fence_memory();
			if ((c = ck_pr_load_64(&s->committed)) < v)
				esr__futex_wait(esr__futex_low_word(&s->committed), (uint32_t)c,
				                &nap);
			ck_pr_dec_32(&s->sleepers);
		}
	}
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&s->committed);
	return c;
}

/* Make versions up to v visible, and wake any writer asleep on them. */
static void publish(struct esr__stream *s, uint64_t v)
{
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&s->committed);
	ck_pr_store_64(&s->committed, v);
	/* No fence: a sleeper this load misses wakes by itself within SLEEP_NS. */
	if (ck_pr_load_32(&s->sleepers) != 0)
		esr__futex_wake_all(esr__futex_low_word(&s->committed));
}

/*
 * Claim versions (start, start + n] with one CAS on `reserved`, after making
 * sure their slots exist. On ESR_ECONFLICT, *actual is the stream's version
 * once every append that had claimed versions is visible, so the caller's
 * catch-up read sees all of it.
 */
static esr_status reserve(struct esr__memory_store *ms, struct esr__stream *s,
                          uint64_t expected, size_t n, uint64_t *start, uint64_t *actual)
{
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	esr_status st;
	uint64_t at;

	for (;;) {
		at = ck_pr_load_64(&s->reserved);
		if (expected != ESR_VERSION_ANY && at != expected) {
			*actual = await_committed(s, at);
			return ESR_ECONFLICT;
		}
		if (at > VERSION_MAX - n)
			return ESR_ETOOBIG;
		if ((st = ensure_slots(ms, s, at + n)) != ESR_OK)
			return st;
		if (ck_pr_cas_64(&s->reserved, at, at + n)) {
			*start = at;
			return ESR_OK;
		}
		ck_backoff_eb(&backoff);
	}
}

/* Whether the event carries a correlation or causation id. */
static bool has_ids(const esr_metadata *m)
{
	static const esr_id128 none;

	return memcmp(&m->correlation_id, &none, sizeof none) != 0 ||
	       memcmp(&m->causation_id, &none, sizeof none) != 0;
}

/* What event e puts in its batch's block: its ids and payload, or only its
 * payload if that is too long for the slot, or nothing. */
static size_t block_bytes(const esr_event *e)
{
	if (has_ids(&e->meta))
		return ESR__IDS_BYTES + e->payload_len;
	return e->payload_len > ESR__INLINE_MAX ? e->payload_len : 0;
}

/* One allocation holds what a whole batch keeps out of its slots. */
static esr_status copy_payloads(const esr_event *events, size_t n, uint8_t **out)
{
	size_t i, k, total = 0;
	uint8_t *block;

	for (i = 0; i < n; i++)
		total += block_bytes(&events[i]);
	*out = NULL;
	if (total == 0)
		return ESR_OK;
	if ((block = malloc(total)) == NULL)
		return ESR_ENOMEM;
	for (i = 0, total = 0; i < n; total += k, i++) {
		if ((k = block_bytes(&events[i])) > events[i].payload_len) {
			memcpy(block + total, &events[i].meta.correlation_id, sizeof(esr_id128));
			memcpy(block + total + sizeof(esr_id128), &events[i].meta.causation_id,
			       sizeof(esr_id128));
		}
		if (k != 0 && events[i].payload_len != 0)
			memcpy(block + total + (k - events[i].payload_len), events[i].payload,
			       events[i].payload_len);
	}
	*out = block;
	return ESR_OK;
}

/*
 * Write the batch into its reserved slots, then publish it to readers.
 * cmds[i] (cmds NULL: none) is event i's command id record. Returns the
 * position of its first event.
 */
static uint64_t fill_and_publish(struct esr__memory_store *ms, struct esr__stream *s,
                                 uint64_t start, const esr_event *events, size_t n,
                                 uint8_t *block, struct esr__mem_cmd *const *cmds)
{
	struct esr__chunk *c = writer_start(s, start + 1), *c0;
	struct esr__slot *slot;
	size_t i, k, offset = 0;
	uint32_t len;
	uint64_t v, pos;

	for (c0 = c, i = 0; i < n; i++) {
		v = start + 1 + i;
		while (v >= c->first + c->cap)
			c = chunk_next(c);
		if (i == 0)
			c0 = c;
		if (v >= ck_pr_load_64(&c->ready))
			fault_in(c, v);
		slot = &c->slots[v - c->first];
		slot->type = events[i].type;
		slot->len_flags = len = events[i].payload_len;
		slot->timestamp_ns = events[i].meta.timestamp_ns;
		slot->cmd = cmds ? cmds[i] : NULL;
		slot->stream = s;
		slot->version = v;
		if ((k = block_bytes(&events[i])) != 0) { /* as copy_payloads laid it out */
			if (offset == 0) /* the block's start: freed through this slot */
				slot->len_flags |= ESR__SLOT_BLOCK;
			if (k > len)
				slot->len_flags |= ESR__SLOT_IDS;
			slot->len_flags |= ESR__SLOT_OUT;
			slot->payload.out = block + offset + (k - len);
			offset += k;
		} else if (len != 0) {
			memcpy(slot->payload.small, events[i].payload, len);
		}
	}
	await_committed(s, start);
	pos = esr__memory_order(ms, c0, start + 1, n);
	publish(s, start + n);
	return pos;
}

struct esr__stream *esr__memory_lookup(struct esr__memory_store *ms, const struct esr__key *k)
{
	return (struct esr__stream *)esr__keyset_get(ms->streams, k);
}

/* Insert a new stream for k, or find the one a racing writer inserted. */
static esr_status create(struct esr__memory_store *ms, const struct esr__key *k, size_t n,
                         struct esr__stream **out)
{
	struct esr__stream *fresh = stream_new(ms, k, n), *s;

	if (fresh == NULL)
		return ESR_ENOMEM;
	s = (struct esr__stream *)esr__keyset_insert(ms->streams, &fresh->key);
	if (s != fresh)
		stream_free(fresh);
	if (s == NULL)
		return ESR_ENOMEM;
	*out = s;
	return ESR_OK;
}

/* Appends with ids of up to this many events keep their bookkeeping on the
 * stack (an actor's turn is at most 64 commands, most of one event each). */
#define ESR__IDS_ON_STACK 64

/* Under the stream's id lock: the first run whose id is recorded, as
 * ESR_EDUPLICATE in r, or ESR_ECONFLICT first if the version check fails. */
static esr_status find_duplicate(struct esr__stream *s, struct esr__ids *ids,
                                 uint64_t expected, const esr_event *events, size_t n,
                                 esr_append_result *r)
{
	uint64_t first, last, at;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!esr__command_run_starts(events, i) ||
		    !esr__memory_ids_find(ids, &events[i].command_id, &first, &last))
			continue;
		at = ck_pr_load_64(&s->reserved);
		if (expected != ESR_VERSION_ANY && at != expected) {
			r->version = await_committed(s, at);
			return ESR_ECONFLICT;
		}
		r->duplicate_at = (uint32_t)i;
		r->recorded_first = first;
		r->version = last;
		return ESR_EDUPLICATE;
	}
	return ESR_OK;
}

/*
 * An append carrying command ids (see memory_ids.c): its records are made
 * before the lock, and each event's record noted for its slot, so that
 * nothing under it can fail after the claim. Consumes `block` on success.
 */
static esr_status append_ids(struct esr__memory_store *ms, struct esr__stream *s,
                             uint64_t expected, const esr_event *events, size_t n,
                             uint8_t *block, esr_append_result *r)
{
	struct esr__mem_cmd *rec_small[ESR__IDS_ON_STACK], *of_small[ESR__IDS_ON_STACK];
	struct esr__ids *ids = esr__memory_ids(s);
	struct esr__mem_cmd **rec = rec_small, **of = of_small, *cur = NULL;
	esr_status st = ESR_ENOMEM;
	uint64_t start;
	size_t i, r0 = 0;

	if (n > ESR__IDS_ON_STACK) { /* more than a turn's worth: rare */
		rec = malloc(n * sizeof *rec);
		of = malloc(n * sizeof *of);
	}
	if (rec != NULL)
		memset(rec, 0, n * sizeof *rec);
	if (ids == NULL || rec == NULL || of == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (esr__command_run_starts(events, i) && (cur = rec[i] = esr__memory_cmd_new(&events[i].command_id)) == NULL)
			goto out;
		of[i] = events[i].command_id.len != 0 ? cur : NULL;
	}
	esr__memory_ids_lock(ids);
	if ((st = find_duplicate(s, ids, expected, events, n, r)) == ESR_OK &&
	    (st = esr__memory_ids_reserve(ids, n) == 0 ? ESR_OK : ESR_ENOMEM) == ESR_OK &&
	    (st = reserve(ms, s, expected, n, &start, &r->version)) == ESR_OK) {
		r->position = fill_and_publish(ms, s, start, events, n, block, of);
		r->version = start + n;
		/* After the publication: whoever finds an id can read its events. */
		for (i = n; i-- > 0;) {
			if (events[i].command_id.len == 0)
				continue;
			if (i + 1 == n || !esr__command_id_equal(&events[i].command_id, &events[i + 1].command_id))
				r0 = i; /* the run's last event */
			if (rec[i] != NULL) {
				esr__memory_ids_add(ids, rec[i], start + 1 + i, start + 1 + r0);
				rec[i] = NULL;
			}
		}
	}
	esr__memory_ids_unlock(ids);
out:
	for (i = 0; rec != NULL && i < n; i++)
		free(rec[i]);
	if (rec != rec_small) {
		free(rec);
		free(of);
	}
	return st;
}

/* Append to stream s (or, s NULL, to the stream k names, created if need be). */
static esr_status append_to(struct esr__memory_store *ms, struct esr__stream *s,
                            const struct esr__key *k, uint64_t expected,
                            const esr_event *events, size_t n, esr_append_result *r)
{
	uint8_t *block;
	uint64_t start;
	esr_status st;

	/* Copy first: a failure here must not leave a new, empty stream behind. */
	if ((st = copy_payloads(events, n, &block)) != ESR_OK)
		return st;
	/* A new stream's first chunk holds the whole batch, so that a failure
	 * to grow cannot leave the stream behind, empty. */
	if (s == NULL && (st = create(ms, k, n, &s)) != ESR_OK) {
		free(block);
		return st;
	}
	if (esr__events_have_ids(events, n)) {
		st = append_ids(ms, s, expected, events, n, block, r);
	} else if ((st = reserve(ms, s, expected, n, &start, &r->version)) == ESR_OK) {
		r->position = fill_and_publish(ms, s, start, events, n, block, NULL);
		r->version = start + n;
	}
	if (st != ESR_OK)
		free(block);
	return st;
}

/* The memory store always completes inline. */
static void complete(esr_status st, esr_append_result *r, esr_append_cb done, void *ctx)
{
	r->status = st;
	if (st != ESR_OK && st != ESR_ECONFLICT && st != ESR_EDUPLICATE)
		r->version = 0;
	if (st != ESR_OK)
		r->position = 0;
	done(ctx, r);
}

static esr_status mem_append(void *impl, const esr_stream_id *sid,
                             uint64_t expected, const esr_event *events,
                             size_t n, esr_append_cb done, void *ctx)
{
	struct esr__memory_store *ms = impl;
	esr_append_result r = {0};
	struct esr__stream *s;
	struct esr__key k;
	esr_status st;

	esr__memory_key(ms, sid, &k);
	if ((s = esr__memory_lookup(ms, &k)) == NULL && expected != ESR_VERSION_ANY &&
	    expected != 0)
		st = ESR_ECONFLICT; /* an absent stream is at version 0 */
	else
		st = append_to(ms, s, &k, expected, events, n, &r);
	complete(st, &r, done, ctx);
	return ESR_OK;
}

esr_status esr__memory_resolve(void *impl, const esr_stream_id *sid, void **handle)
{
	struct esr__memory_store *ms = impl;
	struct esr__stream *s;
	struct esr__key k;
	esr_status st;

	esr__memory_key(ms, sid, &k);
	if ((s = esr__memory_lookup(ms, &k)) == NULL &&
	    (st = create(ms, &k, 0, &s)) != ESR_OK)
		return st;
	*handle = s;
	return ESR_OK;
}

/* See esr__store_prefetch: the stream's first line (everything an append
 * reads there), then the header of the chunk its next event goes to, then
 * that event's slot, for writing: a store to a cold slot would otherwise
 * still be draining when the append's locked instructions wait for it. Only
 * loads and hints: a stale tail or version merely hints the wrong line. */
static void mem_prefetch(void *impl, void *handle, int depth)
{
	struct esr__stream *s = handle;
	struct esr__chunk *c;
	uint64_t v;

	(void)impl;
	if (depth == 0) {
		__builtin_prefetch(s, 1, 3);
		return;
	}
	/* As writer_start: the chunk was published (fence, CAS) before any
	 * tail could point at it, and we depend on the pointer. */
	c = ck_pr_load_ptr(&s->tail);
	ESR_TSAN_ACQUIRE(c);
	if (depth == 1) {
		__builtin_prefetch(c, 0, 3);
		return;
	}
	v = ck_pr_load_64(&s->reserved) + 1;
	if (v >= c->first && v - c->first < c->cap)
		__builtin_prefetch(&c->slots[v - c->first], 1, 3); /* one line */
}

static esr_status mem_append_resolved(void *impl, void *handle, uint64_t expected,
                                      const esr_event *events, size_t n,
                                      esr_append_cb done, void *ctx)
{
	esr_append_result r = {0};
	esr_status st = append_to(impl, handle, NULL, expected, events, n, &r);

	complete(st, &r, done, ctx);
	return ESR_OK;
}

/* --- read and version ----------------------------------------------------- */

static uint64_t committed_of(const struct esr__stream *s)
{
	uint64_t v = ck_pr_load_64(&s->committed);

	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&s->committed);
	return v;
}

static esr_status mem_read(void *impl, const esr_stream_id *sid, uint64_t from,
                           esr_visit_fn visit, void *ctx)
{
	esr_recorded_event rec = {.stream = *sid};
	struct esr__stream *s;
	struct esr__chunk *c;
	esr_status st;
	uint64_t last;
	struct esr__key k;

	esr__memory_key(impl, sid, &k);
	if ((s = esr__memory_lookup(impl, &k)) == NULL)
		return ESR_OK;
	last = committed_of(s);
	c = s->head;
	for (rec.version = from ? from : 1; rec.version <= last; rec.version++) {
		while (rec.version >= c->first + c->cap)
			c = chunk_next(c);
		rec.event = esr__memory_event(&c->slots[rec.version - c->first]);
		rec.position = c->slots[rec.version - c->first].position;
		if ((st = visit(ctx, &rec)) != ESR_OK)
			return st;
	}
	return ESR_OK;
}

static esr_status mem_version(void *impl, const esr_stream_id *sid, uint64_t *version)
{
	struct esr__stream *s;
	struct esr__key k;

	esr__memory_key(impl, sid, &k);
	s = esr__memory_lookup(impl, &k);
	*version = s ? committed_of(s) : 0;
	return ESR_OK;
}

/* --- lifecycle ------------------------------------------------------------ */

static void free_stream(struct esr__key *k)
{
	stream_free((struct esr__stream *)k);
}

static void mem_destroy(void *impl)
{
	struct esr__memory_store *ms = impl;

	esr__keyset_destroy(ms->streams, free_stream);
	esr__arena_destroy(&ms->chunks);
	esr__memory_order_close(ms);
	esr__memory_checkpoints_free(ms);
	pthread_mutex_destroy(&ms->snap_lock);
	free(ms);
}

static const esr_store_vtable memory_vtable = {
	.vtable_version = ESR_STORE_VTABLE_VERSION,
	.name = "memory",
	.append = mem_append,
	.read = mem_read,
	.version = mem_version,
	.destroy = mem_destroy,
	.resolve = esr__memory_resolve,
	.append_resolved = mem_append_resolved,
	.read_all = esr__memory_read_all,
	.head = esr__memory_head,
	.wait = esr__memory_wait,
	.snapshot_save = esr__memory_snapshot_save,
	.snapshot_load = esr__memory_snapshot_load,
	.checkpoint_save = esr__memory_checkpoint_save,
	.checkpoint_load = esr__memory_checkpoint_load,
	.command = esr__memory_command,
};

esr_status esr_memory_store_open(esr_store **out)
{
	struct esr__memory_store *ms;
	esr_status st;

	if (out == NULL)
		return ESR_EINVAL;
	/* On a cache line: the global order's counters have lines of their own. */
	if (posix_memalign((void **)&ms, CK_MD_CACHELINE, sizeof *ms) != 0)
		return ESR_ENOMEM;
	memset(ms, 0, sizeof *ms);
	esr__arena_init(&ms->chunks);
	if (esr__memory_order_open(ms) != ESR_OK ||
	    (st = esr__keyset_create(&ms->streams)) != ESR_OK) {
		esr__memory_order_close(ms);
		esr__arena_destroy(&ms->chunks);
		free(ms);
		return ESR_ENOMEM;
	}
	pthread_mutex_init(&ms->snap_lock, NULL);
	if ((st = esr_store_create(&memory_vtable, ms, out)) != ESR_OK)
		mem_destroy(ms);
	else {
		esr__store_set_prefetch(*out, mem_prefetch);
		esr__store_set_inline(*out);
	}
	return st;
}
