/* tools/stress/sys.c: clocks, peak memory and pipes, from Linux. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

uint64_t stress_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its
 * current RSS, so each strategy's peak is its own. What the last run freed
 * goes back to the system first, or it would count against the next one. */
void stress_rss_reset(void)
{
	FILE *f;

	malloc_trim(0);
	f = fopen("/proc/self/clear_refs", "w");

	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

uint64_t stress_rss_peak(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned long long kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%llu", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* Move all of len bytes, in as many calls as the pipe takes. */
static int move_all(int fd, char *p, size_t len, int out)
{
	ssize_t n;

	while (len > 0) {
		if ((n = out ? write(fd, p, len) : read(fd, p, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int stress_read_all(int fd, void *buf, size_t len)
{
	return move_all(fd, buf, len, 0);
}

int stress_write_all(int fd, const void *buf, size_t len)
{
	return move_all(fd, (char *)buf, len, 1); /* only written from */
}
