/*
 * esr/esr.h: the umbrella header of esr, an event-sourced, actor-per-aggregate
 * runtime. Include this one; the focused headers beside it split the contract
 * by topic, and this one includes every one of them:
 *   esr/export.h        ESR_API, the mark on every public function
 *   esr/limits.h        the size limits every entry point enforces
 *   esr/status.h        status codes, esr_strerror, the conflict report
 *   esr/event.h         events, metadata, stream ids, versions
 *   esr/aggregate.h     aggregate type definitions and the emitter
 *   esr/store.h         the store contract: the backend vtable, esr_store_*
 *   esr/memory_store.h  the in-memory store
 *   esr/file_store.h    the durable embedded store (a directory of segments)
 *   esr/pg_store.h      the PostgreSQL store
 *   esr/repository.h    load / execute / execute_with_retry on the caller's thread
 *   esr/runtime.h       the actor runtime: workers, mailboxes, tickets
 *   esr/subscription.h  subscriptions to a store's global order (projections)
 *   esr/version.h       the version: ESR_VERSION_*, esr_version()
 *
 * Conventions: every function that can fail returns esr_status (ESR_OK is 0);
 * results come back through out-parameters, which are written only on success
 * unless the function's comment says otherwise. Objects the user holds are
 * opaque handles created by *_open / *_create and freed by *_close.
 */
#ifndef ESR_ESR_H
#define ESR_ESR_H

#include "esr/aggregate.h"
#include "esr/event.h"
#include "esr/export.h"
#include "esr/file_store.h"
#include "esr/limits.h"
#include "esr/memory_store.h"
#include "esr/pg_store.h"
#include "esr/repository.h"
#include "esr/runtime.h"
#include "esr/status.h"
#include "esr/store.h"
#include "esr/subscription.h"
#include "esr/version.h"

#endif /* ESR_ESR_H */
