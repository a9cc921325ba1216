/*
 * tools/stress/writer.h: one writer: a runtime and the thread that feeds it.
 *
 * The thread keeps up to `window` commands in flight in a ring of slots.
 * Each slot is a command's whole life: the message handed to the runtime,
 * the submit and completion times, the outcome. The completion callback
 * fills the slot and marks it done; the thread reaps slots in order, records
 * latency and outcome, and reuses them. Nothing is allocated per command.
 */
#ifndef ESR_STRESS_WRITER_H
#define ESR_STRESS_WRITER_H

#include <pthread.h>
#include <stdatomic.h>

#include <esr/esr.h>

#include "checker.h"
#include "histogram.h"
#include "plan.h"
#include "workload.h"

struct slot {
	struct stress_msg msg;
	uint64_t j; /* the writer's command number (a resend: its first send's) */
	uint64_t submit_ns, done_ns, version;
	esr_status status;
	int resend;    /* a duplicate sent on purpose (--duplicates) */
	int timed;     /* its latency is measured (HIST_TIME_EVERY) */
	int duplicate; /* the runtime answered it from the command id's record */
	_Atomic uint32_t state;
	unsigned char cid[1 + sizeof(uint64_t)]; /* 's' and the command number */
	unsigned char probe[STRESS_STATE_MAX];
};

/* A growing list of command numbers. */
struct seqs {
	uint64_t *v;
	size_t n, cap;
};

struct writer {
	const struct stress_plan *plan;
	unsigned index;
	esr_runtime *rt;
	uint64_t deadline; /* monotonic ns; 0 for a counted run */
	double interval_ns; /* between this writer's commands at --rate; 0: closed loop */
	uint64_t start_ns;  /* when command 0 was due */
	struct slot *slots;
	esr_submission *batch;
	uint8_t *outcome; /* [j] */
	uint64_t count, cap;
	uint64_t items;      /* sends, resends included: the next slot is items % window */
	struct seqs later;   /* own commands to send again once completed */
	struct seqs applied; /* commands a resend of which completed ESR_OK */
	uint64_t dup_sent, dup_detected;
	struct histogram latency;
	uint64_t accepted, rejected, exhausted, errors;
	esr_status first_error; /* first command error */
	esr_status fatal;       /* a submit refused: the run is void */
	_Atomic uint64_t completed; /* for the progress line */
	pthread_t thread;
};

esr_status writer_init(struct writer *w, const struct stress_plan *p, unsigned index,
                       esr_runtime *rt);
void writer_free(struct writer *w);
/* The thread: submit this writer's share of the plan, reap every command. */
void *writer_main(void *arg);
/* Which duplicate, if any, command i gets under --duplicates. */
enum stress_dup { DUP_NONE, DUP_IN_FLIGHT, DUP_AFTER, DUP_OTHER_WRITER };
enum stress_dup stress_dup_kind(const struct stress_plan *p, uint64_t i);
/* After the run: ask every actor of this writer for its state and version. */
esr_status writer_probe(struct writer *w, struct stress_probes *probes);

#endif
