/*
 * http.c: the HTTP side: the daemon, routing a request to its handler,
 * reading and bounding request bodies, queuing responses, and counting each
 * request from its first call to its completion.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "service.h"

#define CONNECTION_TIMEOUT_S 5
/* A connection's memory pool (headers, read and write buffers), which
 * libmicrohttpd zeroes for each request: at 64 KiB that memset was 6.5% of
 * the service's time under deposits. 16 KiB holds headers of up to about
 * 8 KiB, what common servers allow. */
#define CONNECTION_MEMORY (16 * 1024)

long long http_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Queue resp with the headers every answer carries, and drop our reference. */
enum MHD_Result http_queue(struct request *req, unsigned code, struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (resp == NULL)
		return MHD_NO;
	if (code == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	/* While stopping, a kept-alive connection gets no further request. */
	if (atomic_load(&req->svc->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	r = MHD_queue_response(req->conn, code, resp);
	MHD_destroy_response(resp);
	if (r == MHD_YES)
		req->answered_status = code;
	return r;
}

/* A JSON response of `json` (whose reference it takes), a line of text. */
static struct MHD_Response *json_response(json_t *json)
{
	struct MHD_Response *resp;
	char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
	size_t len;

	json_decref(json);
	if (text == NULL)
		return NULL;
	len = strlen(text);
	text[len] = '\n'; /* the NUL's byte becomes the line's end */
	resp = MHD_create_response_from_buffer(len + 1, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return resp;
}

enum MHD_Result http_json(struct request *req, unsigned code, void *json)
{
	return http_queue(req, code, json_response(json));
}

enum MHD_Result http_error(struct request *req, unsigned code, const char *message)
{
	return http_json(req, code, json_pack("{s:s}", "error", message));
}

/* 405, naming the method the path takes. */
static enum MHD_Result method_not_allowed(struct request *req, const char *allow)
{
	struct MHD_Response *resp = json_response(json_pack("{s:s}", "error",
	                                                    "method not allowed"));

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	return http_queue(req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

/* The command a path's last segment names, or -1. */
static int command_kind(const char *op)
{
	if (strcmp(op, "open") == 0)
		return BANK_OPEN;
	if (strcmp(op, "deposit") == 0)
		return BANK_DEPOSIT;
	if (strcmp(op, "withdraw") == 0)
		return BANK_WITHDRAW;
	return -1;
}

/*
 * Route by path, then by method: the outcome is a route and the kind of
 * command, or an answer queued (404, 405, 400 for a bad id). Returns 1 when
 * the request goes on, 0 when it was answered (*r says how).
 */
static int route(struct request *req, const char *url, const char *method,
                 int *kind, enum MHD_Result *r)
{
	static const char prefix[] = "/accounts/";
	const char *id, *slash;
	const char *allow = "GET";
	int method_ok = strcmp(method, "GET") == 0;

	*kind = -1;
	if (strcmp(url, "/healthz") == 0)
		req->route = ROUTE_HEALTHZ;
	else if (strcmp(url, "/metrics") == 0)
		req->route = ROUTE_METRICS;
	else if (strcmp(url, "/events") == 0)
		req->route = ROUTE_EVENTS;
	else if (strncmp(url, prefix, sizeof prefix - 1) == 0) {
		id = url + sizeof prefix - 1;
		slash = strchr(id, '/');
		if (slash == NULL) {
			req->route = ROUTE_ACCOUNT_GET;
			req->id_len = strlen(id);
		} else {
			if (strchr(slash + 1, '/') != NULL || (*kind = command_kind(slash + 1)) < 0) {
				*r = http_error(req, MHD_HTTP_NOT_FOUND, "no such path");
				return 0;
			}
			req->route = ROUTE_ACCOUNT_COMMAND;
			req->id_len = (size_t)(slash - id);
			allow = "POST";
			method_ok = strcmp(method, "POST") == 0;
		}
		if (method_ok && (req->id_len == 0 || req->id_len > ESR_ID_MAX)) {
			*r = http_error(req, MHD_HTTP_BAD_REQUEST,
			                req->id_len == 0 ? "empty account id"
			                                 : "account id too long");
			return 0;
		}
		if (method_ok)
			memcpy(req->id, id, req->id_len);
	} else {
		*r = http_error(req, MHD_HTTP_NOT_FOUND, "no such path");
		return 0;
	}
	if (!method_ok) {
		*r = method_not_allowed(req, allow);
		return 0;
	}
	return 1;
}

/* The checks a command makes on its headers before any body is read. */
static int command_headers(struct request *req, enum MHD_Result *r)
{
	const char *key = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                              "Idempotency-Key");
	const char *length = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (length != NULL && strtoull(length, NULL, 10) > BODY_MAX) {
		*r = http_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "body over 4096 bytes");
		return 0;
	}
	if (key != NULL) {
		req->key_len = strlen(key);
		if (req->key_len == 0 || req->key_len > ESR_COMMAND_ID_MAX) {
			*r = http_error(req, MHD_HTTP_BAD_REQUEST,
			                req->key_len == 0 ? "empty Idempotency-Key"
			                                  : "Idempotency-Key over 64 bytes");
			return 0;
		}
		memcpy(req->key, key, req->key_len);
	}
	return 1;
}

/* A request's first call: make its state, count it, answer what needs no body. */
static enum MHD_Result first_call(struct service *svc, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
	struct request *req = malloc(sizeof *req);
	enum MHD_Result r = MHD_YES;
	int kind;

	if (req == NULL)
		return MHD_NO;
	/* Everything but the body, 4 KiB that body_len says how much of is
	 * written: zeroing it was a twentieth of a deposit's time. */
	memset(req, 0, offsetof(struct request, body));
	req->svc = svc;
	req->conn = conn;
	req->started_ns = http_now_ns();
	pthread_mutex_init(&req->lock, NULL);
	atomic_fetch_add(&svc->requests, 1);
	deadline_request_begins(conn);
	*con_cls = req;

	if (atomic_load(&svc->stopping))
		return http_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping");
	if (!route(req, url, method, &kind, &r))
		return r;
	if (req->route == ROUTE_ACCOUNT_COMMAND) {
		req->cmd.kind = (enum bank_kind)kind;
		if (!command_headers(req, &r))
			return r;
	}
	return MHD_YES;
}

/* Take a piece of the body: kept up to BODY_MAX, the rest dropped unread
 * into memory; a body still arriving after the deadline ends the connection. */
static enum MHD_Result body_piece(struct request *req, const char *data, size_t *size)
{
	if (http_now_ns() - req->started_ns > (long long)BODY_DEADLINE_MS * 1000000LL)
		return MHD_NO;
	if (!req->too_big && *size <= BODY_MAX - req->body_len) {
		memcpy(req->body + req->body_len, data, *size);
		req->body_len += *size;
	} else {
		req->too_big = 1;
	}
	*size = 0;
	return MHD_YES;
}

/* The request is whole: hand it to its route's handler. */
static enum MHD_Result dispatch(struct request *req)
{
	struct MHD_Response *resp;

	if (atomic_load(&req->svc->stopping))
		return http_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping");
	switch (req->route) {
	case ROUTE_ACCOUNT_COMMAND:
		if (req->too_big)
			return http_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "body over 4096 bytes");
		return accounts_post(req, req->cmd.kind);
	case ROUTE_ACCOUNT_GET:
		return accounts_get(req);
	case ROUTE_EVENTS:
		return events_get(req);
	case ROUTE_METRICS:
		return metrics_get(req);
	case ROUTE_HEALTHZ:
		resp = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
		return http_queue(req, MHD_HTTP_OK, resp);
	}
	return MHD_NO;
}

/* MHD's access handler: the first call, body pieces, the last call, and the
 * call after a suspended request is resumed. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct request *req = *con_cls;

	(void)version;
	if (req == NULL)
		return first_call(cls, conn, url, method, con_cls);
	if (req->answered_status != 0) {
		*upload_data_size = 0; /* answered early: the rest is not read */
		return MHD_YES;
	}
	if (req->pending)
		return accounts_resumed(req);
	if (*upload_data_size != 0)
		return body_piece(req, upload_data, upload_data_size);
	return dispatch(req);
}

/* MHD's completion callback: count the answer and free the request's state. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct service *svc = cls;
	struct request *req = *con_cls;

	(void)toe;
	deadline_request_ends(conn);
	if (req == NULL)
		return;
	*con_cls = NULL;
	if (req->answered_status != 0 && !req->streaming)
		metrics_record(&svc->metrics, req->answered_status,
		               http_now_ns() - req->started_ns);
	else if (req->answered_status != 0)
		metrics_record(&svc->metrics, req->answered_status, -1);
	pthread_mutex_destroy(&req->lock);
	free(req);
	/* The last request out wakes the drain (main.c, wait_requests), which
	 * sets `stopping` before it looks at the count under the lock: either
	 * it sees our decrement or we see `stopping` (both sequentially
	 * consistent), and taking the lock to broadcast means the wake cannot
	 * fall between its look and its wait. */
	if (atomic_fetch_sub(&svc->requests, 1) == 1 && atomic_load(&svc->stopping)) {
		pthread_mutex_lock(&svc->req_lock);
		pthread_cond_broadcast(&svc->req_idle);
		pthread_mutex_unlock(&svc->req_lock);
	}
}

/* The address the daemon listens on, as "HOST:PORT" for the first line. */
static int bound_address(struct MHD_Daemon *d, char *out, size_t size)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN];

	if (info == NULL || getsockname(info->listen_fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(out, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(out, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
	}
	return 0;
}

/*
 * Start the daemon: poll() in internal threads (a pool), suspend/resume for
 * requests waiting on esr, and bounds on time, memory and connections so a
 * slow or hostile client holds only its own connection.
 *
 * Not epoll: with libmicrohttpd 0.9.75's epoll mode, a burst of 128 or more
 * connections left some with requests unread while their thread slept in
 * epoll_wait, until the idle timeout closed them (wrk counted them as read
 * errors and timeouts). poll() never lost one in the same runs, and with no
 * epoll_ctl per suspension and resumption it was also 7-10% faster for
 * deposits at 64 connections.
 */
int http_start(struct service *svc, const struct sockaddr *addr, unsigned threads,
               unsigned max_connections, char *bound, size_t bound_size)
{
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;

	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	svc->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, svc,
		MHD_OPTION_SOCK_ADDR, addr,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_CONNECTION_LIMIT, max_connections,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, svc,
		MHD_OPTION_NOTIFY_CONNECTION, deadline_on_connection, NULL,
		MHD_OPTION_END);
	if (svc->daemon == NULL)
		return -1;
	if (bound_address(svc->daemon, bound, bound_size) != 0) {
		MHD_stop_daemon(svc->daemon);
		svc->daemon = NULL;
		return -1;
	}
	return 0;
}
