/*
 * store/memory/memory_all.c: the memory store's global order. Appenders
 * take positions and publish their events in it; readers (read_all, head,
 * wait) follow it. docs/architecture.md has the map.
 *
 * The order is an index from position to slot: order[p >> SHIFT] is a block
 * of slot pointers, NULL until made, and a pointer in it is NULL until its
 * event is readable. No lock is taken and no appender waits for another:
 *
 *   take     An appender takes its batch's n positions with one
 *            fetch-and-add on `taken`, in its stream's turn (after the
 *            stream's earlier batches were published, memory.c), so a
 *            stream's events get positions in version order. Positions are
 *            handed out without gaps; that is the append's one store-wide
 *            step.
 *   put      It writes each slot's position, then stores the slot's address
 *            at its position with release order: a reader that loads a
 *            non-NULL pointer with acquire sees the slot whole.
 *   follow   A reader reads positions in order and stops at the first NULL,
 *            so it never passes a position that is still being put, and
 *            there are no gaps. `head`, the highest position up to which
 *            everything is readable, is moved on by the readers themselves
 *            (head_of: from the last head, as far as the pointers go, then a
 *            CAS that only raises it); appenders never touch it.
 *
 * Earlier, a spinlock handed out positions and linked each batch into one
 * list; every append in the process passed it, and an appender descheduled
 * while holding it stopped all others (`perf annotate` of the counter
 * workload at 10 000 aggregates: most of the append's time in the lock's
 * xchg and the spin behind it). Now a descheduled appender holds up only
 * the readers, at its own positions.
 *
 * Blocks: block 0 is made at open; an appender whose batch passes the
 * middle of a block makes the next one (one at a time, `order_growing`),
 * half a block of positions before anyone needs it. An appender that finds
 * its block missing all the same (the earlier allocation failed) makes it
 * itself and, since its positions are taken and readers wait for them,
 * retries until memory is found.
 *
 * Waking: esr_store_wait sleeps on `head`. An appender wakes the sleepers
 * after its put if it sees one counted in `head_sleepers`; it does not fence
 * between its stores and that load, so a wake can be missed, and a sleeper
 * therefore naps at most a millisecond before it looks again.
 */
#define _GNU_SOURCE /* syscall, for core/futex.h */
#include <ck_pr.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/futex.h"
#include "core/internal.h"
#include "core/sync.h"
#include "store/memory/memory_internal.h"

#define MASK (ESR__ORDER_BLOCK - 1)

esr_status esr__memory_order_open(struct esr__memory_store *ms)
{
	if ((ms->order = calloc(ESR__ORDER_BLOCKS, sizeof *ms->order)) == NULL)
		return ESR_ENOMEM;
	if ((ms->order[0] = calloc(ESR__ORDER_BLOCK, sizeof **ms->order)) == NULL) {
		free(ms->order);
		ms->order = NULL;
		return ESR_ENOMEM;
	}
	return ESR_OK;
}

void esr__memory_order_close(struct esr__memory_store *ms)
{
	size_t b;

	for (b = 0; ms->order != NULL && b < ESR__ORDER_BLOCKS; b++)
		free(ms->order[b]);
	free(ms->order);
	ms->order = NULL;
}

/* Block b, or NULL if it is not made yet. The block's zeros were fenced
 * before its pointer was stored (make_block); we depend on the pointer. */
static struct esr__slot **block_of(struct esr__memory_store *ms, uint64_t b)
{
	struct esr__slot **block;

	if (b >= ESR__ORDER_BLOCKS)
		return NULL;
	block = ck_pr_load_ptr(&ms->order[b]);
	ESR_TSAN_ACQUIRE(block);
	return block;
}

/* Make block b if it is missing and no other appender is making one; 0 if
 * it exists afterwards. */
static int make_block(struct esr__memory_store *ms, uint64_t b)
{
	struct esr__slot **block;

	if (b >= ESR__ORDER_BLOCKS)
		return -1;
	if (block_of(ms, b) != NULL)
		return 0;
	if (!ck_pr_cas_int(&ms->order_growing, 0, 1))
		return -1;
	if (block_of(ms, b) == NULL &&
	    (block = calloc(ESR__ORDER_BLOCK, sizeof *block)) != NULL) {
		ck_pr_fence_store(); /* the zeros before the pointer */
		ESR_TSAN_RELEASE(block);
		ck_pr_store_ptr(&ms->order[b], block);
	}
	ck_pr_store_int(&ms->order_growing, 0);
	return block_of(ms, b) != NULL ? 0 : -1;
}

/* The block position p goes in, made here if the one made ahead is missing:
 * p is taken, so this waits for memory rather than fail. */
static struct esr__slot **block_for(struct esr__memory_store *ms, uint64_t p)
{
	static const struct timespec pause = {0, 1000000};
	struct esr__slot **block;

	while ((block = block_of(ms, p >> ESR__ORDER_SHIFT)) == NULL)
		if (make_block(ms, p >> ESR__ORDER_SHIFT) != 0)
			nanosleep(&pause, NULL);
	return block;
}

uint64_t esr__memory_order(struct esr__memory_store *ms, struct esr__chunk *c, uint64_t first,
                           size_t n)
{
	uint64_t pos = ck_pr_faa_64(&ms->taken, n) + 1, v = first, last = pos + n - 1;
	struct esr__slot **block = block_for(ms, pos), *slot;
	size_t i;

	for (i = 0; i < n; i++, v++) {
		while (v >= c->first + c->cap)
			c = ck_pr_load_ptr(&c->next); /* linked before the versions were reserved */
		if (((pos + i) & MASK) == 0)
			block = block_for(ms, pos + i);
		slot = &c->slots[v - c->first];
		slot->position = pos + i;
		ck_pr_fence_release(); /* the slot, then its pointer */
		ESR_TSAN_RELEASE(slot);
		ck_pr_store_ptr(&block[(pos + i) & MASK], slot);
	}
	/* Past the middle of a block: the next one, if nobody made it yet. */
	if ((last & MASK) >= ESR__ORDER_BLOCK / 2)
		(void)make_block(ms, (last >> ESR__ORDER_SHIFT) + 1);
	if (ck_pr_load_32(&ms->head_sleepers) != 0)
		esr__futex_wake_all(esr__futex_low_word(&ms->head));
	return pos;
}

/* The slot at position p if it is readable, else NULL. Acquire: the put's
 * release ordered the slot's contents before the pointer. */
static const struct esr__slot *slot_at(struct esr__memory_store *ms, uint64_t p)
{
	struct esr__slot **block = block_of(ms, p >> ESR__ORDER_SHIFT);
	struct esr__slot *slot;

	if (block == NULL)
		return NULL;
	slot = ck_pr_load_ptr(&block[p & MASK]);
	ck_pr_fence_acquire();
	if (slot != NULL)
		ESR_TSAN_ACQUIRE(slot);
	return slot;
}

/* The highest position up to which every event is readable; raises `head`
 * to it for the next reader. */
static uint64_t head_of(struct esr__memory_store *ms)
{
	uint64_t seen = ck_pr_load_64(&ms->head), h = seen;

	while (slot_at(ms, h + 1) != NULL)
		h++;
	while (h > seen && !ck_pr_cas_64_value(&ms->head, seen, h, &seen))
		;
	return h > seen ? h : seen;
}

esr_status esr__memory_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                                void *ctx, uint64_t *next)
{
	struct esr__memory_store *ms = impl;
	const struct esr__slot *slot;
	esr_recorded_event rec;
	esr_status st;
	uint64_t pos;

	*next = from;
	for (pos = from; pos - from < max && (slot = slot_at(ms, pos)) != NULL; pos++) {
		const struct esr__stream *s = slot->stream;
		rec = (esr_recorded_event){esr__memory_event(slot), slot->version, slot->position,
		                           {s->key.type, s->key.id, s->key.id_len}};
		if ((st = visit(ctx, &rec)) != ESR_OK)
			return st;
		*next = pos + 1;
	}
	return ESR_OK;
}

esr_status esr__memory_head(void *impl, uint64_t *position)
{
	*position = head_of(impl);
	return ESR_OK;
}

/* Sleep on head until it passes `after` or timeout_ms runs out. A wake the
 * appender misses (see esr__memory_order) costs at most one nap. */
esr_status esr__memory_wait(void *impl, uint64_t after, unsigned timeout_ms)
{
	static const struct timespec nap = {0, 1000000};
	struct esr__memory_store *ms = impl;
	uint64_t until = esr__now_ms() + timeout_ms, h;

	while (head_of(ms) <= after && esr__now_ms() < until) {
		ck_pr_inc_32(&ms->head_sleepers);
		ck_pr_fence_memory();
		h = ck_pr_load_64(&ms->head);
		if (head_of(ms) <= after)
			esr__futex_wait(esr__futex_low_word(&ms->head), (uint32_t)h, &nap);
		ck_pr_dec_32(&ms->head_sleepers);
	}
	return ESR_OK;
}
