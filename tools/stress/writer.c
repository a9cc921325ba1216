/*
 * tools/stress/writer.c: see writer.h.
 *
 * Slot states: IDLE, then IN_FLIGHT once submitted. The completion callback
 * writes the outcome and swaps DONE in with release order; the thread loads
 * DONE with acquire before reading the outcome. A thread that finds its oldest
 * slot still in flight spins briefly, then swaps IN_FLIGHT for SLEEPING and
 * sleeps on a futex; the callback wakes it only if it replaced SLEEPING, so a
 * command nobody waits on costs no system call. When the window is full it
 * sleeps on the slot a quarter of the window further on (wait_ahead), so a
 * worker pays one wake for many completions rather than one each.
 *
 * Only this thread stores IDLE and IN_FLIGHT, with relaxed order: the slot
 * reaches a worker through the submit call, whose mailbox push publishes it
 * (the slot's IN_FLIGHT and message included), and the worker hands it back
 * only through the acq_rel exchange to DONE.
 *
 * At --rate the writer is an open loop: command j is due at start + j times
 * the interval, whether or not earlier ones have completed, and its latency
 * counts from when it was due, not from when it was sent. A writer held up by
 * a full window or a slow submit therefore charges the wait to the commands
 * that waited, instead of quietly offering less load (coordinated omission).
 * Commands already due go out together, up to --batch per call.
 *
 * Under --duplicates some commands are sent again with the same command id
 * (stress_dup_kind): right behind the first send, once the first send
 * completed, or by the next writer as one of its own sends. A resend takes a
 * slot like any send, is not paced and not timed, and leaves the command's
 * outcome to its first send; a resend that completes ESR_OK lists the
 * command in `applied`, which the check counts as accepted whoever sent it.
 */
#define _GNU_SOURCE /* syscall */
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "sys.h"
#include "writer.h"

enum { SLOT_IDLE, SLOT_IN_FLIGHT, SLOT_SLEEPING, SLOT_DONE };

esr_status writer_init(struct writer *w, const struct stress_plan *p, unsigned index,
                       esr_runtime *rt)
{
	const struct stress_options *o = p->opt;
	uint64_t share = o->commands ? (o->commands + o->writers - 1) / o->writers : 1u << 16;

	memset(w, 0, sizeof *w);
	w->plan = p;
	w->index = index;
	w->rt = rt;
	w->interval_ns = o->rate ? 1e9 * o->writers / (double)o->rate : 0;
	hist_init(&w->latency);
	w->slots = calloc(o->window, sizeof *w->slots);
	w->batch = calloc(o->batch, sizeof *w->batch);
	w->cap = share;
	w->outcome = calloc(w->cap, 1);
	if (w->slots == NULL || w->batch == NULL || w->outcome == NULL) {
		writer_free(w);
		return ESR_ENOMEM;
	}
	return ESR_OK;
}

void writer_free(struct writer *w)
{
	free(w->slots);
	free(w->batch);
	free(w->outcome);
	free(w->later.v);
	free(w->applied.v);
	w->slots = NULL;
	w->batch = NULL;
	w->outcome = NULL;
	w->later = w->applied = (struct seqs){NULL, 0, 0};
}

static int seqs_add(struct seqs *q, uint64_t i)
{
	uint64_t *v;

	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		if ((v = realloc(q->v, cap * sizeof *v)) == NULL)
			return -1;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = i;
	return 0;
}

enum stress_dup stress_dup_kind(const struct stress_plan *p, uint64_t i)
{
	uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ULL ^ p->opt->seed;

	if (p->opt->duplicates <= 0)
		return DUP_NONE;
	h ^= h >> 31; /* a splitmix64 finish */
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	if ((double)(h >> 11) * 0x1p-53 >= p->opt->duplicates)
		return DUP_NONE;
	return (enum stress_dup)(DUP_IN_FLIGHT + h % 3);
}

static void on_done(void *ctx, esr_status status, const esr_result *result)
{
	struct slot *s = ctx;

	s->status = status;
	s->version = result->version;
	s->duplicate = result->duplicate;
	if (s->timed)
		s->done_ns = stress_now_ns();
	/* After the swap the slot belongs to the thread again: only its address
	 * is used below, and a wake on a reused slot is merely spurious. */
	if (atomic_exchange_explicit(&s->state, SLOT_DONE, memory_order_acq_rel) == SLOT_SLEEPING)
		syscall(SYS_futex, &s->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* s's state after spinning up to 256 times for it to be DONE (acquire). */
static uint32_t spin_for_done(struct slot *s)
{
	uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
	unsigned spins;

	for (spins = 0; st != SLOT_DONE && spins < 256; spins++) {
		ck_pr_stall();
		st = atomic_load_explicit(&s->state, memory_order_acquire);
	}
	return st;
}

static void wait_done(struct slot *s)
{
	uint32_t st = spin_for_done(s);

	while (st != SLOT_DONE) {
		if (st == SLOT_IN_FLIGHT &&
		    !atomic_compare_exchange_strong_explicit(&s->state, &st, SLOT_SLEEPING,
		                                             memory_order_acquire,
		                                             memory_order_acquire))
			continue; /* st now holds what we found */
		syscall(SYS_futex, &s->state, FUTEX_WAIT_PRIVATE, SLOT_SLEEPING, NULL, NULL, 0);
		st = atomic_load_explicit(&s->state, memory_order_acquire);
	}
}

static void record(struct writer *w, uint64_t j, esr_status st)
{
	uint8_t out;

	switch (st) {
	case ESR_OK: out = OUT_ACCEPTED; w->accepted++; break;
	case ESR_EREJECTED: out = OUT_REJECTED; w->rejected++; break;
	case ESR_ECONFLICT: out = OUT_EXHAUSTED; w->exhausted++; break;
	default:
		out = OUT_ERROR;
		if (w->errors++ == 0)
			w->first_error = st;
	}
	w->outcome[j] = out;
	atomic_store_explicit(&w->completed, atomic_load_explicit(&w->completed,
	                      memory_order_relaxed) + 1, memory_order_relaxed);
}

static void reap(struct writer *w, struct slot *s)
{
	const struct stress_plan *p = w->plan;

	wait_done(s);
	w->dup_detected += s->duplicate != 0;
	if (s->resend) {
		if (s->status == ESR_OK && seqs_add(&w->applied, s->msg.seq) != 0)
			w->fatal = ESR_ENOMEM;
	} else {
		enum stress_dup kind = stress_dup_kind(p, s->msg.seq);

		if (s->timed)
			hist_record(&w->latency, s->done_ns - s->submit_ns);
		record(w, s->j, s->status);
		/* Alone, a writer is also the next writer (see add_resends). */
		if ((kind == DUP_AFTER || (kind == DUP_OTHER_WRITER && p->opt->writers == 1)) &&
		    seqs_add(&w->later, s->msg.seq) != 0)
			w->fatal = ESR_ENOMEM;
	}
	atomic_store_explicit(&s->state, SLOT_IDLE, memory_order_relaxed);
}

/* Submit the batch; a command the runtime refused is an error of the run. */
static void flush(struct writer *w, unsigned *n)
{
	uint64_t now = stress_now_ns();
	size_t accepted = 0, i;
	esr_status st;

	if (*n == 0)
		return;
	for (i = 0; i < *n; i++) {
		struct slot *s = w->batch[i].ctx;
		if (w->interval_ns == 0) /* at a rate, it holds the due time */
			s->submit_ns = now;
		atomic_store_explicit(&s->state, SLOT_IN_FLIGHT, memory_order_relaxed);
	}
	st = esr_submit_many_cb(w->rt, w->batch, *n, on_done, &accepted);
	for (i = accepted; st != ESR_OK && i < *n; i++) {
		struct slot *s = w->batch[i].ctx;
		atomic_store_explicit(&s->state, SLOT_IDLE, memory_order_relaxed);
		if (!s->resend)
			record(w, s->j, st);
		w->fatal = st;
	}
	*n = 0;
}

/* Wait until monotonic time `due`: sleep while far, yield, then spin. */
static void wait_until(uint64_t due)
{
	uint64_t now;

	while ((now = stress_now_ns()) < due) {
		if (due - now > 100000) {
			struct timespec ts = {0, (long)(due - now - 50000)};
			nanosleep(&ts, NULL);
		} else if (due - now > 2000) {
			sched_yield(); /* a worker may want this core */
		} else {
			ck_pr_stall();
		}
	}
}

/* At --rate: command j's due time, sending what is queued before waiting. */
static uint64_t pace(struct writer *w, uint64_t j, unsigned *n)
{
	uint64_t due = w->start_ns + (uint64_t)((double)j * w->interval_ns);

	if (stress_now_ns() < due) {
		flush(w, n);
		wait_until(due);
	}
	return due;
}

static int grow(struct writer *w, uint64_t j)
{
	uint8_t *o;

	if (j < w->cap)
		return 0;
	if ((o = realloc(w->outcome, w->cap * 2)) == NULL)
		return -1;
	memset(o + w->cap, 0, w->cap);
	w->outcome = o;
	w->cap *= 2;
	return 0;
}

/*
 * The oldest slot s is still in flight after a spin: the window is full.
 * Rather than sleep until s alone completes, and then again for the next
 * (a system call each, on the thread that completes them), sleep until the
 * slot sent a quarter of the window after s has: by then most of the older
 * ones have completed too, and the writer sends them again in one go.
 */
static void wait_ahead(struct writer *w, struct slot *s)
{
	unsigned window = w->plan->opt->window;
	struct slot *ahead;

	if (spin_for_done(s) == SLOT_DONE)
		return;
	ahead = &w->slots[(size_t)(s - w->slots + window / 4) % window];
	if (ahead != s && atomic_load_explicit(&ahead->state, memory_order_relaxed) != SLOT_IDLE)
		wait_done(ahead);
}

/* Queue command i (number j of its writer) in the next slot; a resend is
 * not paced (due 0: flush stamps it) and keeps its first send's outcome. */
static void send(struct writer *w, unsigned *n, uint64_t i, uint64_t j, int resend, uint64_t due)
{
	const struct stress_plan *p = w->plan;
	const struct stress_options *o = p->opt;
	struct slot *s = &w->slots[w->items++ % o->window];
	const struct stress_cmd *c = &p->cmds[i % p->ncmds];
	esr_command_id id = {NULL, 0};

	if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_IDLE) {
		wait_ahead(w, s);
		reap(w, s);
	}
	s->msg = (struct stress_msg){*c, i, NULL};
	s->j = j;
	s->resend = resend;
	s->timed = !resend && (w->interval_ns != 0 || hist_timed(j));
	s->duplicate = 0;
	s->submit_ns = due;
	if (o->command_ids) {
		s->cid[0] = 's';
		memcpy(s->cid + 1, &i, sizeof i);
		id = (esr_command_id){s->cid, sizeof s->cid};
	}
	w->dup_sent += resend != 0;
	w->batch[(*n)++] = (esr_submission){p->wl->type.name, stress_plan_id(p, c->aggregate),
	                                    p->id_lens[c->aggregate], &s->msg, s, id};
	if (*n == o->batch)
		flush(w, n);
}

/* Resend this writer's commands that completed (DUP_AFTER). */
static void send_later(struct writer *w, unsigned *n)
{
	size_t k;

	for (k = 0; k < w->later.n; k++)
		send(w, n, w->later.v[k], 0, 1, 0);
	w->later.n = 0;
}

/* The resends due now: send_later's, and the next writer's command j when
 * it is a DUP_OTHER_WRITER (counted runs only: a timed writer may never
 * send its own first). */
static void add_resends(struct writer *w, unsigned *n, uint64_t j)
{
	const struct stress_options *o = w->plan->opt;
	uint64_t other = (w->index + 1) % o->writers + j * o->writers;

	send_later(w, n);
	if (o->writers > 1 && o->commands != 0 && other < o->commands &&
	    stress_dup_kind(w->plan, other) == DUP_OTHER_WRITER)
		send(w, n, other, 0, 1, 0);
}

/* Reap every slot, oldest first, and send what that made due; again until
 * nothing is left. */
static void drain(struct writer *w, unsigned *n)
{
	const struct stress_options *o = w->plan->opt;
	uint64_t x;

	do {
		send_later(w, n);
		flush(w, n);
		for (x = 0; x < o->window; x++) {
			struct slot *s = &w->slots[(w->items + x) % o->window];
			if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_IDLE)
				reap(w, s);
		}
	} while (w->later.n != 0 && w->fatal == ESR_OK);
}

void *writer_main(void *arg)
{
	struct writer *w = arg;
	const struct stress_plan *p = w->plan;
	const struct stress_options *o = p->opt;
	unsigned n = 0;
	uint64_t j, due = 0;

	w->start_ns = stress_now_ns();
	for (j = 0;; j++) {
		uint64_t i = w->index + j * o->writers;

		if ((o->commands != 0 && i >= o->commands) || w->fatal != ESR_OK)
			break;
		if (w->deadline != 0 && (j & 255) == 0 && stress_now_ns() >= w->deadline)
			break;
		if (grow(w, j) != 0) {
			w->fatal = ESR_ENOMEM;
			break;
		}
		if (w->interval_ns != 0)
			due = pace(w, j, &n);
		send(w, &n, i, j, 0, due);
		if (stress_dup_kind(p, i) == DUP_IN_FLIGHT)
			send(w, &n, i, j, 1, 0);
		add_resends(w, &n, j);
	}
	w->count = j;
	drain(w, &n);
	return NULL;
}

/* Probe aggregates [first, first + n), n <= window. */
static esr_status probe_chunk(struct writer *w, struct stress_probes *pr, uint32_t first,
                              uint32_t n)
{
	const struct stress_plan *p = w->plan;
	size_t size = pr->state_size, accepted = 0;
	esr_status st = ESR_OK;
	uint32_t x, b;

	for (x = 0; x < n && st == ESR_OK; x += b) {
		b = n - x < p->opt->batch ? n - x : p->opt->batch;
		for (uint32_t y = 0; y < b; y++) {
			struct slot *s = &w->slots[x + y];
			uint32_t k = first + x + y;
			s->msg = (struct stress_msg){{k, 0, 0}, STRESS_SEQ_SETUP, s->probe};
			s->timed = 0;
			atomic_store_explicit(&s->state, SLOT_IN_FLIGHT, memory_order_relaxed);
			w->batch[y] = (esr_submission){p->wl->type.name, stress_plan_id(p, k),
			                               p->id_lens[k], &s->msg, s, {NULL, 0}};
		}
		st = esr_submit_many_cb(w->rt, w->batch, b, on_done, &accepted);
		if (st != ESR_OK)
			n = x + (uint32_t)accepted;
	}
	for (x = 0; x < n; x++) {
		struct slot *s = &w->slots[x];
		size_t at = (size_t)w->index * pr->aggregates + first + x;
		wait_done(s);
		atomic_store_explicit(&s->state, SLOT_IDLE, memory_order_relaxed);
		pr->version[at] = s->status == ESR_OK ? s->version : STRESS_PROBE_NONE;
		memcpy(pr->states + at * size, s->probe, size);
	}
	return st;
}

esr_status writer_probe(struct writer *w, struct stress_probes *pr)
{
	uint32_t k, K = pr->aggregates, window = w->plan->opt->window;
	esr_status st = ESR_OK;

	for (k = 0; k < K && st == ESR_OK; k += window)
		st = probe_chunk(w, pr, k, K - k < window ? K - k : window);
	return st;
}
