/*
 * service.h: what the service's files share: the service itself (runtime,
 * store, HTTP daemon, counters), one HTTP request's state, and the calls each
 * file offers the others.
 */
#ifndef BANK_SERVICE_SERVICE_H
#define BANK_SERVICE_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include <esr/esr.h>

#include "bank.h"

#define BODY_MAX 4096           /* largest request body accepted */
#define BODY_DEADLINE_MS 5000   /* a body still arriving after this is cut off */
#define LATENCY_BUCKETS 12

struct sse;

struct metrics {
	atomic_uint_fast64_t by_class[6]; /* [1..5]: 1xx..5xx answers; [0]: other */
	atomic_uint_fast64_t bucket[LATENCY_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t count;
};

struct service {
	esr_store *store;
	esr_runtime *rt;
	struct MHD_Daemon *daemon;
	atomic_int stopping;

	/* Requests begun and not yet completed (MHD's completion callback):
	 * counted without the lock, which only the drain's wait and its
	 * wake-up take (http.c). */
	pthread_mutex_t req_lock;
	pthread_cond_t req_idle;
	atomic_ulong requests;

	/* SSE streams: live ones, and those whose subscription is to stop. */
	pthread_mutex_t sse_lock;
	pthread_cond_t sse_wake;
	struct sse *sse_live;
	struct sse *sse_reap;
	unsigned sse_count, sse_max;
	int reaper_quit;
	pthread_t reaper;

	struct metrics metrics;
};

enum route {
	ROUTE_ACCOUNT_COMMAND,
	ROUTE_ACCOUNT_GET,
	ROUTE_EVENTS,
	ROUTE_METRICS,
	ROUTE_HEALTHZ
};

/* One HTTP request, from its first call to MHD's completion callback. */
struct request {
	struct service *svc;
	struct MHD_Connection *conn;
	long long started_ns;  /* monotonic, at the first call */
	enum route route;
	unsigned answered_status; /* the status queued, 0 before */
	int streaming;            /* an SSE response: not in the latency histogram */

	char id[ESR_ID_MAX];
	size_t id_len;
	char key[ESR_COMMAND_ID_MAX];
	size_t key_len;

	size_t body_len;
	int too_big;

	/* The esr round trip: set by the handler, then by the callback. */
	pthread_mutex_t lock;
	int pending;   /* a command or query is out */
	int done;      /* its outcome is in */
	int suspended; /* the connection is suspended waiting for it */
	struct bank_command cmd;
	struct bank_view view;
	esr_status status;
	esr_result result;
	esr_status query_status; /* a duplicate's balance query */

	char body[BODY_MAX];    /* last: not zeroed when a request begins */
};

/* http.c */
int http_start(struct service *svc, const struct sockaddr *addr, unsigned threads,
               unsigned max_connections, char *bound, size_t bound_size);
enum MHD_Result http_json(struct request *req, unsigned code, void *json);
enum MHD_Result http_error(struct request *req, unsigned code, const char *message);
enum MHD_Result http_queue(struct request *req, unsigned code, struct MHD_Response *resp);
long long http_now_ns(void);

/* accounts.c */
enum MHD_Result accounts_post(struct request *req, enum bank_kind kind);
enum MHD_Result accounts_get(struct request *req);
enum MHD_Result accounts_resumed(struct request *req);

/* events_sse.c */
enum MHD_Result events_get(struct request *req);
int events_start(struct service *svc);
void events_end_all(struct service *svc);
void events_stop(struct service *svc);

/* deadline.c: the bound on sending headers (the sweeper thread) */
void deadline_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode code);
void deadline_request_begins(struct MHD_Connection *conn);
void deadline_request_ends(struct MHD_Connection *conn);
int deadline_start(void);
void deadline_stop(void);

/* metrics.c */
void metrics_record(struct metrics *m, unsigned status, long long ns);
enum MHD_Result metrics_get(struct request *req);

#endif /* BANK_SERVICE_SERVICE_H */
