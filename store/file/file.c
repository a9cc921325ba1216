/*
 * store/file/file.c: the durable embedded store (include/esr/file_store.h) at
 * run time: appends, the group-commit writer, reads through the index.
 * docs/architecture.md has the map.
 *
 * An append (by id, or through a handle from resolve: a handle is the stream
 * itself), under the queue lock, checks and moves the stream's `reserved`
 * version (a conflict costs no I/O), checks and records its command ids
 * (store/file/file_cmds.c), takes global positions, encodes its records
 * (store/file/file_format.c) and joins the queue. The
 * writer thread takes the whole queue at once, gathers its records, writes
 * them with one write() to the current segment, syncs once, and only then,
 * in queue order, records each append's locations, publishes the stream's
 * `committed` version and calls its completion. A conflict also goes
 * through the queue, so it is reported after every append queued before it
 * is durable and readable: the caller's catch-up read then sees the version
 * the conflict names.
 *
 * The index slots of a batch are made before it is written, so an append
 * that is durable is always published: the only failures are the write and
 * the sync, before anything is acknowledged.
 *
 * Failure. A failed or short write, or a failed sync, sets `failed`. The
 * writer then truncates the tail back to where the batch began and syncs:
 * if that works the batch is gone and its appends complete ESR_EIO; if not,
 * those whose records all reached the file complete ESR_EUNKNOWN (a reopen
 * may recover them) and the rest ESR_EIO. Everything queued after it
 * completes ESR_EIO, later appends are refused with ESR_EIO at once, and
 * `committed` never moves again, so reads and versions show exactly what was
 * acknowledged. The sync is not retried (after a failed fdatasync the kernel
 * may have dropped the pages).
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/internal.h"
#include "core/sync.h"
#include "store/file/file_format.h"
#include "store/file/file_internal.h"
#include "store/file/file_io.h"
#include "store/store_internal.h"

#define LOC_FIRST 4
#define LOC_MAX 65536

/* --- the index ------------------------------------------------------------------- */

static struct esr__loc_chunk *loc_chunk_new(uint64_t first, uint64_t cap)
{
	struct esr__loc_chunk *c = malloc(sizeof *c + cap * sizeof(struct esr__loc));

	if (c != NULL) {
		c->next = NULL;
		c->first = first;
		c->cap = cap;
	}
	return c;
}

struct esr__loc *esr__file_index_slot(struct esr__fstream *s, uint64_t v)
{
	struct esr__loc_chunk *c = s->tail;

	if (c == NULL) {
		if ((c = loc_chunk_new(1, LOC_FIRST)) == NULL)
			return NULL;
		s->head = s->tail = c; /* published by the release of `committed` */
	}
	while (v >= c->first + c->cap) {
		struct esr__loc_chunk *next = c->next;
		if (next == NULL) {
			uint64_t cap = c->cap * 2 < LOC_MAX ? c->cap * 2 : LOC_MAX;
			if ((next = loc_chunk_new(c->first + c->cap, cap)) == NULL)
				return NULL;
			c->next = next;
		}
		s->tail = c = next;
	}
	return &c->locs[v - c->first];
}

const struct esr__loc *esr__file_index_get(const struct esr__fstream *s, uint64_t v)
{
	const struct esr__loc_chunk *c = s->head;

	while (v >= c->first + c->cap)
		c = c->next;
	return &c->locs[v - c->first];
}

struct esr__fstream *esr__file_stream(struct esr__file_store *fs, const struct esr__key *k)
{
	struct esr__fstream *s = (struct esr__fstream *)esr__keyset_get(fs->streams, k), *fresh;

	if (s != NULL)
		return s;
	if ((fresh = calloc(1, sizeof *fresh + esr__key_storage(k))) == NULL)
		return NULL;
	esr__key_copy(&fresh->key, k, fresh + 1);
	s = (struct esr__fstream *)esr__keyset_insert(fs->streams, &fresh->key);
	if (s != fresh)
		free(fresh); /* lost a race, or out of memory (s NULL) */
	return s;
}

void esr__file_stream_free_index(struct esr__fstream *s)
{
	struct esr__loc_chunk *c = s->head, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	s->head = s->tail = NULL;
}

void esr__file_stream_free(struct esr__key *k)
{
	esr__file_stream_free_index((struct esr__fstream *)k);
	esr__cmds_free(((struct esr__fstream *)k)->cmds);
	free(k);
}

static struct esr__fstream *find(struct esr__file_store *fs, const esr_stream_id *sid)
{
	struct esr__key k;

	esr__keyset_key(fs->streams, sid->type, sid->id, sid->id_len, &k);
	return (struct esr__fstream *)esr__keyset_get(fs->streams, &k);
}

/* --- appends ---------------------------------------------------------------------------- */

/* The commands with an id among events: runs of one id (esr/store.h). */
static size_t count_cmds(const esr_event *events, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += esr__command_run_starts(events, i);
	return k;
}

/* Free the command entries p still owns (those no stream took). */
static void discard_cmds(struct esr__pending *p)
{
	size_t k;

	for (k = 0; k < p->ncmds; k++)
		free(p->cmds[k]);
	p->ncmds = 0;
}

static void pending_free(struct esr__pending *p)
{
	discard_cmds(p);
	free(p);
}

/*
 * One allocation: the pending record, the pointers to its commands' entries
 * and room for its events' records (append_to encodes them). The entries
 * themselves are allocated here, before the queue lock, each holding its
 * command's index in the append until the versions are claimed.
 */
static struct esr__pending *pending_new(const esr_stream_id *sid, const esr_event *events,
                                        size_t n)
{
	size_t i, j, bytes = 0, ncmds = count_cmds(events, n);
	struct esr__pending *p;

	for (i = 0; i < n; i++)
		bytes += esr__rec_size(sid, &events[i]);
	if ((p = malloc(sizeof *p + ncmds * sizeof(struct esr__cmd *) + bytes)) == NULL)
		return NULL;
	memset(p, 0, sizeof *p);
	p->n = n;
	p->cmds = (struct esr__cmd **)(p + 1);
	p->recs = (uint8_t *)(p->cmds + ncmds);
	p->recs_len = bytes;
	for (i = 0; i < n; i = j) {
		const esr_command_id *c = &events[i].command_id;
		for (j = i + 1; j < n && esr__command_id_equal(&events[j].command_id, c); j++)
			;
		if (c->len == 0)
			continue;
		if ((p->cmds[p->ncmds] = esr__cmd_new(c->bytes, c->len, i, j - i)) == NULL) {
			pending_free(p);
			return NULL;
		}
		p->ncmds++;
	}
	return p;
}

static void complete(esr_append_cb done, void *ctx, esr_status st, uint64_t version)
{
	esr_append_result r = {.status = st, .version = version};

	done(ctx, &r);
}

/* An append refused as a duplicate: its command at index `at` was recorded
 * at versions first..last, which are durable. */
static void complete_duplicate(esr_append_cb done, void *ctx, uint32_t at, uint64_t first,
                               uint64_t last)
{
	esr_append_result r = {.status = ESR_EDUPLICATE, .version = last,
	                       .recorded_first = first, .duplicate_at = at};

	done(ctx, &r);
}

/* An append committed: its version and the position of its first event. */
static void complete_at(esr_append_cb done, void *ctx, uint64_t version, uint64_t position)
{
	esr_append_result r = {.status = ESR_OK, .version = version, .position = position};

	done(ctx, &r);
}

static void enqueue(struct esr__file_store *fs, struct esr__pending *p)
{
	p->next = NULL;
	if (fs->queue_tail)
		fs->queue_tail->next = p;
	else
		fs->queue = p;
	fs->queue_tail = p;
	pthread_cond_signal(&fs->wake);
}

/*
 * Under the queue lock: the first of p's commands (in the append's order)
 * whose id s has recorded, or NULL; *at is that command's index.
 */
static const struct esr__cmd *recorded(const struct esr__file_store *fs,
                                       const struct esr__fstream *s,
                                       const struct esr__pending *p, uint32_t *at)
{
	const struct esr__cmd *c;
	size_t k;

	for (k = 0; k < p->ncmds; k++)
		if ((c = esr__cmds_find(s->cmds, fs->cmd_seed, p->cmds[k]->id, p->cmds[k]->len))) {
			*at = (uint32_t)p->cmds[k]->first;
			return c;
		}
	return NULL;
}

/*
 * Under the queue lock, for an append about to claim versions v + 1 ...:
 * hand its commands' entries to the stream, each now naming its versions.
 * -1, with nothing changed, when the map cannot grow (ENOMEM).
 */
static int record_cmds(struct esr__file_store *fs, struct esr__fstream *s,
                       struct esr__pending *p, uint64_t v)
{
	size_t k;

	if (esr__cmds_room(&s->cmds, fs->cmd_seed, p->ncmds) != 0)
		return -1;
	for (k = 0; k < p->ncmds; k++) {
		p->cmds[k]->first += v + 1;
		esr__cmds_put(s->cmds, fs->cmd_seed, p->cmds[k]);
	}
	p->ncmds = 0;
	return 0;
}

/*
 * Queue an append to stream s. `reserved` moves only under the queue lock,
 * so loading, checking and moving it there is the optimistic check and the
 * claim at once; the lock also keeps the queue in version order per stream.
 *
 * Command ids are checked and recorded under the same lock, after the
 * version check: so two appends of one id are ordered, and the second finds
 * the first's entry. A duplicate is reported only once its original is
 * durable, since the caller may rely on it being stored: at once (on this
 * thread) if the stream's `committed` already covers the original, else
 * through the queue, behind the original, like a conflict. If the original's
 * batch fails, the store fails with it and the report completes ESR_EIO;
 * the entry stays, but no later append is taken until a reopen rebuilds the
 * map from what the disk holds.
 *
 * The append's records are encoded here, on the appender's thread, so the
 * writer only copies bytes: with many appenders the encoding and the CRCs
 * run on their threads, not serially on the one that syncs. It happens
 * under the lock because a record's CRC covers its version and position,
 * which are decided there; encoding after the unlock would need a flag per
 * append that the writer waits on, and an appender preempted before setting
 * it would stall every append queued behind it. For the records of a typical
 * event that is tens of nanoseconds more under the lock.
 */
static esr_status append_to(struct esr__file_store *fs, struct esr__fstream *s, uint64_t expected,
                            const esr_event *events, size_t n, esr_append_cb done,
                            void *ctx)
{
	esr_stream_id sid = {s->key.type, s->key.id, s->key.id_len};
	struct esr__pending *p = pending_new(&sid, events, n);
	const struct esr__cmd *dup;
	size_t i, at;
	uint64_t v;

	if (p == NULL)
		return ESR_ENOMEM; /* refused: nothing taken */
	pthread_mutex_lock(&fs->lock);
	if (fs->failed || fs->stopping) {
		pthread_mutex_unlock(&fs->lock);
		pending_free(p);
		return ESR_EIO;
	}
	v = ck_pr_load_64(&s->reserved);
	if (expected != ESR_VERSION_ANY && v != expected) {
		discard_cmds(p);
		p->n = 0; /* a conflict: reported once what precedes it is durable */
		p->recs_len = 0;
	} else if ((dup = recorded(fs, s, p, &p->duplicate_at)) != NULL) {
		p->recorded_first = dup->first;
		p->recorded_last = dup->first + dup->count - 1;
		discard_cmds(p);
		/* Acquire: `committed` covering the original is published after
		 * the sync that made it durable (publish). */
		if (esr__file_committed_of(s) >= p->recorded_last) {
			pthread_mutex_unlock(&fs->lock);
			complete_duplicate(done, ctx, p->duplicate_at, p->recorded_first,
			                   p->recorded_last);
			free(p);
			return ESR_OK;
		}
		p->n = 0; /* reported behind its original, once that is durable */
		p->recs_len = 0;
		p->duplicate = 1;
	} else if (record_cmds(fs, s, p, v) != 0) {
		pthread_mutex_unlock(&fs->lock);
		pending_free(p);
		return ESR_ENOMEM; /* refused: nothing taken */
	} else {
		ck_pr_store_64(&s->reserved, v + n);
		p->start = v;
		p->position = fs->next_position;
		fs->next_position += n;
		for (i = 0, at = 0; i < n; i++)
			at += esr__rec_encode(p->recs + at, &sid, &events[i], v + 1 + i, p->position + i,
			                      (uint16_t)i, (uint16_t)n);
	}
	p->s = s;
	p->done = done;
	p->ctx = ctx;
	enqueue(fs, p);
	pthread_mutex_unlock(&fs->lock);
	return ESR_OK;
}

/* A handle is the stream itself: streams live until the store closes. */
static esr_status file_resolve(void *impl, const esr_stream_id *sid, void **handle)
{
	struct esr__file_store *fs = impl;
	struct esr__key k;
	struct esr__fstream *s;

	esr__keyset_key(fs->streams, sid->type, sid->id, sid->id_len, &k);
	if ((s = esr__file_stream(fs, &k)) == NULL)
		return ESR_ENOMEM;
	*handle = s;
	return ESR_OK;
}

static esr_status file_append(void *impl, const esr_stream_id *sid, uint64_t expected,
                              const esr_event *events, size_t n, esr_append_cb done,
                              void *ctx)
{
	void *s;
	esr_status st;

	if ((st = file_resolve(impl, sid, &s)) != ESR_OK)
		return st;
	return append_to(impl, s, expected, events, n, done, ctx);
}

static esr_status file_append_resolved(void *impl, void *handle, uint64_t expected,
                                       const esr_event *events, size_t n,
                                       esr_append_cb done, void *ctx)
{
	return append_to(impl, handle, expected, events, n, done, ctx);
}

/* --- the writer ------------------------------------------------------------------------ */

/* Write all n bytes; *written counts those the file took, also on failure. */
static esr_status write_all(int fd, const uint8_t *buf, size_t n, size_t *written)
{
	ssize_t w;

	*written = 0;
	while (n > 0) {
		if ((w = esr__fio.write(fd, buf, n)) < 0) {
			if (errno == EINTR)
				continue;
			return ESR_EIO;
		}
		if (w == 0)
			return ESR_EIO;
		buf += w;
		n -= (size_t)w;
		*written += (size_t)w;
	}
	return ESR_OK;
}

struct batch {
	uint8_t *buf;
	size_t len, cap;
	struct esr__loc *locs;   /* one per event, in queue order */
	struct esr__loc **slots; /* per event: its stream's index slot, then the global one */
	size_t events_cap;
};

static int reserve_bytes(struct batch *b, size_t more)
{
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		uint8_t *buf;
		while (cap < b->len + more)
			cap *= 2;
		if ((buf = realloc(b->buf, cap)) == NULL)
			return -1;
		b->buf = buf;
		b->cap = cap;
	}
	return 0;
}

static int reserve_events(struct batch *b, size_t n)
{
	struct esr__loc *locs;
	struct esr__loc **slots;

	if (n <= b->events_cap)
		return 0;
	if ((locs = realloc(b->locs, n * sizeof *locs)) == NULL)
		return -1;
	b->locs = locs;
	if ((slots = realloc(b->slots, 2 * n * sizeof *slots)) == NULL)
		return -1;
	b->slots = slots;
	b->events_cap = n;
	return 0;
}

/* Gather the taken queue's records (encoded by their appenders) into b, their
 * offsets starting at `base`, one location per event in b->locs, in queue
 * order. */
static esr_status gather(struct esr__pending *q, struct batch *b, uint64_t base)
{
	struct esr__pending *p;
	size_t i, k = 0, at;

	b->len = 0;
	for (p = q; p != NULL; p = p->next) {
		if (reserve_bytes(b, p->recs_len) != 0)
			return ESR_ENOMEM;
		memcpy(b->buf + b->len, p->recs, p->recs_len);
		for (i = 0, at = 0; i < p->n; i++) {
			uint32_t len = esr__rec_claimed(p->recs + at);
			b->locs[k++] = (struct esr__loc){0, len, base + b->len + at};
			at += len;
		}
		b->len += p->recs_len;
	}
	return ESR_OK;
}

/*
 * Make room in the indexes for every event of the batch before it is written,
 * so that once it is durable nothing can stop it from being published (an
 * append on disk but reported failed would be recovered at the next open).
 * Slots past `committed` are invisible to readers.
 */
static esr_status reserve_slots(struct esr__file_store *fs, struct esr__pending *q, struct batch *b)
{
	struct esr__pending *p;
	size_t i, k = 0;

	for (p = q; p != NULL; p = p->next)
		for (i = 0; i < p->n; i++, k++) {
			b->slots[2 * k] = esr__file_index_slot(p->s, p->start + 1 + i);
			b->slots[2 * k + 1] = esr__file_index_slot(&fs->all, p->position + i);
			if (b->slots[2 * k] == NULL || b->slots[2 * k + 1] == NULL)
				return ESR_ENOMEM;
		}
	return ESR_OK;
}

/* Make the synced appends readable and acknowledge them, in queue order. */
static void publish(struct esr__file_store *fs, struct esr__pending *q, const struct batch *b)
{
	struct esr__pending *p, *next;
	size_t i, k = 0;

	for (p = q; p != NULL; p = next) {
		next = p->next;
		if (p->n == 0 && p->duplicate) { /* its original, before it, is durable now */
			complete_duplicate(p->done, p->ctx, p->duplicate_at, p->recorded_first,
			                   p->recorded_last);
			free(p);
			continue;
		}
		if (p->n == 0) { /* a conflict: everything before it is visible now */
			complete(p->done, p->ctx, ESR_ECONFLICT, ck_pr_load_64(&p->s->committed));
			free(p);
			continue;
		}
		for (i = 0; i < p->n; i++, k++) {
			*b->slots[2 * k] = b->locs[k];
			b->slots[2 * k]->seg = fs->seg;
			*b->slots[2 * k + 1] = *b->slots[2 * k];
		}
		ck_pr_fence_release();
		ESR_TSAN_RELEASE(&p->s->committed);
		ck_pr_store_64(&p->s->committed, p->start + p->n);
		ck_pr_store_64(&fs->stats.appends, fs->stats.appends + 1);
		ck_pr_store_64(&fs->stats.events, fs->stats.events + p->n);
		esr__file_all_publish(fs, p->position + p->n - 1);
		complete_at(p->done, p->ctx, p->start + p->n, p->position);
		free(p);
	}
	esr__file_all_wake(fs);
}

static void fail_all(struct esr__pending *q)
{
	struct esr__pending *p, *next;

	for (p = q; p != NULL; p = next) {
		next = p->next;
		complete(p->done, p->ctx, ESR_EIO, 0);
		free(p);
	}
}

/*
 * The batch failed after `written` of its bytes, at offset `base` of the
 * tail, reached the file. Take them back out (truncate to base, sync): then
 * none of its appends is stored and each completes ESR_EIO. If that fails
 * too, every append of the batch may be found at the next open, so each
 * completes ESR_EUNKNOWN (a conflict report, n == 0, stored nothing:
 * ESR_EIO). Bytes were written only after extend() grew the file past the
 * whole batch, and a record's bytes the write did not reach read as zeros
 * there, which is the record itself wherever it held zeros: so how far the
 * write got tells nothing. Nothing written at all (written == 0) leaves no
 * record to find, zeros being none.
 */
static void fail_batch(struct esr__file_store *fs, struct esr__pending *q, uint64_t base,
                       size_t written)
{
	int fd = fs->tail_fd, back;
	struct esr__pending *p, *next;

	back = written == 0 ||
	       (esr__fio.ftruncate(fd, (off_t)base) == 0 && esr__fio.fdatasync(fd) == 0);
	for (p = q; p != NULL; p = next) {
		next = p->next;
		complete(p->done, p->ctx, !back && p->n != 0 ? ESR_EUNKNOWN : ESR_EIO, 0);
		free(p);
	}
}

/*
 * Preallocation. A sync after a write that grows the file must also make the
 * new size durable, a metadata update on top of the data; a write inside the
 * file's size needs the data alone. So before a batch would end past the
 * file, the writer grows it by ESR__SEG_STEP bytes of zeros (at most to the
 * segment's size, never less than the batch needs), written for real rather
 * than fallocated: an extent allocated but not written is converted at its
 * first write, a metadata update again. The batch's own sync makes the new
 * size durable with it; the syncs of the next batches, inside it, write data
 * only. Zeros are no record, so recovery finds the log's end where they begin
 * (docs/file-format.md). Zeros never go past the segment's size, and a
 * segment is left for the next only once its records reach that size: so
 * only the last segment can end in zeros.
 */
static esr_status extend(struct esr__file_store *fs, uint64_t end)
{
	/* Only read; not const, which would put 1 MiB of zeros in the library's
	 * file instead of its zero-filled .bss. */
	static uint8_t zeros[1u << 20];
	uint64_t to = (end + ESR__SEG_STEP - 1) / ESR__SEG_STEP * ESR__SEG_STEP, at;
	ssize_t w;

	if (end <= fs->seg_alloc)
		return ESR_OK;
	if (to > fs->opt.segment_bytes)
		to = end > fs->opt.segment_bytes ? end : fs->opt.segment_bytes;
	/* The batch itself fills [seg_alloc, end); zeros go after it only. */
	for (at = end; at < to; at += (uint64_t)w) {
		size_t n = to - at < sizeof zeros ? (size_t)(to - at) : sizeof zeros;
		if ((w = esr__fio.pwrite(fs->tail_fd, zeros, n, (off_t)at)) <= 0) {
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			return ESR_EIO;
		}
	}
	fs->seg_alloc = to;
	return ESR_OK;
}

static size_t count_events(const struct esr__pending *q)
{
	size_t n = 0;

	for (; q != NULL; q = q->next)
		n += q->n;
	return n;
}

/* Write, sync, publish one taken queue. Returns 0, or -1 if the store failed. */
static int commit(struct esr__file_store *fs, struct esr__pending *q, struct batch *b)
{
	size_t n = count_events(q), written = 0;
	esr_status st = ESR_OK;
	uint64_t base;

	if (n == 0) { /* only conflicts */
		publish(fs, q, b);
		return 0;
	}
	if (reserve_events(b, n) != 0)
		st = ESR_ENOMEM;
	/* A crash in esr__file_segment_create may leave a headerless last segment:
	 * recovery treats it as the torn tail (store/file/file_recover.c). A
	 * segment of an older format is left as it is, so that its header
	 * keeps describing every record in it (docs/file-format.md). */
	if (st == ESR_OK && ((fs->seg_size > ESR__SEG_HEADER && fs->seg_size >= fs->opt.segment_bytes) ||
	                     fs->seg_format != ESR__SEG_FORMAT))
		st = esr__file_segment_create(fs, fs->seg + 1);
	base = fs->seg_size;
	if (st == ESR_OK)
		st = reserve_slots(fs, q, b);
	if (st == ESR_OK)
		st = gather(q, b, base);
	if (st == ESR_OK)
		st = extend(fs, base + b->len);
	if (st == ESR_OK) {
		st = write_all(fs->tail_fd, b->buf, b->len, &written);
		fs->seg_size += written;
		ck_pr_store_64(&fs->stats.writes, fs->stats.writes + 1);
		ck_pr_store_64(&fs->stats.bytes, fs->stats.bytes + written);
	}
	if (st == ESR_OK && fs->opt.sync != ESR_SYNC_NONE) {
		if (esr__fio.fdatasync(fs->tail_fd) != 0)
			st = ESR_EIO;
		ck_pr_store_64(&fs->stats.fsyncs, fs->stats.fsyncs + 1);
	}
	if (st != ESR_OK) {
		pthread_mutex_lock(&fs->lock);
		ck_pr_store_int(&fs->failed, 1);
		pthread_mutex_unlock(&fs->lock);
		fail_batch(fs, q, base, written);
		return -1;
	}
	publish(fs, q, b);
	return 0;
}

static void *writer_main(void *arg)
{
	struct esr__file_store *fs = arg;
	struct batch b = {0};
	struct esr__pending *q;

	for (;;) {
		pthread_mutex_lock(&fs->lock);
		while (fs->queue == NULL && !fs->stopping)
			pthread_cond_wait(&fs->wake, &fs->lock);
		if (fs->queue == NULL) { /* stopping, and nothing left */
			pthread_mutex_unlock(&fs->lock);
			break;
		}
		if (fs->opt.sync == ESR_SYNC_BATCH_WINDOW && fs->opt.batch_window_us && !fs->stopping) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += (long)fs->opt.batch_window_us * 1000;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_mutex_unlock(&fs->lock);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
			pthread_mutex_lock(&fs->lock);
		}
		q = fs->queue;
		fs->queue = fs->queue_tail = NULL;
		pthread_mutex_unlock(&fs->lock);
		if (ck_pr_load_int(&fs->failed))
			fail_all(q);
		else
			commit(fs, q, &b);
	}
	free(b.buf);
	free(b.locs);
	free(b.slots);
	return NULL;
}

/* --- reads ------------------------------------------------------------------------------- */

uint64_t esr__file_committed_of(struct esr__fstream *s)
{
	uint64_t c = ck_pr_load_64(&s->committed);

	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&s->committed);
	return c;
}

void esr__file_tail_set(struct esr__file_store *fs, int fd)
{
	if (fs->tail_fd >= 0)
		esr__fio.close(fs->tail_fd);
	fs->tail_fd = fd;
}

#define READERS_MASK 0xffffffffu

/* Join the slot that holds segment seg, if one does; its index or -1. */
static int read_fd_hit(struct esr__file_store *fs, uint32_t seg)
{
	unsigned i;

	for (i = 0; i < ESR__READ_FDS; i++) {
		struct esr__read_fd *r = &fs->reads[i];
		uint64_t st = ck_pr_load_64(&r->state);
		while (st >> 32 == seg) {
			if (ck_pr_cas_64_value(&r->state, st, st + 1, &st)) {
				/* Acquire: pairs with the release in read_fd_miss that
				 * published r->fd with this segment. */
				ck_pr_fence_acquire();
				ESR_TSAN_ACQUIRE(&r->state);
				if (!ck_pr_load_int(&r->referenced))
					ck_pr_store_int(&r->referenced, 1);
				return (int)i;
			}
		}
	}
	return -1;
}

/* Under read_lock: empty a slot nobody reads (the clock: a slot hit since
 * the hand last passed is spared once); its index, or -1 if all are read. */
static int read_fd_evict(struct esr__file_store *fs)
{
	unsigned step;

	for (step = 0; step < 2 * ESR__READ_FDS; step++) {
		struct esr__read_fd *r = &fs->reads[fs->read_hand];
		uint64_t st = ck_pr_load_64(&r->state);
		fs->read_hand = (fs->read_hand + 1) % ESR__READ_FDS;
		if ((st & READERS_MASK) != 0)
			continue;
		if (st != 0 && ck_pr_load_int(&r->referenced)) {
			ck_pr_store_int(&r->referenced, 0);
			continue;
		}
		/* From (segment, no readers) to empty: a reader that joined since
		 * the load makes the CAS fail. Acquire: the last reader's pread,
		 * done before its release decrement, is over before the close. */
		if (st != 0 && !ck_pr_cas_64(&r->state, st, 0))
			continue;
		ck_pr_fence_acquire();
		ESR_TSAN_ACQUIRE(&r->state);
		if (r->fd >= 0)
			esr__fio.close(r->fd);
		r->fd = -1;
		return (int)(r - fs->reads);
	}
	return -1;
}

/* The slot of segment seg, opened into an emptied slot if no slot holds it. */
static esr_status read_fd_miss(struct esr__file_store *fs, uint32_t seg, int *slot)
{
	struct esr__read_fd *r;
	esr_status st = ESR_OK;
	char path[4096];
	int i, fd;

	pthread_mutex_lock(&fs->read_lock);
	/* Another miss may have opened it meanwhile. A cache whose every slot
	 * has readers waits for one to leave: each stays for one pread. */
	while ((i = read_fd_hit(fs, seg)) < 0 && (i = read_fd_evict(fs)) < 0) {
		pthread_mutex_unlock(&fs->read_lock);
		sched_yield();
		pthread_mutex_lock(&fs->read_lock);
	}
	r = &fs->reads[i];
	if (ck_pr_load_64(&r->state) == 0) { /* emptied by us: fill it */
		snprintf(path, sizeof path, "%s/%08u.seg", fs->dir, (unsigned)seg);
		if ((fd = esr__fio.open(path, O_RDONLY | O_CLOEXEC, 0)) < 0) {
			st = ESR_EIO; /* the slot stays empty */
		} else {
			r->fd = fd;
			ck_pr_store_int(&r->referenced, 1);
			/* Release: r->fd before the state that names its segment. */
			ck_pr_fence_release();
			ESR_TSAN_RELEASE(&r->state);
			ck_pr_store_64(&r->state, (uint64_t)seg << 32 | 1);
		}
	}
	pthread_mutex_unlock(&fs->read_lock);
	*slot = i;
	return st;
}

static void read_fd_leave(struct esr__file_store *fs, int slot)
{
	/* Release: this reader's pread is over before the slot can be emptied. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&fs->reads[slot].state);
	ck_pr_dec_64(&fs->reads[slot].state);
}

esr_status esr__file_read_record(struct esr__file_store *fs, const struct esr__loc *l, uint8_t **buf,
                            size_t *cap, struct esr__rec *r)
{
	esr_status st = ESR_OK;
	ssize_t got;
	int slot;

	if (l->length > *cap) {
		uint8_t *nb = realloc(*buf, l->length);
		if (nb == NULL)
			return ESR_ENOMEM;
		*buf = nb;
		*cap = l->length;
	}
	if ((slot = read_fd_hit(fs, l->seg)) < 0 && (st = read_fd_miss(fs, l->seg, &slot)) != ESR_OK)
		return st;
	got = esr__fio.pread(fs->reads[slot].fd, *buf, l->length, (off_t)l->offset);
	read_fd_leave(fs, slot);
	if (got != (ssize_t)l->length)
		return ESR_EIO;
	/* Checked again on the way out: the disk can rot after open. */
	return esr__rec_decode(*buf, l->length, r) == ESR__REC_OK ? ESR_OK : ESR_ECORRUPT;
}

static esr_status file_read(void *impl, const esr_stream_id *sid, uint64_t from,
                            esr_visit_fn visit, void *ctx)
{
	struct esr__file_store *fs = impl;
	struct esr__fstream *s = find(fs, sid);
	esr_status st = ESR_OK;
	uint8_t *buf = NULL;
	size_t cap = 0;
	uint64_t v, last;

	if (s == NULL)
		return ESR_OK;
	last = esr__file_committed_of(s);
	for (v = from ? from : 1; v <= last && st == ESR_OK; v++) {
		esr_recorded_event out;
		struct esr__rec r;

		st = esr__file_read_record(fs, esr__file_index_get(s, v), &buf, &cap, &r);
		if (st == ESR_OK && r.version != v)
			st = ESR_ECORRUPT;
		if (st != ESR_OK)
			break;
		out = (esr_recorded_event){r.event, r.version, r.position, *sid};
		st = visit(ctx, &out);
	}
	free(buf);
	return st;
}

static esr_status file_version(void *impl, const esr_stream_id *sid, uint64_t *version)
{
	struct esr__fstream *s = find(impl, sid);

	*version = s ? esr__file_committed_of(s) : 0;
	return ESR_OK;
}

/*
 * The versions of (stream, id), if its events are committed: an id whose
 * append is still in the writer's hands (or was in a batch that failed)
 * reads as not recorded, as its events read as absent. The map is read
 * under the queue lock, which appends hold to change it; `committed` is
 * loaded after, with acquire, so an append completed before this call is
 * covered (its completion follows its publication).
 */
static esr_status file_command(void *impl, const esr_stream_id *sid, const void *id, size_t len,
                               uint64_t *first, uint64_t *last)
{
	struct esr__file_store *fs = impl;
	struct esr__fstream *s = find(fs, sid);
	const struct esr__cmd *c;
	uint64_t f = 0, l = 0;

	*first = *last = 0;
	if (s == NULL)
		return ESR_OK;
	pthread_mutex_lock(&fs->lock);
	if ((c = esr__cmds_find(s->cmds, fs->cmd_seed, id, len)) != NULL) {
		f = c->first;
		l = c->first + c->count - 1;
	}
	pthread_mutex_unlock(&fs->lock);
	if (c != NULL && esr__file_committed_of(s) >= l) {
		*first = f;
		*last = l;
	}
	return ESR_OK;
}

/* --- open and close ------------------------------------------------------------------------ */

static void release(struct esr__file_store *fs)
{
	uint32_t i;

	if (fs->streams)
		esr__keyset_destroy(fs->streams, esr__file_stream_free);
	esr__file_tail_set(fs, -1);
	for (i = 0; i < ESR__READ_FDS; i++)
		if (fs->reads[i].fd >= 0)
			esr__fio.close(fs->reads[i].fd);
	pthread_mutex_destroy(&fs->read_lock);
	if (fs->lock_fd >= 0)
		esr__fio.close(fs->lock_fd); /* and with it the lock */
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->wake);
	esr__file_snapshots_close(fs);
	esr__file_stream_free_index(&fs->all);
	pthread_mutex_destroy(&fs->wait_lock);
	pthread_cond_destroy(&fs->wait_cond);
	pthread_mutex_destroy(&fs->snap_lock);
	pthread_mutex_destroy(&fs->ckpt_lock);
	free(fs->dir);
	free(fs);
}

static void file_destroy(void *impl)
{
	struct esr__file_store *fs = impl;

	pthread_mutex_lock(&fs->lock);
	fs->stopping = 1;
	pthread_cond_signal(&fs->wake);
	pthread_mutex_unlock(&fs->lock);
	if (fs->writer_started)
		pthread_join(fs->writer, NULL); /* it drains the queue first */
	/* Leave the last segment as long as its records, for readers of the
	 * files; not synced: zeros a crash brings back are the log's end. */
	if (!fs->failed && fs->tail_fd >= 0 && fs->seg_alloc > fs->seg_size)
		(void)esr__fio.ftruncate(fs->tail_fd, (off_t)fs->seg_size);
	release(fs);
}

/* The public minimum predates command ids: a record with the longest one is
 * ESR_COMMAND_ID_MAX bytes more. A segment takes a record past its size
 * (segment_bytes is where the next batch starts a new one), so that only
 * makes such a segment a little longer than segment_bytes. */
_Static_assert(ESR_FILE_SEGMENT_MIN == ESR__SEG_HEADER + ESR__REC_MAX - ESR_COMMAND_ID_MAX,
               "ESR_FILE_SEGMENT_MIN is a segment header and the largest record without "
               "a command id");

static const esr_store_vtable file_vtable = {
	.vtable_version = ESR_STORE_VTABLE_VERSION,
	.name = "file",
	.append = file_append,
	.read = file_read,
	.version = file_version,
	.destroy = file_destroy,
	.resolve = file_resolve,
	.append_resolved = file_append_resolved,
	.read_all = esr__file_read_all,
	.head = esr__file_head,
	.wait = esr__file_wait,
	.snapshot_save = esr__file_snapshot_save,
	.snapshot_load = esr__file_snapshot_load,
	.checkpoint_save = esr__file_checkpoint_save,
	.checkpoint_load = esr__file_checkpoint_load,
	.command = file_command,
};

esr_status esr_file_store_options_default(esr_file_store_options *o)
{
	if (o == NULL)
		return ESR_EINVAL;
	memset(o, 0, sizeof *o);
	o->sync = ESR_SYNC_ALWAYS;
	o->batch_window_us = 200;
	o->segment_bytes = 64u << 20;
	return ESR_OK;
}

/* The directory exists (made if absent) and is ours alone (a locked LOCK file). */
static esr_status take_directory(struct esr__file_store *fs, char *why, size_t why_size)
{
	char path[4096];

	if (mkdir(fs->dir, 0755) != 0 && errno != EEXIST) {
		esr__why(why, why_size, "%s: cannot create the directory: %s", fs->dir,
		         strerror(errno));
		return ESR_EIO;
	}
	snprintf(path, sizeof path, "%s/LOCK", fs->dir);
	if ((fs->lock_fd = esr__fio.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		esr__why(why, why_size, "%s: %s", path, strerror(errno));
		return ESR_EIO;
	}
	if (flock(fs->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int busy = errno == EWOULDBLOCK;
		esr__why(why, why_size, "%s: %s", path,
		         busy ? "the store is open elsewhere (another process holds the lock)"
		              : strerror(errno));
		return busy ? ESR_EBUSY : ESR_EIO;
	}
	return ESR_OK;
}

esr_status esr_file_store_open(const char *dir, const esr_file_store_options *o,
                               esr_store **out)
{
	struct esr__file_store *fs;
	esr_status st;
	uint32_t i;

	if (out == NULL)
		return ESR_EINVAL; /* and *out, as every out-parameter, is written only on success */
	if (dir == NULL || dir[0] == '\0' || strlen(dir) > 3000)
		return dir && dir[0] ? ESR_ETOOBIG : ESR_EINVAL;
	if (o != NULL && o->sync > ESR_SYNC_NONE) {
		esr__why(o->why, o->why_size, "%s%s", "sync: expected ESR_SYNC_ALWAYS, ",
		         "ESR_SYNC_BATCH_WINDOW or ESR_SYNC_NONE");
		return ESR_EINVAL;
	}
	if (o != NULL && o->segment_bytes < ESR_FILE_SEGMENT_MIN) {
		esr__why(o->why, o->why_size, "%s%s", "segment_bytes: expected at least 1049016 ",
		         "(ESR_FILE_SEGMENT_MIN: a segment header and the largest record)");
		return ESR_EINVAL;
	}
	if ((fs = calloc(1, sizeof *fs)) == NULL)
		return ESR_ENOMEM;
	fs->lock_fd = -1;
	fs->snap_fd = -1;
	fs->tail_fd = -1;
	for (i = 0; i < ESR__READ_FDS; i++)
		fs->reads[i].fd = -1;
	pthread_mutex_init(&fs->read_lock, NULL);
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->wake, NULL);
	pthread_mutex_init(&fs->wait_lock, NULL);
	esr__cond_init_monotonic(&fs->wait_cond);
	pthread_mutex_init(&fs->snap_lock, NULL);
	pthread_mutex_init(&fs->ckpt_lock, NULL);
	if (o)
		fs->opt = *o;
	else
		esr_file_store_options_default(&fs->opt);
	fs->cmd_seed = esr__hash_mix((uint64_t)(uintptr_t)fs ^ esr__now_ns());
	fs->dir = strdup(dir);
	if (fs->dir == NULL || esr__keyset_create(&fs->streams) != ESR_OK) {
		release(fs);
		return ESR_ENOMEM;
	}
	if ((st = take_directory(fs, fs->opt.why, fs->opt.why_size)) != ESR_OK ||
	    (st = esr__file_recover(fs, fs->opt.why, fs->opt.why_size)) != ESR_OK ||
	    (st = esr__file_snapshots_open(fs, fs->opt.why, fs->opt.why_size)) != ESR_OK) {
		release(fs);
		return st;
	}
	fs->opt.why = NULL; /* the caller's buffer is not ours to keep */
	if (pthread_create(&fs->writer, NULL, writer_main, fs) != 0) {
		release(fs);
		return ESR_ENOMEM;
	}
	fs->writer_started = 1;
	if ((st = esr_store_create(&file_vtable, fs, out)) != ESR_OK)
		file_destroy(fs);
	return st;
}

esr_status esr_file_store_stats_get(esr_store *store, esr_file_store_stats *out)
{
	struct esr__file_store *fs;

	if (store == NULL || out == NULL || esr__store_impl(store, &file_vtable, (void **)&fs) != ESR_OK)
		return ESR_EINVAL;
	out->appends = ck_pr_load_64(&fs->stats.appends);
	out->events = ck_pr_load_64(&fs->stats.events);
	out->writes = ck_pr_load_64(&fs->stats.writes);
	out->fsyncs = ck_pr_load_64(&fs->stats.fsyncs);
	out->bytes = ck_pr_load_64(&fs->stats.bytes);
	out->failed = ck_pr_load_int(&fs->failed);
	return ESR_OK;
}
