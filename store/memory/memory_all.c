/*
 * store/memory/memory_all.c: the memory store's reads in global order
 * (read_all, head, wait). The appenders' side, and why head is loaded with
 * acquire, is "The global order" in store/memory/memory.c; docs/architecture.md
 * has the map.
 */
#define _GNU_SOURCE /* syscall, for core/futex.h */
#include <ck_pr.h>
#include <stdint.h>
#include <time.h>

#include "core/futex.h"
#include "core/internal.h"
#include "core/sync.h"
#include "store/memory/memory_internal.h"

static uint64_t head_of(struct esr__memory_store *ms)
{
	uint64_t h = ck_pr_load_64(&ms->head);

	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&ms->head);
	return h;
}

/* The slot at position pos (1 <= pos <= a head the caller loaded). */
static struct esr__slot *seek(struct esr__memory_store *ms, uint64_t pos)
{
	uint64_t m = pos / ESR__MARK_EVERY;
	struct esr__slot *at = &ms->log_start, **block;

	if (m >= (uint64_t)ESR__MARK_BLOCKS * ESR__MARK_BLOCK)
		m = (uint64_t)ESR__MARK_BLOCKS * ESR__MARK_BLOCK - 1;
	for (; m > 0 && ms->marks != NULL; m--) {
		block = ck_pr_load_ptr(&ms->marks[m / ESR__MARK_BLOCK]);
		if (block != NULL && ck_pr_load_ptr(&block[m % ESR__MARK_BLOCK]) != NULL) {
			at = ck_pr_load_ptr(&block[m % ESR__MARK_BLOCK]);
			break;
		}
	}
	while (at->position < pos)
		at = ck_pr_load_ptr(&at->gnext);
	return at;
}

esr_status esr__memory_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                                void *ctx, uint64_t *next)
{
	struct esr__memory_store *ms = impl;
	uint64_t head = head_of(ms), pos;
	esr_recorded_event rec;
	struct esr__slot *slot;
	esr_status st;

	*next = from;
	if (from > head)
		return ESR_OK;
	slot = seek(ms, from);
	for (pos = from; pos <= head && pos - from < max; pos++) {
		struct esr__stream *s = slot->stream;
		rec = (esr_recorded_event){esr__memory_event(slot), slot->version, slot->position,
		                           {s->key.type, s->key.id, s->key.id_len}};
		if ((st = visit(ctx, &rec)) != ESR_OK)
			return st;
		*next = pos + 1;
		if (pos < head)
			slot = ck_pr_load_ptr(&slot->gnext);
	}
	return ESR_OK;
}

esr_status esr__memory_head(void *impl, uint64_t *position)
{
	*position = head_of(impl);
	return ESR_OK;
}

/* Sleep on head until it passes `after` or timeout_ms runs out. A wake the
 * appender misses (see link_batch, memory.c) costs at most one nap. */
esr_status esr__memory_wait(void *impl, uint64_t after, unsigned timeout_ms)
{
	static const struct timespec nap = {0, 1000000};
	struct esr__memory_store *ms = impl;
	uint64_t until = esr__now_ms() + timeout_ms, h;

	while ((h = head_of(ms)) <= after && esr__now_ms() < until) {
		ck_pr_inc_32(&ms->head_sleepers);
		ck_pr_fence_memory();
		if ((h = ck_pr_load_64(&ms->head)) <= after)
			esr__futex_wait(esr__futex_low_word(&ms->head), (uint32_t)h, &nap);
		ck_pr_dec_32(&ms->head_sleepers);
	}
	return ESR_OK;
}
