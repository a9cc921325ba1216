/*
 * runtime/ref.h: a reference's insides (esr/ref.h), shared by ref.c, which
 * opens and closes references, and submit.c, which routes through them.
 */
#ifndef ESR_RUNTIME_REF_H
#define ESR_RUNTIME_REF_H

#include <stddef.h>

#include "core/keyset.h"
#include "esr/esr.h"

struct esr__actor;

struct esr_ref {
	esr_runtime *rt;                 /* one of rt->handles is ours */
	const esr_aggregate_type *type;
	struct esr__actor *actor;        /* held (one of its holds is ours); NULL
	                                  * once seen evicted, until the next
	                                  * submit finds its successor */
	struct esr__key key;             /* names in the bytes after the struct */
};

/*
 * Find or make ref's actor and take a hold on it (ref->actor must be NULL),
 * inside a submit window of its own. ESR_ESHUTDOWN if the runtime is
 * stopping, ESR_ENOMEM.
 */
esr_status esr__ref_attach(struct esr_ref *ref);

/*
 * Submit subs[0..n) (only their command and ctx are read) to ref's
 * aggregate, as esr_submit_many (tickets != NULL) or esr_submit_many_cb
 * (cb) would by name.
 */
esr_status esr__ref_submit(struct esr_ref *ref, const esr_submission *subs, size_t n,
                           esr_ticket **tickets, esr_ticket_cb cb, size_t *accepted);

#endif /* ESR_RUNTIME_REF_H */
