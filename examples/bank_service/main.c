/*
 * main.c: bank_service, an HTTP service over the esr runtime. Parses the
 * flags, opens the store and the runtime, starts the HTTP daemon, then waits
 * for SIGTERM or SIGINT and shuts down in an order that loses nothing
 * accepted: stop accepting connections, end event streams, drain the
 * runtime (every accepted command completes and its request is answered),
 * wait for the answers to go out, then stop the daemon and close the store.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service.h"

#define DRAIN_WAIT_S 10 /* longest wait for accepted requests to be answered */

struct options {
	const char *listen;
	const char *store;
	unsigned http_threads;
	unsigned max_connections;
	unsigned max_streams;
	esr_runtime_config runtime;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: bank_service [options]\n"
	        "  --listen=HOST:PORT     address to listen on (default 127.0.0.1:8080;\n"
	        "                         port 0 picks a free one)\n"
	        "  --store=SPEC           memory | file:DIR | postgres:CONNINFO (default memory)\n"
	        "  --strategy=NAME        optimistic | unchecked\n"
	        "  --workers=N            esr worker threads\n"
	        "  --http-threads=N       HTTP threads (default 2)\n"
	        "  --max-connections=N    open connections at most (default 1024)\n"
	        "  --max-streams=N        /events clients at most (default 64)\n"
	        "  --help                 this text\n"
	        "The ESR_* environment variables configure the runtime; flags override them.\n"
	        "The first line on stdout is \"listening on http://HOST:PORT\".\n");
}

/* A whole decimal number in 1..max, or -1. */
static int parse_count(const char *text, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Print the complaint about a flag and give the exit status for it. */
static int bad(const char *flag, const char *value)
{
	fprintf(stderr, "bank_service: bad value for %s: '%s' (see --help)\n", flag, value);
	return 2;
}

/* One flag; 0 on success, 2 on a bad flag or value. */
static int parse_flag(struct options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	const char *v = eq ? eq + 1 : NULL;
	char flag[32];

	snprintf(flag, sizeof flag, "%.*s", (int)(n < 31 ? n : 31), arg);
	if (v == NULL) {
		fprintf(stderr, "bank_service: unknown flag or missing '=value': %s (see --help)\n", arg);
		return 2;
	}
	if (strcmp(flag, "--listen") == 0)
		o->listen = v;
	else if (strcmp(flag, "--store") == 0)
		o->store = v;
	else if (strcmp(flag, "--strategy") == 0) {
		if (esr_strategy_parse(v, &o->runtime.strategy) != ESR_OK)
			return bad(flag, v);
	} else if (strcmp(flag, "--workers") == 0) {
		if (parse_count(v, 1024, &o->runtime.workers) != 0)
			return bad(flag, v);
	} else if (strcmp(flag, "--http-threads") == 0) {
		if (parse_count(v, 256, &o->http_threads) != 0)
			return bad(flag, v);
	} else if (strcmp(flag, "--max-connections") == 0) {
		if (parse_count(v, 1000000, &o->max_connections) != 0)
			return bad(flag, v);
	} else if (strcmp(flag, "--max-streams") == 0) {
		if (parse_count(v, 100000, &o->max_streams) != 0)
			return bad(flag, v);
	} else {
		fprintf(stderr, "bank_service: unknown flag: %s (see --help)\n", flag);
		return 2;
	}
	return 0;
}

/*
 * The options: the runtime from ESR_* first, then the flags over it. Returns
 * -1 to go on, or the exit status (0 for --help, 2 for a bad flag or value).
 */
static int parse_options(int argc, char **argv, struct options *o)
{
	const char *field = NULL;
	int i, r;

	o->listen = "127.0.0.1:8080";
	o->store = "memory";
	o->http_threads = 2;
	o->max_connections = 1024;
	o->max_streams = 64;
	if (esr_runtime_config_from_env(&o->runtime, &field) != ESR_OK) {
		fprintf(stderr, "bank_service: bad environment variable %s\n",
		        field ? field : "ESR_*");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if ((r = parse_flag(o, argv[i])) != 0)
			return r;
	}
	/* A full mailbox answers 503 at once instead of holding an esr worker. */
	o->runtime.overflow = ESR_OVERFLOW_FAIL;
	if (esr_runtime_config_check(&o->runtime, &field) != ESR_OK) {
		fprintf(stderr, "bank_service: bad runtime setting: %s\n", field);
		return 2;
	}
	return -1;
}

/* HOST:PORT (HOST may be [v6]) into an address; 0 or -1. */
static int parse_listen(const char *text, struct sockaddr_storage *out)
{
	struct addrinfo hints, *ai = NULL;
	const char *colon = strrchr(text, ':');
	char host[256];
	size_t n;
	int ok;

	if (colon == NULL || colon[1] == '\0' || (n = (size_t)(colon - text)) == 0 ||
	    n >= sizeof host)
		return -1;
	memcpy(host, text, n);
	host[n] = '\0';
	if (host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
		return -1;
	ok = ai->ai_addrlen <= sizeof *out;
	if (ok) {
		memset(out, 0, sizeof *out);
		memcpy(out, ai->ai_addr, ai->ai_addrlen);
	}
	freeaddrinfo(ai);
	return ok ? 0 : -1;
}

/* Wait (bounded) until every request begun has been answered and completed. */
static int wait_requests(struct service *svc, int seconds)
{
	struct timespec until;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&svc->req_lock);
	while (atomic_load(&svc->requests) > 0 &&
	       pthread_cond_timedwait(&svc->req_idle, &svc->req_lock, &until) != ETIMEDOUT)
		;
	left = (int)atomic_load(&svc->requests);
	pthread_mutex_unlock(&svc->req_lock);
	return left;
}

/* The shutdown, phase by phase (see the file's comment). */
static void shut_down(struct service *svc)
{
	MHD_socket listen_fd;
	int left;

	atomic_store(&svc->stopping, 1);
	fprintf(stderr, "bank_service: stopping: no new connections\n");
	listen_fd = MHD_quiesce_daemon(svc->daemon);
	fprintf(stderr, "bank_service: ending event streams\n");
	events_end_all(svc);
	fprintf(stderr, "bank_service: draining accepted commands\n");
	esr_runtime_stop(svc->rt);
	fprintf(stderr, "bank_service: waiting for answers to go out\n");
	if ((left = wait_requests(svc, DRAIN_WAIT_S)) > 0)
		fprintf(stderr, "bank_service: %d requests still open after %d s\n", left,
		        DRAIN_WAIT_S);
	fprintf(stderr, "bank_service: stopping the HTTP daemon\n");
	MHD_stop_daemon(svc->daemon);
	svc->daemon = NULL;
	deadline_stop();
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
	fprintf(stderr, "bank_service: stopping subscriptions\n");
	events_stop(svc);
}

/* Open the store and start the runtime over it; 0, or the exit status
 * (said on stderr): 2 for a --store of no known kind, 1 for a failure. */
static int open_esr(struct service *svc, const struct options *o)
{
	char why[512] = "";
	esr_status st;

	if ((st = esr_store_open_spec(o->store, why, sizeof why, &svc->store)) != ESR_OK) {
		if (st == ESR_EINVAL) { /* the selector itself: a bad flag */
			fprintf(stderr, "bank_service: bad value for --store: '%s': %s\n", o->store,
			        why[0] ? why : esr_strerror(st));
			return 2;
		}
		fprintf(stderr, "bank_service: cannot open store %s: %s\n", o->store,
		        why[0] ? why : esr_strerror(st));
		return 1;
	}
	if ((st = esr_runtime_start(&o->runtime, svc->store, &svc->rt)) != ESR_OK ||
	    (st = esr_runtime_register(svc->rt, &bank_account_type)) != ESR_OK) {
		fprintf(stderr, "bank_service: cannot start the runtime: %s\n", esr_strerror(st));
		return 1;
	}
	return 0;
}

static void service_init(struct service *svc, const struct options *o)
{
	memset(svc, 0, sizeof *svc);
	pthread_mutex_init(&svc->req_lock, NULL);
	pthread_cond_init(&svc->req_idle, NULL);
	pthread_mutex_init(&svc->sse_lock, NULL);
	pthread_cond_init(&svc->sse_wake, NULL);
	svc->sse_max = o->max_streams;
}

static void service_destroy(struct service *svc)
{
	esr_runtime_destroy(svc->rt);
	esr_store_close(svc->store);
	pthread_cond_destroy(&svc->sse_wake);
	pthread_mutex_destroy(&svc->sse_lock);
	pthread_cond_destroy(&svc->req_idle);
	pthread_mutex_destroy(&svc->req_lock);
}

/* Block the stop signals in every thread (inherited by all threads started
 * after this), so that only the main thread's sigwait sees them. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	static struct service svc;
	struct sockaddr_storage addr;
	struct options o;
	char bound[300];
	sigset_t set;
	int r, sig = 0;

	if ((r = parse_options(argc, argv, &o)) >= 0)
		return r;
	if (parse_listen(o.listen, &addr) != 0)
		return bad("--listen", o.listen);
	block_signals(&set);
	service_init(&svc, &o);
	if ((r = open_esr(&svc, &o)) != 0) {
		service_destroy(&svc);
		return r;
	}
	if (events_start(&svc) != 0) {
		fprintf(stderr, "bank_service: cannot start a thread\n");
		service_destroy(&svc);
		return 1;
	}
	if (deadline_start() != 0) {
		fprintf(stderr, "bank_service: cannot start a thread\n");
		events_stop(&svc);
		service_destroy(&svc);
		return 1;
	}
	if (http_start(&svc, (const struct sockaddr *)&addr, o.http_threads,
	               o.max_connections, bound, sizeof bound) != 0) {
		fprintf(stderr, "bank_service: cannot listen on %s\n", o.listen);
		deadline_stop();
		events_stop(&svc);
		service_destroy(&svc);
		return 1;
	}
	printf("listening on http://%s\n", bound);
	fflush(stdout);
	sigwait(&set, &sig);
	fprintf(stderr, "bank_service: signal %d\n", sig);
	shut_down(&svc);
	service_destroy(&svc);
	fprintf(stderr, "bank_service: stopped\n");
	return 0;
}
