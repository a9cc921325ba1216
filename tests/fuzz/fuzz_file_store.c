/*
 * tests/fuzz/fuzz_file_store.c: libFuzzer harness for the file store's record
 * decoder and its recovery scan.
 *
 * Each input is decoded as a record (the decoder must never read past the
 * input or accept what the CRC refuses), then written as the only segment of
 * a store directory, after a valid segment header unless the input starts with
 * one itself, and opened, with and without salvage: open must either recover
 * (and then every event it returns must read back) or refuse with
 * ESR_ECORRUPT or ESR_EIO, never crash. Built by the `fuzz` preset (clang);
 * CI runs it for a bounded time from the seeds in tests/fuzz/corpus.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "store/file/file_format.h"

static char dir[64];

/* Empty the store directory (a shell per input would be the slowest part). */
static void clear(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	mkdir(dir, 0755);
}

static esr_status touch(void *ctx, const esr_recorded_event *r)
{
	volatile uint8_t sink = 0;

	for (uint32_t i = 0; i < r->event.payload_len; i++)
		sink ^= ((const uint8_t *)r->event.payload)[i];
	(void)sink;
	++*(unsigned *)ctx;
	return ESR_OK;
}

/* Read every stream the input could name: we know them only by trying. */
static void read_back(esr_store *s, const uint8_t *data, size_t size)
{
	struct esr__rec r;
	size_t off;
	unsigned seen = 0;

	for (off = 0; off + ESR__REC_HEADER <= size; off++) {
		char type[ESR_TYPE_NAME_MAX + 1];
		if (esr__rec_decode(data + off, size - off, &r) != ESR__REC_OK)
			continue;
		memcpy(type, r.type, r.type_len);
		type[r.type_len] = '\0';
		esr_stream_id sid = {type, r.id, r.id_len};
		if (esr__check_stream(&sid) == ESR_OK)
			esr_store_read(s, &sid, 0, touch, &seen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t header[ESR__SEG_HEADER];
	char path[128];
	struct esr__rec r;
	int fd, salvage;

	if (esr__rec_decode(data, size, &r) == ESR__REC_OK && r.length > size)
		abort(); /* a record cannot be longer than its input */
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/esr-fuzz-%d", (int)getpid());
	}
	for (salvage = 0; salvage < 2; salvage++) {
		esr_file_store_options o;
		esr_store *s = NULL;
		esr_status st;

		clear();
		snprintf(path, sizeof path, "%s/00000001.seg", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (size < 8 || memcmp(data, ESR__SEG_MAGIC, 8) != 0) {
			esr__seg_header_encode(header, 1);
			if (write(fd, header, sizeof header) != (ssize_t)sizeof header)
				abort();
		}
		if (size && write(fd, data, size) != (ssize_t)size)
			abort();
		close(fd);
		esr_file_store_options_default(&o);
		o.segment_bytes = 2u << 20;
		o.sync = ESR_SYNC_NONE;
		o.salvage = salvage;
		st = esr_file_store_open(dir, &o, &s);
		if (st == ESR_OK) {
			read_back(s, data, size);
			esr_store_close(s);
		} else if (st != ESR_ECORRUPT && st != ESR_EIO) {
			abort();
		}
	}
	return 0;
}
