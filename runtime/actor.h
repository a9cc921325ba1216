/*
 * runtime/actor.h: one aggregate instance's actor, and what a worker does
 * with it (runtime/actor.c). See docs/architecture.md for the path of a
 * command.
 */
#ifndef ESR_RUNTIME_ACTOR_H
#define ESR_RUNTIME_ACTOR_H

#include <stdint.h>

#include "core/keyset.h"
#include "esr/esr.h"
#include "runtime/exec.h"
#include "runtime/mpsc.h"

struct esr_runtime;
struct esr__worker;

/* pending value of a passivated actor: no submit can claim a slot in it. */
#define ESR__ACTOR_DEAD UINT32_MAX

/* fresh: whether the actor's state is fit to decide the next command on. */
enum {
	ESR__FRESH_UNLOADED = 0, /* not loaded, or the store's outcome is unknown: reload */
	ESR__FRESH_CURRENT,      /* as of the actor's last append or catch-up */
	ESR__FRESH_BEHIND        /* the stream moved past it (a conflict): catch up */
};

/* phase: the in-flight append hand-over between worker and completion. */
enum {
	ESR__PHASE_IDLE = 0,   /* no append in flight */
	ESR__PHASE_IN_CALL,    /* the worker is inside the store's append call */
	ESR__PHASE_SUSPENDED,  /* the call returned first: the completion reschedules */
	ESR__PHASE_COMPLETED   /* the completion came: whoever is next settles it */
};

/*
 * The first 64 bytes hold all a submitter touches (the key it compares,
 * `pending` it claims, the run queue link it writes when it schedules the
 * actor, the mailbox words it swaps and links), so that handing a command
 * over moves as few lines between cores as the allocation's alignment
 * allows (actors are not cache-line aligned: an idle one must stay small);
 * the worker's own fields follow.
 */
struct esr__actor {
	struct esr__key key;       /* first: the registry's keyset object */
	uint32_t pending;          /* accepted, not completed; ESR__ACTOR_DEAD when evicted */
	uint32_t phase;
	struct esr__actor *run_next; /* run queue link; janitor's victim list */
	struct esr__mpsc mailbox;  /* head and stub in the first line, tail after */
	struct esr_runtime *rt;
	struct esr__exec x;        /* type, stream, state (inline, after names), version */
	esr_ticket *current;       /* commands a turn took but could not fit, linked
	                            * through their nodes: the next turn's first */
	esr_emitter *em;           /* the decision whose append is in flight */
	uint64_t idle_since_ms;    /* when pending last reached 0 */
	uint64_t appended_version; /* the completed append's version (its status
	                            * rides in the emitter: em->appended) */
	uint32_t holds;            /* the registry's (until eviction) and each
	                            * reference's: the last one frees (ref.c) */
	uint16_t attempts;         /* handler runs: at most max_retries + 1 */
	uint16_t fresh;            /* ESR__FRESH_*, the worker's alone */
	/* key names, then the state (max_align_t aligned) */
};

/* A new, unloaded actor for k's aggregate of `type`; NULL without memory. */
struct esr__actor *esr__actor_new(struct esr_runtime *rt, const esr_aggregate_type *type,
                                  const struct esr__key *k);
/* Free an actor no one else has seen (one that lost the race to be inserted). */
void esr__actor_free(struct esr__actor *a);
/*
 * Holds keep an actor's memory, not its place in the registry: a new actor
 * holds one for the registry, dropped when it is evicted (after the epoch's
 * grace period) or at stop; a reference (ref.c) holds one for as long as it
 * points at the actor. esr__actor_release drops one and frees the actor with
 * the last. Take a hold only on an actor already held, or found in the
 * registry inside an epoch section (or with passivation off, inside a submit
 * window).
 */
void esr__actor_hold(struct esr__actor *a);
void esr__actor_release(struct esr__actor *a);
/*
 * Start the cache misses a's next turn will take, without waiting for them:
 * stage 0 the actor itself, stage 1 (once stage 0 had time to arrive) its
 * state, its oldest ticket and its stream's first line, stages 2 and 3 what
 * the store reaches from there, one step each (esr__store_prefetch). A worker runs the actors it took from its queue
 * one after another; hinting the next ones while it runs one overlaps their
 * misses instead of paying them in turn. Only reads; w need not own a yet,
 * but a must be on w's list (queued: not freed).
 */
void esr__actor_prefetch(struct esr__worker *w, const struct esr__actor *a, int stage);
/* Run a's queued commands, up to `batch` of them; w owns a meanwhile. */
void esr__actor_run(struct esr__worker *w, struct esr__actor *a);

#endif /* ESR_RUNTIME_ACTOR_H */
