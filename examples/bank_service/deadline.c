/*
 * deadline.c: a bound on how long a client may take to send a request's
 * headers. libmicrohttpd's timeout is an idle one, which a client sending
 * one byte a second never trips, and the handler's own deadline covers only
 * bodies (it is not called before the headers are whole). So each
 * connection is watched from its start and from the end of each of its
 * requests: if no request reaches the handler within HEADER_DEADLINE_S, a
 * sweeper shuts the socket down, which libmicrohttpd then sees as the
 * client leaving and cleans up as usual.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "service.h"

#define HEADER_DEADLINE_S 10 /* twice the idle timeout: only slow senders hit it */

struct watched {
	int fd;
	atomic_llong since_ns; /* the connection's start, or its last request's end */
	atomic_int busy;       /* a request is in the handler's hands */
	int cut;
	struct watched *prev, *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct watched *head;
static int quit;
static pthread_t sweeper;

static struct watched *watched_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info != NULL ? info->socket_context : NULL;
}

/*
 * libmicrohttpd's connection notice. It calls CLOSED before it closes the
 * socket, and the sweeper shuts a socket down only under `lock` while the
 * connection is listed: so it never touches a descriptor that was closed
 * and reused by another connection.
 */
void deadline_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *info;
	struct watched *w;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info == NULL || (w = calloc(1, sizeof *w)) == NULL)
			return; /* not watched: the idle timeout still applies */
		w->fd = info->connect_fd;
		atomic_store(&w->since_ns, http_now_ns());
		pthread_mutex_lock(&lock);
		w->next = head;
		if (head != NULL)
			head->prev = w;
		head = w;
		pthread_mutex_unlock(&lock);
		*socket_context = w;
		return;
	}
	if ((w = *socket_context) == NULL)
		return;
	pthread_mutex_lock(&lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&lock);
	*socket_context = NULL;
	free(w);
}

void deadline_request_begins(struct MHD_Connection *conn)
{
	struct watched *w = watched_of(conn);

	if (w != NULL)
		atomic_store(&w->busy, 1);
}

void deadline_request_ends(struct MHD_Connection *conn)
{
	struct watched *w = watched_of(conn);

	if (w != NULL) {
		atomic_store(&w->since_ns, http_now_ns());
		atomic_store(&w->busy, 0);
	}
}

/* Once a second: cut the connections whose headers are overdue. */
static void *sweep(void *arg)
{
	const long long bound = (long long)HEADER_DEADLINE_S * 1000000000LL;
	struct timespec next;
	struct watched *w;
	long long now;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!quit) {
		clock_gettime(CLOCK_REALTIME, &next);
		next.tv_sec += 1;
		while (!quit && pthread_cond_timedwait(&wake, &lock, &next) != ETIMEDOUT)
			;
		now = http_now_ns();
		for (w = head; w != NULL && !quit; w = w->next) {
			if (!w->cut && !atomic_load(&w->busy) &&
			    now - atomic_load(&w->since_ns) > bound) {
				shutdown(w->fd, SHUT_RDWR);
				w->cut = 1;
			}
		}
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int deadline_start(void)
{
	return pthread_create(&sweeper, NULL, sweep, NULL) == 0 ? 0 : -1;
}

void deadline_stop(void)
{
	pthread_mutex_lock(&lock);
	quit = 1;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(sweeper, NULL);
}
