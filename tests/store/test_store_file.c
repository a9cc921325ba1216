/*
 * tests/store/test_store_file.c: the file store: the whole conformance suite (each
 * test in a fresh directory, with segments small enough to roll over), then
 * what only a durable store has: reopening rebuilds the index, a second open
 * of the directory is refused, segments roll over, and a torn tail is cut at
 * every byte offset of the last records; command ids survive roll-over,
 * reopen and torn tails, and a store of the format before them opens.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/crc32c.h"
#include "store_conformance.h"

/* A pointer no open returns: what a failed open must leave in *out. */
static char sentinel_byte;
#define SENTINEL ((esr_store *)(void *)&sentinel_byte)

static char root[] = "/tmp/esr-file-test-XXXXXX";
static int serial;

static void fresh_dir(char *out, size_t size)
{
	snprintf(out, size, "%s/%d", root, ++serial);
}

static esr_file_store_options small_segments(void)
{
	esr_file_store_options o;

	esr_file_store_options_default(&o);
	o.segment_bytes = 2u << 20; /* the least allowed: ESR__REC_MAX fits */
	return o;
}

/* The directory of the store open_file opened last: the conformance suite
 * reopens the store its test is using, which is always that one. */
static char last_dir[256];

static esr_status open_file(void *arg, esr_store **out)
{
	esr_file_store_options o = small_segments();

	(void)arg;
	fresh_dir(last_dir, sizeof last_dir);
	return esr_file_store_open(last_dir, &o, out);
}

/* A restart: close the store and open its directory again. */
static esr_status reopen_file(void *arg, esr_store **store)
{
	esr_file_store_options o = small_segments();

	(void)arg;
	esr_store_close(*store);
	*store = NULL;
	return esr_file_store_open(last_dir, &o, store);
}

/* --- durable behaviour --------------------------------------------------------------- */

static uint64_t version_of(esr_store *s, const esr_stream_id *sid)
{
	uint64_t v = 99;

	assert_int_equal(esr_store_version(s, sid, &v), ESR_OK);
	return v;
}

struct seen {
	uint64_t count, bytes;
	int bad;
};

static esr_status count_events(void *ctx, const esr_recorded_event *r)
{
	struct seen *s = ctx;
	uint64_t want;

	memcpy(&want, r->event.payload, sizeof want);
	s->bad |= r->event.payload_len != 40 || want != r->version;
	s->count++;
	s->bytes += r->event.payload_len;
	return ESR_OK;
}

/* Append `n` events one by one to stream i of `streams`, payload = version. */
static void fill(esr_store *s, int streams, uint64_t per_stream)
{
	uint8_t payload[40];
	char id[16];
	uint64_t v;
	int i;

	memset(payload, 0x5a, sizeof payload);
	for (v = 1; v <= per_stream; v++)
		for (i = 0; i < streams; i++) {
			esr_stream_id sid = {"Account", id, 0};
			esr_event ev = {.type = 1, .payload = payload, .payload_len = sizeof payload};
			sid.id_len = (size_t)snprintf(id, sizeof id, "a-%d", i);
			memcpy(payload, &v, sizeof v);
			assert_int_equal(esr_store_append(s, &sid, v - 1, &ev, 1, NULL), ESR_OK);
		}
}

static void check(esr_store *s, int streams, uint64_t per_stream)
{
	char id[16];
	int i;

	for (i = 0; i < streams; i++) {
		esr_stream_id sid = {"Account", id, 0};
		struct seen seen = {0};
		sid.id_len = (size_t)snprintf(id, sizeof id, "a-%d", i);
		assert_int_equal(version_of(s, &sid), per_stream);
		assert_int_equal(esr_store_read(s, &sid, 0, count_events, &seen), ESR_OK);
		assert_int_equal(seen.count, per_stream);
		assert_false(seen.bad);
	}
}

static void reopen_rebuilds_the_index(void **state)
{
	esr_file_store_options o = small_segments();
	esr_file_store_stats stats;
	char dir[256];
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 5, 40);
	assert_int_equal(esr_file_store_stats_get(s, &stats), ESR_OK);
	assert_int_equal(stats.appends, 200);
	assert_true(stats.fsyncs >= 1 && stats.fsyncs <= 200);
	esr_store_close(s);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	check(s, 5, 40);
	fill(s, 5, 0); /* nothing */
	{
		/* and appends continue from the recovered versions */
		esr_stream_id sid = {"Account", "a-0", 3};
		esr_event ev = {.type = 1, .payload = "12345678", .payload_len = 8};
		esr_append_result r;
		assert_int_equal(esr_store_append(s, &sid, 39, &ev, 1, &r), ESR_ECONFLICT);
		assert_int_equal(r.version, 40);
		assert_int_equal(esr_store_append(s, &sid, 40, &ev, 1, &r), ESR_OK);
		assert_int_equal(r.version, 41);
	}
	esr_store_close(s);
}

static void second_open_is_refused(void **state)
{
	char dir[256], why[512] = "";
	esr_file_store_options o = small_segments();
	esr_store *a, *b = SENTINEL;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &a), ESR_OK);
	o.why = why;
	o.why_size = sizeof why;
	assert_int_equal(esr_file_store_open(dir, &o, &b), ESR_EBUSY);
	assert_ptr_equal(b, SENTINEL); /* out-parameters are written only on success */
	assert_non_null(strstr(why, "LOCK"));
	esr_store_close(a);
	assert_int_equal(esr_file_store_open(dir, &o, &b), ESR_OK); /* free again */
	esr_store_close(b);
}

static void segments_roll_over(void **state)
{
	esr_file_store_options o = small_segments();
	uint8_t *big = calloc(1, 300000);
	char dir[256], path[300];
	esr_store *s;
	struct stat st;
	int i;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (i = 0; i < 20; i++) { /* 6 MB through 2 MB segments */
		esr_stream_id sid = {"Blob", "b", 1};
		esr_event ev = {.type = 1, .payload = big, .payload_len = 300000};
		big[0] = (uint8_t)i;
		assert_int_equal(esr_store_append(s, &sid, (uint64_t)i, &ev, 1, NULL), ESR_OK);
	}
	esr_store_close(s);
	snprintf(path, sizeof path, "%s/00000003.seg", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	{
		esr_stream_id sid = {"Blob", "b", 1};
		assert_int_equal(version_of(s, &sid), 20);
	}
	esr_store_close(s);
	free(big);
}

/* Segment 1 of dir, read whole into seg; returns its size. */
static off_t read_segment(const char *dir, uint8_t *seg, size_t cap)
{
	char path[300];
	off_t got;
	int fd;

	snprintf(path, sizeof path, "%s/00000001.seg", dir);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	got = read(fd, seg, cap);
	close(fd);
	assert_true(got > 0 && (size_t)got < cap);
	return got;
}

/* A new store directory whose only segment is seg's first `cut` bytes. */
static void store_from_prefix(const uint8_t *seg, off_t cut, const char *tag, char *dir,
                              size_t size)
{
	char path[400];
	int fd;

	snprintf(dir, size, "%s/%s-%lld", root, tag, (long long)cut);
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/00000001.seg", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
	assert_int_equal(write(fd, seg, (size_t)cut), cut);
	close(fd);
}

/* Stream a-0 holds exactly versions 1..n, each payload the one written for it. */
static void expect_intact(esr_store *s, uint64_t n)
{
	esr_stream_id sid = {"Account", "a-0", 3};
	struct seen seen = {0};

	assert_int_equal(version_of(s, &sid), n);
	assert_int_equal(esr_store_read(s, &sid, 0, count_events, &seen), ESR_OK);
	assert_int_equal(seen.count, n);
	assert_false(seen.bad);
}

/* Each append of fill(): one 40-byte event of stream "Account"/"a-0". */
#define ONE_EVENT_APPEND (88 + 7 + 3 + 40)

/* Cut the segment at every offset inside its last two appends: the store
 * opens with exactly the appends that are whole, and takes new ones. */
static void torn_tail_is_cut_at_every_offset(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t seg[65536];
	char dir[256], copy[300];
	off_t whole, cut;
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 1, 10);
	esr_store_close(s);
	whole = read_segment(dir, seg, sizeof seg);
	for (cut = whole - 2 * ONE_EVENT_APPEND; cut < whole; cut++) {
		store_from_prefix(seg, cut, "cut", copy, sizeof copy);
		assert_int_equal(esr_file_store_open(copy, &o, &s), ESR_OK);
		expect_intact(s, cut < whole - ONE_EVENT_APPEND ? 8 : 9);
		esr_store_close(s);
	}
}

/* Appends of three events each, cut at every offset of the last append: the
 * last append is all there or not at all. */
static void torn_multi_event_append_is_cut_whole(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t seg[65536];
	const off_t app = 3 * ONE_EVENT_APPEND;
	char dir[256], copy[300];
	uint8_t payload[3][40];
	off_t whole, cut;
	esr_stream_id sid = {"Account", "a-0", 3};
	esr_store *s;
	uint64_t v;
	int i;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (v = 0; v < 12; v += 3) { /* four appends: versions 1-3, 4-6, 7-9, 10-12 */
		esr_event ev[3];
		for (i = 0; i < 3; i++) {
			uint64_t version = v + 1 + (uint64_t)i;
			memset(payload[i], 0x5a, sizeof payload[i]);
			memcpy(payload[i], &version, sizeof version);
			ev[i] = (esr_event){.type = 1, .payload = payload[i], .payload_len = 40};
		}
		assert_int_equal(esr_store_append(s, &sid, v, ev, 3, NULL), ESR_OK);
	}
	esr_store_close(s);
	whole = read_segment(dir, seg, sizeof seg);
	assert_int_equal(whole, 32 + 4 * app);
	for (cut = whole - app; cut < whole; cut++) {
		store_from_prefix(seg, cut, "multi", copy, sizeof copy);
		assert_int_equal(esr_file_store_open(copy, &o, &s), ESR_OK);
		expect_intact(s, 9);
		esr_store_close(s);
	}
}

/* The size of dir's segment `seq`, and its bytes (up to cap) into buf. */
static off_t segment_image(const char *dir, unsigned seq, uint8_t *buf, size_t cap)
{
	char path[300];
	struct stat st;
	off_t got;
	int fd;

	snprintf(path, sizeof path, "%s/%08u.seg", dir, seq);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((size_t)st.st_size <= cap);
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	assert_int_equal(got, st.st_size);
	return got;
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n > 0 && p[n - 1] == 0)
		n--;
	return n == 0;
}

/*
 * The tail segment grows ahead of its records in zeros while the store is
 * open. The image of an open store (what a crash leaves) opens with every
 * append; a record torn inside the zeros is a torn tail; a whole record after
 * zeros is damage, not an end; and a store closed, or a segment rolled over,
 * is cut back to its records.
 */
static void preallocated_tail_is_the_end(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t seg[4u << 20];
	const off_t used = 32 + 10 * ONE_EVENT_APPEND, last = used - ONE_EVENT_APPEND;
	char dir[256], copy[300];
	off_t size;
	esr_store *s, *c;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 1, 10);
	size = segment_image(dir, 1, seg, sizeof seg);
	assert_int_equal(size, (off_t)o.segment_bytes); /* one step, at most the segment */
	assert_true(all_zero(seg + used, (size_t)(size - used)));
	assert_false(all_zero(seg + last, ONE_EVENT_APPEND));

	store_from_prefix(seg, size, "open-image", copy, sizeof copy); /* a crash */
	assert_int_equal(esr_file_store_open(copy, &o, &c), ESR_OK);
	expect_intact(c, 10);
	esr_store_close(c);
	{
		static uint8_t after[4u << 20]; /* recovery cut the zeros, for good */
		assert_int_equal(segment_image(copy, 1, after, sizeof after), used);
	}

	/* The last record's second half never reached the disk: torn. */
	memset(seg + last + ONE_EVENT_APPEND / 2, 0, ONE_EVENT_APPEND - ONE_EVENT_APPEND / 2);
	store_from_prefix(seg, size, "torn-in-zeros", copy, sizeof copy);
	assert_int_equal(esr_file_store_open(copy, &o, &c), ESR_OK);
	expect_intact(c, 9);
	esr_store_close(c);

	/* The last record whole, but 4 KiB of zeros after where it belongs. */
	segment_image(dir, 1, seg, sizeof seg);
	memmove(seg + last + 4096, seg + last, ONE_EVENT_APPEND);
	memset(seg + last, 0, 4096);
	store_from_prefix(seg, size, "record-after-zeros", copy, sizeof copy);
	assert_int_equal(esr_file_store_open(copy, &o, &c), ESR_ECORRUPT);

	esr_store_close(s);
	assert_int_equal(segment_image(dir, 1, seg, sizeof seg), used); /* closed: cut back */
}

/* Segments rolled over while the store is open are cut back to their
 * records; only the last ends in zeros, and the image opens whole. */
static void rolled_over_segments_are_cut_back(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t seg[4u << 20];
	uint8_t *big = calloc(1, 300000);
	esr_stream_id sid = {"Blob", "b", 1};
	char dir[256], copy[300], path[400];
	off_t size;
	esr_store *s, *c;
	unsigned k;
	int i;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (i = 0; i < 20; i++) { /* 6 MB through 2 MB segments: 3 of them at least */
		esr_event ev = {.type = 1, .payload = big, .payload_len = 300000};
		memset(big, i + 1, 300000);
		assert_int_equal(esr_store_append(s, &sid, (uint64_t)i, &ev, 1, NULL), ESR_OK);
	}
	snprintf(copy, sizeof copy, "%s/rolled-image", root);
	mkdir(copy, 0755);
	for (k = 1;; k++) { /* the image of the open store, every segment */
		int fd;
		snprintf(path, sizeof path, "%s/%08u.seg", dir, k);
		if (access(path, F_OK) != 0)
			break;
		size = segment_image(dir, k, seg, sizeof seg);
		snprintf(path, sizeof path, "%s/%08u.seg", dir, k + 1);
		if (access(path, F_OK) == 0) /* not the last: ends with a record, not zeros */
			assert_false(all_zero(seg + size - 1000, 1000));
		snprintf(path, sizeof path, "%s/%08u.seg", copy, k);
		assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
		assert_int_equal(write(fd, seg, (size_t)size), size);
		close(fd);
	}
	assert_true(k > 3);
	assert_int_equal(esr_file_store_open(copy, &o, &c), ESR_OK);
	assert_int_equal(version_of(c, &sid), 20);
	esr_store_close(c);
	esr_store_close(s);
	free(big);
}

/* Damage in the middle is refused, naming file and offset; salvage keeps the prefix. */
static void damage_in_the_middle_is_corrupt(void **state)
{
	esr_file_store_options o = small_segments();
	char dir[256], path[300], why[512] = "";
	esr_store *s = NULL;
	int fd;
	uint8_t byte;
	off_t at = 32 + 3 * ONE_EVENT_APPEND + 100; /* inside the fourth record */

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 1, 10);
	esr_store_close(s);
	snprintf(path, sizeof path, "%s/00000001.seg", dir);
	fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, &byte, 1, at), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, at), 1);
	close(fd);
	o.why = why;
	o.why_size = sizeof why;
	s = SENTINEL;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_ECORRUPT);
	assert_ptr_equal(s, SENTINEL);
	assert_non_null(strstr(why, "00000001.seg"));
	assert_non_null(strstr(why, "offset 446")); /* 32 + 3 * 138 */
	o.salvage = 1;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	{
		esr_stream_id sid = {"Account", "a-0", 3};
		assert_int_equal(version_of(s, &sid), 3);
	}
	esr_store_close(s);
}

/* Flip every bit of the last two appends' bytes in turn: open either
 * recovers a prefix whose every event reads back intact, or says ECORRUPT. */
static void every_flipped_bit_recovers_a_prefix_or_is_corrupt(void **state)
{
	esr_file_store_options o = small_segments();
	char dir[256], path[300];
	uint8_t orig[65536];
	off_t whole, at;
	esr_store *s;
	int fd, bit, recovered = 0, refused = 0;
	ssize_t got;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 1, 6);
	esr_store_close(s);
	snprintf(path, sizeof path, "%s/00000001.seg", dir);
	fd = open(path, O_RDWR);
	got = pread(fd, orig, sizeof orig, 0);
	assert_true(got > 0);
	whole = got;
	for (at = whole - 2 * ONE_EVENT_APPEND; at < whole; at++)
		for (bit = 0; bit < 8; bit++) {
			uint8_t b = orig[at] ^ (uint8_t)(1u << bit);
			esr_status st;
			assert_int_equal(pwrite(fd, orig, (size_t)whole, 0), whole);
			assert_int_equal(ftruncate(fd, whole), 0);
			assert_int_equal(pwrite(fd, &b, 1, at), 1);
			s = NULL;
			st = esr_file_store_open(dir, &o, &s);
			if (st == ESR_OK) {
				/* the damaged append and anything after it are cut */
				expect_intact(s, at < whole - ONE_EVENT_APPEND ? 4 : 5);
				esr_store_close(s);
				recovered++;
			} else {
				assert_int_equal(st, ESR_ECORRUPT);
				assert_null(s);
				refused++;
			}
		}
	close(fd);
	print_message("flipped bits: %d recovered a prefix, %d refused as corrupt\n", recovered,
	              refused);
	assert_true(recovered > 0);
}

/* batch-window mode: concurrent appenders share syncs, every append durable. */
struct window_arg {
	esr_store *s;
	int index;
};

static void *window_appender(void *arg)
{
	struct window_arg *w = arg;
	char id[16];
	esr_stream_id sid = {"Window", id, 0};
	uint64_t v;

	sid.id_len = (size_t)snprintf(id, sizeof id, "w-%d", w->index);
	for (v = 0; v < 50; v++) {
		esr_event ev = {.type = 1, .payload = "tick", .payload_len = 4};
		if (esr_store_append(w->s, &sid, v, &ev, 1, NULL) != ESR_OK)
			return (void *)1;
	}
	return NULL;
}

static void batch_window_shares_syncs(void **state)
{
	esr_file_store_options o = small_segments();
	struct window_arg args[8];
	pthread_t t[8];
	esr_file_store_stats st;
	char dir[256];
	esr_store *s;
	void *ret;
	int i;

	(void)state;
	o.sync = ESR_SYNC_BATCH_WINDOW;
	o.batch_window_us = 500;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (i = 0; i < 8; i++) {
		args[i] = (struct window_arg){s, i};
		pthread_create(&t[i], NULL, window_appender, &args[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(esr_file_store_stats_get(s, &st), ESR_OK);
	assert_int_equal(st.appends, 400);
	assert_true(st.fsyncs < st.appends); /* 8 appenders waiting 500 us share syncs */
	esr_store_close(s);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (i = 0; i < 8; i++) {
		char id[16];
		esr_stream_id sid = {"Window", id, 0};
		sid.id_len = (size_t)snprintf(id, sizeof id, "w-%d", i);
		assert_int_equal(version_of(s, &sid), 50);
	}
	esr_store_close(s);
}

/* The lock holds across processes, not only within one. */
static void another_process_is_refused(void **state)
{
	char dir[256];
	esr_store *s;
	int status;
	pid_t pid;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, NULL, &s), ESR_OK);
	if ((pid = fork()) == 0) {
		esr_store *other = SENTINEL;
		_exit(esr_file_store_open(dir, NULL, &other) == ESR_EBUSY && other == SENTINEL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	esr_store_close(s);
}

static void bad_arguments(void **state)
{
	esr_file_store_options o;
	esr_store *s = SENTINEL;

	(void)state;
	assert_int_equal(esr_file_store_options_default(NULL), ESR_EINVAL);
	assert_int_equal(esr_file_store_open(NULL, NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_file_store_open("", NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_file_store_open("/tmp/x", NULL, NULL), ESR_EINVAL);
	esr_file_store_options_default(&o);
	o.segment_bytes = 100;
	assert_int_equal(esr_file_store_open("/tmp/x", &o, &s), ESR_EINVAL);
	esr_file_store_options_default(&o);
	o.sync = (esr_sync_mode)7;
	assert_int_equal(esr_file_store_open("/tmp/x", &o, &s), ESR_EINVAL);
	assert_int_equal(esr_file_store_open("/proc/no/such/dir", NULL, &s), ESR_EIO);
	assert_ptr_equal(s, SENTINEL); /* never written by a failed open */
}

/* --- command ids ------------------------------------------------------------------- */

/* The 16-byte command id of append k. */
static esr_command_id cmd_of(unsigned k, char out[17])
{
	snprintf(out, 17, "command-%08u", k);
	return (esr_command_id){out, 16};
}

static void expect_cmd(esr_store *s, const esr_stream_id *sid, unsigned k, uint64_t first,
                       uint64_t last)
{
	uint64_t f = 99, l = 99;
	char id[17];

	cmd_of(k, id);
	assert_int_equal(esr_store_command(s, sid, id, 16, &f, &l), ESR_OK);
	assert_int_equal(f, first);
	assert_int_equal(l, last);
}

/* Append k of `payload_len` bytes (two events, one command) to sid. */
static esr_status append_cmd(esr_store *s, const esr_stream_id *sid, unsigned k,
                             uint8_t *payload, uint32_t payload_len, esr_append_result *r)
{
	char id[17];
	esr_event ev[2];
	int i;

	for (i = 0; i < 2; i++)
		ev[i] = (esr_event){.type = (uint32_t)i, .payload = payload,
		                    .payload_len = payload_len, .command_id = cmd_of(k, id)};
	payload[0] = (uint8_t)k;
	return esr_store_append(s, sid, ESR_VERSION_ANY, ev, 2, r);
}

struct cmd_seen {
	uint64_t n;
	int bad;
};

/* Events 2k+1 and 2k+2 carry command k. */
static esr_status check_cmd_event(void *ctx, const esr_recorded_event *r)
{
	struct cmd_seen *c = ctx;
	char id[17];
	unsigned k = (unsigned)((r->version - 1) / 2);

	cmd_of(k, id);
	c->bad |= r->event.command_id.len != 16 || memcmp(r->event.command_id.bytes, id, 16) != 0 ||
	          ((const uint8_t *)r->event.payload)[0] != (uint8_t)k;
	c->n++;
	return ESR_OK;
}

/* Ids recorded in every segment of a store that rolled over are found again
 * after a reopen, refuse their duplicates, and read back with their events. */
static void ids_survive_roll_over_and_reopen(void **state)
{
	esr_file_store_options o = small_segments();
	uint8_t *big = calloc(1, 200000);
	esr_stream_id sid = {"Blob", "ids", 3};
	struct cmd_seen seen = {0, 0};
	esr_append_result r;
	char dir[256], path[300];
	esr_store *s;
	unsigned k;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (k = 0; k < 15; k++) /* 6 MB of events through 2 MB segments */
		assert_int_equal(append_cmd(s, &sid, k, big, 200000, &r), ESR_OK);
	esr_store_close(s);
	snprintf(path, sizeof path, "%s/00000003.seg", dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (k = 0; k < 15; k++) {
		expect_cmd(s, &sid, k, 2 * k + 1, 2 * k + 2);
		assert_int_equal(append_cmd(s, &sid, k, big, 10, &r), ESR_EDUPLICATE);
		assert_int_equal(r.recorded_first, 2 * k + 1);
		assert_int_equal(r.version, 2 * k + 2);
		assert_int_equal(r.duplicate_at, 0);
	}
	expect_cmd(s, &sid, 15, 0, 0);
	assert_int_equal(append_cmd(s, &sid, 15, big, 10, &r), ESR_OK);
	assert_int_equal(esr_store_read(s, &sid, 0, check_cmd_event, &seen), ESR_OK);
	assert_int_equal(seen.n, 32);
	assert_false(seen.bad);
	esr_store_close(s);
	free(big);
}

/* Each append of cut_ids_store(): two 40-byte events of stream Account/a-0
 * with a 16-byte command id. */
#define ONE_ID_APPEND (2 * (88 + 7 + 3 + 16 + 40))

/* A torn tail inside a record that carries a command id is cut as any other:
 * the store opens with the whole appends, and the cut one's id is not
 * recorded, so its retry goes through. */
static void torn_id_record_is_cut(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t seg[65536];
	esr_stream_id sid = {"Account", "a-0", 3};
	uint8_t payload[40] = {0};
	esr_append_result r;
	char dir[256], copy[300];
	off_t whole, cut;
	esr_store *s;
	unsigned k;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (k = 0; k < 5; k++)
		assert_int_equal(append_cmd(s, &sid, k, payload, 40, NULL), ESR_OK);
	esr_store_close(s);
	whole = read_segment(dir, seg, sizeof seg);
	assert_int_equal(whole, 32 + 5 * ONE_ID_APPEND);
	for (cut = whole - ONE_ID_APPEND; cut < whole; cut++) {
		store_from_prefix(seg, cut, "cut-id", copy, sizeof copy);
		assert_int_equal(esr_file_store_open(copy, &o, &s), ESR_OK);
		assert_int_equal(version_of(s, &sid), 8);
		expect_cmd(s, &sid, 3, 7, 8);
		expect_cmd(s, &sid, 4, 0, 0);
		assert_int_equal(append_cmd(s, &sid, 3, payload, 40, &r), ESR_EDUPLICATE);
		assert_int_equal(append_cmd(s, &sid, 4, payload, 40, &r), ESR_OK);
		assert_int_equal(r.version, 10);
		esr_store_close(s);
	}
}

/* Rewrite the format field of dir's segment `seq` (and the header's CRC). */
static void set_segment_format(const char *dir, unsigned seq, uint32_t format)
{
	uint8_t h[32];
	char path[300];
	uint32_t crc;
	int fd, i;

	snprintf(path, sizeof path, "%s/%08u.seg", dir, seq);
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, h, 32, 0), 32);
	for (i = 0; i < 4; i++)
		h[8 + i] = (uint8_t)(format >> (8 * i));
	crc = esr__crc32c(0, h, 28);
	for (i = 0; i < 4; i++)
		h[28 + i] = (uint8_t)(crc >> (8 * i));
	assert_int_equal(pwrite(fd, h, 32, 0), 32);
	close(fd);
}

/*
 * A store written before command ids (segment format 1) opens and reads as
 * before, its events without ids; new appends go to a new segment of format
 * 2, never into the old one, whose bytes stay as they were. The fixture is
 * a store of events without ids whose header says format 1: format 1's
 * records are exactly format 2's without a command id (bytes 84..87 zero),
 * which the first check below confirms byte for byte.
 */
static void old_format_segments_open(void **state)
{
	esr_file_store_options o = small_segments();
	static uint8_t before[65536], after[65536];
	esr_stream_id sid = {"Account", "a-0", 3};
	uint8_t payload[40] = {0};
	esr_append_result r;
	char dir[256], path[300];
	off_t size, at;
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	fill(s, 1, 10);
	esr_store_close(s);
	set_segment_format(dir, 1, 1);
	size = read_segment(dir, before, sizeof before);
	for (at = 32; at < size; at += ONE_EVENT_APPEND) /* format 1's zero field */
		assert_int_equal(before[at + 84] | before[at + 85] | before[at + 86] | before[at + 87], 0);

	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	expect_intact(s, 10);
	assert_int_equal(append_cmd(s, &sid, 7, payload, 40, &r), ESR_OK);
	assert_int_equal(r.version, 12);
	expect_cmd(s, &sid, 7, 11, 12);
	esr_store_close(s);
	assert_int_equal(read_segment(dir, after, sizeof after), size);
	assert_memory_equal(before, after, (size_t)size);
	snprintf(path, sizeof path, "%s/00000002.seg", dir);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	assert_int_equal(version_of(s, &sid), 12);
	expect_cmd(s, &sid, 7, 11, 12);
	assert_int_equal(append_cmd(s, &sid, 7, payload, 40, &r), ESR_EDUPLICATE);
	esr_store_close(s);
}

#define COST_IDS 100000

/* COST_IDS events of 8 bytes in appends of 1000, each event its own command
 * with a 16-byte id, or without ids; sync none: only to write them fast. */
static void cost_fill(const char *dir, int with_ids)
{
	esr_file_store_options o;
	static esr_event ev[1000];
	static char ids[1000][17];
	esr_stream_id sid = {"Cost", "c-1", 3};
	esr_store *s;
	unsigned a, i;

	esr_file_store_options_default(&o);
	o.sync = ESR_SYNC_NONE;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	for (a = 0; a < COST_IDS / 1000; a++) {
		for (i = 0; i < 1000; i++) {
			ev[i] = (esr_event){.type = 1, .payload = "payload!", .payload_len = 8};
			if (with_ids)
				ev[i].command_id = cmd_of(a * 1000 + i, ids[i]);
		}
		assert_int_equal(esr_store_append(s, &sid, ESR_VERSION_ANY, ev, 1000, NULL), ESR_OK);
	}
	esr_store_close(s);
}

/* Heap bytes in use after opening dir (the store left open in *out). */
static long long heap_after_open(const char *dir, esr_store **out)
{
#ifdef __GLIBC__
	struct mallinfo2 before = mallinfo2(), after;
	assert_int_equal(esr_file_store_open(dir, NULL, out), ESR_OK);
	after = mallinfo2();
	return (long long)after.uordblks - (long long)before.uordblks;
#else
	assert_int_equal(esr_file_store_open(dir, NULL, out), ESR_OK);
	return 0;
#endif
}

/*
 * What command ids cost (docs/file-format.md quotes the figures): two
 * stores of the same COST_IDS events, one event per command with a 16-byte
 * id in one, no ids in the other. On disk, the difference of their segment
 * bytes; in memory, the difference of the heap bytes an open of each holds
 * (glibc's mallinfo2), divided by COST_IDS. The ids are all found again.
 */
static void command_id_costs(void **state)
{
	char with[256], without[256], path[300];
	long long heap_with, heap_without;
	struct stat a, b;
	esr_stream_id sid = {"Cost", "c-1", 3};
	esr_store *s, *t;

	(void)state;
	fresh_dir(with, sizeof with);
	fresh_dir(without, sizeof without);
	cost_fill(with, 1);
	cost_fill(without, 0);
	snprintf(path, sizeof path, "%s/00000001.seg", with);
	assert_int_equal(stat(path, &a), 0);
	snprintf(path, sizeof path, "%s/00000001.seg", without);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_size - b.st_size, 16 * COST_IDS); /* the id's bytes alone */
	heap_without = heap_after_open(without, &t);
	heap_with = heap_after_open(with, &s);
	expect_cmd(s, &sid, 0, 1, 1);
	expect_cmd(s, &sid, COST_IDS - 1, COST_IDS, COST_IDS);
	print_message("command ids: %d events; on disk %.1f bytes per event with a 16-byte id, "
	              "%.1f without; in memory %.1f bytes per id (heap after open: %lld with "
	              "ids, %lld without)\n", COST_IDS, (double)a.st_size / COST_IDS,
	              (double)b.st_size / COST_IDS,
	              (double)(heap_with - heap_without) / COST_IDS, heap_with, heap_without);
	esr_store_close(s);
	esr_store_close(t);
}

/* --- descriptors ---------------------------------------------------------------------- */

#define FD_STREAMS 8
#define FD_PAYLOAD 300000u /* 4 events a segment of ESR_FILE_SEGMENT_MIN */
#define FD_LIMIT 30             /* descriptors allowed in the child */
#define FD_READERS 4

static uint8_t fd_payload[FD_PAYLOAD];

static void fd_stream(int k, char *id, esr_stream_id *sid)
{
	sid->type = "Seg";
	sid->id = id;
	sid->id_len = (size_t)snprintf(id, 16, "seg-%d", k);
}

/* Round after round, one event to each stream: every stream spans every
 * segment. The payload starts with (stream, version). */
static int fd_append(esr_store *s, int rounds)
{
	int r, k;

	for (r = 0; r < rounds; r++)
		for (k = 0; k < FD_STREAMS; k++) {
			esr_event ev = {.type = 3, .payload = fd_payload, .payload_len = FD_PAYLOAD};
			esr_append_result res;
			esr_stream_id sid;
			uint64_t v;
			char id[16];
			fd_stream(k, id, &sid);
			if (esr_store_version(s, &sid, &v) != ESR_OK)
				return -1;
			fd_payload[0] = (uint8_t)k;
			fd_payload[1] = (uint8_t)(v + 1);
			if (esr_store_append(s, &sid, v, &ev, 1, &res) != ESR_OK)
				return -1;
		}
	return 0;
}

struct fd_seen {
	int k;          /* the stream read, or -1: the global order */
	uint64_t n, last;
};

static esr_status fd_check(void *ctx, const esr_recorded_event *e)
{
	struct fd_seen *v = ctx;
	const uint8_t *p = e->event.payload;
	int k = v->k >= 0 ? v->k : p[0];

	if (e->event.payload_len != FD_PAYLOAD || p[0] != k || p[1] != (uint8_t)e->version ||
	    (v->k < 0 && e->position != v->last + 1))
		return ESR_ECORRUPT;
	v->last = v->k < 0 ? e->position : e->version;
	v->n++;
	return ESR_OK;
}

/* Every stream holds `per_stream` intact events; the global order holds them all. */
static int fd_read_everything(esr_store *s, uint64_t per_stream)
{
	struct fd_seen all = {-1, 0, 0};
	uint64_t from = 1;
	int k;

	for (k = 0; k < FD_STREAMS; k++) {
		struct fd_seen v = {k, 0, 0};
		esr_stream_id sid;
		char id[16];
		fd_stream(k, id, &sid);
		if (esr_store_read(s, &sid, 1, fd_check, &v) != ESR_OK || v.n != per_stream)
			return -1;
	}
	while (all.n < per_stream * FD_STREAMS)
		if (esr_store_read_all(s, from, 100, fd_check, &all, &from) != ESR_OK || from == 1)
			return -1;
	return all.n == per_stream * FD_STREAMS ? 0 : -1;
}

static void *fd_reader(void *arg)
{
	esr_store *s = arg;
	int i;

	for (i = 0; i < 3; i++)
		if (fd_read_everything(s, 20) != 0)
			return (void *)1;
	return NULL;
}

static int open_descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Under RLIMIT_NOFILE: open, read everything (also from threads at once, so
 * they race for the read descriptors), append across 5 more segments, reopen. */
static int fd_child(const char *dir)
{
	struct rlimit lim = {FD_LIMIT, FD_LIMIT};
	pthread_t th[FD_READERS];
	esr_file_store_options o;
	esr_store *s;
	void *ret;
	int i, bad = 0, before = open_descriptors();

	esr_file_store_options_default(&o);
	o.segment_bytes = ESR_FILE_SEGMENT_MIN;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 2;
	if (esr_file_store_open(dir, &o, &s) != ESR_OK)
		return 3;
	if (fd_read_everything(s, 20) != 0)
		return 4;
	for (i = 0; i < FD_READERS; i++)
		if (pthread_create(&th[i], NULL, fd_reader, s) != 0)
			return 5;
	for (i = 0; i < FD_READERS; i++)
		bad |= pthread_join(th[i], &ret) != 0 || ret != NULL;
	if (bad)
		return 6;
	if (fd_append(s, 3) != 0) /* 24 events: 6 more segments */
		return 7;
	if (fd_read_everything(s, 23) != 0)
		return 8;
	/* The documented bound: 8 read descriptors, the tail's, LOCK, snapshots.log. */
	if (open_descriptors() - before > 11)
		return 10;
	esr_store_close(s);
	if (esr_file_store_open(dir, &o, &s) != ESR_OK || fd_read_everything(s, 23) != 0)
		return 9;
	esr_store_close(s);
	return 0;
}

static int count_segments(const char *dir)
{
	char path[300];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof path, "%s/%08d.seg", dir, n + 1);
		if (access(path, F_OK) != 0)
			return n;
		n++;
	}
}

/* A store of more segments than the process may open descriptors still opens,
 * reads every event by stream and in the global order, appends and rotates. */
static void more_segments_than_descriptors(void **state)
{
	esr_file_store_options o;
	char dir[256];
	esr_store *s;
	int status;
	pid_t pid;

	(void)state;
	fresh_dir(dir, sizeof dir);
	esr_file_store_options_default(&o);
	o.segment_bytes = ESR_FILE_SEGMENT_MIN;
	o.sync = ESR_SYNC_NONE; /* only to fill it fast; closing syncs nothing either */
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	assert_int_equal(fd_append(s, 20), 0); /* 160 events */
	esr_store_close(s);
	assert_true(count_segments(dir) >= 40);
	if ((pid = fork()) == 0)
		_exit(fd_child(dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child failed at step %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_true(count_segments(dir) >= 45);
}

/* The smallest segment is documented, and a refusal says why. */
static void smallest_segment_is_stated(void **state)
{
	esr_file_store_options o;
	char dir[256], why[256] = "";
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	esr_file_store_options_default(&o);
	o.why = why;
	o.why_size = sizeof why;
	o.segment_bytes = ESR_FILE_SEGMENT_MIN - 1;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "segment_bytes"));
	assert_non_null(strstr(why, "1049016"));
	why[0] = '\0';
	o.segment_bytes = ESR_FILE_SEGMENT_MIN;
	o.sync = (esr_sync_mode)7;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "sync"));
	o.sync = ESR_SYNC_ALWAYS;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	esr_store_close(s);
	{
		esr_store *m;
		esr_file_store_stats st;
		assert_int_equal(esr_memory_store_open(&m), ESR_OK);
		assert_int_equal(esr_file_store_stats_get(m, &st), ESR_EINVAL);
		esr_store_close(m);
	}
}

/* esr.h: out-parameters are written only on success. Every store's open,
 * failing for each reason it can be made to fail here, leaves *out alone. */
static void failed_opens_leave_out_untouched(void **state)
{
	char dir[256], spec[300], too_long[3100], why[256];
	esr_file_store_options o;
	esr_pg_store_options po;
	esr_store *held, *s = SENTINEL;

	(void)state;
	fresh_dir(dir, sizeof dir);
	assert_int_equal(esr_file_store_open(dir, NULL, &held), ESR_OK);
	assert_int_equal(esr_file_store_open(dir, NULL, &s), ESR_EBUSY);
	memset(too_long, 'd', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	assert_int_equal(esr_file_store_open(too_long, NULL, &s), ESR_ETOOBIG);
	esr_file_store_options_default(&o);
	o.segment_bytes = 0;
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_EINVAL);
	snprintf(spec, sizeof spec, "file:%s", dir);
	assert_int_equal(esr_store_open_spec(spec, why, sizeof why, &s), ESR_EBUSY);
	assert_int_equal(esr_store_open_spec("nothing", why, sizeof why, &s), ESR_EINVAL);
	assert_int_equal(esr_store_open_spec(NULL, why, sizeof why, &s), ESR_EINVAL);
	assert_int_equal(esr_pg_store_open(NULL, NULL, &s), ESR_EINVAL);
	esr_pg_store_options_default(&po);
	po.schema = "no spaces allowed";
	assert_int_equal(esr_pg_store_open("host=127.0.0.1 port=1", &po, &s), ESR_EINVAL);
	/* Nothing listens on port 1 (or no PostgreSQL support is built in). */
	assert_true(esr_pg_store_open("host=127.0.0.1 port=1 connect_timeout=2", NULL, &s) != ESR_OK);
	assert_ptr_equal(s, SENTINEL);
	esr_store_close(held);
}

int main(void)
{
	const struct store_backend file = {"file", open_file, NULL, reopen_file};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reopen_rebuilds_the_index),
		cmocka_unit_test(second_open_is_refused),
		cmocka_unit_test(segments_roll_over),
		cmocka_unit_test(torn_tail_is_cut_at_every_offset),
		cmocka_unit_test(torn_multi_event_append_is_cut_whole),
		cmocka_unit_test(preallocated_tail_is_the_end),
		cmocka_unit_test(rolled_over_segments_are_cut_back),
		cmocka_unit_test(damage_in_the_middle_is_corrupt),
		cmocka_unit_test(every_flipped_bit_recovers_a_prefix_or_is_corrupt),
		cmocka_unit_test(batch_window_shares_syncs),
		cmocka_unit_test(another_process_is_refused),
		cmocka_unit_test(more_segments_than_descriptors),
		cmocka_unit_test(ids_survive_roll_over_and_reopen),
		cmocka_unit_test(torn_id_record_is_cut),
		cmocka_unit_test(old_format_segments_open),
		cmocka_unit_test(command_id_costs),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(smallest_segment_is_stated),
		cmocka_unit_test(failed_opens_leave_out_untouched),
	};
	int failed;
	char cmd[128];

	if (mkdtemp(root) == NULL)
		return 1;
	failed = esr_store_conformance_run(&file);
	failed += cmocka_run_group_tests_name("file store", tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
