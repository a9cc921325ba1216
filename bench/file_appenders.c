/*
 * bench/file_appenders.c: the file store's durable append rate with many
 * concurrent appenders, and the disk's own fsync rate for comparison.
 *
 *   bench_file DIR APPENDERS SECONDS [always|batch-window|none]
 *   bench_file DIR --disk SECONDS
 *
 * Appenders are threads, each appending one 64-byte event at a time to its
 * own stream with the expected version and waiting for the acknowledgement
 * (an fdatasync that covers it, in `always` mode). Prints appends/s, fsyncs
 * and events per fsync. --disk measures the disk alone: one thread appending
 * 64 bytes to a file and calling fdatasync after each, for SECONDS: the rate
 * a store that syncs every append on its own could not exceed; then the same
 * inside a file already filled with zeros (the store's preallocated
 * segments), for SECONDS again. Prints JSON.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <esr/esr.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct shared {
	esr_store *s;
	double until;
	atomic_ullong appends;
	atomic_int errors;
};

struct appender {
	struct shared *sh;
	int index;
};

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	uint8_t payload[64];
	uint64_t version = 0;
	char id[24];
	esr_stream_id sid = {"Bench", id, 0};

	sid.id_len = (size_t)snprintf(id, sizeof id, "appender-%d-%d", a->index, (int)getpid());
	memset(payload, a->index, sizeof payload);
	while (now() < a->sh->until) {
		esr_event ev = {.type = 1, .payload = payload, .payload_len = sizeof payload};
		esr_append_result r;
		if (esr_store_append(a->sh->s, &sid, version, &ev, 1, &r) != ESR_OK) {
			atomic_fetch_add(&a->sh->errors, 1);
			break;
		}
		version = r.version;
		atomic_fetch_add(&a->sh->appends, 1);
	}
	return NULL;
}

/*
 * fdatasyncs/s of one thread writing 64 bytes and syncing after each, for
 * secs: appending (each sync also makes the grown size durable), or, with
 * `ahead`, inside a file first filled with 64 MiB of zeros and synced (each
 * sync writes data only: what the store's preallocated segments get).
 */
static double sync_rate(const char *path, double secs, int ahead, unsigned long *count)
{
	static uint8_t zeros[1 << 20];
	uint8_t rec[64] = {0};
	unsigned long n = 0;
	double start, end;
	off_t at = 0;
	int fd, i;

	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
		return -1;
	for (i = 0; ahead && i < 64; i++)
		if (pwrite(fd, zeros, sizeof zeros, (off_t)i << 20) != (ssize_t)sizeof zeros)
			goto failed;
	if (ahead && fdatasync(fd) != 0)
		goto failed;
	start = now();
	end = start + secs;
	while (now() < end && at + (off_t)sizeof rec <= (64 << 20)) {
		if (pwrite(fd, rec, sizeof rec, at) != (ssize_t)sizeof rec || fdatasync(fd) != 0)
			goto failed;
		at += (off_t)sizeof rec;
		n++;
	}
	secs = now() - start;
	close(fd);
	unlink(path);
	*count = n;
	return (double)n / secs;
failed:
	close(fd);
	unlink(path);
	return -1;
}

static int disk(const char *dir, double secs)
{
	unsigned long n, m;
	double appending, ahead;
	char path[4096];

	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/fsync-probe", dir);
	if ((appending = sync_rate(path, secs, 0, &n)) < 0 || (ahead = sync_rate(path, secs, 1, &m)) < 0)
		return 3;
	printf("{\"disk_fsyncs_per_s\":%.0f,\"fsyncs\":%lu,\"disk_prealloc_fsyncs_per_s\":%.0f,"
	       "\"prealloc_fsyncs\":%lu,\"seconds\":%.3f}\n", appending, n, ahead, m, secs);
	return 0;
}

int main(int argc, char **argv)
{
	esr_file_store_options o;
	esr_file_store_stats st;
	struct appender *as;
	struct shared sh = {0};
	pthread_t *ts;
	double secs, start;
	int n, i;

	if (argc >= 4 && strcmp(argv[2], "--disk") == 0)
		return disk(argv[1], atof(argv[3]));
	if (argc < 4 || (n = atoi(argv[2])) <= 0 || n > 4096 || (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench_file DIR APPENDERS SECONDS [always|batch-window|none]\n"
		                "       bench_file DIR --disk SECONDS\n");
		return 2;
	}
	esr_file_store_options_default(&o);
	if (argc > 4)
		o.sync = strcmp(argv[4], "none") == 0           ? ESR_SYNC_NONE
		         : strcmp(argv[4], "batch-window") == 0 ? ESR_SYNC_BATCH_WINDOW
		                                                : ESR_SYNC_ALWAYS;
	if (esr_file_store_open(argv[1], &o, &sh.s) != ESR_OK) {
		fprintf(stderr, "bench_file: cannot open the store in %s\n", argv[1]);
		return 3;
	}
	as = calloc((size_t)n, sizeof *as);
	ts = calloc((size_t)n, sizeof *ts);
	start = now();
	sh.until = start + secs;
	for (i = 0; i < n; i++) {
		as[i] = (struct appender){&sh, i};
		pthread_create(&ts[i], NULL, append_loop, &as[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(ts[i], NULL);
	secs = now() - start;
	esr_file_store_stats_get(sh.s, &st);
	printf("{\"appenders\":%d,\"sync\":\"%s\",\"appends_per_s\":%.0f,\"appends\":%llu,"
	       "\"fsyncs\":%llu,\"events_per_fsync\":%.1f,\"errors\":%d,\"seconds\":%.3f}\n",
	       n, argc > 4 ? argv[4] : "always", (double)atomic_load(&sh.appends) / secs,
	       (unsigned long long)atomic_load(&sh.appends), (unsigned long long)st.fsyncs,
	       st.fsyncs ? (double)st.events / (double)st.fsyncs : 0.0, atomic_load(&sh.errors),
	       secs);
	esr_store_close(sh.s);
	free(as);
	free(ts);
	return atomic_load(&sh.errors) ? 1 : 0;
}
