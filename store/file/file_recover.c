/*
 * store/file/file_recover.c: rebuilding the file store's index at open, and
 * the system calls it and the writer go through (esr__fio).
 * docs/architecture.md has the map.
 *
 * Segments are read in order, every record decoded and its CRC checked, and
 * records gathered into appends (batch index 0 .. count-1, one stream,
 * consecutive versions). A whole append goes into the index; the first
 * version of each must follow the stream's last. What does not decode, or an
 * append left incomplete, is damage at the offset where it starts:
 *   - in the last segment with nothing valid after it: a torn tail, the
 *     crash's unfinished write. The file is cut there and synced. Only a
 *     record that could continue the log counts as valid after it
 *     (valid_after): a copy of an earlier one, or the bytes of the torn
 *     record's own payload, never do. A whole record that does not follow
 *     is never a torn tail.
 *   - anywhere else: ESR_ECORRUPT, naming the file and the offset, unless the
 *     caller asked to salvage: then the log ends there. The damaged segment's
 *     whole file is first copied to NNNNNNNN.seg.damaged, every later segment
 *     is renamed to its own .damaged name, then the damaged one is cut at the
 *     damage. A missing segment (a gap in the numbers, or no 00000001.seg)
 *     ends the log at it in the same way; nothing is deleted or overwritten.
 *     Salvage refuses (ESR_ECORRUPT) when the log before the damage holds no
 *     event: it never turns a damaged store into an empty one.
 * The last segment whose header never reached the disk (a crash while
 * creating it) holds no record; it is removed, as the log's torn tail.
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "store/file/file_format.h"
#include "store/file/file_internal.h"
#include "store/file/file_io.h"

static ssize_t sys_write(int fd, const void *buf, size_t n)
{
	return write(fd, buf, n);
}

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static ssize_t sys_pread(int fd, void *buf, size_t n, off_t offset)
{
	return pread(fd, buf, n, offset);
}

static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t offset)
{
	return pwrite(fd, buf, n, offset);
}

struct esr__file_io esr__fio = {
	sys_write, fdatasync, sys_open, ftruncate, sys_pread, sys_pwrite, rename, link, unlink, close,
};

esr_status esr__file_sync_dir(const char *dir)
{
	int fd = esr__fio.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int bad = fd < 0 || esr__fio.fdatasync(fd) != 0;

	if (fd >= 0)
		esr__fio.close(fd);
	return bad ? ESR_EIO : ESR_OK;
}

static void seg_path(const struct esr__file_store *fs, uint32_t seq, char *out, size_t size)
{
	snprintf(out, size, "%s/%08u.seg", fs->dir, (unsigned)seq);
}

/*
 * A crash inside this function can leave the new file empty, shorter than a
 * header, or as zeros (its size on disk, not its bytes): recovery removes
 * such a last segment (drop_torn_creation). A failed write or sync leaves the
 * same shapes and fails the store; the next open recovers them alike.
 */
esr_status esr__file_segment_create(struct esr__file_store *fs, uint32_t seq)
{
	uint8_t header[ESR__SEG_HEADER];
	char path[4096];
	ssize_t w;
	int fd;

	if (seq == 0 || seq >= ESR__SEGMENTS_MAX)
		return ESR_ETOOBIG;
	seg_path(fs, seq, path, sizeof path);
	if ((fd = esr__fio.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return ESR_EIO;
	esr__seg_header_encode(header, seq);
	w = esr__fio.write(fd, header, sizeof header);
	if (w != (ssize_t)sizeof header || esr__fio.fdatasync(fd) != 0 ||
	    esr__file_sync_dir(fs->dir) != ESR_OK) {
		esr__fio.close(fd);
		return ESR_EIO;
	}
	esr__file_tail_set(fs, fd);
	fs->seg = seq;
	fs->seg_format = ESR__SEG_FORMAT;
	fs->seg_size = fs->seg_alloc = ESR__SEG_HEADER;
	return ESR_OK;
}

static int by_number(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, sorted. */
static esr_status list_segments(struct esr__file_store *fs, uint32_t **out, size_t *n)
{
	DIR *d = opendir(fs->dir);
	struct dirent *e;
	uint32_t *seqs = NULL, *more;
	size_t cap = 0;
	char check[32];
	unsigned seq;

	*n = 0;
	if (d == NULL)
		return ESR_EIO;
	while ((e = readdir(d)) != NULL) {
		if (sscanf(e->d_name, "%8u.seg", &seq) != 1)
			continue;
		snprintf(check, sizeof check, "%08u.seg", seq);
		if (strcmp(check, e->d_name) != 0 || seq == 0 || seq >= ESR__SEGMENTS_MAX)
			continue; /* not one of ours (a *.damaged file, say) */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((more = realloc(seqs, cap * sizeof *seqs)) == NULL) {
				closedir(d);
				free(seqs);
				return ESR_ENOMEM;
			}
			seqs = more;
		}
		seqs[(*n)++] = seq;
	}
	closedir(d);
	if (*n > 1)
		qsort(seqs, *n, sizeof *seqs, by_number);
	*out = seqs;
	return ESR_OK;
}

static esr_status read_file(int fd, uint8_t **buf, size_t *len)
{
	struct stat st;
	size_t at = 0;
	ssize_t got;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &st) != 0)
		return ESR_EIO;
	if ((*buf = malloc(st.st_size ? (size_t)st.st_size : 1)) == NULL)
		return ESR_ENOMEM;
	while (at < (size_t)st.st_size) {
		got = esr__fio.pread(fd, *buf + at, (size_t)st.st_size - at, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return ESR_EIO;
		at += (size_t)got;
	}
	*len = at;
	return ESR_OK;
}

/* The records of the append being gathered. */
struct gather {
	size_t start;      /* offset of its first record */
	uint16_t count, have;
	struct esr__rec first;
	struct esr__loc locs[ESR_APPEND_MAX];
	esr_command_id cids[ESR_APPEND_MAX]; /* into the segment's bytes */
	uint64_t last_position;
};

static int same_stream(const struct esr__rec *a, const struct esr__rec *b)
{
	return a->type_len == b->type_len && a->id_len == b->id_len &&
	       memcmp(a->type, b->type, a->type_len) == 0 && memcmp(a->id, b->id, a->id_len) == 0;
}

/*
 * Record the command ids of a whole append g (stream s): each run of one id
 * is one command. The writer never stores an id twice in a stream; should
 * the log hold one anyway (written by something else), the first stands.
 */
static esr_status apply_cmds(struct esr__file_store *fs, struct esr__fstream *s,
                             const struct gather *g)
{
	size_t i, j;

	for (i = 0; i < g->count; i = j) {
		const esr_command_id *c = &g->cids[i];
		struct esr__cmd *e;
		for (j = i + 1; j < g->count && esr__command_id_equal(&g->cids[j], c); j++)
			;
		if (c->len == 0 || esr__cmds_find(s->cmds, fs->cmd_seed, c->bytes, c->len) != NULL)
			continue;
		if (esr__cmds_room(&s->cmds, fs->cmd_seed, 1) != 0 ||
		    (e = esr__cmd_new(c->bytes, c->len, g->first.version + i, j - i)) == NULL)
			return ESR_ENOMEM;
		esr__cmds_put(s->cmds, fs->cmd_seed, e);
	}
	return ESR_OK;
}

/* Put a whole append into the index. -1: its versions do not follow. */
static int apply(struct esr__file_store *fs, struct gather *g, uint32_t seq, esr_status *st)
{
	char type[ESR_TYPE_NAME_MAX + 1];
	struct esr__key k;
	struct esr__fstream *s;
	uint16_t i;

	memcpy(type, g->first.type, g->first.type_len);
	type[g->first.type_len] = '\0';
	esr__keyset_key(fs->streams, type, g->first.id, g->first.id_len, &k);
	if ((s = esr__file_stream(fs, &k)) == NULL) {
		*st = ESR_ENOMEM;
		return -1;
	}
	/* Versions follow in the stream, positions in the log. */
	if (g->first.version != s->committed + 1 || g->first.position != fs->all.committed + 1)
		return -1;
	for (i = 0; i < g->count; i++) {
		struct esr__loc *slot = esr__file_index_slot(s, g->first.version + i);
		struct esr__loc *all = esr__file_index_slot(&fs->all, g->first.position + i);
		if (slot == NULL || all == NULL) {
			*st = ESR_ENOMEM;
			return -1;
		}
		*slot = g->locs[i];
		slot->seg = seq;
		*all = *slot;
	}
	if ((*st = apply_cmds(fs, s, g)) != ESR_OK)
		return -1;
	fs->all.committed = g->first.position + g->count - 1;
	s->committed = s->reserved = g->first.version + g->count - 1;
	if (g->last_position >= fs->next_position)
		fs->next_position = g->last_position + 1;
	return 0;
}

/*
 * Is there data after the tear at buf[stop] that continues the log: a whole
 * record anywhere in buf(stop, len) whose position is past `last`, the last
 * one recovered? A copy of an earlier record (one inside a payload, say)
 * never continues it. When the bytes at stop are a record header whose
 * lengths agree, the record's own claimed extent is not "after" it: its
 * payload may hold any bytes, and a record cut by the file's end leaves
 * nothing after it. A header whose lengths do not agree claims no extent.
 */
static int valid_after(const uint8_t *buf, size_t stop, size_t len, uint64_t last)
{
	size_t from = stop + 1, full = len;
	const uint8_t *h = buf + stop;
	struct esr__rec r;

	/* Decoding only the header says ESR__REC_SHORT when its lengths agree. */
	if (len - stop >= ESR__REC_HEADER && esr__rec_decode(h, ESR__REC_HEADER, &r) == ESR__REC_SHORT)
		from = stop + esr__rec_claimed(h);
	/* A record's length (its bytes 4..7) is never zero, so no record starts
	 * in the zeros a segment may end in (preallocated, store/file/file.c). */
	while (len > from && buf[len - 1] == 0)
		len--;
	for (; from < len && from + ESR__REC_HEADER <= full; from++)
		if (esr__rec_decode(buf + from, full - from, &r) == ESR__REC_OK && r.position > last)
			return 1;
	return 0;
}

/*
 * Scan one segment's bytes into the index. Returns the offset where good data
 * ends (len when all of it is good): the start of the first append that is
 * damaged or incomplete. *stop is where decoding stopped (len if it ran to
 * the end), from where a torn tail must have nothing valid after it.
 * *misfit is set when what stopped it is a whole, valid record that does
 * not follow (not the next of the append being gathered, or an append whose
 * version or position does not follow): a torn write leaves a prefix of
 * what it wrote, never a whole record out of place, so that is damage, not
 * a torn tail. *st is set for errors other than damage.
 */
static size_t scan(struct esr__file_store *fs, uint32_t seq, const uint8_t *buf, size_t len,
                   size_t *stop, int *misfit, esr_status *st)
{
	static _Thread_local struct gather g;
	size_t off = ESR__SEG_HEADER;
	struct esr__rec r;

	g.have = 0;
	*stop = len;
	*misfit = 0;
	while (off < len) {
		enum esr__rec_status rs = esr__rec_decode(buf + off, len - off, &r);
		*stop = off;
		if (rs != ESR__REC_OK)
			break;
		*misfit = 1; /* until it fits */
		if (r.batch_index == 0) {
			if (g.have != 0)
				break; /* the previous append is incomplete */
			g.start = off;
			g.count = r.batch_count;
			g.first = r;
		} else if (g.have == 0 || r.batch_index != g.have || r.batch_count != g.count ||
		           !same_stream(&r, &g.first) || r.version != g.first.version + g.have) {
			break;
		}
		*misfit = 0;
		g.locs[g.have] = (struct esr__loc){seq, r.length, off};
		g.cids[g.have] = r.event.command_id;
		g.last_position = r.position;
		off += r.length;
		*stop = off;
		if (++g.have == g.count) {
			if (apply(fs, &g, seq, st) != 0) {
				*stop = g.start;
				*misfit = 1;
				return *st == ESR_OK ? g.start : 0;
			}
			g.have = 0;
		}
	}
	return g.have ? g.start : off;
}

/* What recovery works on: the segments found, and the one being read. */
struct recovery {
	struct esr__file_store *fs;
	uint32_t *seqs;
	size_t n;     /* segments still in the log; salvage lowers it */
	uint8_t *buf; /* the segment being read, whole */
	size_t len;
	char *why;
	size_t why_size;
};

#define ASIDE_MAX 1000 /* .damaged, .damaged.1 .. .damaged.999 */

/* Where salvage puts segment seq's bytes: NNNNNNNN.seg.damaged, or past
 * what earlier salvages left there, NNNNNNNN.seg.damaged.K (K = 1, 2, ...). */
static void aside_path(const struct esr__file_store *fs, uint32_t seq, unsigned k, char *out,
                       size_t size)
{
	if (k == 0)
		snprintf(out, size, "%s/%08u.seg.damaged", fs->dir, (unsigned)seq);
	else
		snprintf(out, size, "%s/%08u.seg.damaged.%u", fs->dir, (unsigned)seq, k);
}

static esr_status io_failed(struct recovery *r, const char *path)
{
	if (r->why)
		snprintf(r->why, r->why_size, "%s: %s", path, strerror(errno));
	return ESR_EIO;
}

/* Copy the segment being read (all of r->buf) to a new file aside, synced;
 * O_EXCL: never over a file already there. */
static esr_status copy_aside(struct recovery *r, uint32_t seq)
{
	char to[4200];
	size_t at = 0;
	ssize_t w;
	unsigned k;
	int fd = -1;

	for (k = 0; k < ASIDE_MAX && fd < 0; k++) {
		aside_path(r->fs, seq, k, to, sizeof to);
		fd = esr__fio.open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			return io_failed(r, to);
	}
	if (fd < 0)
		return io_failed(r, to);
	while (at < r->len) {
		if ((w = esr__fio.write(fd, r->buf + at, r->len - at)) <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			esr__fio.close(fd);
			return io_failed(r, to);
		}
		at += (size_t)w;
	}
	if (esr__fio.fdatasync(fd) != 0) {
		esr__fio.close(fd);
		return io_failed(r, to);
	}
	esr__fio.close(fd);
	return ESR_OK;
}

/* Give segment seq's file a name aside. link() fails on an existing name
 * where rename() would replace it; a crash between link and unlink leaves
 * both names, and the next salvage moves it again, to the next free name. */
static esr_status move_one_aside(struct recovery *r, uint32_t seq)
{
	char from[4096], to[4200];
	unsigned k;

	seg_path(r->fs, seq, from, sizeof from);
	for (k = 0; k < ASIDE_MAX; k++) {
		aside_path(r->fs, seq, k, to, sizeof to);
		if (esr__fio.link(from, to) == 0)
			return esr__fio.unlink(from) == 0 ? ESR_OK : io_failed(r, from);
		if (errno != EEXIST)
			return io_failed(r, from);
	}
	return io_failed(r, to);
}

/* Salvage: the log ends before segment seqs[i]: move it and all later ones
 * aside, the last first, so that a crash midway leaves the log's segments
 * numbered without a gap. */
static esr_status move_aside(struct recovery *r, size_t i)
{
	size_t k;
	esr_status st;

	for (k = r->n; k-- > i;)
		if ((st = move_one_aside(r, r->seqs[k])) != ESR_OK)
			return st;
	r->n = i;
	return esr__file_sync_dir(r->fs->dir);
}

/*
 * Damage that is not a torn tail, described by `what`: ESR_ECORRUPT unless
 * the caller asked to salvage and the log before the damage holds an event
 * (salvage never leaves an empty log: it refuses, changing nothing).
 */
static esr_status may_salvage(struct recovery *r, const char *what)
{
	int refused = r->fs->opt.salvage && r->fs->all.committed == 0;

	if (r->fs->opt.salvage && !refused)
		return ESR_OK;
	if (r->why)
		snprintf(r->why, r->why_size, "%s%s", what,
		         refused ? " (salvage refused: no event before it to keep)" : "");
	return ESR_ECORRUPT;
}

/*
 * Is the last segment's file one whose creation a crash cut short (its
 * header never reached the disk)? esr__file_segment_create writes the header
 * into an empty file and syncs before anything else goes there, so such a
 * file is shorter than a header and holds part of it (unwritten bytes read
 * as zeros), or holds only zeros (the size reached the disk, the data did
 * not). It holds no record: removing it loses nothing.
 */
static esr_status torn_creation(struct recovery *r, uint32_t seq, int *torn)
{
	uint8_t want[ESR__SEG_HEADER], got[4096];
	char path[4096];
	struct stat st;
	off_t off = 0;
	ssize_t n, j;
	int fd;

	*torn = 1;
	seg_path(r->fs, seq, path, sizeof path);
	esr__seg_header_encode(want, seq);
	if ((fd = esr__fio.open(path, O_RDONLY | O_CLOEXEC, 0)) < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			esr__fio.close(fd);
		return io_failed(r, path);
	}
	while (*torn && off < st.st_size) {
		if ((n = esr__fio.pread(fd, got, sizeof got, off)) <= 0) {
			esr__fio.close(fd);
			return io_failed(r, path);
		}
		for (j = 0; j < n && *torn; j++)
			*torn = got[j] == 0 || (st.st_size < ESR__SEG_HEADER && got[j] == want[off + j]);
		off += n;
	}
	esr__fio.close(fd);
	return ESR_OK;
}

/* A torn creation of the last segment is its torn tail: the file goes, and
 * the segment before it is the last (with its own torn tail, if any). */
static esr_status drop_torn_creation(struct recovery *r)
{
	char path[4096];
	esr_status st;
	int torn;

	if (r->n == 0)
		return ESR_OK;
	if ((st = torn_creation(r, r->seqs[r->n - 1], &torn)) != ESR_OK || !torn)
		return st;
	seg_path(r->fs, r->seqs[r->n - 1], path, sizeof path);
	if (esr__fio.unlink(path) != 0)
		return io_failed(r, path);
	r->n--;
	return esr__file_sync_dir(r->fs->dir);
}

/* Recover segment seqs[i]: index it, cut its torn tail, or end the log at
 * its damage (salvage). */
static esr_status recover_one(struct recovery *r, size_t i)
{
	struct esr__file_store *fs = r->fs;
	uint32_t seq = r->seqs[i], want = i ? r->seqs[i - 1] + 1 : 1;
	size_t good, stop;
	int misfit;
	uint64_t in_header;
	uint32_t format;
	char path[4096], what[4200];
	esr_status st = ESR_OK;
	int fd;

	if (seq != want) { /* a missing segment ends the log like damage */
		seg_path(fs, want, path, sizeof path);
		snprintf(what, sizeof what, "%s: missing (%08u.seg follows it)", path, (unsigned)seq);
		return (st = may_salvage(r, what)) != ESR_OK ? st : move_aside(r, i);
	}
	seg_path(fs, seq, path, sizeof path);
	if ((fd = esr__fio.open(path, O_RDWR | O_CLOEXEC, 0)) < 0)
		return io_failed(r, path);
	free(r->buf);
	if ((st = read_file(fd, &r->buf, &r->len)) != ESR_OK) {
		esr__fio.close(fd);
		return st;
	}
	if (r->len < ESR__SEG_HEADER || esr__seg_header_decode(r->buf, &in_header, &format) != 0 ||
	    in_header != seq) {
		esr__fio.close(fd); /* the tail stays the segment before's */
		snprintf(what, sizeof what, "%s: offset 0: bad segment header", path);
		if ((st = may_salvage(r, what)) != ESR_OK)
			return st;
		return move_aside(r, i); /* the log ends with the segment before */
	}
	esr__file_tail_set(fs, fd); /* the tail now, and the previous segment's is closed */
	good = scan(fs, seq, r->buf, r->len, &stop, &misfit, &st);
	if (st != ESR_OK)
		return st;
	if (good < r->len) {
		/* An append cut short leaves whole records of it before the
		 * cut: look for valid data only past where decoding stopped. */
		int torn = i + 1 == r->n && !misfit &&
		           (stop >= r->len ||
		            !valid_after(r->buf, stop, r->len, fs->all.committed));
		/* Salvage copies the whole file aside and moves later segments
		 * aside before cutting: a crash at any point loses no byte. */
		if (!torn) {
			snprintf(what, sizeof what, "%s: offset %zu: %s", path, good,
			         misfit ? "a record that does not follow" : "damaged record");
			if ((st = may_salvage(r, what)) != ESR_OK ||
			    (st = copy_aside(r, seq)) != ESR_OK || (st = move_aside(r, i + 1)) != ESR_OK)
				return st;
		}
		if (esr__fio.ftruncate(fd, (off_t)good) != 0 || esr__fio.fdatasync(fd) != 0)
			return io_failed(r, path);
		r->len = good;
	}
	fs->seg = seq;
	fs->seg_format = format;
	fs->seg_size = fs->seg_alloc = r->len;
	return ESR_OK;
}

esr_status esr__file_recover(struct esr__file_store *fs, char *why, size_t why_size)
{
	struct recovery r = {fs, NULL, 0, NULL, 0, why, why_size};
	esr_status st;
	size_t i;

	fs->next_position = 1;
	if ((st = list_segments(fs, &r.seqs, &r.n)) == ESR_OK)
		st = drop_torn_creation(&r);
	for (i = 0; i < r.n && st == ESR_OK; i++)
		st = recover_one(&r, i);
	free(r.buf);
	free(r.seqs);
	if (st == ESR_OK && r.n == 0)
		st = esr__file_segment_create(fs, 1);
	if (st == ESR_OK && lseek(fs->tail_fd, (off_t)fs->seg_size, SEEK_SET) < 0)
		st = ESR_EIO;
	return st;
}
