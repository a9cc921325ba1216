/*
 * runtime/scheduler.h: the workers, their run queues, and the spare emitters
 * (runtime/scheduler.c). See docs/architecture.md for the path of a command.
 */
#ifndef ESR_RUNTIME_SCHEDULER_H
#define ESR_RUNTIME_SCHEDULER_H

#include <pthread.h>
#include <stdint.h>

#include "core/sync.h"
#include "esr/esr.h"
#include "runtime/actor.h"
#include "runtime/ticket.h"

struct esr_runtime;

/*
 * Counters one worker keeps alone, with plain increments (no atomic on the
 * command path). esr_runtime_stats_get reads them with ck_pr_load_64 from
 * another thread: each value is whole (64-bit aligned loads) but may be a few
 * commands old, which is all a stats snapshot promises.
 */
struct esr__worker_counters {
	uint64_t completed, rejected, conflicts, retries, exhausted, activations, appends;
	uint64_t duplicates, queries;
	uint64_t snapshots_loaded, snapshots_ignored, events_replayed;
};

/*
 * One worker's run queue: an intrusive multi-producer queue of actors, linked
 * through run_next (scheduler.c). Pushers (submitters, workers, a store's
 * completion thread) never lock: one fetch-and-add on `count` and one swap
 * on `in`. Takers (the owner, and an idle worker stealing half) hold `lock`,
 * which makes them the queue's single consumer in turn and is also the
 * owner's sleeping lock.
 * `count` is the actors pushed and not yet taken, a peek for spinning, the
 * steal scan and the batch check in actor.c; `sleeping` is written under the
 * lock; `busy` only by the owner, without the lock, and read only as a hint.
 */
struct esr__runq {
	/* The pushers' line: each push writes `in` and `count` and reads
	 * the owner's two flags. */
	struct esr__actor *in;     /* last pushed (the stub when empty) */
	uint32_t count;
	uint32_t sleeping;         /* the owner is (about to be) in cond_wait */
	uint32_t busy;             /* the owner runs actors (a hint, the owner's stores) */
	/* The takers' line, under `lock`. */
	pthread_mutex_t lock CK_CC_CACHELINE;
	pthread_cond_t cond;       /* the owner sleeps on it */
	struct esr__actor *out;    /* next to take (the stub when nothing was pushed) */
	/* Keeps the queue non-empty for the swap: only its run_next is used. */
	struct esr__actor stub;
} CK_CC_CACHELINE;

/* Commands of one actor a worker decides before it gives back their mailbox
 * slots and completes their tickets (actor.c, finish). */
#define ESR__FINISH_MAX 16

struct esr__worker {
	struct esr__runq q;   /* first: its own cache lines */
	struct esr_runtime *rt;
	unsigned index;
	/* Actors taken from q, to run next, linked through run_next, the
	 * last and how many: the owner's alone (scheduler.c). */
	struct esr__actor *local, *local_last;
	unsigned nlocal;
	pthread_t thread;
	esr_emitter *em; /* NULL while its emitter rides with a suspended actor */
	uint64_t unsettled; /* completed, still counted in outstanding (scheduler.c) */
	/* The commands of the actor being run whose outcomes complete()
	 * decided, for finish() to complete once their mailbox slots are given
	 * back, all with one atomic (actor.c). Those with a conflict report
	 * share `conflict`, one turn's: they are finished before the next turn. */
	struct esr__decided {
		esr_ticket *ticket;
		esr_status status;
		int rejection, duplicate;
		uint32_t appended, attempts;
		uint64_t version;
	} decided[ESR__FINISH_MAX];
	unsigned ndecided;
	esr_conflict conflict; /* the decided ones' report, if they conflicted */
	int conflicted;        /* conflict holds a report not finished yet */
	void *scratch;         /* a copy of the state a turn's later commands are */
	size_t scratch_cap;    /* decided on (actor.c, runtime/turn.h) */
	struct esr__ticket_debt debt; /* paid when outstanding is settled */
	unsigned spin_limit; /* idle spins before sleeping (scheduler.c) */
	struct esr__worker_counters c;
} CK_CC_CACHELINE;

/*
 * Queue actor a on worker `to`'s run queue (to < rt->cfg.workers).
 *
 * Lifetime: the push still reads rt after the actor is reachable, and from
 * then on a worker can finish the last command and let a stop free rt. So a
 * pusher must be something stop waits for: a submitter (inside the submit
 * window), a worker (joined by stop), or a thread counted in rt->handing
 * around the push (a store's completion thread, actor.c `appended`).
 */
void esr__runq_push(struct esr_runtime *rt, unsigned to, struct esr__actor *a);
/* Queue the n actors linked head..tail through run_next on worker `to`, in
 * one trip; the same rule for who may call it. */
void esr__runq_push_list(struct esr_runtime *rt, unsigned to, struct esr__actor *head,
                         struct esr__actor *tail, unsigned n);
/* The worker an actor whose key hashes to `hash` is queued on by default. */
static inline unsigned esr__home_of(const struct esr_runtime_config *cfg, uint64_t hash)
{
	return (unsigned)((hash >> 32) % cfg->workers);
}
/* Set up and tear down every worker's run queue (before any worker starts,
 * after the last has stopped). */
void esr__runqs_init(struct esr_runtime *rt);
void esr__runqs_destroy(struct esr_runtime *rt);
esr_status esr__workers_start(struct esr_runtime *rt);
void esr__workers_stop(struct esr_runtime *rt);
esr_emitter *esr__spare_get(struct esr_runtime *rt);
void esr__spare_put(struct esr_runtime *rt, esr_emitter *em);
void esr__spares_free(struct esr_runtime *rt);

#endif /* ESR_RUNTIME_SCHEDULER_H */
