/*
 * store/file_snapshot.c: the file store's snapshots and checkpoints.
 *
 * Snapshots go to one append-only file, snapshots.log, beside the segments;
 * each stream remembers where its last one starts. They are written without
 * fsync: a snapshot lost or torn by a crash only costs the next activation a
 * longer replay, since the runtime checks every snapshot it loads and replays
 * when one is missing or bad. At open the file is scanned and cut at the
 * first record that does not check. It is not compacted: superseded records
 * stay until the file is deleted (which loses nothing but speed).
 *
 * A checkpoint is a file of its own, checkpoint.NAME, replaced atomically
 * (written to a temporary, synced, renamed, directory synced), so a crash
 * leaves either the old position or the new one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "store/file_internal.h"
#include "store/file_io.h"

static struct fstream *stream_of(struct file_store *fs, const char *type, const void *id,
                                 size_t id_len)
{
	struct esr__key k;

	esr__keyset_key(fs->streams, type, id, id_len, &k);
	return file_stream(fs, &k);
}

/* Index the valid records of snapshots.log; cut it after the last one. */
static esr_status scan(struct file_store *fs, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	struct snap_rec r;

	while (off < len && snap_rec_decode(buf + off, len - off, &r) == 0) {
		char type[ESR_TYPE_NAME_MAX + 1];
		struct fstream *s;
		memcpy(type, r.type, r.type_len);
		type[r.type_len] = '\0';
		if ((s = stream_of(fs, type, r.id, r.id_len)) == NULL)
			return ESR_ENOMEM;
		s->snap_offset = off;
		s->snap_length = r.length;
		off += r.length;
	}
	fs->snap_size = off;
	return off < len && ftruncate(fs->snap_fd, (off_t)off) != 0 ? ESR_EIO : ESR_OK;
}

esr_status file_snapshots_open(struct file_store *fs, char *why, size_t why_size)
{
	char path[4096];
	struct stat st;
	uint8_t *buf = NULL;
	esr_status rc = ESR_EIO;

	snprintf(path, sizeof path, "%s/snapshots.log", fs->dir);
	if ((fs->snap_fd = fio.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    fstat(fs->snap_fd, &st) != 0)
		goto out;
	if (st.st_size > 0 && (buf = malloc((size_t)st.st_size)) == NULL) {
		rc = ESR_ENOMEM;
		goto out;
	}
	if (st.st_size > 0 && pread(fs->snap_fd, buf, (size_t)st.st_size, 0) != st.st_size)
		goto out;
	rc = scan(fs, buf, (size_t)st.st_size);
out:
	if (rc != ESR_OK && why != NULL)
		snprintf(why, why_size, "%s: %s", path,
		         rc == ESR_ENOMEM ? "out of memory" : strerror(errno));
	free(buf);
	return rc;
}

void file_snapshots_close(struct file_store *fs)
{
	if (fs->snap_fd >= 0)
		close(fs->snap_fd);
	fs->snap_fd = -1;
}

esr_status file_snapshot_save(void *impl, const esr_stream_id *sid, const esr_snapshot *snap)
{
	struct file_store *fs = impl;
	size_t len = snap_rec_size(sid, snap->len);
	uint8_t *buf = malloc(len);
	esr_status st = ESR_OK;
	struct fstream *s;

	if (buf == NULL)
		return ESR_ENOMEM;
	snap_rec_encode(buf, sid, snap);
	pthread_mutex_lock(&fs->snap_lock);
	if ((s = stream_of(fs, sid->type, sid->id, sid->id_len)) == NULL)
		st = ESR_ENOMEM;
	else if (pwrite(fs->snap_fd, buf, len, (off_t)fs->snap_size) != (ssize_t)len)
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

esr_status file_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                              void *ctx)
{
	struct file_store *fs = impl;
	uint64_t off;
	uint32_t len;
	uint8_t *buf;
	struct snap_rec r;
	struct fstream *s;
	esr_status st = ESR_OK;

	pthread_mutex_lock(&fs->snap_lock);
	s = stream_of(fs, sid->type, sid->id, sid->id_len);
	off = s ? s->snap_offset : 0;
	len = s ? s->snap_length : 0;
	pthread_mutex_unlock(&fs->snap_lock);
	if (len == 0)
		return s ? ESR_OK : ESR_ENOMEM;
	if ((buf = malloc(len)) == NULL)
		return ESR_ENOMEM;
	/* A record that no longer checks (the disk rotted) loads as none. */
	if (pread(fs->snap_fd, buf, len, (off_t)off) == (ssize_t)len &&
	    snap_rec_decode(buf, len, &r) == 0 && r.id_len == sid->id_len &&
	    r.type_len == strlen(sid->type) && memcmp(r.type, sid->type, r.type_len) == 0 &&
	    memcmp(r.id, sid->id, r.id_len) == 0)
		st = fn(ctx, &r.snap);
	free(buf);
	return st;
}

static void ckpt_path(const struct file_store *fs, const char *name, const char *suffix,
                      char *path, size_t size)
{
	snprintf(path, size, "%s/checkpoint.%s%s", fs->dir, name, suffix);
}

static esr_status sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	esr_status st = fd >= 0 && fio.fdatasync(fd) == 0 ? ESR_OK : ESR_EIO;

	if (fd >= 0)
		close(fd);
	return st;
}

esr_status file_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	struct file_store *fs = impl;
	char tmp[4096], path[4096];
	uint8_t rec[CKPT_SIZE];
	esr_status st = ESR_EIO;
	int fd;

	ckpt_encode(rec, position);
	ckpt_path(fs, name, ".tmp", tmp, sizeof tmp);
	ckpt_path(fs, name, "", path, sizeof path);
	if ((fd = fio.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return ESR_EIO;
	if (fio.write(fd, rec, sizeof rec) == (ssize_t)sizeof rec && fio.fdatasync(fd) == 0)
		st = ESR_OK;
	close(fd);
	if (st == ESR_OK && rename(tmp, path) != 0)
		st = ESR_EIO;
	if (st == ESR_OK)
		st = sync_dir(fs->dir);
	if (st != ESR_OK)
		unlink(tmp);
	return st;
}

esr_status file_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	struct file_store *fs = impl;
	char path[4096];
	uint8_t rec[CKPT_SIZE];
	ssize_t got;
	int fd;

	ckpt_path(fs, name, "", path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*position = 0;
		return errno == ENOENT ? ESR_OK : ESR_EIO;
	}
	got = pread(fd, rec, sizeof rec, 0);
	close(fd);
	if (got < 0)
		return ESR_EIO;
	return got == (ssize_t)sizeof rec && ckpt_decode(rec, position) == 0 ? ESR_OK
	                                                                      : ESR_ECORRUPT;
}
