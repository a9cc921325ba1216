/*
 * store/file/file_snapshot.c: the file store's snapshots and checkpoints.
 * docs/architecture.md has the map.
 *
 * Snapshots go to one append-only file, snapshots.log, beside the segments;
 * each stream remembers where its last one starts. They are written without
 * fsync: a snapshot lost or torn by a crash only costs the next activation a
 * longer replay, since the runtime checks every snapshot it loads and replays
 * when one is missing or bad. At open (after the segments are recovered) the
 * file is read record by record and cut at the first record that does not
 * check; a record whose version is beyond its stream's is passed over. If
 * superseded records then outweigh the live ones (and make at least
 * COMPACT_MIN bytes), or one was passed over, the live ones are copied to a
 * new file that replaces it atomically: a passed-over record must not come
 * back once its stream grows past it.
 *
 * A checkpoint is a file of its own, checkpoint.NAME, replaced atomically
 * (written to a temporary, synced, renamed, directory synced), so a crash
 * leaves either the old position or the new one. The temporary is
 * checkpoint.NAME~: '~' is in no checkpoint name, so it is never another
 * checkpoint's file (checkpoint.NAME.tmp was the file of checkpoint
 * NAME.tmp). Temporaries a crash left are removed at open.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "store/file/file_internal.h"
#include "store/file/file_io.h"

#define COMPACT_MIN (1u << 20)
#define WINDOW (1u << 20) /* read at open this much at a time */

static struct esr__fstream *stream_of(struct esr__file_store *fs, const char *type, const void *id,
                                 size_t id_len)
{
	struct esr__key k;

	esr__keyset_key(fs->streams, type, id, id_len, &k);
	return esr__file_stream(fs, &k);
}

/* The stream named by a record's type and id; NULL if the log holds none of
 * its events. */
static struct esr__fstream *stream_of_rec(struct esr__file_store *fs, const struct esr__snap_rec *r)
{
	char type[ESR_TYPE_NAME_MAX + 1];
	struct esr__key k;

	memcpy(type, r->type, r->type_len);
	type[r->type_len] = '\0';
	esr__keyset_key(fs->streams, type, r->id, r->id_len, &k);
	return (struct esr__fstream *)esr__keyset_get(fs->streams, &k);
}

static void snap_path(const struct esr__file_store *fs, const char *suffix, char *path,
                      size_t size)
{
	snprintf(path, size, "%s/snapshots.log%s", fs->dir, suffix);
}

/* File bytes [base, base + have) in buf: snapshots.log read at open. */
struct window {
	int fd;
	uint64_t size, base;
	size_t have, cap;
	uint8_t *buf;
};

static esr_status pread_all(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	ssize_t got;

	while (n > 0) {
		got = esr__fio.pread(fd, buf, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return ESR_EIO;
		buf += got;
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return ESR_OK;
}

/* Point *out at the file's bytes [off, off + need), or NULL past its end. */
static esr_status window_at(struct window *w, uint64_t off, size_t need, const uint8_t **out)
{
	size_t want;

	*out = NULL;
	if (off + need > w->size)
		return ESR_OK; /* a torn tail */
	if (off < w->base || off + need > w->base + w->have) {
		if (need > w->cap) {
			uint8_t *nb = realloc(w->buf, need > WINDOW ? need : WINDOW);
			if (nb == NULL)
				return ESR_ENOMEM;
			w->buf = nb;
			w->cap = need > WINDOW ? need : WINDOW;
		}
		want = w->size - off < w->cap ? (size_t)(w->size - off) : w->cap;
		w->base = off;
		w->have = 0;
		if (pread_all(w->fd, w->buf, want, off) != ESR_OK)
			return ESR_EIO;
		w->have = want;
	}
	*out = w->buf + (off - w->base);
	return ESR_OK;
}

/*
 * Index the valid records of the file; *end: where they end, *live: the
 * bytes of the records that are some stream's latest, *beyond: how many
 * records were passed over because their version is beyond their stream's
 * (run after recovery, so against the versions the log holds).
 */
static esr_status scan(struct esr__file_store *fs, struct window *w, uint64_t *end, uint64_t *live,
                       uint64_t *beyond)
{
	uint64_t off = 0;
	const uint8_t *p;
	esr_status st;
	struct esr__snap_rec r;
	struct esr__fstream *s;
	uint32_t len;

	*live = 0;
	*beyond = 0;
	for (;;) {
		if ((st = window_at(w, off, ESR__SNAP_HEADER, &p)) != ESR_OK || p == NULL)
			break;
		if ((len = esr__snap_rec_claimed(p)) == 0 ||
		    (st = window_at(w, off, len, &p)) != ESR_OK || p == NULL ||
		    esr__snap_rec_decode(p, len, &r) != 0)
			break;
		/* A snapshot is saved only for events stored: one beyond its
		 * stream reflects events the log lost (salvage set them aside,
		 * or an unsynced append never reached the disk) or never had.
		 * Were it kept, it would load once the stream grows past it,
		 * over new events it does not reflect. */
		if ((s = stream_of_rec(fs, &r)) == NULL || r.snap.version > esr__file_committed_of(s)) {
			(*beyond)++;
		} else {
			*live = *live + len - s->snap_length; /* it was counted */
			s->snap_offset = off;
			s->snap_length = len;
		}
		off += len;
	}
	*end = off;
	return st;
}

/* Copying the live records to a new file (keyset_scan's visitor). */
struct compact {
	struct esr__file_store *fs;
	int fd;
	uint64_t size;
	uint8_t *buf;
	size_t cap;
	esr_status st;
};

static void copy_live(void *ctx, struct esr__keyset *ks, struct esr__key *k)
{
	struct compact *c = ctx;
	struct esr__fstream *s = (struct esr__fstream *)k;

	(void)ks;
	if (c->st != ESR_OK || s->snap_length == 0)
		return;
	if (s->snap_length > c->cap) {
		uint8_t *nb = realloc(c->buf, s->snap_length);
		if (nb == NULL) {
			c->st = ESR_ENOMEM;
			return;
		}
		c->buf = nb;
		c->cap = s->snap_length;
	}
	if (pread_all(c->fs->snap_fd, c->buf, s->snap_length, s->snap_offset) != ESR_OK ||
	    esr__fio.write(c->fd, c->buf, s->snap_length) != (ssize_t)s->snap_length) {
		c->st = ESR_EIO;
		return;
	}
	s->snap_offset = c->size;
	c->size += s->snap_length;
}

/*
 * Replace the file with one holding only the live records. The new file is
 * synced before it is renamed over the old, so a crash leaves one or the
 * other whole. On failure the streams are indexed again from the old file,
 * and the failure is returned only if `must` (records beyond their streams
 * are to go for good); otherwise the old file simply stays.
 */
static esr_status compact(struct esr__file_store *fs, struct window *w, int must)
{
	struct compact c = {fs, -1, 0, NULL, 0, ESR_OK};
	char tmp[4096], path[4096];
	uint64_t end, live, beyond;
	esr_status st;

	snap_path(fs, ".tmp", tmp, sizeof tmp);
	snap_path(fs, "", path, sizeof path);
	c.fd = esr__fio.open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (c.fd < 0)
		c.st = ESR_EIO;
	else
		esr__keyset_scan(fs->streams, copy_live, &c);
	free(c.buf);
	if (c.st == ESR_OK && (esr__fio.fdatasync(c.fd) != 0 || esr__fio.rename(tmp, path) != 0))
		c.st = ESR_EIO;
	if (c.st == ESR_OK) {
		esr__fio.close(fs->snap_fd);
		fs->snap_fd = c.fd;
		fs->snap_size = c.size;
		return esr__file_sync_dir(fs->dir);
	}
	if (c.fd >= 0)
		esr__fio.close(c.fd);
	esr__fio.unlink(tmp);
	if ((st = scan(fs, w, &end, &live, &beyond)) != ESR_OK) /* undo the moved offsets */
		return st;
	return must ? c.st : ESR_OK;
}

#define CKPT_PREFIX "checkpoint."
#define CKPT_TMP "~" /* no checkpoint name has it (esr__check_checkpoint_name) */

/* Remove the checkpoint temporaries a crash left (checkpoint.*~). Only
 * tidiness: none is ever loaded, and a save truncates its own. */
static void remove_checkpoint_temporaries(const struct esr__file_store *fs)
{
	DIR *d = opendir(fs->dir);
	struct dirent *e;
	char path[4096];
	size_t n;

	while (d != NULL && (e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (n > strlen(CKPT_PREFIX) + 1 && e->d_name[n - 1] == CKPT_TMP[0] &&
		    strncmp(e->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0) {
			snprintf(path, sizeof path, "%s/%s", fs->dir, e->d_name);
			esr__fio.unlink(path);
		}
	}
	if (d != NULL)
		closedir(d);
}

esr_status esr__file_snapshots_open(struct esr__file_store *fs, char *why, size_t why_size)
{
	struct window w = {.fd = -1};
	char path[4096];
	struct stat st;
	uint64_t live = 0, beyond = 0;
	esr_status rc = ESR_EIO;

	remove_checkpoint_temporaries(fs);
	snap_path(fs, "", path, sizeof path);
	if ((fs->snap_fd = esr__fio.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    fstat(fs->snap_fd, &st) != 0)
		goto out;
	w.fd = fs->snap_fd;
	w.size = (uint64_t)st.st_size;
	if ((rc = scan(fs, &w, &fs->snap_size, &live, &beyond)) != ESR_OK)
		goto out;
	if (fs->snap_size < w.size && esr__fio.ftruncate(fs->snap_fd, (off_t)fs->snap_size) != 0)
		rc = ESR_EIO; /* a torn tail: cut, so that appends follow valid records */
	else if (beyond > 0 || (fs->snap_size - live >= COMPACT_MIN && fs->snap_size - live > live))
		rc = compact(fs, &w, beyond > 0); /* records beyond their streams go for good */
out:
	if (rc != ESR_OK && why != NULL)
		snprintf(why, why_size, "%s: %s", path,
		         rc == ESR_ENOMEM ? "out of memory" : strerror(errno));
	free(w.buf);
	return rc;
}

void esr__file_snapshots_close(struct esr__file_store *fs)
{
	if (fs->snap_fd >= 0)
		esr__fio.close(fs->snap_fd);
	fs->snap_fd = -1;
}

esr_status esr__file_snapshot_save(void *impl, const esr_stream_id *sid, const esr_snapshot *snap)
{
	struct esr__file_store *fs = impl;
	size_t len = esr__snap_rec_size(sid, snap->len);
	uint8_t *buf = malloc(len);
	esr_status st = ESR_OK;
	struct esr__fstream *s;

	if (buf == NULL)
		return ESR_ENOMEM;
	esr__snap_rec_encode(buf, sid, snap);
	pthread_mutex_lock(&fs->snap_lock);
	if ((s = stream_of(fs, sid->type, sid->id, sid->id_len)) == NULL)
		st = ESR_ENOMEM;
	else if (esr__fio.pwrite(fs->snap_fd, buf, len, (off_t)fs->snap_size) != (ssize_t)len)
		st = ESR_EIO; /* a partial record fails its check and is cut at open */
	if (st == ESR_OK) {
		s->snap_offset = fs->snap_size;
		s->snap_length = (uint32_t)len;
		fs->snap_size += len;
	}
	pthread_mutex_unlock(&fs->snap_lock);
	free(buf);
	return st;
}

esr_status esr__file_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                              void *ctx)
{
	struct esr__file_store *fs = impl;
	struct esr__key k;
	struct esr__fstream *s;
	uint64_t off = 0;
	uint32_t len = 0;
	uint8_t *buf;
	struct esr__snap_rec r;
	esr_status st = ESR_OK;

	esr__keyset_key(fs->streams, sid->type, sid->id, sid->id_len, &k);
	if ((s = (struct esr__fstream *)esr__keyset_get(fs->streams, &k)) == NULL)
		return ESR_OK; /* an unknown stream has no snapshot: nothing to create */
	pthread_mutex_lock(&fs->snap_lock);
	off = s->snap_offset;
	len = s->snap_length;
	pthread_mutex_unlock(&fs->snap_lock);
	if (len == 0)
		return ESR_OK;
	if ((buf = malloc(len)) == NULL)
		return ESR_ENOMEM;
	/* A record that no longer checks (the disk rotted) loads as none. */
	if (pread_all(fs->snap_fd, buf, len, off) == ESR_OK && esr__snap_rec_decode(buf, len, &r) == 0 &&
	    r.id_len == sid->id_len && r.type_len == strlen(sid->type) &&
	    memcmp(r.type, sid->type, r.type_len) == 0 && memcmp(r.id, sid->id, r.id_len) == 0)
		st = fn(ctx, &r.snap);
	free(buf);
	return st;
}

static void ckpt_path(const struct esr__file_store *fs, const char *name, const char *suffix,
                      char *path, size_t size)
{
	snprintf(path, size, "%s/" CKPT_PREFIX "%s%s", fs->dir, name, suffix);
}

esr_status esr__file_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	struct esr__file_store *fs = impl;
	char tmp[4096], path[4096];
	uint8_t rec[ESR__CKPT_SIZE];
	esr_status st = ESR_EIO;
	int fd;

	esr__ckpt_encode(rec, position);
	ckpt_path(fs, name, CKPT_TMP, tmp, sizeof tmp);
	ckpt_path(fs, name, "", path, sizeof path);
	/* Two saves of one name would share the temporary file. */
	pthread_mutex_lock(&fs->ckpt_lock);
	if ((fd = esr__fio.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) >= 0) {
		if (esr__fio.write(fd, rec, sizeof rec) == (ssize_t)sizeof rec &&
		    esr__fio.fdatasync(fd) == 0)
			st = ESR_OK;
		esr__fio.close(fd);
		if (st == ESR_OK && esr__fio.rename(tmp, path) != 0)
			st = ESR_EIO;
		if (st == ESR_OK)
			st = esr__file_sync_dir(fs->dir);
		if (st != ESR_OK)
			esr__fio.unlink(tmp);
	}
	pthread_mutex_unlock(&fs->ckpt_lock);
	return st;
}

esr_status esr__file_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	struct esr__file_store *fs = impl;
	char path[4096];
	uint8_t rec[ESR__CKPT_SIZE + 1]; /* one more: a longer file is not a checkpoint */
	ssize_t got;
	int fd;

	ckpt_path(fs, name, "", path, sizeof path);
	if ((fd = esr__fio.open(path, O_RDONLY | O_CLOEXEC, 0)) < 0) {
		*position = 0;
		return errno == ENOENT ? ESR_OK : ESR_EIO;
	}
	got = esr__fio.pread(fd, rec, sizeof rec, 0);
	esr__fio.close(fd);
	if (got < 0)
		return ESR_EIO;
	return got == ESR__CKPT_SIZE && esr__ckpt_decode(rec, position) == 0 ? ESR_OK : ESR_ECORRUPT;
}
