/*
 * metrics.c: GET /metrics in the Prometheus text format 0.0.4: the runtime's
 * counters, the store's head and its backend's counters, and the service's
 * own HTTP counts and request latency histogram.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

/* Upper bounds of the latency buckets, in seconds (+Inf follows). */
static const double bounds[LATENCY_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                               0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

/* Count one answer by status class; ns < 0 keeps it out of the histogram
 * (an event stream lasts as long as its client). */
void metrics_record(struct metrics *m, unsigned status, long long ns)
{
	unsigned cls = status / 100;
	size_t i;

	atomic_fetch_add(&m->by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
	if (ns < 0)
		return;
	for (i = 0; i < LATENCY_BUCKETS && (double)ns / 1e9 > bounds[i]; i++)
		;
	atomic_fetch_add(&m->bucket[i], 1);
	atomic_fetch_add(&m->sum_ns, (uint_fast64_t)ns);
	atomic_fetch_add(&m->count, 1);
}

/* One sample with its HELP and TYPE lines. */
static void metric(FILE *f, const char *name, const char *type, const char *help,
                   uint64_t value)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	        (unsigned long long)value);
}

#define RT(field, name, type, help) {offsetof(esr_runtime_stats, field), name, type, help}

static const struct {
	size_t offset;
	const char *name, *type, *help;
} runtime_fields[] = {
	RT(submitted, "esr_commands_submitted_total", "counter", "Commands accepted by submit."),
	RT(completed, "esr_commands_completed_total", "counter", "Commands completed, whatever the outcome."),
	RT(rejected, "esr_commands_rejected_total", "counter", "Commands the handler rejected."),
	RT(conflicts, "esr_append_conflicts_total", "counter", "Appends that failed their version check."),
	RT(retries, "esr_command_retries_total", "counter", "Handler re-runs after a conflict."),
	RT(exhausted, "esr_commands_exhausted_total", "counter", "Commands completed with a conflict after every retry."),
	RT(activations, "esr_actor_activations_total", "counter", "Actors activated (stream replayed)."),
	RT(passivations, "esr_actor_passivations_total", "counter", "Idle actors evicted."),
	RT(mailbox_full, "esr_mailbox_full_total", "counter", "Submits that found a full mailbox."),
	RT(live_actors, "esr_live_actors", "gauge", "Actors in the registry now."),
	RT(snapshots_loaded, "esr_snapshots_loaded_total", "counter", "Activations or catch-ups that started from a snapshot."),
	RT(snapshots_ignored, "esr_snapshots_ignored_total", "counter", "Snapshots refused and replayed in full instead."),
	RT(snapshots_taken, "esr_snapshots_taken_total", "counter", "Snapshots the store saved."),
	RT(snapshots_dropped, "esr_snapshots_dropped_total", "counter", "Snapshots not saved."),
	RT(events_replayed, "esr_events_replayed_total", "counter", "Events applied while activating or catching up."),
	RT(appends, "esr_appends_total", "counter", "Appends the workers made, retries included."),
	RT(duplicates, "esr_commands_duplicate_total", "counter", "Commands completed as duplicates of a recorded command id."),
	RT(queries_submitted, "esr_queries_submitted_total", "counter", "Queries accepted."),
	RT(queries, "esr_queries_completed_total", "counter", "Queries completed."),
};

static void runtime_metrics(FILE *f, esr_runtime *rt)
{
	esr_runtime_stats st;
	uint64_t v;
	size_t i;

	if (esr_runtime_stats_get(rt, &st) != ESR_OK)
		return;
	for (i = 0; i < sizeof runtime_fields / sizeof runtime_fields[0]; i++) {
		memcpy(&v, (const char *)&st + runtime_fields[i].offset, sizeof v);
		metric(f, runtime_fields[i].name, runtime_fields[i].type, runtime_fields[i].help, v);
	}
}

/* The head, and the counters of the backend the store is. */
static void store_metrics(FILE *f, esr_store *store)
{
	const char *kind = esr_store_name(store);
	esr_file_store_stats fs;
	esr_pg_store_stats ps;
	uint64_t head;

	if (esr_store_head(store, &head) == ESR_OK)
		metric(f, "esr_store_head_position", "gauge",
		       "The highest committed global position.", head);
	if (strcmp(kind, "file") == 0 && esr_file_store_stats_get(store, &fs) == ESR_OK) {
		metric(f, "esr_file_store_appends_total", "counter", "Appends acknowledged.", fs.appends);
		metric(f, "esr_file_store_events_total", "counter", "Events in acknowledged appends.", fs.events);
		metric(f, "esr_file_store_writes_total", "counter", "Write calls that carried appends.", fs.writes);
		metric(f, "esr_file_store_fsyncs_total", "counter", "fdatasync calls.", fs.fsyncs);
		metric(f, "esr_file_store_written_bytes_total", "counter", "Bytes written since open.", fs.bytes);
		metric(f, "esr_file_store_failed", "gauge", "1 once a write or sync failed.", (uint64_t)fs.failed);
	} else if (strcmp(kind, "postgres") == 0 && esr_pg_store_stats_get(store, &ps) == ESR_OK) {
		metric(f, "esr_pg_store_appends_total", "counter", "Appends acknowledged.", ps.appends);
		metric(f, "esr_pg_store_events_total", "counter", "Events in acknowledged appends.", ps.events);
		metric(f, "esr_pg_store_conflicts_total", "counter", "Appends that completed with a conflict.", ps.conflicts);
		metric(f, "esr_pg_store_round_trips_total", "counter", "Pipelines sent.", ps.round_trips);
		metric(f, "esr_pg_store_reconnects_total", "counter", "Connections made again after a fault.", ps.reconnects);
		metric(f, "esr_pg_store_resolved_total", "counter", "Appends in doubt settled by token.", ps.resolved);
		metric(f, "esr_pg_store_resent_total", "counter", "Appends sent again after a fault.", ps.resent);
		metric(f, "esr_pg_store_failed_total", "counter", "Appends that completed ESR_EIO or ESR_EUNKNOWN.", ps.failed);
	}
}

static void http_metrics(FILE *f, struct metrics *m)
{
	static const char *classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t cumulative = 0;
	size_t i;

	fprintf(f, "# HELP bank_service_http_requests_total HTTP requests answered, by status class.\n"
	           "# TYPE bank_service_http_requests_total counter\n");
	for (i = 0; i < 6; i++)
		fprintf(f, "bank_service_http_requests_total{class=\"%s\"} %llu\n", classes[i],
		        (unsigned long long)atomic_load(&m->by_class[i]));
	fprintf(f, "# HELP bank_service_request_seconds Time from a request's arrival to its answer sent.\n"
	           "# TYPE bank_service_request_seconds histogram\n");
	for (i = 0; i < LATENCY_BUCKETS; i++) {
		cumulative += atomic_load(&m->bucket[i]);
		fprintf(f, "bank_service_request_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
		        (unsigned long long)cumulative);
	}
	cumulative += atomic_load(&m->bucket[LATENCY_BUCKETS]);
	fprintf(f, "bank_service_request_seconds_bucket{le=\"+Inf\"} %llu\n",
	        (unsigned long long)cumulative);
	fprintf(f, "bank_service_request_seconds_sum %.9f\n",
	        (double)atomic_load(&m->sum_ns) / 1e9);
	fprintf(f, "bank_service_request_seconds_count %llu\n",
	        (unsigned long long)atomic_load(&m->count));
}

/* The /events clients connected now (their slots, until reaped). */
static void stream_metrics(FILE *f, struct service *svc)
{
	unsigned n;

	pthread_mutex_lock(&svc->sse_lock);
	n = svc->sse_count;
	pthread_mutex_unlock(&svc->sse_lock);
	metric(f, "bank_service_event_streams", "gauge", "Event stream clients now.", n);
}

enum MHD_Result metrics_get(struct request *req)
{
	struct MHD_Response *resp;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return http_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	runtime_metrics(f, req->svc->rt);
	store_metrics(f, req->svc->store);
	http_metrics(f, &req->svc->metrics);
	stream_metrics(f, req->svc);
	if (fclose(f) != 0 || text == NULL) {
		free(text);
		return http_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4; charset=utf-8");
	return http_queue(req, MHD_HTTP_OK, resp);
}
