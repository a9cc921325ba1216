/*
 * store/file/file_all.c: the file store's global order. docs/architecture.md
 * has the map.
 *
 * Positions are handed out under the queue lock in the order the writer
 * writes the appends, so the log holds them 1, 2, 3, ... without a gap. The
 * writer fills fs->all (position -> location) beside each stream's index and
 * publishes fs->all.committed with release after each append, exactly as it
 * publishes a stream's versions; global readers load it with acquire and
 * never read past it. A reader waiting at the head sleeps on a condition
 * variable the writer signals only when someone waits: once per batch, the
 * writer fences and loads `waiters`, and takes wait_lock only if it is not
 * zero, so a batch nobody waits for costs one fence, not a lock.
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "core/sync.h"
#include "store/file/file_internal.h"
#include "store/store_internal.h"

void esr__file_all_publish(struct esr__file_store *fs, uint64_t last)
{
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&fs->all.committed);
	ck_pr_store_64(&fs->all.committed, last);
}

/*
 * The writer stores `committed`, fences, then loads `waiters`; a waiter
 * stores `waiters`, fences, then loads `committed`. One of them sees the
 * other's store: either the waiter does not sleep, or the writer broadcasts,
 * and taking wait_lock for that waits until the waiter is inside its wait.
 */
void esr__file_all_wake(struct esr__file_store *fs)
{
	ck_pr_fence_memory();
	if (ck_pr_load_uint(&fs->waiters) == 0)
		return;
	pthread_mutex_lock(&fs->wait_lock);
	pthread_cond_broadcast(&fs->wait_cond);
	pthread_mutex_unlock(&fs->wait_lock);
}

esr_status esr__file_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                         void *ctx, uint64_t *next)
{
	struct esr__file_store *fs = impl;
	uint64_t last = esr__file_committed_of(&fs->all), pos;
	esr_status st = ESR_OK;
	uint8_t *buf = NULL;
	size_t cap = 0;

	*next = from;
	for (pos = from; pos <= last && pos - from < max && st == ESR_OK; pos++) {
		struct esr__rec r;
		char type[ESR_TYPE_NAME_MAX + 1];

		st = esr__file_read_record(fs, esr__file_index_get(&fs->all, pos), &buf, &cap, &r);
		if (st == ESR_OK && r.position != pos)
			st = ESR_ECORRUPT;
		if (st != ESR_OK)
			break;
		memcpy(type, r.type, r.type_len);
		type[r.type_len] = '\0';
		st = visit(ctx, &(esr_recorded_event){r.event, r.version, r.position,
		                                      {type, r.id, r.id_len}});
		if (st == ESR_OK)
			*next = pos + 1;
	}
	free(buf);
	return st;
}

esr_status esr__file_head(void *impl, uint64_t *position)
{
	*position = esr__file_committed_of(&((struct esr__file_store *)impl)->all);
	return ESR_OK;
}

esr_status esr__file_wait(void *impl, uint64_t after, unsigned timeout_ms)
{
	struct esr__file_store *fs = impl;

	/* esr__file_all_wake is the writer's side. */
	esr__store_wait_past(&fs->wait_lock, &fs->wait_cond, &fs->waiters, &fs->all.committed,
	                     after, timeout_ms);
	return ESR_OK;
}
