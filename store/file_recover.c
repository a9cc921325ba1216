/*
 * store/file_recover.c: rebuilding the file store's index at open.
 *
 * Segments are read in order, every record decoded and its CRC checked, and
 * records gathered into appends (batch index 0 .. count-1, one stream,
 * consecutive versions). A whole append goes into the index; the first
 * version of each must follow the stream's last. What does not decode, or an
 * append left incomplete, is damage at the offset where it starts:
 *   - in the last segment with nothing valid after it: a torn tail, the
 *     crash's unfinished write. The file is cut there and synced.
 *   - anywhere else: ESR_ECORRUPT, naming the file and the offset, unless the
 *     caller asked to salvage: then the log ends there, and the rest of that
 *     segment and every later segment are moved aside as *.damaged.
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
#include "store/file_format.h"
#include "store/file_internal.h"
#include "store/file_io.h"

static ssize_t sys_write(int fd, const void *buf, size_t n)
{
	return write(fd, buf, n);
}

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

struct file_io fio = {sys_write, fdatasync, sys_open, ftruncate};

static void seg_path(const struct file_store *fs, uint32_t seq, char *out, size_t size)
{
	snprintf(out, size, "%s/%08u.seg", fs->dir, (unsigned)seq);
}

static esr_status sync_dir(const struct file_store *fs)
{
	int fd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int bad = fd < 0 || fio.fdatasync(fd) != 0;

	if (fd >= 0)
		close(fd);
	return bad ? ESR_EIO : ESR_OK;
}

esr_status file_segment_create(struct file_store *fs, uint32_t seq)
{
	uint8_t header[SEG_HEADER];
	char path[4096];
	ssize_t w;
	int fd;

	if (seq == 0 || seq >= SEGMENTS_MAX)
		return ESR_ETOOBIG;
	seg_path(fs, seq, path, sizeof path);
	if ((fd = fio.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return ESR_EIO;
	seg_header_encode(header, seq);
	w = fio.write(fd, header, sizeof header);
	if (w != (ssize_t)sizeof header || fio.fdatasync(fd) != 0 || sync_dir(fs) != ESR_OK) {
		close(fd);
		return ESR_EIO;
	}
	file_tail_set(fs, fd);
	fs->seg = seq;
	fs->seg_size = SEG_HEADER;
	return ESR_OK;
}

static int by_number(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, sorted. */
static esr_status list_segments(struct file_store *fs, uint32_t **out, size_t *n)
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
		if (strcmp(check, e->d_name) != 0 || seq == 0 || seq >= SEGMENTS_MAX)
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
		got = pread(fd, *buf + at, (size_t)st.st_size - at, (off_t)at);
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
	struct rec first;
	struct loc locs[ESR_APPEND_MAX];
	uint64_t last_position;
};

static int same_stream(const struct rec *a, const struct rec *b)
{
	return a->type_len == b->type_len && a->id_len == b->id_len &&
	       memcmp(a->type, b->type, a->type_len) == 0 && memcmp(a->id, b->id, a->id_len) == 0;
}

/* Put a whole append into the index. -1: its versions do not follow. */
static int apply(struct file_store *fs, struct gather *g, uint32_t seq, esr_status *st)
{
	char type[ESR_TYPE_NAME_MAX + 1];
	struct esr__key k;
	struct fstream *s;
	uint16_t i;

	memcpy(type, g->first.type, g->first.type_len);
	type[g->first.type_len] = '\0';
	esr__keyset_key(fs->streams, type, g->first.id, g->first.id_len, &k);
	if ((s = file_stream(fs, &k)) == NULL) {
		*st = ESR_ENOMEM;
		return -1;
	}
	/* Versions follow in the stream, positions in the log. */
	if (g->first.version != s->committed + 1 || g->first.position != fs->all.committed + 1)
		return -1;
	for (i = 0; i < g->count; i++) {
		struct loc *slot = file_index_slot(s, g->first.version + i);
		struct loc *all = file_index_slot(&fs->all, g->first.position + i);
		if (slot == NULL || all == NULL) {
			*st = ESR_ENOMEM;
			return -1;
		}
		*slot = g->locs[i];
		slot->seg = seq;
		*all = *slot;
	}
	fs->all.committed = g->first.position + g->count - 1;
	s->committed = s->reserved = g->first.version + g->count - 1;
	if (g->last_position >= fs->next_position)
		fs->next_position = g->last_position + 1;
	return 0;
}

/* Is there a whole record anywhere in buf[from, len)? */
static int valid_after(const uint8_t *buf, size_t from, size_t len)
{
	struct rec r;

	for (; from + REC_HEADER <= len; from++)
		if (rec_decode(buf + from, len - from, &r) == REC_OK)
			return 1;
	return 0;
}

/*
 * Scan one segment's bytes into the index. Returns the offset where good data
 * ends (len when all of it is good): the start of the first append that is
 * damaged or incomplete. *stop is where decoding stopped (len if it ran to
 * the end), from where a torn tail must have nothing valid after it. *st is
 * set for errors other than damage.
 */
static size_t scan(struct file_store *fs, uint32_t seq, const uint8_t *buf, size_t len,
                   size_t *stop, esr_status *st)
{
	static _Thread_local struct gather g;
	size_t off = SEG_HEADER;
	struct rec r;

	g.have = 0;
	*stop = len;
	while (off < len) {
		enum rec_status rs = rec_decode(buf + off, len - off, &r);
		*stop = off;
		if (rs != REC_OK)
			break;
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
		g.locs[g.have] = (struct loc){seq, r.length, off};
		g.last_position = r.position;
		off += r.length;
		*stop = off;
		if (++g.have == g.count) {
			if (apply(fs, &g, seq, st) != 0) {
				*stop = g.start;
				return *st == ESR_OK ? g.start : 0;
			}
			g.have = 0;
		}
	}
	return g.have ? g.start : off;
}

/* Move segments seqs[i..n) aside as *.damaged (salvage: the log ended before them). */
static void move_aside(struct file_store *fs, const uint32_t *seqs, size_t i, size_t n)
{
	char from[4096], to[4200];

	for (; i < n; i++) {
		seg_path(fs, seqs[i], from, sizeof from);
		snprintf(to, sizeof to, "%s.damaged", from);
		rename(from, to);
	}
}

esr_status file_recover(struct file_store *fs, char *why, size_t why_size)
{
	uint32_t *seqs = NULL;
	size_t n, i, len = 0, good, stop;
	esr_status st;
	uint8_t *buf = NULL;
	char path[4096];

	fs->next_position = 1;
	if ((st = list_segments(fs, &seqs, &n)) != ESR_OK)
		return st;
	for (i = 0; i < n && st == ESR_OK; i++) {
		int last = i + 1 == n, fd;
		uint64_t seq_in_header;

		seg_path(fs, seqs[i], path, sizeof path);
		if ((i > 0 && seqs[i] != seqs[i - 1] + 1) ||
		    (fd = fio.open(path, O_RDWR | O_CLOEXEC, 0)) < 0) {
			st = i > 0 && seqs[i] != seqs[i - 1] + 1 ? ESR_ECORRUPT : ESR_EIO;
			if (why)
				snprintf(why, why_size, "%s: %s", path,
				         st == ESR_EIO ? strerror(errno) : "a segment before it is missing");
			break;
		}
		file_tail_set(fs, fd); /* and the previous segment's is closed */
		free(buf);
		if ((st = read_file(fd, &buf, &len)) != ESR_OK)
			break;
		if (len < SEG_HEADER || seg_header_decode(buf, &seq_in_header) != 0 ||
		    seq_in_header != seqs[i]) {
			if (last && len < SEG_HEADER) { /* a crash while creating it */
				file_tail_set(fs, -1);
				st = file_segment_create(fs, seqs[i]);
				len = SEG_HEADER;
				break;
			}
			st = ESR_ECORRUPT;
			if (why)
				snprintf(why, why_size, "%s: offset 0: bad segment header", path);
			break;
		}
		good = scan(fs, seqs[i], buf, len, &stop, &st);
		if (st != ESR_OK)
			break;
		if (good < len) {
			/* An append cut short leaves whole records of it before the
			 * cut: look for valid data only past where decoding stopped. */
			int torn = last && (stop >= len || !valid_after(buf, stop + 1, len));
			if (!torn && !fs->opt.salvage) {
				st = ESR_ECORRUPT;
				if (why)
					snprintf(why, why_size, "%s: offset %zu: damaged record", path, good);
				break;
			}
			if (ftruncate(fd, (off_t)good) != 0 || fio.fdatasync(fd) != 0) {
				st = ESR_EIO;
				break;
			}
			len = good;
			if (!torn) { /* salvage: the log ends here */
				move_aside(fs, seqs, i + 1, n);
				n = i + 1;
			}
		}
		fs->seg = seqs[i];
		fs->seg_size = len;
	}
	free(buf);
	free(seqs);
	if (st == ESR_OK && n == 0)
		st = file_segment_create(fs, 1);
	if (st == ESR_OK && lseek(fs->tail_fd, (off_t)fs->seg_size, SEEK_SET) < 0)
		st = ESR_EIO;
	return st;
}
