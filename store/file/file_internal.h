/*
 * store/file/file_internal.h: the file store's parts shared by its files:
 * file.c (the store at run time), file_all.c (the global order),
 * file_snapshot.c (snapshots and checkpoints) and file_recover.c (rebuilding
 * the index at open). docs/architecture.md has the map.
 *
 * The index. Each stream keeps where each of its events sits: a chain of
 * chunks of `struct esr__loc`, doubling in size, never moved. Only one thread adds
 * to it (the writer thread; at open, the opening thread), so no CAS is needed
 * there: the writer fills the locations, then publishes `committed` with
 * release order, and readers load `committed` with acquire and read only below
 * it, as in the memory store. `reserved` is the optimistic check: appenders
 * check it against the expected version and move it under the queue lock,
 * which also fixes the order in which the writer sees the appends, and
 * guards each stream's command-id map (`cmds`).
 */
#ifndef ESR_STORE_FILE_INTERNAL_H
#define ESR_STORE_FILE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "core/keyset.h"
#include "esr/esr.h"
#include "esr/file_store.h"
#include "store/file/file_format.h"

#define ESR__SEGMENTS_MAX 65536 /* of SEGMENT bytes each: far beyond any disk */
/* The tail segment's file grows ahead of its records in steps of this many
 * zero bytes (store/file/file.c, extend), at most to the segment's size. */
#define ESR__SEG_STEP (4u << 20)

struct esr__loc {
	uint32_t seg;    /* segment number */
	uint32_t length; /* of the record */
	uint64_t offset; /* in the segment file */
};

struct esr__loc_chunk {
	struct esr__loc_chunk *next;
	uint64_t first; /* version of locs[0] */
	uint64_t cap;
	struct esr__loc locs[];
};

/*
 * Command ids (store/file/file_cmds.c). One recorded command: its id and the
 * versions first .. first + count - 1 its events got. Before an appender
 * has claimed its versions, `first` holds the index in its append of the
 * command's first event.
 */
struct esr__cmd {
	uint64_t first;
	uint16_t count;
	uint8_t len;
	uint8_t id[];
};

struct esr__cmds; /* a stream's map: id -> struct esr__cmd */

/* A new entry (malloc), or NULL. */
struct esr__cmd *esr__cmd_new(const void *id, size_t len, uint64_t first, size_t count);
/* The entry of `id` in t (NULL: an empty map), or NULL. */
const struct esr__cmd *esr__cmds_find(const struct esr__cmds *t, uint64_t seed, const void *id,
                                      size_t len);
/* Make room in *tp (created if NULL) for `more` entries; -1 on ENOMEM. */
int esr__cmds_room(struct esr__cmds **tp, uint64_t seed, size_t more);
/* Insert c, which is not in t, into room esr__cmds_room made; t owns it. */
void esr__cmds_put(struct esr__cmds *t, uint64_t seed, struct esr__cmd *c);
size_t esr__cmds_count(const struct esr__cmds *t);
/* Free t and its entries (NULL: nothing). */
void esr__cmds_free(struct esr__cmds *t);

struct esr__fstream {
	struct esr__key key; /* first: the keyset's object */
	uint64_t reserved;   /* versions claimed by appenders */
	uint64_t committed;  /* versions durable and readable */
	struct esr__loc_chunk *head, *tail; /* tail: the writer's only */
	uint64_t snap_offset;  /* the stream's snapshot in snapshots.log, under */
	uint32_t snap_length;  /* snap_lock; length 0: none */
	struct esr__cmds *cmds; /* its command ids, under the queue lock; NULL: none */
};

/*
 * Read descriptors. Readers never use the writer's descriptor: they pread
 * through a cache of ESR__READ_FDS descriptors opened on demand (O_RDONLY), so a
 * store holds at most ESR__READ_FDS + 1 segment descriptors however many segments
 * it has. A segment's file exists, header synced, before any of its records
 * is published, so a reader that loaded `committed` can always open it.
 *
 * A slot's `state` is (segment << 32) | readers, segment 0 meaning empty
 * (segments count from 1). A reader joins a slot holding its segment by CAS,
 * readers + 1, and leaves it with a decrement once its pread is done. A
 * reader whose segment is in no slot takes read_lock (one miss at a time):
 * it picks a slot with no readers, not hit since the clock hand last passed,
 * empties it by CAS from (old segment, 0 readers) to 0 (so no reader can
 * join it meanwhile), closes its descriptor, opens its own segment, and
 * publishes (segment, 1 reader). If every slot has readers it waits for one
 * to leave (each holds a slot only for one pread).
 */
#define ESR__READ_FDS 8

struct esr__read_fd {
	uint64_t state;  /* (segment << 32) | readers */
	int fd;          /* written only while the slot is empty, under read_lock */
	int referenced;  /* hit since the clock hand passed: spared once */
};

/* One append waiting for the writer thread (or a report waiting for it:
 * a conflict, or a duplicate whose original is not yet durable). */
struct esr__pending {
	struct esr__pending *next;
	struct esr__fstream *s;
	uint64_t start;      /* version before the first event */
	uint64_t position;   /* global position of the first event */
	size_t n;            /* events; 0 for a report */
	int duplicate;       /* a report of ESR_EDUPLICATE, not a conflict: */
	uint32_t duplicate_at;              /* the command's index, and the */
	uint64_t recorded_first, recorded_last; /* versions its id got */
	esr_append_cb done;
	void *ctx;
	uint8_t *recs;       /* its n records, encoded by the appender (after it) */
	size_t recs_len;
	struct esr__cmd **cmds; /* its commands' new entries (after it), until */
	size_t ncmds;           /* the queue lock hands them to the stream */
};

struct esr__file_store {
	char *dir;
	int lock_fd;
	esr_file_store_options opt;
	struct esr__keyset *streams;
	int tail_fd;           /* the segment being appended to (writer and open only) */
	struct esr__read_fd reads[ESR__READ_FDS]; /* readers' descriptors, above */
	pthread_mutex_t read_lock;      /* a reader that missed the cache */
	unsigned read_hand;             /* the clock hand, under read_lock */
	/* The tail: written by the opening thread (recovery), then by the writer
	 * thread alone, and read by close only after the writer is joined. */
	uint32_t seg;          /* the segment being appended to */
	uint32_t seg_format;   /* its format (a version-1 segment is never appended to) */
	uint64_t seg_size;     /* the end of its last record: where the next batch goes */
	uint64_t seg_alloc;    /* its file's size: seg_size, then zeros written ahead */
	uint64_t next_position;

	pthread_mutex_t lock;  /* the queue, `failed`, positions */
	pthread_cond_t wake;   /* writer: work arrived, or stop */
	struct esr__pending *queue, *queue_tail;
	int stopping, failed;
	uint64_t cmd_seed;     /* of the command-id maps' hash */
	pthread_t writer;
	int writer_started;

	esr_file_store_stats stats; /* written by the writer, read with ck_pr */

	/* The global order: an index position -> location, kept like a stream's
	 * (filled by the writer, `committed` = the last position published). */
	struct esr__fstream all;
	pthread_mutex_t wait_lock; /* esr_store_wait sleepers on all.committed */
	pthread_cond_t wait_cond;
	unsigned waiters;          /* changed under wait_lock, read with ck_pr */

	/* Snapshots (store/file/file_snapshot.c): snapshots.log, appended under snap_lock. */
	pthread_mutex_t snap_lock;
	int snap_fd;
	uint64_t snap_size;
	pthread_mutex_t ckpt_lock; /* checkpoint saves, one at a time */
};

/* Index: make room for version v in s (writer only); NULL on ENOMEM. */
struct esr__loc *esr__file_index_slot(struct esr__fstream *s, uint64_t v);
/* The location of version v (v <= a committed version the caller loaded). */
const struct esr__loc *esr__file_index_get(const struct esr__fstream *s, uint64_t v);
/* The stream named by k, created if absent; NULL on ENOMEM. */
struct esr__fstream *esr__file_stream(struct esr__file_store *fs, const struct esr__key *k);
void esr__file_stream_free(struct esr__key *k);
/* Free s's index chunks only (the global order's pseudo-stream). */
void esr__file_stream_free_index(struct esr__fstream *s);
/* s->committed, loaded with acquire. */
uint64_t esr__file_committed_of(struct esr__fstream *s);

/*
 * Recovery: scan the directory's segments into the index, cut a torn tail,
 * and leave fs->seg / seg_size / next_position / tail_fd ready for appends.
 * ESR_ECORRUPT (why says the file and offset), ESR_EIO, ESR_ENOMEM.
 */
esr_status esr__file_recover(struct esr__file_store *fs, char *why, size_t why_size);

/* The global order (store/file/file_all.c): publish positions up to `last`
 * (writer, after their locations are in fs->all), wake the waiters once a
 * batch is published, and the vtable entries. */
void esr__file_all_publish(struct esr__file_store *fs, uint64_t last);
void esr__file_all_wake(struct esr__file_store *fs);
esr_status esr__file_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                         void *ctx, uint64_t *next);
esr_status esr__file_head(void *impl, uint64_t *position);
esr_status esr__file_wait(void *impl, uint64_t after, unsigned timeout_ms);
/* Read and check the record at l, expecting version v (0: any). */
esr_status esr__file_read_record(struct esr__file_store *fs, const struct esr__loc *l, uint8_t **buf,
                            size_t *cap, struct esr__rec *r);

/* Snapshots and checkpoints (store/file/file_snapshot.c). open indexes
 * snapshots.log (cut at its first bad record, compacted when mostly
 * superseded or when a record is beyond its stream's version, which it
 * drops); it runs after esr__file_recover, whose versions it checks against.
 * close closes it. */
esr_status esr__file_snapshots_open(struct esr__file_store *fs, char *why, size_t why_size);
void esr__file_snapshots_close(struct esr__file_store *fs);
esr_status esr__file_snapshot_save(void *impl, const esr_stream_id *sid, const esr_snapshot *snap);
esr_status esr__file_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                              void *ctx);
esr_status esr__file_checkpoint_save(void *impl, const char *name, uint64_t position);
esr_status esr__file_checkpoint_load(void *impl, const char *name, uint64_t *position);

/* store/file/file_recover.c: fdatasync the directory `dir` (through esr__fio),
 * so that a file created, renamed or removed in it stays so after a crash. */
esr_status esr__file_sync_dir(const char *dir);

/* Create segment `seq` (header written and synced, directory synced); it
 * becomes the tail. */
esr_status esr__file_segment_create(struct esr__file_store *fs, uint32_t seq);
/* Make fd (-1: none) the tail's descriptor, closing the previous one: the
 * store keeps only the tail's open for writing. */
void esr__file_tail_set(struct esr__file_store *fs, int fd);

#endif /* ESR_STORE_FILE_INTERNAL_H */
