/* tests/async_store.c: appends completed later by a thread (async_store.h). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "async_store.h"
#include "forward_store.h"

struct request {
	struct request *next;
	esr_stream_id sid;
	uint64_t expected;
	esr_event *events;
	size_t n;
	esr_append_cb done;
	void *ctx;
	/* type name, id, payloads follow */
};

struct async {
	esr_store *inner; /* first: forward_store.h */
	int own_inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request *head, *tail;
	int stop;
	pthread_t thread;
};

static void *complete_later(void *arg)
{
	struct async *as = arg;
	struct request *r;
	esr_append_result res;

	pthread_mutex_lock(&as->lock);
	for (;;) {
		while (as->head == NULL && !as->stop)
			pthread_cond_wait(&as->cond, &as->lock);
		if ((r = as->head) == NULL)
			break;
		as->head = r->next;
		if (as->head == NULL)
			as->tail = NULL;
		pthread_mutex_unlock(&as->lock);
		esr_store_append(as->inner, &r->sid, r->expected, r->events, r->n, &res);
		r->done(r->ctx, &res);
		free(r);
		pthread_mutex_lock(&as->lock);
	}
	pthread_mutex_unlock(&as->lock);
	return NULL;
}

static esr_status as_append(void *impl, const esr_stream_id *sid, uint64_t expected,
                            const esr_event *events, size_t n, esr_append_cb done,
                            void *ctx)
{
	struct async *as = impl;
	size_t i, bytes = strlen(sid->type) + 1 + sid->id_len + n * sizeof(esr_event);
	struct request *r;
	char *p;

	for (i = 0; i < n; i++)
		bytes += events[i].payload_len;
	if ((r = malloc(sizeof *r + bytes)) == NULL)
		return ESR_ENOMEM;
	r->events = (esr_event *)(r + 1); /* esr_event is pointer-aligned */
	p = (char *)(r->events + n);
	memcpy(r->events, events, n * sizeof *events);
	for (i = 0; i < n; i++) {
		if (events[i].payload_len)
			memcpy(p, events[i].payload, events[i].payload_len);
		r->events[i].payload = events[i].payload_len ? p : NULL;
		p += events[i].payload_len;
	}
	strcpy(p, sid->type);
	r->sid.type = p;
	p += strlen(sid->type) + 1;
	memcpy(p, sid->id, sid->id_len);
	r->sid.id = p;
	r->sid.id_len = sid->id_len;
	r->expected = expected;
	r->n = n;
	r->done = done;
	r->ctx = ctx;
	r->next = NULL;
	pthread_mutex_lock(&as->lock);
	if (as->tail)
		as->tail->next = r;
	else
		as->head = r;
	as->tail = r;
	pthread_cond_signal(&as->cond);
	pthread_mutex_unlock(&as->lock);
	return ESR_OK;
}

static esr_status as_read(void *impl, const esr_stream_id *sid, uint64_t from,
                          esr_visit_fn visit, void *ctx)
{
	return esr_store_read(((struct async *)impl)->inner, sid, from, visit, ctx);
}

static esr_status as_version(void *impl, const esr_stream_id *sid, uint64_t *v)
{
	return esr_store_version(((struct async *)impl)->inner, sid, v);
}

static void as_destroy(void *impl)
{
	struct async *as = impl;

	pthread_mutex_lock(&as->lock);
	as->stop = 1;
	pthread_cond_signal(&as->cond);
	pthread_mutex_unlock(&as->lock);
	pthread_join(as->thread, NULL);
	pthread_mutex_destroy(&as->lock);
	pthread_cond_destroy(&as->cond);
	if (as->own_inner)
		esr_store_close(as->inner);
	free(as);
}

/* No resolve: actors over this store append by id, the path without handles. */
static const esr_store_vtable async_vtable = {
	.name = "async",
	.append = as_append,
	.read = as_read,
	.version = as_version,
	.destroy = as_destroy,
	FORWARD_STORE_GLOBAL_OPS,
};

esr_status async_store_open(esr_store *inner, int own_inner, esr_store **out)
{
	struct async *as = calloc(1, sizeof *as);
	esr_status st;

	if (as == NULL)
		return ESR_ENOMEM;
	as->inner = inner;
	as->own_inner = own_inner;
	pthread_mutex_init(&as->lock, NULL);
	pthread_cond_init(&as->cond, NULL);
	if (pthread_create(&as->thread, NULL, complete_later, as) != 0) {
		free(as);
		return ESR_ENOMEM;
	}
	if ((st = esr_store_create(&async_vtable, as, out)) != ESR_OK)
		as_destroy(as);
	return st;
}
