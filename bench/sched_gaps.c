/*
 * bench/sched_gaps.c: how much of its time a busy thread loses to others.
 *
 *   bench_gaps THREADS SECONDS
 *
 * Starts THREADS threads that do nothing but read CLOCK_MONOTONIC for
 * SECONDS. Two reads further apart than 50 us mean the thread was not
 * running in between: preempted by another process, a kernel thread or an
 * interrupt, or its virtual CPU descheduled by the host. Prints one JSON line
 * per thread: the gaps over 50 us, 100 us and 1 ms, the longest, and the share
 * of the run lost in gaps over 100 us.
 *
 * Why it is here: an open-loop latency target is a bound on the tail, and a
 * command that was due while the thread carrying it was off its core waits
 * out the gap. With as many busy threads as cores, what this program
 * measures is a floor under esr-stress --rate's p99 and p99.9 on the same
 * machine, whatever the runtime does.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct gaps {
	pthread_t thread;
	uint64_t run_ns;
	uint64_t over_50us, over_100us, over_1ms, lost_ns, max_ns;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *spin(void *arg)
{
	struct gaps *g = arg;
	uint64_t prev = now_ns(), end = prev + g->run_ns;

	while (prev < end) {
		uint64_t t = now_ns(), d = t - prev;

		prev = t;
		if (d <= 50000)
			continue;
		g->over_50us++;
		if (d > 100000) {
			g->over_100us++;
			g->lost_ns += d;
		}
		if (d > 1000000)
			g->over_1ms++;
		if (d > g->max_ns)
			g->max_ns = d;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct gaps *g;
	long threads, i;
	double secs;

	if (argc != 3 || (threads = strtol(argv[1], NULL, 10)) < 1 || threads > 256 ||
	    (secs = strtod(argv[2], NULL)) <= 0 || secs > 3600) {
		fprintf(stderr, "usage: bench_gaps THREADS(1-256) SECONDS(0-3600]\n");
		return 2;
	}
	if ((g = calloc((size_t)threads, sizeof *g)) == NULL) {
		perror("bench_gaps");
		return 1;
	}
	for (i = 0; i < threads; i++) {
		g[i].run_ns = (uint64_t)(secs * 1e9);
		if (pthread_create(&g[i].thread, NULL, spin, &g[i]) != 0) {
			fprintf(stderr, "bench_gaps: cannot start thread %ld\n", i);
			return 1;
		}
	}
	for (i = 0; i < threads; i++)
		pthread_join(g[i].thread, NULL);
	for (i = 0; i < threads; i++)
		printf("{\"threads\": %ld, \"thread\": %ld, \"seconds\": %g, \"gaps_over_50us\": %llu, "
		       "\"gaps_over_100us\": %llu, \"gaps_over_1ms\": %llu, \"max_gap_us\": %.1f, "
		       "\"share_lost\": %.5f}\n",
		       threads, i, secs, (unsigned long long)g[i].over_50us,
		       (unsigned long long)g[i].over_100us, (unsigned long long)g[i].over_1ms,
		       g[i].max_ns / 1e3, g[i].lost_ns / (secs * 1e9));
	free(g);
	return 0;
}
