/*
 * tests/store/test_file_resume.c: what the file store keeps for a reader that
 * resumes, across reopening: the global order (rebuilt from the segments),
 * head and wait, snapshots in snapshots.log (torn tails cut, rotten records
 * loaded as none, compaction, records beyond their stream dropped) and
 * checkpoint files. The conformance suite
 * checks the behaviour every store shares; this checks what lives on disk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <esr/esr.h>

#include "store/file/file_format.h"
#include "store/file/file_io.h"

static char root[] = "/tmp/esr-resume-test-XXXXXX";
static int serial;

static void fresh_dir(char *out, size_t size)
{
	snprintf(out, size, "%s/%d", root, ++serial);
}

static esr_store *open_dir(const char *dir)
{
	esr_file_store_options o;
	esr_store *s = NULL;

	esr_file_store_options_default(&o);
	o.segment_bytes = 2u << 20; /* the least allowed: appends cross segments */
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	return s;
}

static esr_store *reopen(esr_store *s, const char *dir)
{
	esr_store_close(s);
	return open_dir(dir);
}

static off_t size_of(const char *dir, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* --- the global order -------------------------------------------------------------- */

#define STREAMS 7
#define APPENDS 120

/* What was appended at each position: its stream and version. */
struct placed {
	int stream;
	uint64_t version;
};

static void id_of(int stream, char *id, esr_stream_id *sid)
{
	sid->type = stream % 2 ? "Order" : "Account";
	sid->id = id;
	sid->id_len = (size_t)snprintf(id, 16, "x-%d", stream);
}

/* Appends of 1 to 3 events to the streams in turn, some with a large
 * payload so the log rolls over; where[position] records what went where. */
static uint64_t fill(esr_store *s, struct placed *where, uint64_t *versions)
{
	static uint8_t big[300000];
	uint64_t last = 0;
	int a, i;

	for (a = 0; a < APPENDS; a++) {
		int k = (a * 5) % STREAMS, n = 1 + a % 3;
		esr_event ev[3];
		esr_append_result r;
		esr_stream_id sid;
		char id[16];

		id_of(k, id, &sid);
		for (i = 0; i < n; i++) {
			uint32_t len = a % 17 == 0 && i == 0 ? sizeof big : 8;
			ev[i] = (esr_event){.type = (uint32_t)k, .payload = big, .payload_len = len};
			where[last + 1 + (uint64_t)i] = (struct placed){k, versions[k] + 1 + (uint64_t)i};
		}
		assert_int_equal(esr_store_append(s, &sid, versions[k], ev, (size_t)n, &r), ESR_OK);
		assert_int_equal(r.position, last + 1);
		versions[k] += (uint64_t)n;
		last += (uint64_t)n;
	}
	return last;
}

struct tally {
	const struct placed *where;
	uint64_t next_position, count;
	uint64_t seen[STREAMS]; /* the last version seen per stream */
	int from_start;         /* so versions run from 1 in every stream */
	int bad;
};

static esr_status tally_event(void *ctx, const esr_recorded_event *r)
{
	struct tally *t = ctx;
	const struct placed *p = &t->where[r->position];
	esr_stream_id want;
	char id[16];

	id_of(p->stream, id, &want);
	t->bad |= r->position != t->next_position;
	t->bad |= r->version != p->version || r->event.type != (uint32_t)p->stream;
	t->bad |= strcmp(r->stream.type, want.type) != 0 || r->stream.id_len != want.id_len ||
	          memcmp(r->stream.id, want.id, want.id_len) != 0;
	if (t->from_start || t->seen[p->stream] != 0)
		t->bad |= r->version != t->seen[p->stream] + 1;
	t->seen[p->stream] = r->version;
	t->next_position = r->position + 1;
	t->count++;
	return ESR_OK;
}

static void tally_init(struct tally *t, const struct placed *where, uint64_t from)
{
	memset(t, 0, sizeof *t);
	t->where = where;
	t->next_position = from;
	t->from_start = from == 1;
}

/* Read [from, head] in pages of `page`; every position once, in order. */
static uint64_t read_pages(esr_store *s, const struct placed *where, uint64_t from,
                           size_t page, struct tally *t)
{
	uint64_t next = from, head;

	tally_init(t, where, from);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	while (next <= head) {
		uint64_t before = next;
		assert_int_equal(esr_store_read_all(s, next, page, tally_event, t, &next), ESR_OK);
		assert_true(next > before && next - before <= page);
	}
	assert_int_equal(next, head + 1);
	assert_false(t->bad);
	return t->count;
}

static void global_order_survives_reopen(void **state)
{
	static struct placed where[APPENDS * 3 + 2];
	uint64_t versions[STREAMS] = {0}, n, head;
	struct tally t;
	char dir[256];
	esr_store *s;
	int k;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	n = fill(s, where, versions);
	s = reopen(s, dir);
	assert_true(size_of(dir, "00000002.seg") > 0); /* the order crosses segments */
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, n);
	assert_int_equal(read_pages(s, where, 1, 13, &t), n);
	for (k = 0; k < STREAMS; k++)
		assert_int_equal(t.seen[k], versions[k]);
	{
		/* appends after reopen continue the order */
		esr_event ev = {.type = 0, .payload = "12345678", .payload_len = 8};
		esr_stream_id sid;
		esr_append_result r;
		char id[16];
		id_of(0, id, &sid);
		assert_int_equal(esr_store_append(s, &sid, versions[0], &ev, 1, &r), ESR_OK);
		assert_int_equal(r.position, n + 1);
		assert_int_equal(esr_store_head(s, &head), ESR_OK);
		assert_int_equal(head, n + 1);
	}
	esr_store_close(s);
}

static esr_status count_only(void *ctx, const esr_recorded_event *r)
{
	uint64_t *first = ctx;

	if (*first == 0)
		*first = r->position;
	return ESR_OK;
}

static void global_read_from_the_middle(void **state)
{
	static struct placed where[APPENDS * 3 + 2];
	uint64_t versions[STREAMS] = {0}, n, mid, next, first = 0;
	struct tally t;
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	n = fill(s, where, versions);
	s = reopen(s, dir);
	mid = n / 2;
	assert_int_equal(esr_store_read_all(s, mid, 5, count_only, &first, &next), ESR_OK);
	assert_int_equal(first, mid);
	assert_int_equal(next, mid + 5);
	tally_init(&t, where, mid);
	assert_int_equal(esr_store_read_all(s, mid, 65536, tally_event, &t, &next), ESR_OK);
	assert_int_equal(t.count, n - mid + 1);
	assert_int_equal(next, n + 1);
	assert_false(t.bad);
	/* at and past the head: nothing visited, next stays */
	first = 0;
	assert_int_equal(esr_store_read_all(s, n + 1, 10, count_only, &first, &next), ESR_OK);
	assert_int_equal(next, n + 1);
	assert_int_equal(first, 0);
	assert_int_equal(esr_store_read_all(s, n + 50, 10, count_only, &first, &next), ESR_OK);
	assert_int_equal(next, n + 50);
	esr_store_close(s);
}

/* A flipped bit in a record read by a global read is ESR_ECORRUPT, and the
 * events before it were visited. */
static void global_read_checks_what_it_reads(void **state)
{
	esr_stream_id sid = {"Account", "a", 1};
	esr_event ev = {.type = 1, .payload = "abcdefgh", .payload_len = 8};
	uint64_t first = 0, next = 0;
	char dir[256], path[300];
	esr_store *s;
	uint8_t b;
	int fd, i;
	/* record 3 starts after the header and two records of 88 + 7 + 1 + 8 */
	off_t at = 32 + 2 * 104 + 100;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	for (i = 0; i < 4; i++)
		assert_int_equal(esr_store_append(s, &sid, (uint64_t)i, &ev, 1, NULL), ESR_OK);
	snprintf(path, sizeof path, "%s/00000001.seg", dir);
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 4;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
	assert_int_equal(esr_store_read_all(s, 1, 10, count_only, &first, &next), ESR_ECORRUPT);
	assert_int_equal(first, 1);
	assert_int_equal(next, 3);
	esr_store_close(s);
}

/* --- head and wait ---------------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct later {
	esr_store *s;
	unsigned delay_ms;
};

static void *append_later(void *arg)
{
	struct later *l = arg;
	esr_stream_id sid = {"Late", "l", 1};
	esr_event ev = {.type = 1, .payload = "x", .payload_len = 1};

	usleep(l->delay_ms * 1000);
	return (void *)(intptr_t)esr_store_append(l->s, &sid, ESR_VERSION_ANY, &ev, 1, NULL);
}

static void wait_times_out_or_sees_the_append(void **state)
{
	esr_stream_id sid = {"Late", "l", 1};
	esr_event ev = {.type = 1, .payload = "x", .payload_len = 1};
	struct later l;
	uint64_t head;
	char dir[256];
	pthread_t t;
	double t0;
	void *ret;

	(void)state;
	fresh_dir(dir, sizeof dir);
	l.s = open_dir(dir);
	assert_int_equal(esr_store_head(l.s, &head), ESR_OK);
	assert_int_equal(head, 0);
	assert_int_equal(esr_store_append(l.s, &sid, 0, &ev, 1, NULL), ESR_OK);
	l.s = reopen(l.s, dir);
	assert_int_equal(esr_store_head(l.s, &head), ESR_OK);
	assert_int_equal(head, 1); /* recovered */
	/* nobody appends: wait returns after its timeout */
	t0 = now_ms();
	assert_int_equal(esr_store_wait(l.s, head, 60), ESR_OK);
	assert_true(now_ms() - t0 >= 55);
	/* the head is already past `after`: at once */
	t0 = now_ms();
	assert_int_equal(esr_store_wait(l.s, 0, 20000), ESR_OK);
	assert_true(now_ms() - t0 < 5000);
	/* another thread appends: wait returns long before its timeout */
	l.delay_ms = 50;
	pthread_create(&t, NULL, append_later, &l);
	t0 = now_ms();
	assert_int_equal(esr_store_wait(l.s, head, 20000), ESR_OK);
	assert_true(now_ms() - t0 < 10000);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, ESR_OK);
	assert_int_equal(esr_store_head(l.s, &head), ESR_OK);
	assert_int_equal(head, 2);
	esr_store_close(l.s);
}

/* Appenders and a global reader at once (run under ThreadSanitizer too): the
 * reader follows the head with read_all and wait and sees every position
 * once, in order, each stream's versions in order. */
#define RACERS 4
#define RACE_APPENDS 300 /* of 1 or 2 events: 450 events each */

static void *race_appender(void *arg)
{
	esr_store *s = ((void **)arg)[0];
	int index = (int)(intptr_t)((void **)arg)[1], i;
	esr_event ev[2] = {{.type = 1, .payload = "ab", .payload_len = 2},
	                   {.type = 2, .payload = "cd", .payload_len = 2}};
	char id[16];
	esr_stream_id sid = {"Race", id, 0};
	uint64_t v = 0;

	sid.id_len = (size_t)snprintf(id, sizeof id, "r-%d", index);
	for (i = 0; i < RACE_APPENDS; i++) {
		size_t n = 1 + (size_t)(i % 2);
		if (esr_store_append(s, &sid, v, ev, n, NULL) != ESR_OK)
			return (void *)1;
		v += n;
	}
	return NULL;
}

struct follow {
	uint64_t next_position, seen[RACERS];
	int bad;
};

static esr_status follow_event(void *ctx, const esr_recorded_event *r)
{
	struct follow *f = ctx;
	char id[16] = "";
	int k = -1;

	if (r->stream.id_len < sizeof id)
		memcpy(id, r->stream.id, r->stream.id_len);
	if (r->position != f->next_position || strcmp(r->stream.type, "Race") != 0 ||
	    sscanf(id, "r-%d", &k) != 1 || k < 0 || k >= RACERS ||
	    r->version != f->seen[k] + 1) {
		f->bad = 1;
		return ESR_ECANCELED;
	}
	f->seen[k]++;
	f->next_position++;
	return ESR_OK;
}

static void global_reads_race_appends(void **state)
{
	const uint64_t total = RACERS * (RACE_APPENDS / 2 * 3);
	struct follow f = {.next_position = 1};
	void *args[RACERS][2], *ret;
	pthread_t t[RACERS];
	uint64_t next = 1, head;
	double give_up = now_ms() + 120000;
	char dir[256];
	esr_store *s;
	int i;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	for (i = 0; i < RACERS; i++) {
		args[i][0] = s;
		args[i][1] = (void *)(intptr_t)i;
		pthread_create(&t[i], NULL, race_appender, args[i]);
	}
	while (next <= total && !f.bad && now_ms() < give_up) {
		uint64_t before = next;
		assert_int_equal(esr_store_read_all(s, next, 50, follow_event, &f, &next), ESR_OK);
		if (next == before)
			assert_int_equal(esr_store_wait(s, next - 1, 1000), ESR_OK);
	}
	for (i = 0; i < RACERS; i++) {
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_false(f.bad);
	assert_int_equal(next, total + 1);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, total);
	esr_store_close(s);
}

/* --- snapshots --------------------------------------------------------------------------- */

struct got {
	int calls;
	uint64_t version;
	uint32_t format, len;
	uint8_t data[8192];
};

static esr_status take(void *ctx, const esr_snapshot *snap)
{
	struct got *g = ctx;

	g->calls++;
	g->version = snap->version;
	g->format = snap->format;
	g->len = snap->len;
	assert_true(snap->len <= sizeof g->data);
	memcpy(g->data, snap->data, snap->len);
	return ESR_OK;
}

/* The stream's snapshot is (version, data), or none if data is NULL. */
static void expect_snap(esr_store *s, const esr_stream_id *sid, uint64_t version,
                        const char *data)
{
	struct got g = {0};

	assert_int_equal(esr_store_snapshot_load(s, sid, take, &g), ESR_OK);
	if (data == NULL) {
		assert_int_equal(g.calls, 0);
		return;
	}
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.version, version);
	assert_int_equal(g.format, 1);
	assert_int_equal(g.len, strlen(data));
	assert_memory_equal(g.data, data, g.len);
}

static void save(esr_store *s, const esr_stream_id *sid, uint64_t version, const char *data)
{
	esr_snapshot snap = {version, 1, (uint32_t)strlen(data), data};

	assert_int_equal(esr_store_snapshot_save(s, sid, &snap), ESR_OK);
}

/* A record's size in snapshots.log: 32 bytes, names, data. */
static off_t snap_rec(const esr_stream_id *sid, const char *data)
{
	return (off_t)(32 + strlen(sid->type) + sid->id_len + strlen(data));
}

static const esr_stream_id A = {"Account", "a", 1}, B = {"Order", "bb", 2},
                           C = {"Order", "cc", 2};

/* Bring sid to version v with empty events: a snapshot is saved only for
 * events stored, and one beyond its stream is dropped at open. */
static void grow(esr_store *s, const esr_stream_id *sid, uint64_t v)
{
	static esr_event ev[ESR_APPEND_MAX];
	uint64_t at = 0;
	size_t n, i;

	assert_int_equal(esr_store_version(s, sid, &at), ESR_OK);
	for (; at < v; at += n) {
		n = v - at < ESR_APPEND_MAX ? (size_t)(v - at) : ESR_APPEND_MAX;
		for (i = 0; i < n; i++)
			ev[i] = (esr_event){.type = 1};
		assert_int_equal(esr_store_append(s, sid, at, ev, n, NULL), ESR_OK);
	}
}

/* Streams A, B and C with 300 events each: room for every snapshot below. */
static void stored_events(esr_store *s)
{
	grow(s, &A, 300);
	grow(s, &B, 300);
	grow(s, &C, 300);
}

static void snapshots_survive_reopen(void **state)
{
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	stored_events(s);
	expect_snap(s, &A, 0, NULL);
	save(s, &A, 5, "five");
	save(s, &B, 2, "bee");
	expect_snap(s, &A, 5, "five");
	save(s, &A, 3, "three"); /* the last save wins, even an older version */
	expect_snap(s, &A, 3, "three");
	s = reopen(s, dir);
	expect_snap(s, &A, 3, "three");
	expect_snap(s, &B, 2, "bee");
	expect_snap(s, &C, 0, NULL);
	save(s, &A, 8, "eight");
	s = reopen(s, dir);
	expect_snap(s, &A, 8, "eight");
	expect_snap(s, &B, 2, "bee");
	assert_int_equal(size_of(dir, "snapshots.log"),
	                 snap_rec(&A, "five") + snap_rec(&B, "bee") + snap_rec(&A, "three") +
	                         snap_rec(&A, "eight"));
	esr_store_close(s);
}

static void cut_file(const char *dir, const char *name, off_t size)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(truncate(path, size), 0);
}

static void flip_byte(const char *dir, const char *name, off_t at)
{
	char path[400];
	uint8_t b;
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

/* A torn last record (a crash during its write) is cut at open, at every
 * length short of whole; so are zeros after the last record. */
static void torn_snapshot_tail_is_cut(void **state)
{
	off_t whole, keep, cut;
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	stored_events(s);
	save(s, &A, 1, "one");
	save(s, &B, 1, "b-one");
	save(s, &A, 2, "two, longer");
	esr_store_close(s);
	whole = size_of(dir, "snapshots.log");
	keep = whole - snap_rec(&A, "two, longer");
	for (cut = whole - 1; cut > keep; cut -= 7) {
		cut_file(dir, "snapshots.log", cut);
		s = open_dir(dir);
		assert_int_equal(size_of(dir, "snapshots.log"), keep);
		expect_snap(s, &A, 1, "one");
		expect_snap(s, &B, 1, "b-one");
		save(s, &A, 2, "two, longer"); /* written where the torn one was */
		esr_store_close(s);
		assert_int_equal(size_of(dir, "snapshots.log"), whole);
	}
	cut_file(dir, "snapshots.log", whole + 100); /* zeros past the end */
	s = open_dir(dir);
	assert_int_equal(size_of(dir, "snapshots.log"), whole);
	expect_snap(s, &A, 2, "two, longer");
	esr_store_close(s);
}

/* A record that rots after it was written loads as none, never an error;
 * at open the file is cut at it, losing the snapshots after it too. */
static void flipped_snapshot_loads_as_none(void **state)
{
	off_t a1 = snap_rec(&A, "one"), b1 = snap_rec(&B, "b-one");
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	stored_events(s);
	save(s, &A, 1, "one");
	save(s, &B, 1, "b-one");
	save(s, &A, 2, "two");
	flip_byte(dir, "snapshots.log", a1 + b1 + 34); /* in A's second record */
	expect_snap(s, &A, 0, NULL);
	expect_snap(s, &B, 1, "b-one");
	save(s, &A, 3, "three");
	expect_snap(s, &A, 3, "three");
	esr_store_close(s);
	flip_byte(dir, "snapshots.log", a1 + 40); /* in B's data */
	s = open_dir(dir);
	assert_int_equal(size_of(dir, "snapshots.log"), a1);
	expect_snap(s, &A, 1, "one");
	expect_snap(s, &B, 0, NULL);
	esr_store_close(s);
}

/* Superseded records outweighing the live ones by 1 MiB are dropped at open;
 * fewer are left alone. */
static void snapshots_log_is_compacted(void **state)
{
	static char data[4001];
	char dir[256], path[400];
	off_t before;
	esr_store *s;
	int i;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	stored_events(s);
	memset(data, 'x', sizeof data - 1);
	for (i = 1; i <= 20; i++)
		save(s, &A, (uint64_t)i, data);
	save(s, &B, 1, "b-one");
	before = size_of(dir, "snapshots.log");
	s = reopen(s, dir);
	assert_int_equal(size_of(dir, "snapshots.log"), before); /* 76 KB: kept */
	for (i = 21; i <= 300; i++) {
		data[0] = (char)('a' + i % 26);
		save(s, &A, (uint64_t)i, data);
	}
	s = reopen(s, dir);
	assert_int_equal(size_of(dir, "snapshots.log"), snap_rec(&A, data) + snap_rec(&B, "b-one"));
	snprintf(path, sizeof path, "%s/snapshots.log.tmp", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	expect_snap(s, &A, 300, data);
	expect_snap(s, &B, 1, "b-one");
	save(s, &C, 4, "cee"); /* appends follow the compacted records */
	s = reopen(s, dir);
	expect_snap(s, &A, 300, data);
	expect_snap(s, &B, 1, "b-one");
	expect_snap(s, &C, 4, "cee");
	esr_store_close(s);
}

/* A snapshot of a version its stream does not have (never stored, or set
 * aside by salvage) is dropped at open, for good: it stays dropped once the
 * stream grows past it. A stream's earlier snapshot then stands; one with no
 * events keeps none. */
static void snapshot_beyond_its_stream_is_dropped(void **state)
{
	const esr_stream_id D = {"Order", "dd", 2}, E = {"Order", "ee", 2};
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	grow(s, &D, 5);
	save(s, &D, 3, "three");
	save(s, &D, 5, "five");
	save(s, &D, 8, "eight"); /* beyond version 5 */
	save(s, &E, 1, "one");   /* E has no event */
	expect_snap(s, &D, 8, "eight"); /* while open, the last save wins */
	s = reopen(s, dir);
	expect_snap(s, &D, 5, "five");
	expect_snap(s, &E, 0, NULL);
	assert_int_equal(size_of(dir, "snapshots.log"), snap_rec(&D, "five"));
	grow(s, &D, 10);
	grow(s, &E, 2);
	s = reopen(s, dir);
	expect_snap(s, &D, 5, "five");
	expect_snap(s, &E, 0, NULL);
	save(s, &D, 10, "ten");
	s = reopen(s, dir);
	expect_snap(s, &D, 10, "ten");
	esr_store_close(s);
}

/* --- checkpoints ------------------------------------------------------------------------- */

static uint64_t checkpoint(esr_store *s, const char *name)
{
	uint64_t at = 99;

	assert_int_equal(esr_store_checkpoint_load(s, name, &at), ESR_OK);
	return at;
}

static void checkpoints_are_files(void **state)
{
	char dir[256], path[400];
	esr_store *s;
	uint64_t at;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	assert_int_equal(checkpoint(s, "proj"), 0);
	assert_int_equal(esr_store_checkpoint_save(s, "proj", 7), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "proj", 9), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "other.v2", 1ull << 40), ESR_OK);
	s = reopen(s, dir);
	assert_int_equal(checkpoint(s, "proj"), 9);
	assert_int_equal(checkpoint(s, "other.v2"), 1ull << 40);
	assert_int_equal(size_of(dir, "checkpoint.proj"), 24);
	snprintf(path, sizeof path, "%s/checkpoint.proj~", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* a flipped bit, a short file, a longer one: each is corrupt */
	flip_byte(dir, "checkpoint.proj", 10);
	assert_int_equal(esr_store_checkpoint_load(s, "proj", &at), ESR_ECORRUPT);
	flip_byte(dir, "checkpoint.proj", 10);
	assert_int_equal(checkpoint(s, "proj"), 9);
	cut_file(dir, "checkpoint.proj", 25);
	assert_int_equal(esr_store_checkpoint_load(s, "proj", &at), ESR_ECORRUPT);
	cut_file(dir, "checkpoint.proj", 12);
	assert_int_equal(esr_store_checkpoint_load(s, "proj", &at), ESR_ECORRUPT);
	/* saving replaces the bad file */
	assert_int_equal(esr_store_checkpoint_save(s, "proj", 11), ESR_OK);
	assert_int_equal(checkpoint(s, "proj"), 11);
	/* a file that cannot be read (a directory in its place) is an I/O error */
	snprintf(path, sizeof path, "%s/checkpoint.dir", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(esr_store_checkpoint_load(s, "dir", &at), ESR_EIO);
	snprintf(path, sizeof path, "%s/checkpoint.dir/x", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(esr_store_checkpoint_save(s, "dir", 1), ESR_EIO);
	snprintf(path, sizeof path, "%s/checkpoint.dir~", dir);
	assert_int_not_equal(access(path, F_OK), 0); /* the temporary is removed */
	esr_store_close(s);
}

static struct esr__file_io real_io;

static ssize_t failing_write(int fd, const void *buf, size_t n)
{
	(void)fd;
	(void)buf;
	(void)n;
	errno = ENOSPC;
	return -1;
}

/* The compaction that drops a snapshot beyond its stream must succeed, or
 * the open fails: left in place, the snapshot would load once its stream
 * grows past it. */
static void failed_drop_fails_the_open(void **state)
{
	const esr_stream_id D = {"Order", "dd", 2};
	esr_file_store_options o;
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	grow(s, &D, 2);
	save(s, &A, 1, "a"); /* beyond A, which has no event */
	save(s, &D, 2, "two");
	esr_store_close(s);
	esr_file_store_options_default(&o);
	o.segment_bytes = 2u << 20;
	real_io = esr__fio;
	esr__fio.write = failing_write;
	s = NULL;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_EIO);
	esr__fio = real_io;
	assert_null(s);
	assert_int_equal(size_of(dir, "snapshots.log"), snap_rec(&A, "a") + snap_rec(&D, "two"));
	s = open_dir(dir);
	expect_snap(s, &A, 0, NULL);
	expect_snap(s, &D, 2, "two");
	assert_int_equal(size_of(dir, "snapshots.log"), snap_rec(&D, "two"));
	esr_store_close(s);
}

static void write_checkpoint_file(const char *dir, const char *file, uint64_t position)
{
	uint8_t rec[ESR__CKPT_SIZE];
	char path[400];
	int fd;

	esr__ckpt_encode(rec, position);
	snprintf(path, sizeof path, "%s/%s", dir, file);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
	assert_int_equal(write(fd, rec, sizeof rec), (ssize_t)sizeof rec);
	close(fd);
}

/* A checkpoint's temporary file is no other checkpoint's file: saving
 * `orders` leaves `orders.tmp` alone, also when the save fails; a temporary
 * left by a crash is never loaded, and goes at open. */
static void checkpoint_temporaries_are_not_checkpoints(void **state)
{
	char dir[256], path[400];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	s = open_dir(dir);
	assert_int_equal(esr_store_checkpoint_save(s, "orders.tmp", 500), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "orders", 7), ESR_OK);
	assert_int_equal(checkpoint(s, "orders.tmp"), 500);
	assert_int_equal(checkpoint(s, "orders"), 7);
	s = reopen(s, dir);
	assert_int_equal(checkpoint(s, "orders.tmp"), 500);
	assert_int_equal(checkpoint(s, "orders"), 7);
	/* failed saves change neither */
	real_io = esr__fio;
	esr__fio.write = failing_write;
	assert_int_equal(esr_store_checkpoint_save(s, "orders", 8), ESR_EIO);
	assert_int_equal(esr_store_checkpoint_save(s, "orders.tmp", 501), ESR_EIO);
	esr__fio = real_io;
	assert_int_equal(checkpoint(s, "orders.tmp"), 500);
	assert_int_equal(checkpoint(s, "orders"), 7);
	esr_store_close(s);
	/* what a crash between writing and renaming leaves */
	write_checkpoint_file(dir, "checkpoint.orders~", 9);
	write_checkpoint_file(dir, "checkpoint.fresh~", 42);
	s = open_dir(dir);
	assert_int_equal(checkpoint(s, "orders"), 7);
	assert_int_equal(checkpoint(s, "fresh"), 0);
	snprintf(path, sizeof path, "%s/checkpoint.orders~", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/checkpoint.fresh~", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(checkpoint(s, "orders.tmp"), 500);
	esr_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(global_order_survives_reopen),
		cmocka_unit_test(global_read_from_the_middle),
		cmocka_unit_test(global_read_checks_what_it_reads),
		cmocka_unit_test(wait_times_out_or_sees_the_append),
		cmocka_unit_test(global_reads_race_appends),
		cmocka_unit_test(snapshots_survive_reopen),
		cmocka_unit_test(torn_snapshot_tail_is_cut),
		cmocka_unit_test(flipped_snapshot_loads_as_none),
		cmocka_unit_test(snapshots_log_is_compacted),
		cmocka_unit_test(snapshot_beyond_its_stream_is_dropped),
		cmocka_unit_test(failed_drop_fails_the_open),
		cmocka_unit_test(checkpoints_are_files),
		cmocka_unit_test(checkpoint_temporaries_are_not_checkpoints),
	};
	char cmd[128];
	int failed;

	if (mkdtemp(root) == NULL)
		return 1;
	failed = cmocka_run_group_tests_name("file store: resuming", tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
