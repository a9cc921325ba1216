/*
 * esr/memory_store.h: the in-memory event store, a backend of the store
 * contract (esr/store.h) that keeps everything in the process and nothing
 * on disk. For tests, examples and hosts that need no durability.
 */
#ifndef ESR_MEMORY_STORE_H
#define ESR_MEMORY_STORE_H

#include "esr/export.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * esr_memory_store_open: a new, empty in-memory store, safe for any number of
 * concurrent appenders and readers. Its contents last until esr_store_close.
 * Reads never block; appends to different streams never wait for each other.
 * An append may wait briefly for an earlier append to the same stream to
 * publish, so appends are not async-signal-safe: never append from a signal
 * handler.
 */
ESR_API esr_status esr_memory_store_open(esr_store **out);

#ifdef __cplusplus
}
#endif

#endif /* ESR_MEMORY_STORE_H */
