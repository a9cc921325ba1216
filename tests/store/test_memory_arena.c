/*
 * tests/store/test_memory_arena.c: the memory store's chunk arena
 * (store/memory/memory_arena.c), an internal unit reached through the
 * static library.
 *
 * What it must hold: chunks cut by racing threads never overlap and start
 * on a cache line, whatever their size (smaller than the fault-in window,
 * larger, larger than a quarter of a slab); and a thread's next chunk is
 * already faulted in when it is cut, since the slab is faulted in a window
 * ahead of its offset, but the slab is not faulted in whole.
 */
#define _GNU_SOURCE /* MADV_POPULATE_WRITE, mincore */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/memory/memory_internal.h"

#define THREADS 4
#define CHUNKS 600 /* per thread: several slabs' worth */

struct cutter {
	struct esr__arena *a;
	unsigned id;
	uint8_t *chunk[CHUNKS];
	size_t len[CHUNKS];
};

/* Sizes from one cache line to past a quarter of a slab, most of them small. */
static size_t size_of(unsigned id, unsigned i)
{
	unsigned r = (id * 7919u + i * 104729u) % 100;

	if (r < 80)
		return 1 + (r * 53) % 2000;
	if (r < 95)
		return ESR__ARENA_WINDOW / 2 + r * 1000; /* about the window */
	return 300u << 10;                       /* a mapping of its own */
}

static void *cut_main(void *arg)
{
	struct cutter *c = arg;
	unsigned i;

	for (i = 0; i < CHUNKS; i++) {
		c->len[i] = size_of(c->id, i);
		c->chunk[i] = esr__arena_alloc(c->a, c->len[i]);
		if (c->chunk[i] != NULL) /* every byte, to find any overlap below */
			memset(c->chunk[i], (int)(c->id * CHUNKS + i) & 0xff, c->len[i]);
	}
	return NULL;
}

static void racing_threads_cut_disjoint_aligned_chunks(void **state)
{
	static struct cutter c[THREADS];
	struct esr__arena a;
	pthread_t t[THREADS];
	unsigned i, k;
	size_t j;

	(void)state;
	esr__arena_init(&a);
	for (i = 0; i < THREADS; i++) {
		c[i].a = &a;
		c[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, cut_main, &c[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (i = 0; i < THREADS; i++)
		for (k = 0; k < CHUNKS; k++) {
			uint8_t want = (uint8_t)((i * CHUNKS + k) & 0xff);

			assert_non_null(c[i].chunk[k]);
			assert_int_equal((uintptr_t)c[i].chunk[k] % 64, 0);
			for (j = 0; j < c[i].len[k]; j++)
				if (c[i].chunk[k][j] != want)
					fail_msg("thread %u chunk %u byte %zu: %u, not %u", i, k, j,
					         c[i].chunk[k][j], want);
		}
	esr__arena_destroy(&a);
}

/* Whether the page holding p is resident. */
static int resident(const void *p)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	void *start = (void *)((uintptr_t)p & ~(uintptr_t)(page - 1));

	assert_int_equal(mincore(start, (size_t)page, &v), 0);
	return v & 1;
}

/* Whether this kernel populates on request (Linux 5.14 and later). */
static int kernel_populates(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	assert_true(p != MAP_FAILED);
#ifdef MADV_POPULATE_WRITE
	ok = madvise(p, (size_t)page, MADV_POPULATE_WRITE) == 0;
#else
	ok = 0;
#endif
	munmap(p, (size_t)page);
	return ok;
}

/* Whether anonymous memory may come in huge pages without being asked. */
static int huge_pages_always(void)
{
	char line[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	return strstr(line, "[always]") != NULL;
}

static void the_next_chunk_is_faulted_in_before_it_is_cut(void **state)
{
	struct esr__arena a;
	uint8_t *first, *p = NULL;
	size_t cut = 0;

	(void)state;
	if (!kernel_populates()) {
		print_message("this kernel has no MADV_POPULATE_WRITE: pages fault one by one\n");
		skip();
	}
	esr__arena_init(&a);
	first = esr__arena_alloc(&a, 64);
	assert_non_null(first);
	/* The window past the first chunk is in; the slab's far end is not. */
	assert_true(resident(first + ESR__ARENA_WINDOW - 64));
	if (!huge_pages_always())
		assert_false(resident(first + 4 * ESR__ARENA_WINDOW));
	/* Cutting on through the slab: the line after each chunk (where the
	 * next one starts) is always in already. */
	for (cut = 64; cut < 8 * ESR__ARENA_WINDOW; cut += 1024 + 64) {
		p = esr__arena_alloc(&a, 1024 + 64);
		assert_non_null(p);
		assert_ptr_equal(p, first + cut); /* one slab, cut in order */
		assert_true(resident(p + 1024 + 64));
	}
	esr__arena_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(racing_threads_cut_disjoint_aligned_chunks),
		cmocka_unit_test(the_next_chunk_is_faulted_in_before_it_is_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
