/*
 * esr/file_store.h: the durable embedded event store. A directory of
 * append-only segment files (format: docs/file-format.md) behind the store
 * vtable; no server.
 *
 * An append is acknowledged (its completion called with ESR_OK) only after
 * an fdatasync that covers it, in the default sync mode. Appends from many
 * threads are written and synced together by one writer thread (group
 * commit), so one sync covers many appends. The expected-version check runs
 * against the in-memory index, so a conflict costs no I/O.
 *
 * What an append's completion promises (docs/file-format.md, "Outcomes"):
 *   ESR_OK       stored: an fdatasync covered it (ESR_SYNC_NONE: written,
 *                not synced); it is read back now and after any reopen.
 *   ESR_EIO      not stored: it was never written, or the store cut what it
 *                wrote off again (ftruncate and fdatasync) before saying so.
 *   ESR_EUNKNOWN it may be stored: its records reached the file and could not
 *                be taken back; a reopen may find it. Read the stream to learn.
 * A failed write or sync fails the store: the batch that met it completes
 * ESR_EIO or ESR_EUNKNOWN as above, everything after it ESR_EIO, and the
 * sync is not retried (the kernel may have dropped the dirty pages).
 *
 * Descriptors: an open store holds at most 11, however many segments it
 * has: LOCK, snapshots.log, the last segment's for appending, and up to 8
 * read-only ones, opened on demand; a full cache reuses one no read is using.
 * For a moment it holds more: 2 while the writer starts a new segment, and
 * 2 for each checkpoint save (1 for a load) in progress.
 */
#ifndef ESR_FILE_STORE_H
#define ESR_FILE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "esr/export.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum esr_sync_mode {
	ESR_SYNC_ALWAYS = 0,   /* fdatasync before acknowledging (default) */
	ESR_SYNC_BATCH_WINDOW, /* as ALWAYS, but wait batch_window_us for more appends first */
	ESR_SYNC_NONE          /* never sync: UNSAFE, a crash loses acknowledged appends;
	                          for benchmarks only */
} esr_sync_mode;

/*
 * The smallest segment_bytes open accepts: a segment header (32 bytes) and
 * one record of the largest event without a command id (88 +
 * ESR_TYPE_NAME_MAX + ESR_ID_MAX + ESR_PAYLOAD_MAX bytes), so that every
 * such append fits a fresh segment. An event with an id is up to
 * ESR_COMMAND_ID_MAX bytes longer: its segment may end that far past
 * segment_bytes, which only says where the next segment starts.
 */
#define ESR_FILE_SEGMENT_MIN (32u + 88u + 64u + 256u + (1u << 20)) /* 1 049 016 */

typedef struct esr_file_store_options {
	esr_sync_mode sync;
	unsigned batch_window_us; /* ESR_SYNC_BATCH_WINDOW only; default 200 */
	uint64_t segment_bytes;   /* start a new segment past this size; default 64 MiB,
	                             at least ESR_FILE_SEGMENT_MIN */
	int salvage;              /* open despite corruption: keep the log up to the first
	                             damage, every byte after it kept aside in *.damaged
	                             files (see esr_file_store_open) */
	char *why;                /* if not NULL, open writes a one-line reason here on
	                             failure (file and offset for ESR_ECORRUPT) */
	size_t why_size;
} esr_file_store_options;

/* Fill *o with the defaults. ESR_EINVAL for NULL. */
ESR_API esr_status esr_file_store_options_default(esr_file_store_options *o);

/*
 * esr_file_store_open: open (creating it if absent) the store in directory
 * `dir`, recovering its index from the segments: every CRC is checked, a torn
 * tail is cut at the last whole append, and damage anywhere else, or a
 * missing segment, is ESR_ECORRUPT, naming the file and offset in o->why.
 * A last segment whose header never reached the disk (a crash while creating
 * it: shorter than a header, or all zeros) is a torn tail too: its file is
 * removed and appends go on in the segment before it.
 *
 * o->salvage opens despite such damage with exactly the appends before it,
 * deleting and overwriting nothing: the damaged segment NNNNNNNN.seg is
 * copied whole to NNNNNNNN.seg.damaged, each later segment is renamed to its
 * own .seg.damaged, then the damaged one is cut at the damage (a bad header
 * or a missing segment: the log ends with the segment before it, nothing is
 * cut). A name an earlier salvage took gets a suffix: .damaged.1, .2, ...
 * Salvage refuses (ESR_ECORRUPT) when no event precedes the damage: it never
 * leaves an empty store. Checkpoints are left as they are; every open drops
 * for good a snapshot of a version beyond its stream's, such as one of the
 * events salvage set aside (docs/file-format.md, "Salvage").
 *
 * ESR_EBUSY if another store holds the directory (a lock file, also across
 * processes); ESR_EIO for a directory or file that cannot be created, read
 * or locked. o may be NULL (defaults). *out is written only on success.
 */
ESR_API esr_status esr_file_store_open(const char *dir, const esr_file_store_options *o,
                                       esr_store **out);

typedef struct esr_file_store_stats {
	uint64_t appends;  /* acknowledged */
	uint64_t events;   /* in acknowledged appends */
	uint64_t writes;   /* write calls that carried appends */
	uint64_t fsyncs;   /* fdatasync calls */
	uint64_t bytes;    /* written since open */
	int failed;        /* a write or sync failed: every append now fails */
} esr_file_store_stats;

/* Counters of a store opened by esr_file_store_open; ESR_EINVAL for others. */
ESR_API esr_status esr_file_store_stats_get(esr_store *store, esr_file_store_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* ESR_FILE_STORE_H */
