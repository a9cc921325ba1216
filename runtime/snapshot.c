/*
 * runtime/snapshot.c: taking snapshots off the command path. See
 * docs/architecture.md for the map.
 *
 * A worker that sees an actor's version cross a multiple of snapshot_every
 * encodes the state (it owns the state at that moment, and encoding is a
 * copy) and queues the bytes; one snapshot thread hands them to the store,
 * whose save may block on a disk or a round trip. The queue is bounded: when
 * it is full the snapshot is dropped and counted, since the next crossing
 * brings a fresher one and a missing snapshot only costs replay time. Stop
 * drains the queue, so the snapshots taken before it are saved.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor.h"
#include "runtime/runtime_internal.h"
#include "runtime/scheduler.h"
#include "runtime/snapshot.h"

/* Snapshots waiting for the store, at most. */
#define QUEUE_MAX 1024

struct snap_job {
	struct snap_job *next;
	const esr_aggregate_type *type; /* registered: outlives the runtime's threads */
	uint64_t version;
	size_t id_len, len;
	unsigned char *data;            /* after the id, in the same block */
	unsigned char id[];
};

void esr__snapshot_take(struct esr__worker *w, struct esr__actor *a)
{
	struct esr_runtime *rt = w->rt;
	struct esr__snapper *sp = &rt->snapper;
	size_t header = sizeof(struct snap_job) + a->key.id_len, len;
	struct snap_job *job;
	esr_status st;
	int queued = 0;

	header = (header + 15) & ~(size_t)15;
	st = esr__exec_encode(&a->x, a->x.type->state_size, header, (void **)&job, &len);
	if (st != ESR_OK) {
		ck_pr_inc_64(&sp->dropped);
		esr__warn(rt, a->x.type->name, a->key.id, a->key.id_len, "snapshot not taken", "%s",
		          esr_strerror(st));
		return;
	}
	job->next = NULL;
	job->type = a->x.type;
	job->version = a->x.version;
	job->id_len = a->key.id_len;
	job->len = len;
	job->data = (unsigned char *)job + header;
	memcpy(job->id, a->key.id, a->key.id_len);
	pthread_mutex_lock(&sp->lock);
	if (sp->queued < QUEUE_MAX && !sp->stop) {
		if (sp->tail)
			sp->tail->next = job;
		else
			sp->head = job;
		sp->tail = job;
		sp->queued++;
		queued = 1;
		pthread_cond_signal(&sp->cond);
	}
	pthread_mutex_unlock(&sp->lock);
	if (!queued) {
		free(job);
		ck_pr_inc_64(&sp->dropped);
	}
}

static void save(struct esr_runtime *rt, struct snap_job *job)
{
	esr_stream_id sid = {job->type->name, job->id, job->id_len};
	esr_snapshot snap = {job->version, job->type->snapshot_format, (uint32_t)job->len,
	                     job->data};
	esr_status st = esr_store_snapshot_save(rt->store, &sid, &snap);

	if (st == ESR_OK) {
		ck_pr_inc_64(&rt->snapper.taken);
	} else {
		ck_pr_inc_64(&rt->snapper.dropped);
		esr__warn(rt, job->type->name, job->id, job->id_len, "snapshot not saved",
		          "version %" PRIu64 ": %s", job->version, esr_strerror(st));
	}
}

static void *snapper_main(void *arg)
{
	struct esr_runtime *rt = arg;
	struct esr__snapper *sp = &rt->snapper;
	struct snap_job *job;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (sp->head == NULL && !sp->stop)
			pthread_cond_wait(&sp->cond, &sp->lock);
		if ((job = sp->head) == NULL)
			break; /* stopping, and drained */
		if ((sp->head = job->next) == NULL)
			sp->tail = NULL;
		sp->queued--;
		pthread_mutex_unlock(&sp->lock);
		save(rt, job);
		free(job);
		pthread_mutex_lock(&sp->lock);
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

esr_status esr__snapper_start(struct esr_runtime *rt)
{
	struct esr__snapper *sp = &rt->snapper;

	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	if (rt->cfg.snapshot_every == 0)
		return ESR_OK;
	if (pthread_create(&sp->thread, NULL, snapper_main, rt) != 0)
		return ESR_ENOMEM;
	sp->started = 1;
	return ESR_OK;
}

void esr__snapper_stop(struct esr_runtime *rt)
{
	struct esr__snapper *sp = &rt->snapper;

	pthread_mutex_lock(&sp->lock);
	sp->stop = 1;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	if (sp->started)
		pthread_join(sp->thread, NULL);
	sp->started = 0;
}

void esr__snapper_fini(struct esr_runtime *rt)
{
	pthread_mutex_destroy(&rt->snapper.lock);
	pthread_cond_destroy(&rt->snapper.cond);
}
