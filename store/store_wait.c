/*
 * store/store_wait.c: waiting until a store's head passes a position, for the
 * backends whose writers broadcast a condition variable after each batch
 * (store/file, store/pg). docs/architecture.md has the map.
 */
#include <ck_pr.h>
#include <pthread.h>
#include <time.h>

#include "core/internal.h"
#include "store/store_internal.h"

void esr__store_wait_past(pthread_mutex_t *lock, pthread_cond_t *cond, unsigned *waiters,
                          const uint64_t *head, uint64_t after, unsigned timeout_ms)
{
	struct timespec until;

	esr__deadline(&until, timeout_ms);
	pthread_mutex_lock(lock);
	ck_pr_store_uint(waiters, ck_pr_load_uint(waiters) + 1);
	/* Pairs with the writer's fence between raising *head and loading
	 * *waiters: one of the two sees the other's store, so either this wait
	 * sees the new head or the writer broadcasts (and taking `lock` for that
	 * waits until this thread is inside pthread_cond_timedwait). */
	ck_pr_fence_memory();
	while (ck_pr_load_64(head) <= after && pthread_cond_timedwait(cond, lock, &until) == 0)
		;
	ck_pr_store_uint(waiters, ck_pr_load_uint(waiters) - 1);
	pthread_mutex_unlock(lock);
}
