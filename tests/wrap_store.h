/*
 * tests/wrap_store.h: a store backend that forwards to another store and
 * (1) counts appends and the events reads deliver, and (2) plays a competing
 * writer: while `interfere` is non-zero, every append is preceded by one
 * deposit of 1 appended with ESR_VERSION_ANY to the same stream, which is
 * exactly what a second process racing this one would do.
 */
#ifndef ESR_TESTS_WRAP_STORE_H
#define ESR_TESTS_WRAP_STORE_H

#include <stdint.h>

#include <esr/esr.h>

struct wrap {
	esr_store *inner; /* first: forward_store.h */
	unsigned interfere;
	uint64_t appends;         /* appends forwarded, interference excluded */
	uint64_t checked_appends; /* of which with an exact expected version */
	uint64_t reads;
	uint64_t events_read;
	/* If set, snapshot loads hand this over instead of the inner store's:
	 * a backend returning what esr_store_snapshot_save would refuse. */
	const esr_snapshot *forged;
};

/* A store handle over w; closing it leaves w->inner open. */
esr_status wrap_store_open(struct wrap *w, esr_store **out);

#endif
