/*
 * tests/store/test_file_salvage.c: what the file store's recovery does with damage
 * it cannot treat as a torn tail. Salvage keeps the valid prefix and sets
 * aside every byte it cuts (nothing deleted or overwritten, a second salvage
 * included); a missing segment ends the log like damage, and salvage refuses
 * to keep an empty log; a snapshot of history it set aside never loads again.
 * A last segment whose header never reached the disk (a crash while creating
 * it) is the log's torn tail; the same shapes in the middle of the log stay
 * corruption. A torn record whose payload holds record images is a torn
 * tail too: only a record that could continue the log is data after a tear.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <esr/esr.h>

static char root[] = "/tmp/esr-salvage-test-XXXXXX";
static int serial;

static void fresh_dir(char *out, size_t size)
{
	snprintf(out, size, "%s/%d", root, ++serial);
}

#define PAYLOAD 500
#define REC (88 + 1 + 1 + PAYLOAD) /* type "S", id "s" */
#define APPEND (2 * REC)           /* every append: two events */

static const esr_stream_id S = {"S", "s", 1};

static esr_file_store_options options(int salvage, char *why, size_t why_size)
{
	esr_file_store_options o;

	esr_file_store_options_default(&o);
	o.segment_bytes = 2u << 20; /* the least allowed */
	o.sync = ESR_SYNC_NONE;     /* nothing here crashes: the page cache holds it all */
	o.salvage = salvage;
	o.why = why;
	o.why_size = why_size;
	return o;
}

static esr_store *open_ok(const char *dir, int salvage)
{
	esr_file_store_options o = options(salvage, NULL, 0);
	esr_store *s = NULL;

	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_OK);
	return s;
}

/* Open must refuse with ESR_ECORRUPT; *why gets its reason. */
static void open_corrupt(const char *dir, int salvage, char *why, size_t why_size)
{
	esr_file_store_options o = options(salvage, why, why_size);
	esr_store *s = NULL;

	why[0] = '\0';
	assert_int_equal(esr_file_store_open(dir, &o, &s), ESR_ECORRUPT);
	assert_null(s);
	assert_true(why[0] != '\0');
}

static void fill_payload(uint8_t *p, uint64_t version)
{
	size_t i;

	for (i = 0; i < PAYLOAD; i++)
		p[i] = (uint8_t)(version * 7 + i);
	memcpy(p, &version, sizeof version);
}

static void append_one(esr_store *s, uint64_t at)
{
	static uint8_t p[2][PAYLOAD];
	esr_event ev[2];
	int i;

	for (i = 0; i < 2; i++) {
		fill_payload(p[i], at + 1 + (uint64_t)i);
		ev[i] = (esr_event){.type = 1, .payload = p[i], .payload_len = PAYLOAD};
	}
	assert_int_equal(esr_store_append(s, &S, at, ev, 2, NULL), ESR_OK);
}

static int exists(const char *dir, const char *name)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static off_t size_of(const char *dir, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* A file's whole content (malloc'd), its length in *len. */
static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
	char path[400];
	uint8_t *buf;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	*len = (size_t)ftell(f);
	rewind(f);
	assert_non_null(buf = malloc(*len + 1));
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void spit(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[400];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
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

static void remove_file(const char *dir, const char *name)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(unlink(path), 0);
}

static const char *seg_name(unsigned seq)
{
	static char name[32];

	snprintf(name, sizeof name, "%08u.seg", seq);
	return name;
}

/* Appends until `segments` segments exist and the last holds 10 appends;
 * returns the stream's version. */
static uint64_t build(const char *dir, unsigned segments)
{
	esr_store *s = open_ok(dir, 0);
	uint64_t v = 0;
	int after = 0;

	while (after < 10) {
		append_one(s, v);
		v += 2;
		if (exists(dir, seg_name(segments)))
			after++;
	}
	assert_false(exists(dir, seg_name(segments + 1)));
	esr_store_close(s);
	return v;
}

/* Events in whole appends of a segment of `bytes` bytes. */
static uint64_t events_in(off_t bytes)
{
	assert_int_equal((bytes - 32) % APPEND, 0);
	return (uint64_t)(bytes - 32) / APPEND * 2;
}

struct check {
	uint64_t next;
	int bad;
};

static esr_status check_event(void *ctx, const esr_recorded_event *r)
{
	struct check *c = ctx;
	uint8_t want[PAYLOAD];

	fill_payload(want, r->version);
	c->bad |= r->version != c->next || r->position != c->next ||
	          r->event.payload_len != PAYLOAD || memcmp(r->event.payload, want, PAYLOAD) != 0;
	c->next++;
	return ESR_OK;
}

/* The store holds exactly versions (and positions) 1..v of S, intact. */
static void expect_prefix(esr_store *s, uint64_t v)
{
	struct check c = {1, 0};
	uint64_t version = 99, head = 99;

	assert_int_equal(esr_store_version(s, &S, &version), ESR_OK);
	assert_int_equal(version, v);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, v);
	assert_int_equal(esr_store_read(s, &S, 1, check_event, &c), ESR_OK);
	assert_int_equal(c.next, v + 1);
	assert_false(c.bad);
}

/* Appends go on after the prefix and survive another reopen. */
static void expect_appends_go_on(const char *dir, int salvage, uint64_t v)
{
	esr_store *s = open_ok(dir, salvage);

	expect_prefix(s, v);
	append_one(s, v);
	esr_store_close(s);
	s = open_ok(dir, 0);
	expect_prefix(s, v + 2);
	esr_store_close(s);
}

/* The file `name` holds exactly len bytes: buf. */
static void expect_content(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	size_t got_len;
	uint8_t *got = slurp(dir, name, &got_len);

	assert_int_equal(got_len, len);
	assert_memory_equal(got, buf, len);
	free(got);
}

/* The directory's entries, sorted, one per line, into out. */
static void listing(const char *dir, char *out, size_t size)
{
	struct dirent **names;
	int n, i;
	size_t at = 0;

	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			at += (size_t)snprintf(out + at, size - at, "%s %lld\n", names[i]->d_name,
			                       (long long)size_of(dir, names[i]->d_name));
		free(names[i]);
	}
	free(names);
	assert_true(at < size);
}

/* --- salvage ---------------------------------------------------------------------------- */

/* A byte flipped in segment 2 of 5: salvage keeps the appends before it;
 * segment 2's whole original goes to 00000002.seg.damaged, segments 3-5 to
 * their .damaged names, byte for byte. A second salvage never overwrites the
 * first one's files. */
static void salvage_keeps_every_byte_it_cuts(void **state)
{
	uint8_t *orig[6], *first;
	size_t len[6], first_len;
	char dir[256], why[512], name[64];
	uint64_t kept;
	unsigned i;
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	build(dir, 5);
	flip_byte(dir, seg_name(2), 5000); /* in the fifth append of segment 2 */
	for (i = 1; i <= 5; i++)
		orig[i] = slurp(dir, seg_name(i), &len[i]);
	kept = events_in((off_t)len[1]) + 8;
	open_corrupt(dir, 0, why, sizeof why);
	assert_non_null(strstr(why, "00000002.seg: offset 4752"));

	s = open_ok(dir, 1);
	expect_prefix(s, kept);
	esr_store_close(s);
	assert_int_equal(size_of(dir, seg_name(1)), len[1]);
	assert_int_equal(size_of(dir, seg_name(2)), 32 + 4 * APPEND);
	expect_content(dir, "00000002.seg.damaged", orig[2], len[2]);
	for (i = 3; i <= 5; i++) {
		assert_false(exists(dir, seg_name(i)));
		snprintf(name, sizeof name, "%s.damaged", seg_name(i));
		expect_content(dir, name, orig[i], len[i]);
	}
	expect_appends_go_on(dir, 0, kept);

	/* Damage in segment 1 now: its copy is new; segment 2 goes to a name
	 * the first salvage left free. */
	first = orig[2];
	first_len = len[2];
	orig[2] = slurp(dir, seg_name(2), &len[2]);
	flip_byte(dir, seg_name(1), 5000);
	free(orig[1]);
	orig[1] = slurp(dir, seg_name(1), &len[1]);
	s = open_ok(dir, 1);
	expect_prefix(s, 8);
	esr_store_close(s);
	expect_content(dir, "00000001.seg.damaged", orig[1], len[1]);
	expect_content(dir, "00000002.seg.damaged.1", orig[2], len[2]);
	assert_false(exists(dir, seg_name(2)));
	expect_content(dir, "00000002.seg.damaged", first, first_len); /* untouched */
	expect_appends_go_on(dir, 0, 8);
	for (i = 1; i <= 5; i++)
		free(orig[i]);
	free(first);
}

/* Without its first segment the store has no prefix to keep: salvage
 * refuses, names the missing file, and changes nothing on disk. The same
 * for damage in the first append. */
static void salvage_refuses_to_empty_the_store(void **state)
{
	char dir[256], why[512], before[2048], after[2048];

	(void)state;
	fresh_dir(dir, sizeof dir);
	build(dir, 3);
	remove_file(dir, seg_name(1));
	listing(dir, before, sizeof before);
	open_corrupt(dir, 0, why, sizeof why);
	assert_non_null(strstr(why, "00000001.seg: missing"));
	open_corrupt(dir, 1, why, sizeof why);
	assert_non_null(strstr(why, "00000001.seg: missing"));
	assert_non_null(strstr(why, "salvage"));
	listing(dir, after, sizeof after);
	assert_string_equal(before, after);

	fresh_dir(dir, sizeof dir);
	build(dir, 1);
	flip_byte(dir, seg_name(1), 100); /* in the first record */
	listing(dir, before, sizeof before);
	open_corrupt(dir, 1, why, sizeof why);
	assert_non_null(strstr(why, "00000001.seg: offset 32"));
	assert_non_null(strstr(why, "salvage"));
	listing(dir, after, sizeof after);
	assert_string_equal(before, after);
}

/* A missing middle segment ends the log: corrupt without salvage; with it
 * the segments before it are kept and those after it set aside whole. */
static void missing_middle_segment(void **state)
{
	char dir[256], why[512];
	uint8_t *orig4, *orig5;
	size_t len4, len5;
	uint64_t kept;
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	build(dir, 5);
	remove_file(dir, seg_name(3));
	orig4 = slurp(dir, seg_name(4), &len4);
	orig5 = slurp(dir, seg_name(5), &len5);
	kept = events_in(size_of(dir, seg_name(1))) + events_in(size_of(dir, seg_name(2)));
	open_corrupt(dir, 0, why, sizeof why);
	assert_non_null(strstr(why, "00000003.seg: missing"));
	s = open_ok(dir, 1);
	expect_prefix(s, kept);
	esr_store_close(s);
	assert_false(exists(dir, seg_name(4)) || exists(dir, seg_name(5)));
	expect_content(dir, "00000004.seg.damaged", orig4, len4);
	expect_content(dir, "00000005.seg.damaged", orig5, len5);
	expect_appends_go_on(dir, 0, kept);
	free(orig4);
	free(orig5);
}

struct snap_seen {
	int calls;
	uint64_t version;
	char data[16];
};

static esr_status take_snap(void *ctx, const esr_snapshot *snap)
{
	struct snap_seen *g = ctx;

	g->calls++;
	g->version = snap->version;
	assert_true(snap->len < sizeof g->data);
	memcpy(g->data, snap->data, snap->len);
	g->data[snap->len] = '\0';
	return ESR_OK;
}

/* S's snapshot is (version, data). */
static void expect_snap(esr_store *s, uint64_t version, const char *data)
{
	struct snap_seen g = {0};

	assert_int_equal(esr_store_snapshot_load(s, &S, take_snap, &g), ESR_OK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.version, version);
	assert_string_equal(g.data, data);
}

static void save_snap(esr_store *s, uint64_t version, const char *data)
{
	esr_snapshot snap = {version, 1, (uint32_t)strlen(data), data};

	assert_int_equal(esr_store_snapshot_save(s, &S, &snap), ESR_OK);
}

/* A snapshot of history that salvage set aside is dropped at the salvaging
 * open, and stays dropped once the stream grows back past its version: the
 * new events are not the ones it reflects. The snapshot saved before it, of
 * events salvage kept, stands. */
static void salvage_drops_snapshots_of_set_aside_history(void **state)
{
	char dir[256];
	uint64_t v, kept;
	esr_store *s;

	(void)state;
	fresh_dir(dir, sizeof dir);
	v = build(dir, 3);
	s = open_ok(dir, 0);
	save_snap(s, 4, "early");
	save_snap(s, v - 2, "late");
	esr_store_close(s);
	s = open_ok(dir, 0); /* a plain reopen keeps it */
	expect_snap(s, v - 2, "late");
	esr_store_close(s);
	flip_byte(dir, seg_name(2), 3); /* segment 2's header */
	kept = events_in(size_of(dir, seg_name(1)));
	s = open_ok(dir, 1);
	expect_prefix(s, kept);
	expect_snap(s, 4, "early");
	for (; kept < v; kept += 2)
		append_one(s, kept);
	esr_store_close(s);
	s = open_ok(dir, 0);
	expect_prefix(s, kept);
	expect_snap(s, 4, "early");
	esr_store_close(s);
}

/* --- torn tails and what is not one ------------------------------------------------------ */

/* One event of `len` bytes of p, at version at + 1. */
static void append_bytes(esr_store *s, uint64_t at, const void *p, size_t len)
{
	esr_event ev = {.type = 1, .payload = p, .payload_len = len};

	assert_int_equal(esr_store_append(s, &S, at, &ev, 1, NULL), ESR_OK);
}

/* The last segment cut inside its last record, whose payload holds whole
 * record images (one of an earlier position, one of a later one): a crash
 * tore that write, and the images are its own bytes, not data after the
 * tear. Each cut is a torn tail, cut; appends go on. So is a cut past the
 * earlier image when the record's header did not reach the disk. */
static void torn_record_holding_record_images_is_a_torn_tail(void **state)
{
	static uint8_t big[3000];
	uint8_t p[PAYLOAD], *other, *seg;
	size_t other_len, len;
	char dir[256];
	off_t start, cut;
	esr_store *s;
	uint64_t v;

	(void)state;
	fresh_dir(dir, sizeof dir); /* where the images come from: records 1..3 */
	s = open_ok(dir, 0);
	for (v = 0; v < 3; v++) {
		fill_payload(p, v + 1);
		append_bytes(s, v, p, PAYLOAD);
	}
	esr_store_close(s);
	other = slurp(dir, seg_name(1), &other_len);
	assert_int_equal(other_len, 32 + 3 * REC);
	memset(big, 'b', sizeof big);
	memcpy(big + 500, other + 32, REC);            /* position 1, as the log's */
	memcpy(big + 1500, other + 32 + 2 * REC, REC); /* position 3, beyond it */
	free(other);

	fresh_dir(dir, sizeof dir);
	s = open_ok(dir, 0);
	fill_payload(p, 1);
	append_bytes(s, 0, p, PAYLOAD);
	append_bytes(s, 1, big, sizeof big);
	esr_store_close(s);
	seg = slurp(dir, seg_name(1), &len);
	start = 32 + REC;
	assert_int_equal(len, (size_t)start + 88 + 2 + sizeof big);
	for (cut = start + 1; cut < (off_t)len; cut += 37) {
		spit(dir, seg_name(1), seg, (size_t)cut);
		s = open_ok(dir, 0);
		expect_prefix(s, 1);
		esr_store_close(s);
		assert_int_equal(size_of(dir, seg_name(1)), start);
	}
	/* Its header lost (zeros: it claims no extent) while the first image
	 * reached the disk: that copy of position 1 continues nothing. */
	memset(seg + start, 0, 88);
	for (cut = start + 90 + 500 + REC; cut < start + 90 + 1500; cut += 41) {
		spit(dir, seg_name(1), seg, (size_t)cut);
		s = open_ok(dir, 0);
		expect_prefix(s, 1);
		esr_store_close(s);
	}
	spit(dir, seg_name(1), seg, (size_t)start + 88);
	expect_appends_go_on(dir, 0, 1);
	assert_false(exists(dir, "00000001.seg.damaged"));
	free(seg);
}

/* Whole, valid records at the end of the last segment that do not follow
 * (a copy of an append of one event or of two; the second record of an
 * append alone) are no torn write: corrupt, and salvage keeps them aside. */
static void whole_records_that_do_not_follow_are_corrupt(void **state)
{
	uint8_t *seg, *bad, p[PAYLOAD];
	size_t len, k;
	char dir[256], why[512], at[64];
	uint64_t v;
	esr_store *s;
	struct {
		const char *what;
		size_t from, n; /* bytes from the segment's end, how many */
	} tail[] = {
		{"the last append (one event) again", REC, REC},
		{"the append of two before it again", REC + APPEND, APPEND},
		{"that append's second record alone", 2 * REC, REC},
	};

	(void)state;
	for (k = 0; k < sizeof tail / sizeof tail[0]; k++) {
		print_message("at the end: %s\n", tail[k].what);
		fresh_dir(dir, sizeof dir);
		v = build(dir, 1);
		s = open_ok(dir, 0);
		fill_payload(p, ++v);
		append_bytes(s, v - 1, p, PAYLOAD);
		esr_store_close(s);
		seg = slurp(dir, seg_name(1), &len);
		assert_non_null(bad = malloc(len + tail[k].n));
		memcpy(bad, seg, len);
		memcpy(bad + len, seg + len - tail[k].from, tail[k].n);
		spit(dir, seg_name(1), bad, len + tail[k].n);
		open_corrupt(dir, 0, why, sizeof why);
		snprintf(at, sizeof at, "00000001.seg: offset %zu", len);
		assert_non_null(strstr(why, at));
		assert_int_equal(size_of(dir, seg_name(1)), (off_t)(len + tail[k].n));
		s = open_ok(dir, 1);
		expect_prefix(s, v);
		esr_store_close(s);
		expect_content(dir, "00000001.seg.damaged", bad, len + tail[k].n);
		expect_content(dir, seg_name(1), seg, len);
		expect_appends_go_on(dir, 0, v);
		free(bad);
		free(seg);
	}
}

/* --- a crash while creating a segment --------------------------------------------------- */

/* The shapes a segment file can have when its header never reached the
 * disk: empty, some zeros, a header's worth of zeros, more zeros, part of
 * the header. */
struct shape {
	const char *what;
	size_t zeros;  /* zero bytes */
	size_t header; /* or: this many bytes of the right header, then nothing */
};

static const struct shape shapes[] = {
	{"empty", 0, 0},           {"5 zero bytes", 5, 0}, {"32 zero bytes", 32, 0},
	{"a zero header, then zeros", 32 + 4096, 0},     {"20 bytes of its header", 0, 20},
};

static void write_shape(const char *dir, unsigned seq, const struct shape *sh,
                        const uint8_t *header)
{
	static uint8_t zeros[8192];

	if (sh->header)
		spit(dir, seg_name(seq), header, sh->header);
	else
		spit(dir, seg_name(seq), zeros, sh->zeros);
}

/* As the last segment, each shape is a torn tail: the store opens, with or
 * without salvage, keeps everything before it, and appends go on. */
static void torn_segment_creation_is_a_torn_tail(void **state)
{
	uint8_t *seg2;
	size_t len2, k;
	char dir[256];
	uint64_t v;
	int salvage;

	(void)state;
	for (k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
		for (salvage = 0; salvage < 2; salvage++) {
			print_message("last segment: %s%s\n", shapes[k].what,
			              salvage ? ", salvage" : "");
			/* as the only segment */
			fresh_dir(dir, sizeof dir);
			build(dir, 1);
			seg2 = slurp(dir, seg_name(1), &len2);
			write_shape(dir, 1, &shapes[k], seg2);
			free(seg2);
			expect_appends_go_on(dir, salvage, 0);
			/* after two good segments */
			fresh_dir(dir, sizeof dir);
			v = build(dir, 3);
			seg2 = slurp(dir, seg_name(3), &len2);
			remove_file(dir, seg_name(3));
			v -= events_in((off_t)len2);
			write_shape(dir, 3, &shapes[k], seg2);
			free(seg2);
			expect_appends_go_on(dir, salvage, v);
			assert_false(exists(dir, "00000003.seg.damaged"));
		}
}

/* The same shapes in the middle of the log are corruption; so is a last
 * segment with a zero header and data after it, or short bytes that are not
 * its header's. */
static void zeroed_middle_segment_is_corrupt(void **state)
{
	uint8_t *seg;
	size_t len, k;
	char dir[256], why[512];
	esr_store *s;
	uint64_t kept;

	(void)state;
	for (k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		fresh_dir(dir, sizeof dir);
		build(dir, 3);
		seg = slurp(dir, seg_name(2), &len);
		write_shape(dir, 2, &shapes[k], seg);
		free(seg);
		open_corrupt(dir, 0, why, sizeof why);
		assert_non_null(strstr(why, "00000002.seg: offset 0"));
		/* salvage keeps segment 1 and sets the rest aside */
		kept = events_in(size_of(dir, seg_name(1)));
		s = open_ok(dir, 1);
		expect_prefix(s, kept);
		esr_store_close(s);
		assert_true(exists(dir, "00000002.seg.damaged") &&
		            exists(dir, "00000003.seg.damaged"));
		expect_appends_go_on(dir, 0, kept);
	}
	/* a zero header in the last segment with data after it: corrupt */
	fresh_dir(dir, sizeof dir);
	build(dir, 2);
	seg = slurp(dir, seg_name(2), &len);
	memset(seg, 0, 32);
	spit(dir, seg_name(2), seg, len);
	free(seg);
	open_corrupt(dir, 0, why, sizeof why);
	assert_non_null(strstr(why, "00000002.seg: offset 0"));
	/* a short last segment that is not part of its header: not ours, corrupt */
	spit(dir, seg_name(2), "abcde", 5);
	open_corrupt(dir, 0, why, sizeof why);
	assert_non_null(strstr(why, "00000002.seg: offset 0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(salvage_keeps_every_byte_it_cuts),
		cmocka_unit_test(salvage_refuses_to_empty_the_store),
		cmocka_unit_test(missing_middle_segment),
		cmocka_unit_test(salvage_drops_snapshots_of_set_aside_history),
		cmocka_unit_test(torn_record_holding_record_images_is_a_torn_tail),
		cmocka_unit_test(whole_records_that_do_not_follow_are_corrupt),
		cmocka_unit_test(torn_segment_creation_is_a_torn_tail),
		cmocka_unit_test(zeroed_middle_segment_is_corrupt),
	};
	char cmd[128];
	int failed;

	if (mkdtemp(root) == NULL)
		return 1;
	failed = cmocka_run_group_tests_name("file store: salvage", tests, NULL, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (failed == 0 && system(cmd) != 0)
		return 1;
	return failed;
}
