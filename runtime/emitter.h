/*
 * runtime/emitter.h: the emitter's insides. One emitter serves every attempt
 * of a command (and, in the runtime, every command of an actor): reset keeps
 * its buffers, so a steady workload stops allocating. See
 * docs/architecture.md for the map.
 */
#ifndef ESR_RUNTIME_EMITTER_H
#define ESR_RUNTIME_EMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "esr/esr.h"
#include "runtime/turn.h"

struct esr_emitter {
	esr_event *events;  /* payload pointers are set by esr__emitter_events */
	size_t *offsets;    /* each event's payload offset in bytes[] */
	size_t count, cap;
	uint8_t *bytes;     /* payload copies, back to back */
	size_t used, bytes_cap;
	esr_status error;   /* first failure of an emit, sticky until reset */
	/* The timestamp given to events emitted without one; 0: read the clock
	 * at the next such event. Reset keeps it, so one clock read serves
	 * every event until the owner clears it (esr__emitter_restamp): the
	 * runtime does once per trip of a worker to its queue, a repository
	 * once per attempt. */
	uint64_t stamp_ns;
	/* The runtime's: the store's status for this decision's append, set by
	 * the completion (kept here rather than in the actor, whose idle size
	 * counts). */
	esr_status appended;
	/* The runtime's: the commands decided into this emitter together, whose
	 * events are appended as one (runtime/turn.h). It rides with the actor
	 * while their append is in flight. */
	struct esr__turn turn;
};

void esr__emitter_init(esr_emitter *em);
void esr__emitter_reset(esr_emitter *em);
static inline void esr__emitter_restamp(esr_emitter *em)
{
	em->stamp_ns = 0;
}
void esr__emitter_free(esr_emitter *em);

/* The events emitted since the last reset, payload pointers fixed up. */
const esr_event *esr__emitter_events(esr_emitter *em);

/* Event j (< em->count), its payload pointer fixed up. */
static inline const esr_event *esr__emitter_event(esr_emitter *em, size_t j)
{
	em->events[j].payload = em->events[j].payload_len ? em->bytes + em->offsets[j] : NULL;
	return &em->events[j];
}

#endif /* ESR_RUNTIME_EMITTER_H */
