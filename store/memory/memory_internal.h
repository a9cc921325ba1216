/*
 * store/memory/memory_internal.h: the memory store's structures, shared by
 * store/memory/memory.c (streams, appends and reads), store/memory/memory_all.c
 * (reads in global order) and store/memory/memory_snapshot.c (snapshots and
 * checkpoints). How they are used, and their memory ordering, is told in
 * store/memory/memory.c; docs/architecture.md has the map.
 */
#ifndef ESR_STORE_MEMORY_INTERNAL_H
#define ESR_STORE_MEMORY_INTERNAL_H

#include <ck_spinlock.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/keyset.h"
#include "esr/esr.h"

/* Payloads this small live in their slot: no allocation per append. */
#define INLINE_MAX 16

struct stream;

struct slot {
	esr_event event; /* payload points at `small` or into the batch's block */
	void *block;     /* the batch's payload allocation, on its first slot */
	struct slot *gnext;    /* the next event in global order (memory.c) */
	struct stream *stream;
	uint64_t version, position;
	unsigned char small[INLINE_MAX];
};

/* Marks: where to start a global read (see "The global order", memory.c). */
#define MARK_EVERY 64
#define MARK_BLOCK 16384  /* marks per block */
#define MARK_BLOCKS 4096  /* blocks: marks for 2^32 positions; beyond, reads walk */

struct chunk {
	struct chunk *next; /* NULL until linked by CAS; never changes after */
	uint64_t first;     /* version stored in slots[0] */
	uint64_t cap;
	struct slot slots[];
};

struct snap; /* store/memory/memory_snapshot.c's kept snapshot */

struct stream {
	struct esr__key key; /* must stay first */
	uint64_t reserved;
	uint64_t committed;
	uint32_t sleepers; /* writers asleep until `committed` moves */
	struct chunk *head;
	struct chunk *tail; /* hint for writers: a linked chunk, only moves on */
	struct snap *snap;  /* the latest snapshot, under snap_lock */
	/* type name, NUL, then id bytes follow */
};

struct checkpoint;

struct memory_store {
	struct esr__keyset *streams;
	/* the global order */
	ck_spinlock_fas_t log_lock;
	struct slot log_start;   /* sentinel: position 0 */
	struct slot *log_tail;   /* under log_lock */
	uint64_t head;           /* last position linked; release after the links */
	uint32_t head_sleepers;  /* esr_store_wait callers asleep on head */
	struct slot ***marks;    /* MARK_BLOCKS blocks of MARK_BLOCK, or NULL */
	int marks_growing;       /* an appender is allocating a mark block */
	/* snapshots and checkpoints: rare, so one lock */
	pthread_mutex_t snap_lock;
	struct checkpoint *checkpoints;
};

/* store/memory/memory.c: the key for sid; the stream k names, or NULL; the
 * stream sid names, created empty if need be (the vtable's resolve). */
void esr__memory_key(const struct memory_store *ms, const esr_stream_id *sid,
                     struct esr__key *k);
struct stream *esr__memory_lookup(struct memory_store *ms, const struct esr__key *k);
esr_status esr__memory_resolve(void *impl, const esr_stream_id *sid, void **handle);

/* store/memory/memory_all.c: the vtable's global-order reads. */
esr_status esr__memory_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                                void *ctx, uint64_t *next);
esr_status esr__memory_head(void *impl, uint64_t *position);
esr_status esr__memory_wait(void *impl, uint64_t after, unsigned timeout_ms);

/* store/memory/memory_snapshot.c: the vtable's snapshot and checkpoint calls,
 * and freeing the checkpoints when the store closes. */
esr_status esr__memory_snapshot_save(void *impl, const esr_stream_id *sid,
                                     const esr_snapshot *snap);
esr_status esr__memory_snapshot_load(void *impl, const esr_stream_id *sid,
                                     esr_snapshot_fn fn, void *ctx);
esr_status esr__memory_checkpoint_save(void *impl, const char *name, uint64_t position);
esr_status esr__memory_checkpoint_load(void *impl, const char *name, uint64_t *position);
void esr__memory_checkpoints_free(struct memory_store *ms);

#endif /* ESR_STORE_MEMORY_INTERNAL_H */
