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
 *   esr/ref.h           references: submits to one aggregate without a lookup
 *   esr/subscription.h  subscriptions to a store's global order (projections)
 *   esr/version.h       the version: ESR_VERSION_*, esr_version()
 *
 * Conventions: every function that can fail returns esr_status (ESR_OK is 0);
 * results come back through out-parameters, which are written only on success
 * unless the function's comment says otherwise. Objects the user holds are
 * opaque handles.
 *
 * Lifecycle: one verb pair per kind of handle, and each pair means one thing.
 *   open / close      a handle the caller works through by calls: ready when
 *                     open returns; close frees it and all it holds (memory,
 *                     files, connections, helper threads of its own) in one
 *                     call. Stores (esr_memory_store_open, esr_file_store_open,
 *                     esr_pg_store_open, esr_store_open_spec; esr_store_close)
 *                     repositories (esr_repository_open / _close) and
 *                     references to aggregates (esr_ref_open / esr_ref_close,
 *                     which may close after the runtime's destroy).
 *   start / stop, then destroy
 *                     a handle that runs worker threads and takes work from
 *                     any thread: the runtime. start returns with the threads
 *                     running; stop refuses new work, finishes what it took
 *                     and joins the threads, but keeps the handle, so that a
 *                     late call from another thread is refused, not a crash;
 *                     destroy frees the handle, stopping it first if need be.
 *   submit / release  a ticket, shared by the caller and the runtime: made by
 *                     esr_submit / esr_submit_many, given back by
 *                     esr_ticket_release; the later of the two frees it.
 *   *_default, *_from_env, *_check
 *                     fill or check a struct the caller owns: nothing to end.
 * Every ending call (close, stop, destroy, release) returns esr_status and
 * does nothing with NULL; after close, destroy or release no call on the
 * handle may follow. After the runtime's stop the handle still answers:
 * submits are refused with ESR_ESHUTDOWN and the stats stay readable, until
 * destroy. A handle made
 * over another (a repository, runtime or subscription over a store) never
 * owns it: the store must outlive it, and the caller closes the store after. What the library lends a callback (the emitter,
 * the events a visitor sees, a snapshot's data) is valid during the call and
 * is never ended by the caller. esr_pg_migrate and esr_pg_drop act on a
 * database's tables, not on a handle.
 *
 * Two names break the rule and are kept for compatibility until the next
 * ABI break:
 *   esr_store_create   makes a store from a caller's backend vtable, and is
 *                      ended as every store is, by esr_store_close.
 *   esr_subscribe / esr_subscription_stop
 *                      a subscription runs a thread, so by the rule it would
 *                      start / stop / destroy; its stop also frees it.
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
#include "esr/ref.h"
#include "esr/repository.h"
#include "esr/runtime.h"
#include "esr/status.h"
#include "esr/store.h"
#include "esr/subscription.h"
#include "esr/version.h"

#endif /* ESR_ESR_H */
