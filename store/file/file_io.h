/*
 * store/file/file_io.h: the system calls through which the file store writes,
 * syncs, opens and truncates files. They go through this table so that tests
 * can make the Nth call fail or write short (tests/store/test_file_faults.c); the
 * library itself never changes it. docs/architecture.md has the map.
 */
#ifndef ESR_STORE_FILE_IO_H
#define ESR_STORE_FILE_IO_H

#include <sys/types.h>

struct file_io {
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fdatasync)(int fd);
	int (*open)(const char *path, int flags, mode_t mode);
	int (*ftruncate)(int fd, off_t length); /* taking a failed batch back out */
};

extern struct file_io esr__fio;

#endif /* ESR_STORE_FILE_IO_H */
