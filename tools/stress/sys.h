/*
 * tools/stress/sys.h: clocks, peak memory and pipes, from Linux (sys.c).
 */
#ifndef ESR_STRESS_SYS_H
#define ESR_STRESS_SYS_H

#include <stddef.h>
#include <stdint.h>

/* Peak resident memory: reset the mark, read it (bytes; 0 when unknown). */
void stress_rss_reset(void);
uint64_t stress_rss_peak(void);

/* All of len bytes through a pipe, which moves them in pieces: 0, or -1 at
 * an error or the end of the input. */
int stress_read_all(int fd, void *buf, size_t len);
int stress_write_all(int fd, const void *buf, size_t len);

/* Monotonic nanoseconds. */
uint64_t stress_now_ns(void);

#endif
