/*
 * esr/ref.h: references to aggregates. A host that sends many commands to
 * one aggregate opens a reference to it once and submits through it: the
 * reference keeps the aggregate's live actor at hand, so a submit skips the
 * registry's hash, lookup and key comparison and goes straight to the
 * actor's mailbox.
 *
 * A reference names the aggregate, not one incarnation of its actor (as an
 * Orleans grain reference does, rather than an Akka ActorRef): it stays
 * valid while the actor is passivated, and the next submit through it
 * activates the aggregate again, exactly as a submit by (type, id) would.
 * Holding one does not keep the actor from being passivated; it keeps only
 * the evicted actor's memory until the reference's next submit or its close.
 *
 * Commands through a reference and by name to the same aggregate go to the
 * same mailbox: per-submitter order, the mailbox's capacity and overflow
 * policy, stop and every outcome are as for esr_submit (esr/runtime.h).
 *
 * A reference is not synchronised: use it from one thread at a time (open
 * one per thread; an open costs one lookup). After the runtime's stop its
 * submits return ESR_ESHUTDOWN; close it before or after stop or destroy, in
 * any order (the runtime's handle is freed when both it is destroyed and its
 * last reference closed). Every call refuses a NULL reference with
 * ESR_EINVAL.
 */
#ifndef ESR_REF_H
#define ESR_REF_H

#include <stddef.h>

#include "esr/export.h"
#include "esr/runtime.h"
#include "esr/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esr_ref esr_ref;

/*
 * esr_ref_open: a reference to the aggregate (type, id) of rt in *out, to be
 * closed with esr_ref_close. The aggregate's actor is made if it is not live
 * (its stream is read by its first command, as always). Errors (*out
 * untouched): ESR_EINVAL (NULL rt or out, NULL or empty id), ESR_ETOOBIG (id
 * longer than ESR_ID_MAX), ESR_ENOTYPE (unregistered type), ESR_ESHUTDOWN
 * (stopping), ESR_ENOMEM.
 */
ESR_API esr_status esr_ref_open(esr_runtime *rt, const char *type, const void *id,
                                size_t id_len, esr_ref **out);

/* esr_ref_close: give the reference back. NULL is ignored. */
ESR_API esr_status esr_ref_close(esr_ref *ref);

/* esr_ref_submit: as esr_submit, to the reference's aggregate. */
ESR_API esr_status esr_ref_submit(esr_ref *ref, const void *command, esr_ticket **ticket);

/* esr_ref_submit_cb: as esr_submit_cb, to the reference's aggregate. */
ESR_API esr_status esr_ref_submit_cb(esr_ref *ref, const void *command, esr_ticket_cb done,
                                     void *ctx);

/*
 * esr_ref_submit_many: submit commands[0..n) in order to the reference's
 * aggregate; tickets[i] receives the i-th ticket. As esr_submit_many: stops
 * at the first command refused and returns its status; *accepted (may be
 * NULL) says how many were submitted before it. Runs of up to 64 commands
 * share one claim of mailbox slots and one push.
 */
ESR_API esr_status esr_ref_submit_many(esr_ref *ref, const void *const *commands, size_t n,
                                       esr_ticket **tickets, size_t *accepted);

/* esr_ref_execute: as esr_execute, to the reference's aggregate. */
ESR_API esr_status esr_ref_execute(esr_ref *ref, const void *command, esr_result *result);

/* The same with command ids, as esr_submit_id (cid NULL: none; cids NULL:
 * none for any, else one per command). */
ESR_API esr_status esr_ref_submit_id(esr_ref *ref, const void *command,
                                     const esr_command_id *cid, esr_ticket **ticket);
ESR_API esr_status esr_ref_submit_cb_id(esr_ref *ref, const void *command,
                                        const esr_command_id *cid, esr_ticket_cb done,
                                        void *ctx);
ESR_API esr_status esr_ref_submit_many_id(esr_ref *ref, const void *const *commands,
                                          const esr_command_id *cids, size_t n,
                                          esr_ticket **tickets, size_t *accepted);
ESR_API esr_status esr_ref_execute_id(esr_ref *ref, const void *command,
                                      const esr_command_id *cid, esr_result *result);

#ifdef __cplusplus
}
#endif

#endif /* ESR_REF_H */
