/*
 * runtime/runtime_internal.h: the runtime handle's insides, which every part
 * of the runtime reaches through its actors and workers. Each part's own
 * declarations are in its header (actor.h, ticket.h, scheduler.h, snapshot.h,
 * passivate.h). See docs/architecture.md for the path of a command.
 */
#ifndef ESR_RUNTIME_INTERNAL_H
#define ESR_RUNTIME_INTERNAL_H

#include <ck_epoch.h>
#include <pthread.h>
#include <stdint.h>

#include "core/internal.h"
#include "core/keyset.h"
#include "core/sync.h"
#include "esr/esr.h"
#include "runtime/scheduler.h"
#include "runtime/snapshot.h"
#include "runtime/types.h"

/* Counters submitters keep, striped by thread to avoid one hot line
 * (ck_pr increments: threads may share a stripe; statistics, no ordering). */
#define ESR__STRIPES 16
struct esr__stripe {
	uint64_t submitted, mailbox_full, created, queries;
} CK_CC_CACHELINE;

struct esr_runtime {
	esr_runtime_config cfg;
	esr_store *store;
	struct esr__types types;
	struct esr__keyset *actors;

	/* the workers' run queues are in workers[] (scheduler.c) */
	uint32_t sleepers; /* workers asleep on their queues: a hint */
	int running;

	/* room in full mailboxes, for ESR_OVERFLOW_BLOCK submitters */
	pthread_mutex_t room_lock;
	pthread_cond_t room_cond;
	uint32_t room_waiters;

	/* lifecycle */
	uint32_t stopping;
	int stopped;          /* everything but the handle is freed */
	unsigned up;          /* what start has set up, for teardown (runtime.c) */
	uint32_t submitting;  /* submit calls past the stopping check */
	uint64_t outstanding; /* accepted commands not yet completed */
	uint32_t handing;     /* store threads inside a hand-over's push (actor.c) */
	uint32_t handles;     /* the caller's (until destroy) and one per open reference */
	pthread_mutex_t idle_lock;
	pthread_cond_t idle_cond;

	/* spare emitters, for workers whose own left with a suspended actor */
	pthread_mutex_t spare_lock;
	struct spare *spares;

	/* passivation (passivate.c) */
	ck_epoch_t epoch;
	pthread_key_t epoch_key;
	pthread_mutex_t records_lock;
	struct record *records;
	pthread_t janitor;
	int janitor_started;
	int janitor_stop;
	pthread_mutex_t janitor_lock;
	pthread_cond_t janitor_cond;
	uint64_t passivations; /* ck_pr_add by the janitor; statistics, no ordering */

	struct esr__snapper snapper;

	struct esr__stripe stripes[ESR__STRIPES];
	unsigned nworkers;
	struct esr__worker workers[];
};

/*
 * The submit window. esr__window_open counts the caller in `submitting`,
 * fences, then checks `stopping` (esr_runtime_stop does the mirror image);
 * it returns 0 if the runtime is stopping. Until the matching
 * esr__window_close (due whatever open returned) the registry, the types and
 * the workers stay alive.
 */
static inline int esr__window_open(struct esr_runtime *rt)
{
	/* Store-buffering pair with esr_runtime_stop (store stopping, fence,
	 * load submitting): the fence orders our increment before our load, so
	 * either we see stopping, or stop sees us and waits. An atomic before a
	 * load needs only fence_atomic_load (free on x86, whose locked
	 * increment is already a full barrier), not a full fence per submit. */
	ck_pr_inc_32(&rt->submitting);
	ck_pr_fence_atomic_load();
	return !ck_pr_load_32(&rt->stopping);
}

static inline void esr__window_close(struct esr_runtime *rt)
{
	/* Release: stop frees what this window used once it sees the count at 0. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&rt->submitting);
	ck_pr_dec_32(&rt->submitting);
}

/* Drop one of rt->handles; the last frees the handle (stop has run by then:
 * destroy stops before it drops the caller's). */
void esr__runtime_put(struct esr_runtime *rt);

/* One line to the host's warn hook, if it set one:
 * "esr: <what>: type=T id=I: <why>", <why> printf-formatted. */
void esr__warn(struct esr_runtime *rt, const char *type, const void *id, size_t id_len,
               const char *what, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#endif /* ESR_RUNTIME_INTERNAL_H */
