/*
 * tests/store/test_file_power_loss.c: the file store through a power cut, as
 * SQLite's crash-test VFS models one. Its I/O table (store/file/file_io.h) is
 * replaced by a model of a disk with a volatile cache:
 *
 *   - each file keeps its durable image: its bytes as of its last completed
 *     fdatasync (a file never synced: empty). A write, pwrite, ftruncate or
 *     O_TRUNC open changes the real file at once and marks it dirty from the
 *     lowest offset it touched; fdatasync copies the real bytes from there on
 *     into the image. (The real fdatasync is never called: the model is the
 *     disk.)
 *   - each directory keeps its durable names: what it held at its last
 *     completed fdatasync (a directory is synced by opening it and syncing
 *     its descriptor). A name created, renamed, linked or unlinked since is
 *     undone by the cut.
 *   - the cut comes at the Nth call through the table: that call and every
 *     later one fails with EIO (close still releases its descriptor). Once
 *     the store is closed the directory is rebuilt from its durable names,
 *     each file from its durable image, plus, on every other round, a prefix
 *     of what was appended past the image since its last sync (none, all, or
 *     a random length: the part of the unsynced writes that happened to reach
 *     the disk, maybe torn).
 *     Not modelled: unsynced bytes reaching the disk out of order or in
 *     scattered sectors (only a prefix of an append is kept, an overwrite is
 *     dropped whole); the store's directory itself is made by the test and
 *     taken as durable.
 *
 * Then the store is reopened with the real I/O: it must open, every append
 * acknowledged ESR_OK (before or after the cut) is there with its exact
 * events, and every stored event is one that was written for its version.
 * The last acknowledged checkpoint loads, or the one saved after it; a
 * snapshot that loads is whole; the global order runs 1..head without a gap.
 * Eight threads append under sync=always, two to each of four streams at
 * the version each last knew, so they race as two runtimes do (events large
 * enough now and then that segments roll over); a ninth saves snapshots and
 * checkpoints; the cut
 * sweeps every call of a run (every step-th, ~150 points, if runs grow). The
 * store's own fsync discipline is what is under test: the same sweep with
 * fdatasync of files (not directories) made a no-op that reports success (the
 * store believes it synced) must find, at every cut point from mid-run on,
 * acknowledged appends lost or a log the store refuses to open.
 * See docs/architecture.md for where this sits among the store's tests.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <esr/esr.h>

#include "store/file/file_io.h"

#define THREADS 4      /* streams; two writers each */
#define WRITERS (2 * THREADS)
#define APPENDS 10     /* per writer */
#define BIG 300000     /* every 5th append's events: segments of 1 MiB roll over */
#define CHECKPOINTS 8
#define MAX_FDS 4096
#define MAX_NODES 256
#define MAX_NAMES 256

/* --- the model -------------------------------------------------------------- */

struct node {           /* a file */
	uint8_t *image; /* durable bytes */
	size_t image_len;
	off_t dirty_from; /* lowest offset changed since the last sync; -1: none */
	uint8_t *torn;    /* at the cut: the unsynced appended bytes kept */
	size_t torn_len;
};

struct name {
	char path[PATH_MAX];
	struct node *node;
};

struct names {
	struct name v[MAX_NAMES];
	int n;
};

static struct esr__file_io real;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct node nodes[MAX_NODES];
static int n_nodes;
static struct names now, durable;      /* the namespace, and what survives a cut */
static struct node *fd_node[MAX_FDS]; /* NULL: not a file of ours */
static char fd_dir[MAX_FDS][PATH_MAX]; /* a directory's path, "" if none */
static long calls, cut_at;             /* cut at call number cut_at (0: never) */
static int cut, keep_torn, syncs_lie;
static uint64_t snaps_loaded; /* snapshots that survived, over the runs */
static uint64_t acked_total; /* versions acknowledged, over the runs */
static uint64_t conflicts_total; /* appends that lost a race to the other writer */
static long refused; /* lying syncs: reopens refused (damage), counted as losses */
static unsigned seed;

static struct name *find(struct names *ns, const char *path)
{
	for (int i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i].path, path) == 0)
			return &ns->v[i];
	return NULL;
}

static void drop(struct names *ns, const char *path)
{
	struct name *e = find(ns, path);

	if (e != NULL)
		*e = ns->v[--ns->n];
}

static void bind_name(struct names *ns, const char *path, struct node *node)
{
	struct name *e = find(ns, path);

	if (e == NULL) {
		if (ns->n == MAX_NAMES)
			abort();
		e = &ns->v[ns->n++];
		snprintf(e->path, sizeof e->path, "%s", path);
	}
	e->node = node;
}

static int in_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	const char *rest = path + n;

	return strncmp(path, dir, n) == 0 && rest[0] == '/' && strchr(rest + 1, '/') == NULL;
}

/* Under mu: one more call. Is the power off for it? */
static int power_off(void)
{
	if (!cut && cut_at > 0 && ++calls >= cut_at)
		cut = 1;
	else if (cut_at == 0)
		calls++;
	if (cut)
		errno = EIO;
	return cut;
}

static struct node *new_node(void)
{
	struct node *n;

	if (n_nodes == MAX_NODES)
		abort();
	n = &nodes[n_nodes++];
	memset(n, 0, sizeof *n);
	n->dirty_from = -1;
	return n;
}

static void dirty(struct node *n, off_t from)
{
	if (n != NULL && (n->dirty_from < 0 || from < n->dirty_from))
		n->dirty_from = from;
}

static int m_open(const char *path, int flags, mode_t mode)
{
	struct name *e;
	int fd = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (fd = real.open(path, flags, mode)) >= 0) {
		if (fd >= MAX_FDS)
			abort();
		fd_node[fd] = NULL;
		fd_dir[fd][0] = '\0';
		if (flags & O_DIRECTORY) {
			snprintf(fd_dir[fd], sizeof fd_dir[fd], "%s", path);
		} else {
			if ((e = find(&now, path)) == NULL) {
				bind_name(&now, path, new_node()); /* created: nothing durable */
				e = find(&now, path);
			}
			fd_node[fd] = e->node;
			if (flags & O_TRUNC)
				dirty(e->node, 0);
		}
	}
	pthread_mutex_unlock(&mu);
	return fd;
}

static ssize_t m_write(int fd, const void *buf, size_t n)
{
	ssize_t w = -1;
	off_t at;

	pthread_mutex_lock(&mu);
	if (!power_off() && (at = lseek(fd, 0, SEEK_CUR)) >= 0 && (w = real.write(fd, buf, n)) > 0)
		dirty(fd_node[fd], at);
	pthread_mutex_unlock(&mu);
	return w;
}

static ssize_t m_pwrite(int fd, const void *buf, size_t n, off_t at)
{
	ssize_t w = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (w = real.pwrite(fd, buf, n, at)) > 0)
		dirty(fd_node[fd], at);
	pthread_mutex_unlock(&mu);
	return w;
}

static int m_ftruncate(int fd, off_t len)
{
	int r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (r = real.ftruncate(fd, len)) == 0)
		dirty(fd_node[fd], len);
	pthread_mutex_unlock(&mu);
	return r;
}

/* The file's bytes from its dirty offset on become durable. */
static int sync_file(int fd, struct node *n)
{
	struct stat st;
	size_t from, size;

	if (fstat(fd, &st) != 0)
		return -1;
	size = (size_t)st.st_size;
	if (n->dirty_from < 0)
		return 0;
	from = (size_t)n->dirty_from < size ? (size_t)n->dirty_from : size;
	if (from > n->image_len)
		from = n->image_len; /* cannot be: bytes past the image were written */
	n->image = realloc(n->image, size + 1);
	if (n->image == NULL)
		abort();
	if (size > from && real.pread(fd, n->image + from, size - from, (off_t)from) != (ssize_t)(size - from))
		return -1;
	n->image_len = size;
	n->dirty_from = -1;
	return 0;
}

static int m_fdatasync(int fd)
{
	int r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off()) {
		if (fd_dir[fd][0] != '\0') { /* a directory: its names become durable */
			for (int i = 0; i < durable.n;)
				if (in_dir(durable.v[i].path, fd_dir[fd]))
					durable.v[i] = durable.v[--durable.n];
				else
					i++;
			for (int i = 0; i < now.n; i++)
				if (in_dir(now.v[i].path, fd_dir[fd]))
					bind_name(&durable, now.v[i].path, now.v[i].node);
			r = 0;
		} else if (fd_node[fd] != NULL) {
			r = syncs_lie ? 0 : sync_file(fd, fd_node[fd]);
		} else {
			r = real.fdatasync(fd);
		}
	}
	pthread_mutex_unlock(&mu);
	return r;
}

static ssize_t m_pread(int fd, void *buf, size_t n, off_t at)
{
	ssize_t r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off())
		r = real.pread(fd, buf, n, at);
	pthread_mutex_unlock(&mu);
	return r;
}

static int m_rename(const char *from, const char *to)
{
	struct name *e;
	int r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (r = real.rename(from, to)) == 0 && (e = find(&now, from)) != NULL) {
		struct node *n = e->node;
		drop(&now, from);
		bind_name(&now, to, n);
	}
	pthread_mutex_unlock(&mu);
	return r;
}

static int m_link(const char *from, const char *to)
{
	struct name *e;
	int r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (r = real.link(from, to)) == 0 && (e = find(&now, from)) != NULL)
		bind_name(&now, to, e->node);
	pthread_mutex_unlock(&mu);
	return r;
}

static int m_unlink(const char *path)
{
	int r = -1;

	pthread_mutex_lock(&mu);
	if (!power_off() && (r = real.unlink(path)) == 0)
		drop(&now, path);
	pthread_mutex_unlock(&mu);
	return r;
}

static int m_close(int fd)
{
	int r;

	pthread_mutex_lock(&mu);
	r = power_off() ? -1 : 0;
	if (fd >= 0 && fd < MAX_FDS) {
		fd_node[fd] = NULL;
		fd_dir[fd][0] = '\0';
	}
	real.close(fd); /* released either way, as Linux does */
	pthread_mutex_unlock(&mu);
	return r;
}

static const struct esr__file_io model = {
	m_write, m_fdatasync, m_open, m_ftruncate, m_pread, m_pwrite, m_rename, m_link, m_unlink, m_close,
};

/* Under mu, at the cut: each file appended to past its image since its last
 * sync may keep a random prefix of those bytes (read while the files still
 * hold them). */
static void tear_tails(void)
{
	for (int i = 0; i < now.n; i++) {
		struct node *n = now.v[i].node;
		struct stat st;
		size_t extra;
		int fd;

		if (n->torn != NULL || n->dirty_from < 0 || (size_t)n->dirty_from < n->image_len ||
		    stat(now.v[i].path, &st) != 0 || (size_t)st.st_size <= n->image_len)
			continue;
		extra = (size_t)st.st_size - n->image_len; /* all of it reached the disk, */
		switch (rand_r(&seed) % 3) {
		case 0:
			extra = 0; /* or none, */
			break;
		case 1:
			extra = (size_t)rand_r(&seed) % (extra + 1); /* or some */
			break;
		}
		if (extra == 0 || (fd = open(now.v[i].path, O_RDONLY)) < 0)
			continue;
		n->torn = malloc(extra);
		if (n->torn == NULL || pread(fd, n->torn, extra, (off_t)n->image_len) != (ssize_t)extra)
			abort();
		n->torn_len = extra;
		close(fd);
	}
}

/* With the store closed: the directory becomes what survived the cut. */
static void restore(const char *dir)
{
	char path[PATH_MAX + 256];
	struct dirent *d;
	DIR *dh = opendir(dir);

	assert_non_null(dh);
	while ((d = readdir(dh)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(dh);
	for (int i = 0; i < durable.n; i++) {
		struct node *n = durable.v[i].node;
		int fd = open(durable.v[i].path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, n->image, n->image_len), (ssize_t)n->image_len);
		if (n->torn_len > 0)
			assert_int_equal(write(fd, n->torn, n->torn_len), (ssize_t)n->torn_len);
		close(fd);
	}
}

static void model_reset(void)
{
	for (int i = 0; i < n_nodes; i++) {
		free(nodes[i].image);
		free(nodes[i].torn);
	}
	n_nodes = 0;
	now.n = durable.n = 0;
	memset(fd_node, 0, sizeof fd_node);
	memset(fd_dir, 0, sizeof fd_dir);
	calls = 0;
	cut = 0;
}

/* --- the workload ----------------------------------------------------------- */

static void id_of(uint32_t stream, char *out)
{
	snprintf(out, 16, "p-%u", stream);
}

static size_t len_of(uint64_t version)
{
	return version % 5 == 4 ? BIG : 48 + (size_t)(version % 7) * 16;
}

static void payload_of(uint32_t stream, uint64_t version, uint8_t *out, size_t len)
{
	uint64_t x = (uint64_t)(stream + 1) * 0x9e3779b97f4a7c15ull ^ version;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		out[i] = (uint8_t)x;
	}
	memcpy(out, &version, sizeof version);
}

/*
 * Two writers per stream, each appending at the version it last knew, as two
 * runtimes on the same aggregates do: the loser of a race gets ESR_ECONFLICT
 * with the actual version and goes on from there. An event's payload is a
 * function of (stream, version) alone, so whoever wins a version writes the
 * bytes the check expects for it.
 */
struct writer {
	esr_store *s;
	uint32_t stream;
	uint64_t acked; /* the stream's version as of this writer's last ESR_OK */
	uint64_t known; /* the version it appends at next (its own or a conflict's) */
	unsigned conflicts;
	uint8_t *buf[3];
};

static void *append_loop(void *arg)
{
	struct writer *w = arg;
	char id[16];
	esr_stream_id sid = {"Power", id, 0};

	id_of(w->stream, id);
	sid.id_len = strlen(id);
	for (int a = 0; a < APPENDS; a++) {
		esr_event ev[3];
		esr_append_result r;
		uint32_t n = 1 + (uint32_t)((w->known + (uint64_t)a) % 3);
		esr_status st;

		for (uint32_t i = 0; i < n; i++) {
			size_t len = len_of(w->known + 1 + i);
			payload_of(w->stream, w->known + 1 + i, w->buf[i], len);
			ev[i] = (esr_event){.type = 1, .payload = w->buf[i], .payload_len = len};
		}
		st = esr_store_append(w->s, &sid, w->known, ev, n, &r);
		if (st == ESR_ECONFLICT) { /* the other writer was first */
			w->known = r.version;
			w->conflicts++;
			continue;
		}
		if (st != ESR_OK)
			break; /* the power is off, or the store failed */
		w->acked = w->known = r.version;
	}
	return NULL;
}

struct checkpointer {
	esr_store *s;
	uint64_t acked;
};

static uint32_t snap_len(uint64_t version)
{
	return 100 + (uint32_t)(version * 37 % 2000);
}

/* Checkpoint "power" 1, 2, ..., each after a snapshot of a stream at the
 * version it has (a snapshot need not survive a crash, but one that loads
 * must be whole). */
static void *checkpoint_loop(void *arg)
{
	struct checkpointer *c = arg;
	static uint8_t data[2100];

	for (uint64_t i = 1; i <= CHECKPOINTS; i++) {
		char id[16];
		esr_stream_id sid = {"Power", id, 0};
		esr_snapshot snap = {0, 1, 0, data};
		uint32_t k = (uint32_t)(i % THREADS);

		id_of(k, id);
		sid.id_len = strlen(id);
		if (esr_store_version(c->s, &sid, &snap.version) != ESR_OK)
			break;
		snap.len = snap_len(snap.version);
		payload_of(THREADS + k, snap.version, data, snap.len);
		if ((snap.version > 0 && esr_store_snapshot_save(c->s, &sid, &snap) != ESR_OK) ||
		    esr_store_checkpoint_save(c->s, "power", i) != ESR_OK)
			break;
		c->acked = i;
	}
	return NULL;
}

struct snap_check {
	uint32_t stream;
	uint64_t version; /* the stream's, after the reopen */
	int bad;
};

static esr_status check_snap(void *ctx, const esr_snapshot *snap)
{
	struct snap_check *c = ctx;
	static uint8_t want[2100];

	payload_of(THREADS + c->stream, snap->version, want, snap_len(snap->version));
	snaps_loaded++;
	c->bad = snap->version == 0 || snap->version > c->version || snap->format != 1 ||
	         snap->len != snap_len(snap->version) || memcmp(snap->data, want, snap->len) != 0;
	return ESR_OK;
}

struct order {
	uint64_t next, *seen; /* the next position; each stream's last version */
	int bad;
};

/* The global order: positions 1, 2, ... without a gap, each stream's
 * versions in order. */
static esr_status check_order(void *ctx, const esr_recorded_event *e)
{
	struct order *o = ctx;
	unsigned k;

	char id[16];

	snprintf(id, sizeof id, "%.*s", (int)e->stream.id_len, (const char *)e->stream.id);
	if (e->position != o->next++ || sscanf(id, "p-%u", &k) != 1 || k >= THREADS ||
	    e->version != o->seen[k] + 1)
		o->bad = 1;
	else
		o->seen[k] = e->version;
	return ESR_OK;
}

struct check {
	uint32_t stream;
	uint64_t next;
	uint8_t *want;
	int bad;
};

static esr_status check_event(void *ctx, const esr_recorded_event *e)
{
	struct check *c = ctx;
	size_t len = len_of(e->version);

	payload_of(c->stream, e->version, c->want, len);
	if (e->version != c->next || e->event.type != 1 || e->event.payload_len != len ||
	    memcmp(e->event.payload, c->want, len) != 0)
		c->bad = 1;
	c->next++;
	return ESR_OK;
}

static esr_file_store_options options(void)
{
	esr_file_store_options o;

	esr_file_store_options_default(&o);
	o.sync = ESR_SYNC_ALWAYS;
	o.segment_bytes = ESR_FILE_SEGMENT_MIN;
	return o;
}

static char root[] = "/tmp/esr-power-XXXXXX";
static int serial;

/* What one run's writers were told: each stream's and the checkpoint's last
 * ESR_OK. */
struct acks {
	struct writer w[WRITERS]; /* writer j appends to stream j % THREADS */
	struct checkpointer cp;
};

/* Under the model, with the cut at call cut_point (0: none, then the cut
 * comes at the end): open, append and checkpoint until the power goes,
 * close, and rebuild dir as the cut left it. *total_calls gets how many calls
 * went through the table. */
static void run_until_cut(const char *dir, long cut_point, struct acks *a, long *total_calls)
{
	esr_file_store_options o = options();
	pthread_t th[WRITERS + 1];
	esr_store *s = NULL;

	assert_int_equal(mkdir(dir, 0755), 0);
	pthread_mutex_lock(&mu);
	model_reset();
	cut_at = cut_point;
	keep_torn = serial % 2 && !syncs_lie; /* lying syncs meet the cut that keeps nothing */
	seed = (unsigned)serial;
	esr__fio = model;
	pthread_mutex_unlock(&mu);

	memset(&a->cp, 0, sizeof a->cp);
	if (esr_file_store_open(dir, &o, &s) != ESR_OK)
		s = NULL; /* the power went during the open */
	for (int i = 0; i < WRITERS; i++) {
		a->w[i] = (struct writer){s, (uint32_t)(i % THREADS), 0, 0, 0, {NULL}};
		for (int k = 0; k < 3; k++)
			assert_non_null(a->w[i].buf[k] = malloc(BIG));
	}
	if (s != NULL) {
		a->cp.s = s;
		for (int i = 0; i < WRITERS; i++)
			assert_int_equal(pthread_create(&th[i], NULL, append_loop, &a->w[i]), 0);
		assert_int_equal(pthread_create(&th[WRITERS], NULL, checkpoint_loop, &a->cp), 0);
		for (int i = 0; i <= WRITERS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
	}
	pthread_mutex_lock(&mu);
	if (!cut) { /* the power goes off now, if not before */
		cut = 1;
		cut_at = calls;
	}
	if (keep_torn)
		tear_tails();
	*total_calls = calls;
	pthread_mutex_unlock(&mu);
	if (s != NULL)
		esr_store_close(s);

	pthread_mutex_lock(&mu);
	esr__fio = real;
	pthread_mutex_unlock(&mu);
	restore(dir);
}

/* The highest version either writer of `stream` was told ESR_OK for. */
static uint64_t stream_acked(const struct acks *a, int stream)
{
	uint64_t mine = a->w[stream].acked, other = a->w[stream + THREADS].acked;

	return mine > other ? mine : other;
}

/* The reopened store s against what was acknowledged: the number of
 * acknowledged versions (and checkpoint) missing. Fails the test on an event
 * or snapshot not written as stored, or a gap in the global order. */
static uint64_t check_reopened(esr_store *s, const struct acks *a, long cut_point)
{
	uint64_t lost = 0, got, head, total = 0, seen[THREADS] = {0};
	struct order ord = {1, seen, 0};
	esr_status st;

	for (int i = 0; i < THREADS; i++) {
		char id[16];
		esr_stream_id sid = {"Power", id, 0};
		struct check c = {(uint32_t)i, 1, a->w[0].buf[0], 0};
		struct snap_check sc;

		id_of((uint32_t)i, id);
		sid.id_len = strlen(id);
		assert_int_equal(esr_store_read(s, &sid, 1, check_event, &c), ESR_OK);
		if (c.bad)
			fail_msg("cut at call %ld: stream %d holds an event not written for its version",
			         cut_point, i);
		if (c.next - 1 < stream_acked(a, i))
			lost += stream_acked(a, i) - (c.next - 1);
		sc = (struct snap_check){(uint32_t)i, c.next - 1, 0};
		assert_int_equal(esr_store_snapshot_load(s, &sid, check_snap, &sc), ESR_OK);
		if (sc.bad)
			fail_msg("cut at call %ld: stream %d's snapshot is torn or beyond it", cut_point, i);
		total += c.next - 1;
	}
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	for (uint64_t from = 1; from <= head && !ord.bad;)
		assert_int_equal(esr_store_read_all(s, from, 4096, check_order, &ord, &from), ESR_OK);
	if (ord.bad || ord.next - 1 != total || head != total)
		fail_msg("cut at call %ld: the global order is broken (head %llu, %llu events)",
		         cut_point, (unsigned long long)head, (unsigned long long)total);
	st = esr_store_checkpoint_load(s, "power", &got);
	if (st != ESR_OK && !syncs_lie)
		fail_msg("cut at call %ld: the checkpoint does not load: %s", cut_point,
		         esr_status_name(st));
	if (st != ESR_OK || got < a->cp.acked)
		lost++;
	else if (got > a->cp.acked + 1)
		fail_msg("cut at call %ld: checkpoint %llu, but only %llu was acknowledged", cut_point,
		         (unsigned long long)got, (unsigned long long)a->cp.acked);
	return lost;
}

/*
 * One run with the cut at call cut_point (0: at the end), then the reopen
 * with the real I/O and the checks. Returns the number of acknowledged
 * versions missing (0 when the store kept its word; with lying syncs a
 * refused reopen counts everything acknowledged as missing); *total_calls
 * gets how many calls the run made through the table.
 */
static uint64_t run(long cut_point, long *total_calls)
{
	esr_file_store_options o = options();
	static struct acks a;
	char dir[PATH_MAX], why[256] = "";
	uint64_t lost = 0;
	esr_store *s = NULL;
	esr_status st;

	snprintf(dir, sizeof dir, "%s/%d", root, ++serial);
	run_until_cut(dir, cut_point, &a, total_calls);
	o.why = why;
	o.why_size = sizeof why;
	st = esr_file_store_open(dir, &o, &s);
	if (st == ESR_OK) {
		for (int i = 0; i < THREADS; i++)
			acked_total += stream_acked(&a, i);
		lost = check_reopened(s, &a, cut_point);
		esr_store_close(s);
	} else if (syncs_lie) { /* its segments lost their headers too */
		refused++;
		for (int i = 0; i < THREADS; i++)
			lost += stream_acked(&a, i);
		lost += a.cp.acked;
	} else {
		fail_msg("cut at call %ld: the store does not reopen: %s (%s)", cut_point,
		         esr_status_name(st), why);
	}
	for (int i = 0; i < WRITERS; i++) {
		conflicts_total += a.w[i].conflicts;
		for (int k = 0; k < 3; k++)
			free(a.w[i].buf[k]);
	}
	return lost;
}

/* The cut points: every step-th call of a run that had no cut. */
static long sweep_step(long *total)
{
	long step;

	run(0, total);
	assert_true(*total > 20);
	step = *total / 150;
	return step > 0 ? step : 1;
}

static void acknowledged_appends_survive_power_cuts(void **state)
{
	long total, step, calls_made, rounds = 0;

	(void)state;
	syncs_lie = 0;
	acked_total = conflicts_total = 0;
	step = sweep_step(&total);
	for (long n = 1; n <= total + step; n += step, rounds++) {
		uint64_t lost = run(n, &calls_made);
		if (lost != 0)
			fail_msg("cut at call %ld of %ld: %llu acknowledged versions lost", n, calls_made,
			         (unsigned long long)lost);
	}
	printf("power cuts: %ld points over runs of ~%ld calls, %llu acknowledged versions, none "
	       "lost; %llu races lost to the other writer; %llu snapshots loaded whole\n", rounds,
	       total, (unsigned long long)acked_total, (unsigned long long)conflicts_total,
	       (unsigned long long)snaps_loaded);
	assert_true(acked_total > (uint64_t)rounds); /* the cuts came while appends were acknowledged */
	assert_true(conflicts_total > 0); /* the two writers of a stream did race */
}

/* The test can fail: a store whose fdatasync of files does nothing (and
 * says it worked) loses acknowledged appends, and the sweep sees it. */
static void a_store_that_skips_its_syncs_is_caught(void **state)
{
	long total, step, calls_made, caught = 0, rounds = 0;

	(void)state;
	syncs_lie = 0;
	step = sweep_step(&total);
	syncs_lie = 1;
	refused = 0;
	for (long n = total / 2; n <= total + step; n += step * 4, rounds++)
		caught += run(n, &calls_made) > 0;
	syncs_lie = 0;
	printf("syncs that lie: %ld of %ld cut points lost acknowledged appends (%ld: the store "
	       "refused to open)\n", caught, rounds, refused);
	assert_int_equal(caught, rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(acknowledged_appends_survive_power_cuts),
		cmocka_unit_test(a_store_that_skips_its_syncs_is_caught),
	};
	char cmd[128];
	int failed;

	if (mkdtemp(root) == NULL)
		return 1;
	real = esr__fio;
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	model_reset();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
