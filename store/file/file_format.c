/*
 * store/file/file_format.c: encoding and checking records (see file_format.h).
 * docs/architecture.md has the map.
 */
#include <string.h>

#include "core/crc32c.h"
#include "store/file/file_format.h"

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(const uint8_t *b)
{
	return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

uint32_t esr__rec_claimed(const uint8_t *buf)
{
	return get32(buf + 4);
}

size_t esr__rec_size(const esr_stream_id *sid, const esr_event *ev)
{
	return ESR__REC_HEADER + strlen(sid->type) + sid->id_len + ev->command_id.len +
	       ev->payload_len;
}

size_t esr__rec_encode(uint8_t *out, const esr_stream_id *sid, const esr_event *ev,
                  uint64_t version, uint64_t position, uint16_t batch_index,
                  uint16_t batch_count)
{
	size_t tlen = strlen(sid->type), clen = ev->command_id.len, len = esr__rec_size(sid, ev);
	uint8_t *p = out + ESR__REC_HEADER;

	put32(out + 4, (uint32_t)len);
	put32(out + 8, ESR__REC_MAGIC);
	put16(out + 12, (uint16_t)tlen);
	put16(out + 14, (uint16_t)sid->id_len);
	put32(out + 16, ev->type);
	put32(out + 20, ev->payload_len);
	put64(out + 24, version);
	put64(out + 32, position);
	put64(out + 40, ev->meta.timestamp_ns);
	memcpy(out + 48, ev->meta.correlation_id.bytes, 16);
	memcpy(out + 64, ev->meta.causation_id.bytes, 16);
	put16(out + 80, batch_index);
	put16(out + 82, batch_count);
	put16(out + 84, (uint16_t)clen);
	put16(out + 86, 0);
	memcpy(p, sid->type, tlen);
	p += tlen;
	memcpy(p, sid->id, sid->id_len);
	p += sid->id_len;
	if (clen)
		memcpy(p, ev->command_id.bytes, clen);
	p += clen;
	if (ev->payload_len)
		memcpy(p, ev->payload, ev->payload_len);
	put32(out, esr__crc32c(0, out + 4, len - 4));
	return len;
}

enum esr__rec_status esr__rec_decode(const uint8_t *buf, size_t avail, struct esr__rec *r)
{
	uint32_t len, plen;
	uint16_t tlen, idlen, clen;
	const uint8_t *cid;

	if (avail < ESR__REC_HEADER)
		return ESR__REC_SHORT;
	len = get32(buf + 4);
	tlen = get16(buf + 12);
	idlen = get16(buf + 14);
	plen = get32(buf + 20);
	clen = get16(buf + 84); /* 0 in every record of format 1 */
	/* Fields that cannot be, before trusting the length to read further. */
	if (get32(buf + 8) != ESR__REC_MAGIC || tlen == 0 || tlen > ESR_TYPE_NAME_MAX ||
	    idlen == 0 || idlen > ESR_ID_MAX || plen > ESR_PAYLOAD_MAX ||
	    clen > ESR_COMMAND_ID_MAX || get16(buf + 86) != 0 ||
	    len != (uint64_t)ESR__REC_HEADER + tlen + idlen + clen + plen)
		return ESR__REC_BAD;
	if (avail < len)
		return ESR__REC_SHORT;
	if (esr__crc32c(0, buf + 4, len - 4) != get32(buf))
		return ESR__REC_BAD;
	r->length = len;
	r->type = (const char *)buf + ESR__REC_HEADER;
	r->type_len = tlen;
	r->id = buf + ESR__REC_HEADER + tlen;
	r->id_len = idlen;
	r->version = get64(buf + 24);
	r->position = get64(buf + 32);
	r->batch_index = get16(buf + 80);
	r->batch_count = get16(buf + 82);
	if (r->version == 0 || r->version == ESR_VERSION_ANY || r->batch_count == 0 ||
	    r->batch_count > ESR_APPEND_MAX || r->batch_index >= r->batch_count)
		return ESR__REC_BAD; /* checked, yet impossible: written by something else */
	cid = buf + ESR__REC_HEADER + tlen + idlen;
	memset(&r->event, 0, sizeof r->event);
	r->event.type = get32(buf + 16);
	r->event.payload_len = plen;
	r->event.payload = plen ? cid + clen : NULL;
	if (clen)
		r->event.command_id = (esr_command_id){cid, clen};
	r->event.meta.timestamp_ns = get64(buf + 40);
	memcpy(r->event.meta.correlation_id.bytes, buf + 48, 16);
	memcpy(r->event.meta.causation_id.bytes, buf + 64, 16);
	return ESR__REC_OK;
}

void esr__seg_header_encode(uint8_t out[ESR__SEG_HEADER], uint64_t seq)
{
	memcpy(out, ESR__SEG_MAGIC, 8);
	put32(out + 8, ESR__SEG_FORMAT);
	put32(out + 12, ESR__SEG_HEADER);
	put64(out + 16, seq);
	put32(out + 24, 0);
	put32(out + 28, esr__crc32c(0, out, 28));
}

int esr__seg_header_decode(const uint8_t in[ESR__SEG_HEADER], uint64_t *seq, uint32_t *format)
{
	uint32_t f = get32(in + 8);

	if (memcmp(in, ESR__SEG_MAGIC, 8) != 0 || f < ESR__SEG_FORMAT_MIN || f > ESR__SEG_FORMAT ||
	    get32(in + 12) != ESR__SEG_HEADER || get32(in + 24) != 0 ||
	    esr__crc32c(0, in, 28) != get32(in + 28))
		return -1;
	*seq = get64(in + 16);
	*format = f;
	return 0;
}

/* --- snapshots.log and checkpoint files ------------------------------------------- */

size_t esr__snap_rec_size(const esr_stream_id *sid, uint32_t len)
{
	return ESR__SNAP_HEADER + strlen(sid->type) + sid->id_len + len;
}

size_t esr__snap_rec_encode(uint8_t *out, const esr_stream_id *sid, const esr_snapshot *snap)
{
	size_t tl = strlen(sid->type), len = esr__snap_rec_size(sid, snap->len);

	put32(out + 4, (uint32_t)len);
	put32(out + 8, ESR__SNAP_MAGIC);
	put16(out + 12, (uint16_t)tl);
	put16(out + 14, (uint16_t)sid->id_len);
	put64(out + 16, snap->version);
	put32(out + 24, snap->format);
	put32(out + 28, snap->len);
	memcpy(out + ESR__SNAP_HEADER, sid->type, tl);
	memcpy(out + ESR__SNAP_HEADER + tl, sid->id, sid->id_len);
	if (snap->len)
		memcpy(out + ESR__SNAP_HEADER + tl + sid->id_len, snap->data, snap->len);
	put32(out, esr__crc32c(0, out + 4, len - 4));
	return len;
}

uint32_t esr__snap_rec_claimed(const uint8_t hdr[ESR__SNAP_HEADER])
{
	uint32_t len = get32(hdr + 4);

	return get32(hdr + 8) == ESR__SNAP_MAGIC && len > ESR__SNAP_HEADER && len <= ESR__SNAP_REC_MAX ? len
	                                                                                  : 0;
}

int esr__snap_rec_decode(const uint8_t *buf, size_t avail, struct esr__snap_rec *r)
{
	uint32_t len;

	if (avail < ESR__SNAP_HEADER || get32(buf + 8) != ESR__SNAP_MAGIC)
		return -1;
	len = get32(buf + 4);
	r->type_len = get16(buf + 12);
	r->id_len = get16(buf + 14);
	r->snap.version = get64(buf + 16);
	r->snap.format = get32(buf + 24);
	r->snap.len = get32(buf + 28);
	if (len > avail || r->type_len == 0 || r->type_len > ESR_TYPE_NAME_MAX ||
	    r->id_len == 0 || r->id_len > ESR_ID_MAX || r->snap.len > ESR_SNAPSHOT_MAX ||
	    len != ESR__SNAP_HEADER + (size_t)r->type_len + r->id_len + r->snap.len ||
	    esr__crc32c(0, buf + 4, len - 4) != get32(buf))
		return -1;
	r->length = len;
	r->type = (const char *)buf + ESR__SNAP_HEADER;
	r->id = buf + ESR__SNAP_HEADER + r->type_len;
	r->snap.data = buf + ESR__SNAP_HEADER + r->type_len + r->id_len;
	return 0;
}

void esr__ckpt_encode(uint8_t out[ESR__CKPT_SIZE], uint64_t position)
{
	memcpy(out, ESR__CKPT_MAGIC, 8);
	put64(out + 8, position);
	put32(out + 16, 0);
	put32(out + 20, esr__crc32c(0, out, 20));
}

int esr__ckpt_decode(const uint8_t in[ESR__CKPT_SIZE], uint64_t *position)
{
	if (memcmp(in, ESR__CKPT_MAGIC, 8) != 0 || get32(in + 16) != 0 ||
	    esr__crc32c(0, in, 20) != get32(in + 20))
		return -1;
	*position = get64(in + 8);
	return 0;
}
