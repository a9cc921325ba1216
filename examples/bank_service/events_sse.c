/*
 * events_sse.c: GET /events, the store's global order as Server-Sent Events.
 * Each client has a subscription of its own feeding a bounded buffer; MHD's
 * content reader drains it. With nothing buffered the reader suspends the
 * connection, and the subscription's handler resumes it when it buffers the
 * next event; with the buffer full the handler waits for room, so a slow
 * client slows only its own subscription. When the response is freed the
 * subscription is stopped by a reaper thread, never on an HTTP thread.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "service.h"

#define SSE_BUFFER (64 * 1024)
#define SSE_EVENT_MAX 4096 /* an id of ESR_ID_MAX bytes, escaped, fits */
#define HEARTBEAT_S 5      /* an idle stream gets a comment line this often */

struct sse {
	struct service *svc;
	struct MHD_Connection *conn;
	esr_subscription *sub;
	pthread_mutex_t lock;
	pthread_cond_t room;
	size_t off, len;     /* buf[off..len) is waiting to be sent */
	int suspended;       /* the reader suspended the connection */
	int ended;           /* the service is stopping: end after the buffer */
	int closed;          /* the response is freed: nobody reads any more */
	unsigned beat;       /* the last heartbeat round that looked at it */
	struct sse *next;    /* in svc->sse_live, then in svc->sse_reap */
	char buf[SSE_BUFFER];
};

/* Format one event as an SSE message; its length, or 0 if it did not fit. */
static size_t format_event(const esr_recorded_event *ev, char *out, size_t size)
{
	int ours = strcmp(ev->stream.type, BANK_TYPE) == 0;
	const char *name = ours ? bank_event_name(ev->event.type) : "unknown";
	json_t *account = json_stringn(ev->stream.id, ev->stream.id_len);
	json_t *data = json_pack("{s:I,s:o,s:I,s:s,s:I}", "position",
	                         (json_int_t)ev->position, "account",
	                         account ? account : json_null(), "version",
	                         (json_int_t)ev->version, "type", name, "amount",
	                         (json_int_t)bank_event_amount(&ev->event));
	char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	int n;

	json_decref(data);
	if (text == NULL)
		return 0;
	n = snprintf(out, size, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", ev->position,
	             name, text);
	free(text);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/*
 * The subscription's handler: buffer the event, waiting for room while the
 * buffer is full; a closed client or a stopping service cancels the
 * subscription. Resumes the connection if the reader suspended it: the flag
 * is cleared under the lock, so each suspension is resumed once, and the
 * connection cannot be freed while suspended, so resuming it after the
 * unlock is safe.
 */
static esr_status on_event(void *ctx, const esr_recorded_event *ev)
{
	struct sse *s = ctx;
	char line[SSE_EVENT_MAX];
	size_t need = format_event(ev, line, sizeof line);
	int resume;

	if (need == 0)
		return ESR_ENOMEM;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->closed || s->ended) {
			pthread_mutex_unlock(&s->lock);
			return ESR_ECANCELED;
		}
		if (s->off > 0) {
			memmove(s->buf, s->buf + s->off, s->len - s->off);
			s->len -= s->off;
			s->off = 0;
		}
		if (SSE_BUFFER - s->len >= need)
			break;
		pthread_cond_wait(&s->room, &s->lock);
	}
	memcpy(s->buf + s->len, line, need);
	s->len += need;
	resume = s->suspended;
	s->suspended = 0;
	pthread_mutex_unlock(&s->lock);
	if (resume)
		MHD_resume_connection(s->conn);
	return ESR_OK;
}

/* MHD's content reader: hand out what is buffered, end once the service
 * stops, or suspend until the handler buffers more. */
static ssize_t read_events(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sse *s = cls;
	size_t n;

	(void)pos;
	pthread_mutex_lock(&s->lock);
	if (s->len > s->off) {
		n = s->len - s->off < max ? s->len - s->off : max;
		memcpy(out, s->buf + s->off, n);
		s->off += n;
		if (s->off == s->len)
			s->off = s->len = 0;
		pthread_cond_signal(&s->room);
		pthread_mutex_unlock(&s->lock);
		return (ssize_t)n;
	}
	if (s->ended) {
		pthread_mutex_unlock(&s->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	s->suspended = 1;
	MHD_suspend_connection(s->conn);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Unlink s from the live list (caller holds sse_lock). */
static void unlink_live(struct service *svc, struct sse *s)
{
	struct sse **p;

	for (p = &svc->sse_live; *p != NULL; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	s->next = NULL;
}

/* MHD frees the response (client gone, stream ended, or daemon stopped):
 * wake the handler so it cancels, and give the subscription to the reaper. */
static void on_free(void *cls)
{
	struct sse *s = cls;
	struct service *svc = s->svc;

	pthread_mutex_lock(&s->lock);
	s->closed = 1;
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&svc->sse_lock);
	unlink_live(svc, s);
	s->next = svc->sse_reap;
	svc->sse_reap = s;
	pthread_cond_signal(&svc->sse_wake);
	pthread_mutex_unlock(&svc->sse_lock);
}

static void sse_free(struct sse *s)
{
	pthread_cond_destroy(&s->room);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/*
 * Put a comment line in every idle stream and resume it (caller holds
 * sse_lock; it is let go around each resume, which is why a stream is
 * marked with the round that looked at it). Only the reaper frees streams,
 * so none disappears meanwhile.
 */
static void heartbeat(struct service *svc, unsigned round)
{
	static const char ping[] = ": ping\n\n";
	struct MHD_Connection *conn;
	struct sse *s;

	do {
		conn = NULL;
		for (s = svc->sse_live; s != NULL && conn == NULL; s = s->next) {
			pthread_mutex_lock(&s->lock);
			if (s->beat != round && s->len == s->off && !s->ended && !s->closed) {
				memcpy(s->buf + s->len, ping, sizeof ping - 1);
				s->len += sizeof ping - 1;
				if (s->suspended) {
					s->suspended = 0;
					conn = s->conn;
				}
			}
			s->beat = round;
			pthread_mutex_unlock(&s->lock);
		}
		if (conn != NULL) {
			pthread_mutex_unlock(&svc->sse_lock);
			MHD_resume_connection(conn);
			pthread_mutex_lock(&svc->sse_lock);
		}
	} while (conn != NULL);
}

/* The reaper: stops the subscriptions of freed responses (a stop joins a
 * thread, which an HTTP thread must not wait for), until told to quit. */
static void *reaper(void *arg)
{
	struct service *svc = arg;
	struct timespec next;
	unsigned round = 0;
	struct sse *s;

	clock_gettime(CLOCK_REALTIME, &next);
	next.tv_sec += HEARTBEAT_S;
	pthread_mutex_lock(&svc->sse_lock);
	for (;;) {
		while (svc->sse_reap == NULL && !svc->reaper_quit) {
			if (pthread_cond_timedwait(&svc->sse_wake, &svc->sse_lock, &next) != ETIMEDOUT)
				continue;
			heartbeat(svc, ++round);
			clock_gettime(CLOCK_REALTIME, &next);
			next.tv_sec += HEARTBEAT_S;
		}
		if ((s = svc->sse_reap) == NULL)
			break;
		svc->sse_reap = s->next;
		pthread_mutex_unlock(&svc->sse_lock);
		esr_subscription_stop(s->sub); /* its status: the cancel we asked for */
		sse_free(s);
		pthread_mutex_lock(&svc->sse_lock);
		svc->sse_count--;
	}
	pthread_mutex_unlock(&svc->sse_lock);
	return NULL;
}

int events_start(struct service *svc)
{
	return pthread_create(&svc->reaper, NULL, reaper, svc) == 0 ? 0 : -1;
}

/* Called after the daemon stopped (every response freed): reap and join. */
void events_stop(struct service *svc)
{
	pthread_mutex_lock(&svc->sse_lock);
	svc->reaper_quit = 1;
	pthread_cond_signal(&svc->sse_wake);
	pthread_mutex_unlock(&svc->sse_lock);
	pthread_join(svc->reaper, NULL);
}

/* End every stream after what it has buffered: mark each, and resume those
 * suspended (one at a time, outside the locks). */
void events_end_all(struct service *svc)
{
	struct MHD_Connection *conn;
	struct sse *s;

	do {
		conn = NULL;
		pthread_mutex_lock(&svc->sse_lock);
		for (s = svc->sse_live; s != NULL && conn == NULL; s = s->next) {
			pthread_mutex_lock(&s->lock);
			s->ended = 1;
			pthread_cond_broadcast(&s->room);
			if (s->suspended) {
				s->suspended = 0;
				conn = s->conn;
			}
			pthread_mutex_unlock(&s->lock);
		}
		pthread_mutex_unlock(&svc->sse_lock);
		if (conn != NULL)
			MHD_resume_connection(conn);
	} while (conn != NULL);
}

/* A decimal position: 0 and *out set, -1 for anything else. */
static int parse_position(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Where the stream starts: after Last-Event-ID if given, else at ?from=. */
static const char *start_position(struct request *req, uint64_t *from)
{
	const char *last = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                               "Last-Event-ID");
	const char *arg = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	                                              "from");
	uint64_t v = 0;

	*from = 1;
	if (last != NULL) {
		if (parse_position(last, &v) != 0 || v == UINT64_MAX)
			return "bad Last-Event-ID";
		*from = v + 1;
	} else if (arg != NULL) {
		if (parse_position(arg, &v) != 0)
			return "bad from position";
		*from = v;
	}
	return NULL;
}

/* Take a stream slot and join the live list; refused while stopping. */
static struct sse *sse_new(struct service *svc, struct MHD_Connection *conn)
{
	struct sse *s = NULL;

	pthread_mutex_lock(&svc->sse_lock);
	if (!atomic_load(&svc->stopping) && svc->sse_count < svc->sse_max &&
	    (s = calloc(1, sizeof *s)) != NULL) {
		s->svc = svc;
		s->conn = conn;
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->room, NULL);
		s->next = svc->sse_live;
		svc->sse_live = s;
		svc->sse_count++;
	}
	pthread_mutex_unlock(&svc->sse_lock);
	return s;
}

/* Give back a stream that never got a response. */
static void sse_drop(struct service *svc, struct sse *s)
{
	pthread_mutex_lock(&svc->sse_lock);
	unlink_live(svc, s);
	svc->sse_count--;
	pthread_mutex_unlock(&svc->sse_lock);
	sse_free(s);
}

enum MHD_Result events_get(struct request *req)
{
	struct service *svc = req->svc;
	struct MHD_Response *resp;
	const char *why;
	uint64_t from;
	struct sse *s;
	esr_status st;

	if ((why = start_position(req, &from)) != NULL)
		return http_error(req, MHD_HTTP_BAD_REQUEST, why);
	if ((s = sse_new(svc, req->conn)) == NULL)
		return http_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many event streams");
	if ((st = esr_subscribe(svc->store, from, on_event, s, NULL, &s->sub)) != ESR_OK) {
		sse_drop(svc, s);
		return http_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, esr_strerror(st));
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_events, s,
	                                         on_free);
	if (resp == NULL) {
		on_free(s); /* the reaper stops the subscription */
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	req->streaming = 1;
	return http_queue(req, MHD_HTTP_OK, resp);
}
