/*
 * runtime/snapshot.h: the snapshot thread and its queue (runtime/snapshot.c).
 * See docs/architecture.md for where snapshots fit.
 */
#ifndef ESR_RUNTIME_SNAPSHOT_H
#define ESR_RUNTIME_SNAPSHOT_H

#include <pthread.h>
#include <stdint.h>

#include "esr/esr.h"

struct esr_runtime;
struct esr__actor;
struct esr__worker;

/* The snapshot thread and its bounded queue (snapshot.c). */
struct esr__snapper {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct snap_job *head, *tail;
	unsigned queued;
	int stop, started;
	pthread_t thread;
	uint64_t taken, dropped; /* ck_pr, for whole values; statistics, no ordering */
};

esr_status esr__snapper_start(struct esr_runtime *rt);
void esr__snapper_stop(struct esr_runtime *rt); /* saves what is queued first */
void esr__snapper_fini(struct esr_runtime *rt);
/* Encode a's state and queue it for the store (or drop it, counted). */
void esr__snapshot_take(struct esr__worker *w, struct esr__actor *a);

#endif /* ESR_RUNTIME_SNAPSHOT_H */
