/*
 * store/file/file_io.h: the system calls through which the file store reads,
 * writes, syncs, opens, truncates, renames, links, unlinks and closes its
 * files (a directory sync is esr__fio.open of the directory, then
 * esr__fio.fdatasync). They go through this table so that tests can make the
 * Nth call fail or write short (tests/store/test_file_faults.c), or model a
 * power cut (tests/store/test_file_power_loss.c); the library itself never
 * changes it. See docs/architecture.md for the map.
 */
#ifndef ESR_STORE_FILE_IO_H
#define ESR_STORE_FILE_IO_H

#include <sys/types.h>

struct esr__file_io {
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fdatasync)(int fd);
	int (*open)(const char *path, int flags, mode_t mode);
	int (*ftruncate)(int fd, off_t length); /* taking a failed batch back out */
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t offset);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t offset);
	int (*rename)(const char *from, const char *to);
	int (*link)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*close)(int fd);
};

/* The table in use; its initial value calls the system. */
extern struct esr__file_io esr__fio;

#endif /* ESR_STORE_FILE_IO_H */
