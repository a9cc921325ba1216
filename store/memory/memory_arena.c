/*
 * store/memory/memory_arena.c: the memory a store's chunks are cut from.
 *
 * A memory store gives no chunk back before it closes, so chunks need no
 * allocator that frees: they are cut from large mappings by moving an
 * offset, and the mappings are unmapped together at close.
 *
 * Why: the workers that append fill fresh memory all the time (the store
 * keeps every event). Each thread takes a slab of SLAB bytes at a time and
 * cuts its small chunks from it without a lock, where malloc grew each
 * worker's own arena an mprotect call at a time. A chunk larger than a
 * quarter of a slab (a long stream's: they double up to 65 536 events) gets
 * a mapping of its own.
 *
 * esr__arena_fault_in asks the kernel to fault a range in with one call
 * (MADV_POPULATE_WRITE, Linux 5.14; an older kernel refuses, and the pages
 * fault one by one as they are touched). memory.c uses it on long chunks,
 * a window ahead of their writer; a slab is faulted in WINDOW bytes ahead of
 * the offset its chunks are cut at, so the thousands of short chunks of
 * many small streams do not each take a page fault per 4 KiB either. The
 * window is kept small so that the kernel's zeros can still be in the
 * core's cache at the chunk's first store (a whole slab at once was slower:
 * docs/architecture.md, "Where the chunks live").
 *
 * A thread keeps its slabs of up to SLABS arenas in thread-locals (a thread
 * appending to several stores in turn would otherwise drop a slab's rest at
 * each switch), each tagged with its arena's serial number rather than its
 * address, so that a store opened where a closed one was never sees the
 * closed one's slab. The mutex guards the regions, taken once per slab.
 */
#define _GNU_SOURCE /* MADV_POPULATE_WRITE */
#include <ck_pr.h>
#include <stdint.h>
#include <sys/mman.h>

#include "store/memory/memory_internal.h"

#define REGION_FIRST ((size_t)4 << 20)
#define REGION_MAX ((size_t)64 << 20)
#define SLAB ((size_t)1 << 20)
#define WINDOW ESR__ARENA_WINDOW
#define ALIGN 64 /* a chunk starts on a cache line of its own */

/* At the start of every mapping, to find it again at close. */
struct region {
	struct region *next;
	size_t size;
};

#define HEADER (((sizeof(struct region) + ALIGN - 1) / ALIGN) * ALIGN)

/* This thread's slabs: [next, end) of the arena numbered `serial` (0: none),
 * faulted in up to `ready`, the least recently refilled replaced first. */
#define SLABS 4
struct slab {
	uint64_t serial;
	char *next, *end, *ready;
};
static _Thread_local struct slab slabs[SLABS];
static _Thread_local unsigned slab_victim;

static uint64_t serials;

void esr__arena_fault_in(void *start, size_t n)
{
	char *p = start;
#ifdef MADV_POPULATE_WRITE
	char *page = (char *)((uintptr_t)p & ~(uintptr_t)4095); /* as madvise wants */

	(void)madvise(page, n + (size_t)(p - page), MADV_POPULATE_WRITE);
#else
	(void)p, (void)n;
#endif
}

/* A mapping of `size` bytes, linked in as the current region (current) or
 * behind it. Under the lock. */
static struct region *region_add(struct esr__arena *a, size_t size, int current)
{
	struct region *r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                        -1, 0);

	if (r == MAP_FAILED)
		return NULL;
	r->size = size;
	if (current || a->regions == NULL) {
		r->next = a->regions;
		a->regions = r;
	} else {
		r->next = a->regions->next;
		a->regions->next = r;
	}
	return r;
}

void esr__arena_init(struct esr__arena *a)
{
	pthread_mutex_init(&a->lock, NULL);
	a->regions = NULL;
	a->next = a->end = NULL;
	a->region_size = REGION_FIRST;
	a->serial = ck_pr_faa_64(&serials, 1) + 1; /* never 0, a thread's first tag */
}

/* Fault in the slab's next WINDOW bytes past what it has cut, or more if
 * the last chunk cut reached beyond them: one call instead of a page fault
 * per 4 KiB (see the header for why no further ahead). */
static void populate(struct slab *s)
{
	char *end = s->ready + WINDOW;

	while (end < s->next) /* a chunk longer than the window */
		end += WINDOW;
	if (end > s->end)
		end = s->end;
	esr__arena_fault_in(s->ready, (size_t)(end - s->ready));
	s->ready = end;
}

/* A fresh slab for this thread in *s (the thread's slab of this arena, or
 * the one to replace), or a mapping of its own for a large chunk (then *s
 * stays as it was). NULL if the system has no memory. */
static void *refill(struct esr__arena *a, struct slab *s, size_t n)
{
	struct region *r;
	char *p = NULL;

	pthread_mutex_lock(&a->lock);
	if (n > SLAB / 4) {
		if ((r = region_add(a, (HEADER + n + 4095) & ~(size_t)4095, 0)) != NULL)
			p = (char *)r + HEADER;
	} else {
		if ((size_t)(a->end - a->next) < SLAB &&
		    (r = region_add(a, a->region_size, 1)) != NULL) {
			a->next = (char *)r + HEADER;
			a->end = (char *)r + r->size;
			if (a->region_size < REGION_MAX)
				a->region_size *= 2;
		}
		if ((size_t)(a->end - a->next) >= SLAB) {
			p = a->next;
			a->next += SLAB;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (p == NULL)
		return NULL;
	if (n > SLAB / 4)
		return p;
	s->serial = a->serial;
	s->next = p + n;
	s->end = p + SLAB;
	s->ready = p;
	populate(s);
	return p;
}

void *esr__arena_alloc(struct esr__arena *a, size_t n)
{
	struct slab *s = NULL;
	unsigned i;
	void *p;

	if (n == 0 || n > SIZE_MAX / 2)
		return NULL;
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	for (i = 0; i < SLABS && s == NULL; i++)
		if (slabs[i].serial == a->serial)
			s = &slabs[i];
	if (s == NULL) {
		s = &slabs[slab_victim];
		slab_victim = (slab_victim + 1) % SLABS;
		return refill(a, s, n);
	}
	if ((size_t)(s->end - s->next) < n)
		return refill(a, s, n);
	p = s->next;
	s->next += n;
	if (s->next > s->ready)
		populate(s);
	return p;
}

void esr__arena_destroy(struct esr__arena *a)
{
	struct region *r;

	while ((r = a->regions) != NULL) {
		a->regions = r->next;
		munmap(r, r->size);
	}
	a->next = a->end = NULL;
	pthread_mutex_destroy(&a->lock);
}
