/*
 * store/file/file_format.h: the file store's on-disk records (docs/file-format.md
 * is the reader's reference; keep the two in step).
 * docs/architecture.md has the map.
 *
 * A segment file starts with a ESR__SEG_HEADER-byte header, then holds records
 * back to back. A record is one event: a ESR__REC_HEADER-byte header, the stream's
 * type name, its id, the event's command id (none: no bytes) and the payload.
 * Every integer is little-endian. The CRC-32C in the first four bytes covers
 * everything after it, so a record is whole or it is nothing; `batch_index` of
 * `batch_count` lets recovery accept an append only when all its records are
 * there.
 *
 * Format versions (the segment header's): 1 had no command ids, and its
 * records' bytes 84..87 were zero; 2 holds the command id's length in bytes
 * 84..85. A version-1 record is therefore a version-2 record without a
 * command id, and one decoder reads both. This version writes only version-2
 * segments, and never appends to a version-1 one (store/file/file.c, commit).
 */
#ifndef ESR_STORE_FILE_FORMAT_H
#define ESR_STORE_FILE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "esr/esr.h"

#define ESR__SEG_MAGIC "ESRSEG01"
#define ESR__SEG_HEADER 32
#define ESR__REC_MAGIC 0x31525345u /* "ESR1" */
#define ESR__REC_HEADER 88
#define ESR__REC_MAX                                                                       \
	(ESR__REC_HEADER + ESR_TYPE_NAME_MAX + ESR_ID_MAX + ESR_COMMAND_ID_MAX + ESR_PAYLOAD_MAX)
#define ESR__SEG_FORMAT 2     /* the segment format this version writes */
#define ESR__SEG_FORMAT_MIN 1 /* the oldest it reads */

/* A decoded record: pointers into the buffer it was decoded from. */
struct esr__rec {
	uint32_t length;        /* of the whole record */
	const char *type;       /* not NUL-terminated */
	uint16_t type_len;
	const uint8_t *id;
	uint16_t id_len;
	uint64_t version;
	uint64_t position;
	uint16_t batch_index, batch_count;
	esr_event event;        /* payload and command_id point into the buffer */
};

/* The encoded size of an event of stream `sid` (lengths already checked). */
size_t esr__rec_size(const esr_stream_id *sid, const esr_event *ev);

/* Encode into out (esr__rec_size bytes); returns the bytes written. */
size_t esr__rec_encode(uint8_t *out, const esr_stream_id *sid, const esr_event *ev,
                  uint64_t version, uint64_t position, uint16_t batch_index,
                  uint16_t batch_count);

enum esr__rec_status {
	ESR__REC_OK,    /* *r describes a whole, checked record */
	ESR__REC_SHORT, /* fewer bytes than the record claims: a torn tail, or read more */
	ESR__REC_BAD,   /* not a record: wrong magic, impossible field, or CRC mismatch */
};

/* The length a record's header claims (its bytes 4..7), unchecked: for
 * walking records already encoded, or bounding a damaged one's extent. */
uint32_t esr__rec_claimed(const uint8_t *buf);

/* Decode the record at buf (avail bytes readable). Never reads past avail. */
enum esr__rec_status esr__rec_decode(const uint8_t *buf, size_t avail, struct esr__rec *r);

/* A segment header for segment number `seq` (format ESR__SEG_FORMAT), and
 * its check: 0 if valid, of a format this version reads, into *format. */
void esr__seg_header_encode(uint8_t out[ESR__SEG_HEADER], uint64_t seq);
int esr__seg_header_decode(const uint8_t in[ESR__SEG_HEADER], uint64_t *seq, uint32_t *format);

/* snapshots.log: records of ESR__SNAP_HEADER bytes then type, id, data (docs/file-format.md). */
#define ESR__SNAP_MAGIC 0x314e5345u /* "ESN1" */
#define ESR__SNAP_HEADER 32

struct esr__snap_rec {
	uint32_t length;
	const char *type; /* not NUL-terminated */
	uint16_t type_len;
	const uint8_t *id;
	uint16_t id_len;
	esr_snapshot snap; /* data points into the buffer */
};

#define ESR__SNAP_REC_MAX (ESR__SNAP_HEADER + ESR_TYPE_NAME_MAX + ESR_ID_MAX + ESR_SNAPSHOT_MAX)

size_t esr__snap_rec_size(const esr_stream_id *sid, uint32_t len);
/* The length a record header claims, or 0 if it cannot be a record's. */
uint32_t esr__snap_rec_claimed(const uint8_t hdr[ESR__SNAP_HEADER]);
size_t esr__snap_rec_encode(uint8_t *out, const esr_stream_id *sid, const esr_snapshot *snap);
/* 0 for a whole, valid record at buf; -1 otherwise. */
int esr__snap_rec_decode(const uint8_t *buf, size_t avail, struct esr__snap_rec *r);

/* A checkpoint file: magic, position, zero, CRC-32C of the 20 bytes before it. */
#define ESR__CKPT_MAGIC "ESRCKPT1"
#define ESR__CKPT_SIZE 24
void esr__ckpt_encode(uint8_t out[ESR__CKPT_SIZE], uint64_t position);
int esr__ckpt_decode(const uint8_t in[ESR__CKPT_SIZE], uint64_t *position);

#endif /* ESR_STORE_FILE_FORMAT_H */
