/*
 * tests/check.h: CHECK for the plain test programs (no cmocka): those that
 * fork processes or run whole runtimes, where a failed assertion must not
 * jump out and leave children or threads behind. A failed CHECK prints where
 * and why and counts itself; main returns check_failures != 0.
 */
#ifndef ESR_TESTS_CHECK_H
#define ESR_TESTS_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

#endif
