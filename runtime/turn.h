/*
 * runtime/turn.h: an actor's turn, several commands decided one after another
 * and appended as one (runtime/turn.c). See docs/architecture.md, "A turn is
 * one append".
 *
 * Each command is decided on the state the ones before it left, as if each
 * had been appended on its own, but their events go to the store in one
 * append with one expected version: one CAS on the memory store, one record
 * set in a group commit, one statement on PostgreSQL. Every command keeps its
 * own outcome. A rejected command, or one whose emit failed, contributes no
 * events and does not fail the others. If the append fails, a command fails
 * with it unless its decision did not depend on it (no events before it in
 * the turn, none of its own): a rejection decided on the state before the
 * turn stands, as it would have alone.
 */
#ifndef ESR_RUNTIME_TURN_H
#define ESR_RUNTIME_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "esr/esr.h"

struct esr__exec;

/* Commands in one turn at most (the runtime's `batch` bounds it too). */
#define ESR__TURN_MAX 64

struct esr__turn_cmd {
	const void *command;
	void *owner;           /* the caller's: the runtime's ticket */
	esr_command_id cid;    /* {NULL, 0}: none; the bytes are the owner's */
	uint32_t first, count; /* its events in the emitter: [first, first + count) */
	esr_status status;     /* ESR_OK, ESR_EREJECTED, or an emit's error */
	int rejection;
	/* A command whose id the stream has recorded (the store said so, by
	 * ESR_EDUPLICATE or a lookup) is not decided again: it ends ESR_OK with
	 * the recorded versions. Set once, kept across the turn's attempts. */
	int duplicate;
	uint64_t dup_first, dup_last;
	unsigned same_as;      /* 1 + the earlier command of this turn with its id */
};

struct esr__turn {
	unsigned n;
	struct esr__turn_cmd c[ESR__TURN_MAX];
};

/*
 * Decide t->c[0..t->n) into em (reset first): the first command on x's state,
 * each later one on `scratch` (x->type->state_size bytes: x's state with the
 * events decided so far applied), which is only written once an earlier
 * command emitted. x itself is not changed. A command (not the first) whose
 * events would take the append past ESR_APPEND_MAX events or past max_bytes of
 * payload ends the turn before it: returns how many were decided, from 1 to
 * t->n (t->n itself is left as it was). The first command alone over the
 * limits gets its own ESR_ETOOBIG (from the emitter or the store).
 */
unsigned esr__turn_decide(struct esr__exec *x, esr_emitter *em, struct esr__turn *t,
                          void *scratch, size_t max_bytes);

/*
 * The outcome of command i of t, whose decided events (`total` of them)
 * were appended with status `appended`: stored with the last at `last`
 * (ESR_OK), or not (any other status); `base` is the version the turn was
 * decided on. Fills *r's version, appended, rejection and duplicate; returns
 * the command's status.
 */
esr_status esr__turn_outcome(const struct esr__turn *t, unsigned i, uint64_t total,
                             uint64_t base, esr_status appended, uint64_t last, esr_result *r);

/*
 * After an append of t's events answered ESR_EDUPLICATE (r): mark the
 * command whose events start at r->duplicate_at as a duplicate with the
 * recorded versions, so that deciding the turn again leaves it out. Returns
 * 0 if no command of t owns that event (a broken backend).
 */
int esr__turn_mark_duplicate(struct esr__turn *t, const esr_append_result *r);

/*
 * After an append of em's events for t answered ESR_EUNKNOWN: ask the store
 * whether it holds the events of a command of t that carried an id. An
 * append is atomic, so if one is found all were stored: returns ESR_OK with
 * *last the version of the append's last event. Otherwise ESR_EUNKNOWN.
 */
esr_status esr__turn_settle_unknown(struct esr__exec *x, const struct esr__turn *t,
                                    size_t total, uint64_t *last);

/*
 * Run t's commands synchronously, as the repository does: decide, append
 * (esr_store_append), commit; under optimistic a conflict catches up and
 * decides them again, up to max_retries more times. Returns how many of
 * t->n got their outcome in st[] and r[] (the rest did not fit one append:
 * run them as a turn of their own). A catch-up that fails is the outcome of
 * every command that depended on the append.
 */
unsigned esr__turn_run(struct esr__exec *x, esr_emitter *em, struct esr__turn *t, void *scratch,
                       esr_strategy strategy, unsigned max_retries, esr_status *st,
                       esr_result *r);

#endif /* ESR_RUNTIME_TURN_H */
