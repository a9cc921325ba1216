/*
 * tests/async_store.h: a store that completes appends later, from a thread of
 * its own, like a durable store after its fsync. It forwards to an inner
 * store: append copies the batch, queues it and returns at once; the store's
 * thread performs the inner append and calls the completion. Reads and
 * versions go straight to the inner store.
 */
#ifndef ESR_TESTS_ASYNC_STORE_H
#define ESR_TESTS_ASYNC_STORE_H

#include <esr/esr.h>

/* Opens the wrapper over inner; with own_inner, closing it closes inner too
 * (otherwise inner must outlive it). */
esr_status async_store_open(esr_store *inner, int own_inner, esr_store **out);

#endif
