/*
 * tools/stress/store.c: the run's store: make it or attach to it, open the
 * aggregates in it, read its counters, remove it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

esr_status stress_store_open(const struct stress_options *o, esr_strategy strategy,
                             char *name, size_t size, int fresh, esr_store **out)
{
	char why[512] = "";
	esr_status st;

	if (strcmp(o->store, "memory") == 0) {
		name[0] = '\0';
		return esr_memory_store_open(out);
	}
	if (strcmp(o->store, "file") == 0) {
		if (mkdir(o->store_path, 0755) != 0 && errno != EEXIST)
			return ESR_EIO;
		snprintf(name, size, "%s/esr-stress-%s-%ld", o->store_path,
		         esr_strategy_name(strategy), (long)getpid());
		return esr_file_store_open(name, NULL, out);
	}
	if (fresh) {
		snprintf(name, size, "esr_stress_%s_%ld", esr_strategy_name(strategy), (long)getpid());
		if ((st = esr_pg_drop(o->store_path, name, why, sizeof why)) != ESR_OK) {
			fprintf(stderr, "esr-stress: %s\n", why);
			return st;
		}
	}
	{
		esr_pg_store_options po;
		esr_pg_store_options_default(&po);
		po.schema = name;
		po.why = why;
		po.why_size = sizeof why;
		if ((st = esr_pg_store_open(o->store_path, &po, out)) != ESR_OK)
			fprintf(stderr, "esr-stress: %s\n", why);
	}
	return st;
}

void stress_store_remove(const struct stress_options *o, const char *name)
{
	char path[4096];
	struct dirent *e;
	DIR *d;

	if (name[0] == '\0')
		return;
	if (strcmp(o->store, "postgres") == 0) {
		esr_pg_drop(o->store_path, name, NULL, 0);
		return;
	}
	if ((d = opendir(name)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (strcmp(e->d_name, "LOCK") == 0 || strcmp(e->d_name, "snapshots.log") == 0 ||
		    strncmp(e->d_name, "checkpoint.", 11) == 0 ||
		    (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0)) {
			snprintf(path, sizeof path, "%s/%s", name, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	rmdir(name);
}

void stress_store_counters(esr_store *store, struct stress_store_counters *c)
{
	esr_file_store_stats fs;
	esr_pg_store_stats ps;

	memset(c, 0, sizeof *c);
	if (esr_file_store_stats_get(store, &fs) == ESR_OK) {
		c->fsyncs = fs.fsyncs;
		c->events_synced = fs.events;
		c->appends = fs.appends;
	} else if (esr_pg_store_stats_get(store, &ps) == ESR_OK) {
		c->appends = ps.appends;
		c->round_trips = ps.round_trips;
	}
}

void stress_store_counters_since(struct stress_result *r, const struct stress_store_counters *before,
                                 const struct stress_store_counters *after)
{
	r->fsyncs += after->fsyncs - before->fsyncs;
	r->events_synced += after->events_synced - before->events_synced;
	r->appends += after->appends - before->appends;
	r->round_trips += after->round_trips - before->round_trips;
}

esr_status stress_open_aggregates(const struct stress_plan *p, esr_store *store)
{
	struct stress_payload pl = {0, STRESS_SEQ_SETUP};
	esr_event ev = {.payload = &pl, .payload_len = sizeof pl};
	esr_append_result ar;
	esr_status st;
	uint32_t k;

	if ((ev.type = p->wl->open(&pl.amount)) == 0)
		return ESR_OK;
	for (k = 0; k < p->opt->aggregates; k++) {
		esr_stream_id sid = {p->wl->type.name, stress_plan_id(p, k), p->id_lens[k]};
		if ((st = esr_store_append(store, &sid, 0, &ev, 1, &ar)) != ESR_OK)
			return st;
	}
	return ESR_OK;
}
