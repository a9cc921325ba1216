/*
 * store/memory/memory_internal.h: the memory store's structures, shared by
 * store/memory/memory.c (streams, appends and reads), store/memory/memory_all.c
 * (reads in global order) and store/memory/memory_snapshot.c (snapshots and
 * checkpoints). How they are used, and their memory ordering, is told in
 * store/memory/memory.c; docs/architecture.md has the map.
 */
#ifndef ESR_STORE_MEMORY_INTERNAL_H
#define ESR_STORE_MEMORY_INTERNAL_H

#include <ck_cc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/keyset.h"
#include "esr/esr.h"

/* Payloads this small live in their slot: no allocation per append. */
#define ESR__INLINE_MAX 16

struct esr__stream;

/* One recorded command id (store/memory/memory_ids.c); the slots of its
 * events point at it, so its bytes live as long as the stream. */
struct esr__mem_cmd {
	uint64_t first, last;
	uint32_t len;
	unsigned char bytes[];
};

/* Set in a slot's len_flags when its payload's part of the batch's block
 * starts the block, which freeing the stream frees through it. */
#define ESR__SLOT_BLOCK (1u << 31)
/* Set when the event has a correlation or causation id: both sit in the
 * block just before the payload (ESR__IDS_BYTES), and the payload is there
 * too even if it is short. Most events have neither, and the slot keeps
 * only the timestamp of the metadata. */
#define ESR__SLOT_IDS (1u << 30)
/* Set when the payload is in the block (long, or ids with it): the slot
 * holds a pointer to it instead of its bytes. */
#define ESR__SLOT_OUT (1u << 29)
#define ESR__SLOT_FLAGS (ESR__SLOT_BLOCK | ESR__SLOT_IDS | ESR__SLOT_OUT)
#define ESR__IDS_BYTES (2 * sizeof(esr_id128))
_Static_assert(ESR_PAYLOAD_MAX < ESR__SLOT_OUT, "the flags are above every length");

/*
 * An event in its stream, in one cache line: a chunk starts on a line and
 * its slots on the line after its header, so filling a slot touches one.
 * Its fields are an esr_event's, packed: the payload length shares a word
 * with the flags, a short payload lives in the slot and a long one's address
 * takes its place, and the command id is its record (NULL: none).
 * esr__memory_event rebuilds the esr_event.
 */
struct esr__slot {
	uint32_t type;
	uint32_t len_flags;       /* payload length | ESR__SLOT_* flags */
	uint64_t timestamp_ns;    /* the metadata's; its ids: ESR__SLOT_IDS */
	const struct esr__mem_cmd *cmd;
	struct esr__stream *stream;
	uint64_t version, position;
	union {
		unsigned char small[ESR__INLINE_MAX]; /* the payload */
		const uint8_t *out;  /* ESR__SLOT_OUT: the payload, in the block */
	} payload;
};
_Static_assert(sizeof(struct esr__slot) == 64, "a slot is one cache line");

static inline const void *esr__slot_payload(const struct esr__slot *s)
{
	if (s->len_flags & ESR__SLOT_OUT)
		return s->payload.out;
	return (s->len_flags & ~ESR__SLOT_FLAGS) != 0 ? s->payload.small : NULL;
}

/* Where a slot's part of its batch's block starts (ids first, if any). */
static inline const uint8_t *esr__slot_block_part(const struct esr__slot *s)
{
	return s->payload.out - (s->len_flags & ESR__SLOT_IDS ? ESR__IDS_BYTES : 0);
}

static inline esr_event esr__memory_event(const struct esr__slot *s)
{
	esr_event e = {s->type, s->len_flags & ~ESR__SLOT_FLAGS, esr__slot_payload(s),
	               {.timestamp_ns = s->timestamp_ns}, {NULL, 0}};

	if (s->len_flags & ESR__SLOT_IDS) {
		memcpy(&e.meta.correlation_id, esr__slot_block_part(s), sizeof(esr_id128));
		memcpy(&e.meta.causation_id, esr__slot_block_part(s) + sizeof(esr_id128),
		       sizeof(esr_id128));
	}
	if (s->cmd != NULL)
		e.command_id = (esr_command_id){s->cmd->bytes, s->cmd->len};
	return e;
}

/* The global order's index (memory_all.c): position p's slot is
 * order[p >> ESR__ORDER_SHIFT][p & (ESR__ORDER_BLOCK - 1)]. A block of
 * pointers is 512 KiB; the directory's 2^20 blocks index 2^36 events, more
 * than any machine's memory could hold (4 TiB of 64-byte slots). */
#define ESR__ORDER_SHIFT 16
#define ESR__ORDER_BLOCK ((uint64_t)1 << ESR__ORDER_SHIFT)
#define ESR__ORDER_BLOCKS ((size_t)1 << 20)

struct esr__chunk {
	struct esr__chunk *next; /* NULL until linked by CAS; never changes after */
	uint64_t first;     /* version stored in slots[0] */
	uint64_t cap;
	uint64_t ready;     /* slots below this version are faulted in (memory.c) */
	_Alignas(64) struct esr__slot slots[]; /* from the header's next line */
};

struct snap; /* store/memory/memory_snapshot.c's kept snapshot */
struct esr__ids; /* store/memory/memory_ids.c's command ids of one stream */

/*
 * A stream is allocated on a cache line (ESR__STREAM_ALIGN) and everything an
 * append reads or writes in it sits in that first line, after the key: with
 * thousands of streams the header is usually cold, and one miss is cheaper
 * than two.
 */
#define ESR__STREAM_ALIGN 64
struct esr__stream {
	struct esr__key key; /* must stay first */
	uint64_t reserved;
	uint64_t committed;
	struct esr__chunk *tail; /* hint for writers: a linked chunk, only moves on */
	uint32_t sleepers; /* writers asleep until `committed` moves */
	/* the first cache line ends here */
	struct esr__chunk *head;
	struct snap *snap;  /* the latest snapshot, under snap_lock */
	struct esr__ids *ids; /* command ids, from the first append with one; or NULL */
	/* type name, NUL, then id bytes follow */
};
_Static_assert(offsetof(struct esr__stream, sleepers) + sizeof(uint32_t) <= ESR__STREAM_ALIGN,
               "an append's fields of a stream must share its first cache line");

struct checkpoint;

/* store/memory/memory_arena.c: the chunks' memory, cut from large
 * mappings and given back only when the store closes. A thread's slab is
 * faulted in this far ahead of the offset its chunks are cut at. */
#define ESR__ARENA_WINDOW ((size_t)64 << 10)
struct region;
struct esr__arena {
	pthread_mutex_t lock;   /* guards the regions and the offset */
	struct region *regions; /* every mapping, the current one first */
	char *next, *end;       /* the part of the current one not yet in a slab */
	size_t region_size;     /* the next mapping's */
	uint64_t serial;        /* tags the threads' slabs cut from this arena */
};

void esr__arena_init(struct esr__arena *a);
/* n bytes on a cache line, to live until esr__arena_destroy; NULL when the
 * system has no memory to map. Safe from any thread. */
void *esr__arena_alloc(struct esr__arena *a, size_t n);
void esr__arena_destroy(struct esr__arena *a);
/* Have the kernel fault [p, p + n) in now, in one call (a hint). */
void esr__arena_fault_in(void *p, size_t n);

struct esr__memory_store {
	struct esr__keyset *streams;
	struct esr__arena chunks; /* every stream's chunks */
	/* the global order (memory_all.c), the two counters on lines of their own */
	struct esr__slot ***order;    /* ESR__ORDER_BLOCKS blocks, each NULL until made */
	int order_growing;            /* an appender is making a block */
	uint64_t taken CK_CC_CACHELINE; /* the last position handed out */
	uint64_t head CK_CC_CACHELINE;  /* every position up to it is readable */
	uint32_t head_sleepers;       /* esr_store_wait callers asleep on head */
	/* snapshots and checkpoints: rare, so one lock */
	pthread_mutex_t snap_lock;
	struct checkpoint *checkpoints;
};

/* store/memory/memory.c: the key for sid; the stream k names, or NULL; the
 * stream sid names, created empty if need be (the vtable's resolve). */
void esr__memory_key(const struct esr__memory_store *ms, const esr_stream_id *sid,
                     struct esr__key *k);
struct esr__stream *esr__memory_lookup(struct esr__memory_store *ms, const struct esr__key *k);
esr_status esr__memory_resolve(void *impl, const esr_stream_id *sid, void **handle);

/* store/memory/memory_all.c: the global order. esr__memory_order_open and
 * _close make and free the index. esr__memory_order gives the batch of n
 * events in slots first.. (following each other in the stream's chunks
 * from c) their positions and makes them readable in global order; it runs
 * in the stream's turn, after the batch's slots are filled and before the
 * stream publishes them, and returns the first position. It cannot fail. */
esr_status esr__memory_order_open(struct esr__memory_store *ms);
void esr__memory_order_close(struct esr__memory_store *ms);
uint64_t esr__memory_order(struct esr__memory_store *ms, struct esr__chunk *c, uint64_t first,
                           size_t n);
/* The vtable's global-order reads. */
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
void esr__memory_checkpoints_free(struct esr__memory_store *ms);

/* store/memory/memory_ids.c: a stream's command ids. esr__memory_ids gives
 * the stream's index, made on first use (NULL: out of memory). The lookups
 * and esr__memory_ids_add run under esr__memory_ids_lock. A record made by
 * esr__memory_cmd_new is owned by the index once added (else free() it);
 * its bytes live as long as the stream, for the slots to point at. */
struct esr__ids *esr__memory_ids(struct esr__stream *s);
void esr__memory_ids_lock(struct esr__ids *ids);
void esr__memory_ids_unlock(struct esr__ids *ids);
int esr__memory_ids_find(const struct esr__ids *ids, const esr_command_id *id,
                         uint64_t *first, uint64_t *last);
struct esr__mem_cmd *esr__memory_cmd_new(const esr_command_id *id);
/* Make room for `more` records (under the lock, before the version claim,
 * so that adding them cannot fail): 0, or -1 if out of memory. */
int esr__memory_ids_reserve(struct esr__ids *ids, size_t more);
void esr__memory_ids_add(struct esr__ids *ids, struct esr__mem_cmd *c, uint64_t first,
                         uint64_t last);
void esr__memory_ids_free(struct esr__ids *ids);
esr_status esr__memory_command(void *impl, const esr_stream_id *sid, const void *id,
                               size_t len, uint64_t *first, uint64_t *last);

#endif /* ESR_STORE_MEMORY_INTERNAL_H */
