/*
 * runtime/runtime_internal.h: the actor runtime's insides, shared by
 * ticket.c, actor.c, scheduler.c, passivate.c and runtime.c.
 *
 * The path of one command:
 *   esr_submit (runtime.c) -> registry lookup or activation -> claim a slot in
 *   the actor's `pending` count -> push the ticket on the actor's mailbox ->
 *   if pending went 0 -> 1, push the actor on the run queue (scheduler.c) ->
 *   a worker pops the actor and runs up to `batch` tickets (actor.c): decide,
 *   append (possibly completing later: the actor is then suspended and the
 *   worker moves on), commit or catch up and retry -> decrement pending ->
 *   complete the ticket (ticket.c), so that a completion seen means a slot
 *   free; at 0 the actor goes idle, otherwise it goes back on the run queue
 *   once its batch is used up.
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
#include "runtime/emitter.h"
#include "runtime/exec.h"
#include "runtime/mpsc.h"
#include "runtime/types.h"

/* --- tickets ------------------------------------------------------------- */

/*
 * Tickets come in blocks: a batch submit takes one allocation for all its
 * commands instead of one each, and the block is freed when its last ticket
 * is (`live` counts them down). A ticket completed through a callback never
 * holds its result, so callback blocks leave `result` out of every ticket.
 */
struct esr__ticket_block {
	uint32_t live;   /* tickets not yet freed, + 1 while the submitter fills it */
	uint32_t used;   /* tickets handed out: the submitting thread's alone */
	uint32_t n;      /* tickets the block holds */
	uint32_t stride; /* bytes per ticket */
	/* n tickets follow, max_align_t aligned */
};

struct esr_ticket {
	struct esr__mpsc_node node; /* first: mailboxes link tickets */
	const void *command;
	esr_ticket_cb cb; /* NULL: a caller holds the ticket and waits or polls */
	void *cb_ctx;
	struct esr__ticket_block *block;
	uint32_t state;   /* TICKET_PENDING / _SLEEPER / _DONE; a futex word */
	uint32_t refs;    /* runtime + caller; the last release frees */
	esr_status status;
	esr_result result; /* absent from callback tickets: keep it last */
};

/* A block of n tickets: callback ones (`waitable` 0) or waitable ones. */
struct esr__ticket_block *esr__tickets_alloc(size_t n, int waitable);
/* The block's next ticket, set up for `command`; NULL when all are taken. */
esr_ticket *esr__tickets_take(struct esr__ticket_block *b, const void *command,
                              esr_ticket_cb cb, void *ctx);
/* Give back the last ticket taken, which was never enqueued. */
static inline void esr__tickets_untake(struct esr__ticket_block *b)
{
	b->used--;
}
/* The submitter is done with b: its hold and the tickets it did not hand out go. */
void esr__tickets_release_unused(struct esr__ticket_block *b);
/* Record the outcome and wake or call back; the runtime's last touch. */
void esr__ticket_complete(esr_ticket *t, esr_status status, const esr_result *r);

/* --- actors --------------------------------------------------------------- */

/* pending value of a passivated actor: no submit can claim a slot in it. */
#define ACTOR_DEAD UINT32_MAX

/* fresh: whether the actor's state is fit to decide the next command on. */
enum {
	FRESH_UNLOADED = 0, /* not loaded, or the store's outcome is unknown: reload */
	FRESH_CURRENT,      /* as of the actor's last append or catch-up */
	FRESH_BEHIND        /* the stream moved past it (a conflict): catch up */
};

/* phase: the in-flight append hand-over between worker and completion. */
enum {
	PHASE_IDLE = 0,   /* no append in flight */
	PHASE_IN_CALL,    /* the worker is inside the store's append call */
	PHASE_SUSPENDED,  /* the call returned first: the completion reschedules */
	PHASE_COMPLETED   /* the completion came: whoever is next settles it */
};

struct actor {
	struct esr__key key;       /* first: the registry's keyset object */
	struct esr__mpsc mailbox;
	uint32_t pending;          /* accepted, not completed; ACTOR_DEAD when evicted */
	uint32_t phase;
	struct actor *run_next;    /* run queue link; janitor's victim list */
	struct esr_runtime *rt;
	struct esr__exec x;        /* type, stream, state (inline, after names), version */
	esr_ticket *current;       /* the command being run */
	esr_emitter *em;           /* the decision whose append is in flight */
	uint64_t idle_since_ms;    /* when pending last reached 0 */
	uint64_t appended_version; /* the completed append's outcome: */
	esr_status appended_status; /* (only what settle() reads) */
	uint16_t attempts;         /* handler runs: at most max_retries + 1 */
	uint16_t fresh;            /* FRESH_*, the worker's alone */
	/* key names, then the state (max_align_t aligned) */
};

/* --- workers and the runtime ------------------------------------------------ */

/*
 * Counters one worker keeps alone, with plain increments (no atomic on the
 * command path). esr_runtime_stats_get reads them with ck_pr_load_64 from
 * another thread: each value is whole (64-bit aligned loads) but may be a few
 * commands old, which is all a stats snapshot promises.
 */
struct worker_counters {
	uint64_t completed, rejected, conflicts, retries, exhausted, activations;
	uint64_t snapshots_loaded, snapshots_ignored, events_replayed;
};

struct worker {
	struct esr_runtime *rt;
	pthread_t thread;
	esr_emitter *em; /* NULL while its emitter rides with a suspended actor */
	uint64_t unsettled; /* completed this turn, still counted in outstanding */
	/* The command whose outcome complete() decided, for finish() to
	 * complete once its mailbox slot is free (actor.c). */
	esr_ticket *decided;
	esr_status outcome_status;
	esr_result outcome;
	unsigned spin_limit; /* idle spins before sleeping (scheduler.c) */
	struct worker_counters c;
} CK_CC_CACHELINE;

/* Counters submitters keep, striped by thread to avoid one hot line
 * (ck_pr increments: threads may share a stripe; statistics, no ordering). */
#define STRIPES 16
struct stripe {
	uint64_t submitted, mailbox_full, created;
} CK_CC_CACHELINE;

/* The snapshot thread and its bounded queue (snapshot.c). */
struct esr__snapper {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct snap_job *head, *tail;
	unsigned queued;
	int stop, started;
	pthread_t thread;
	uint64_t taken, dropped; /* ck_pr, for whole values; statistics, no ordering */
};

struct esr_runtime {
	esr_runtime_config cfg;
	esr_store *store;
	struct esr__types types;
	struct esr__keyset *actors;

	/* run queue (scheduler.c) */
	pthread_mutex_t rq_lock;
	pthread_cond_t rq_cond;
	struct actor *rq_head, *rq_tail;
	unsigned rq_sleepers;
	int running;

	/* room in full mailboxes, for ESR_OVERFLOW_BLOCK submitters */
	pthread_mutex_t room_lock;
	pthread_cond_t room_cond;
	uint32_t room_waiters;

	/* lifecycle */
	uint32_t stopping;
	int stopped;          /* everything but the handle is freed */
	uint32_t submitting;  /* submit calls past the stopping check */
	uint64_t outstanding; /* accepted commands not yet completed */
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

	struct stripe stripes[STRIPES];
	unsigned nworkers;
	struct worker workers[];
};

/* actor.c */
struct actor *esr__actor_new(struct esr_runtime *rt, const esr_aggregate_type *type,
                             const struct esr__key *k);
void esr__actor_free(struct actor *a);
void esr__actor_run(struct worker *w, struct actor *a);

/* scheduler.c */
void esr__runq_push(struct esr_runtime *rt, struct actor *a);
/* Queue the n actors linked head..tail through run_next, in one trip. */
void esr__runq_push_list(struct esr_runtime *rt, struct actor *head, struct actor *tail,
                         unsigned n);
esr_status esr__workers_start(struct esr_runtime *rt);
void esr__workers_stop(struct esr_runtime *rt);
esr_emitter *esr__spare_get(struct esr_runtime *rt);
void esr__spare_put(struct esr_runtime *rt, esr_emitter *em);
void esr__spares_free(struct esr_runtime *rt);

/* snapshot.c */
esr_status esr__snapper_start(struct esr_runtime *rt);
void esr__snapper_stop(struct esr_runtime *rt); /* saves what is queued first */
void esr__snapper_fini(struct esr_runtime *rt);
/* Encode a's state and queue it for the store (or drop it, counted). */
void esr__snapshot_take(struct worker *w, struct actor *a);
/* Rebuild a's state (esr__exec_load), counting and warning as it goes. */
esr_status esr__actor_load(struct worker *w, struct actor *a);

/* passivate.c */
esr_status esr__epoch_init(struct esr_runtime *rt);
ck_epoch_record_t *esr__epoch_record(struct esr_runtime *rt);
void esr__epoch_fini(struct esr_runtime *rt);
esr_status esr__janitor_start(struct esr_runtime *rt);
void esr__janitor_stop(struct esr_runtime *rt);

#endif /* ESR_RUNTIME_INTERNAL_H */
