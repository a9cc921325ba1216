/*
 * esr/subscription.h: subscriptions to a store's global order, the feed of
 * projections (read models).
 *
 * A subscription is a thread of its own that reads the store's events in
 * position order from a starting position and hands each to the caller's
 * handler. It reads from storage until it reaches the head, then waits for
 * the store to commit more and reads those: catch-up and live are one loop
 * over one source, so the hand-over between them cannot miss or repeat an
 * event. Each read takes at most `batch` events, so a subscription holds a
 * bounded buffer whatever its lag; a slow handler falls behind and reads the
 * rest from storage later. Commands never wait for a subscription.
 *
 * Delivery is at-least-once across restarts and exactly-once within one
 * subscription's life: a subscription delivers every position once, in
 * order; a restarted one resumes after its last saved checkpoint, so the
 * events it handled after that save are delivered again. The handler gets
 * each event's position: a read model that stores the position it has
 * applied with its own data can skip what it has already seen.
 */
#ifndef ESR_SUBSCRIPTION_H
#define ESR_SUBSCRIPTION_H

#include <stdint.h>

#include "esr/event.h"
#include "esr/export.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esr_subscription esr_subscription;

/*
 * Called on the subscription's thread once per event, in position order.
 * Return ESR_OK to go on. Any other status stops the subscription, ESR_EIO
 * included (only the store's own read errors are retried): the event counts
 * as not handled (a checkpoint never covers it), it is not delivered again
 * by this subscription, and esr_subscription_wait and esr_subscription_stop
 * return that status.
 */
typedef esr_status (*esr_event_handler)(void *ctx, const esr_recorded_event *event);

/*
 * A place of the caller's own for the checkpoint (a row beside the read
 * model, say, written in the same transaction). load sets the last position
 * saved, 0 if none.
 */
typedef struct esr_checkpoint_store {
	esr_status (*load)(void *ctx, uint64_t *position);
	esr_status (*save)(void *ctx, uint64_t position);
	void *ctx;
} esr_checkpoint_store;

typedef struct esr_subscription_options {
	/* Keep the checkpoint in the subscribed store under this name
	 * (esr_store_checkpoint_save). NULL: not there. */
	const char *checkpoint_name;
	/* Or keep it in the caller's place. At most one of the two. */
	const esr_checkpoint_store *checkpoint;
	/* Events handled between checkpoint saves (default 1024). A checkpoint is
	 * also saved whenever the subscription catches up with the head and when
	 * it stops. Smaller: fewer redeliveries after a crash, more writes. */
	unsigned checkpoint_every;
	/* Events per store read: the buffer's bound (default 256, 1..ESR_READ_ALL_MAX). */
	unsigned batch;
	/* Longest wait at the head before reading again (default 50 ms). A store
	 * wakes the subscription at once for appends made through the same
	 * handle, and PostgreSQL for appends by other processes too (LISTEN /
	 * NOTIFY); otherwise, or after a lost notification, they are seen within
	 * this time. */
	unsigned poll_ms;
} esr_subscription_options;

/* esr_subscription_options_default: no checkpoint, and the defaults above. */
ESR_API esr_status esr_subscription_options_default(esr_subscription_options *options);

/*
 * esr_subscribe: start delivering the store's events with position >=
 * from_position (0 counts as 1) to handler(ctx, event). With a checkpoint
 * configured and saved, delivery starts after the saved position instead.
 * options may be NULL for the defaults. Errors, with nothing started:
 * ESR_EINVAL (NULL store/handler/out, both checkpoint places, a bad
 * checkpoint name, batch out of range), ESR_ENOTSUP (the store has no global
 * reads, or no checkpoints when a name is given), ESR_ENOMEM, the error of
 * loading the checkpoint, or ESR_ECORRUPT for a loaded checkpoint of
 * UINT64_MAX (no position). The store must outlive the subscription.
 */
ESR_API esr_status esr_subscribe(esr_store *store, uint64_t from_position,
                                 esr_event_handler handler, void *ctx,
                                 const esr_subscription_options *options,
                                 esr_subscription **out);

/*
 * esr_subscription_wait: wait until every position up to `position` is
 * handled, at most timeout_ms (negative: forever). ESR_OK when it is;
 * ESR_ETIMEDOUT; or the status the subscription stopped with (a handler's or
 * the store's error). Safe from any thread but the handler's own.
 */
ESR_API esr_status esr_subscription_wait(esr_subscription *sub, uint64_t position,
                                         long timeout_ms);

typedef struct esr_subscription_stats {
	uint64_t handled;     /* events handed to the handler and accepted */
	uint64_t position;    /* the last position handled (0: none yet) */
	uint64_t checkpoint;  /* the last position saved as the checkpoint */
	uint64_t reads;       /* store reads that returned events */
	uint64_t waits;       /* times it waited at the head */
	uint64_t errors;      /* store reads retried after ESR_EIO, checkpoint saves failed */
	esr_status status;    /* ESR_OK while running; the error that stopped it */
} esr_subscription_stats;

/* esr_subscription_stats_get: the counters now (each read once). */
ESR_API esr_status esr_subscription_stats_get(esr_subscription *sub,
                                              esr_subscription_stats *stats);

/*
 * esr_subscription_stop: stop after the event being handled, save the
 * checkpoint (if one is configured), join the thread and free sub. Returns
 * ESR_OK, or the error that stopped the subscription earlier, or the error of
 * the final checkpoint save. Never call it from the handler. NULL is ignored.
 */
ESR_API esr_status esr_subscription_stop(esr_subscription *sub);

#ifdef __cplusplus
}
#endif

#endif /* ESR_SUBSCRIPTION_H */
