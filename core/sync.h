/*
 * core/sync.h: how esr tells ThreadSanitizer about Concurrency Kit's ordering.
 *
 * On x86-64 ck_pr operations are inline assembly, which ThreadSanitizer cannot
 * see: it would miss the happens-before edge a ck_pr release/acquire pair
 * creates and report the data published through it as a race. Each place that
 * publishes with ck_pr also calls ESR_TSAN_RELEASE(addr) just before the
 * publishing store, and each place that consumes calls ESR_TSAN_ACQUIRE(addr)
 * just after the load that observed it. They compile to nothing outside a
 * ThreadSanitizer build. They describe the ordering ck_pr already provides;
 * they never replace a fence.
 */
#ifndef ESR_CORE_SYNC_H
#define ESR_CORE_SYNC_H

#include <ck_pr.h>
#include <stdint.h>

/*
 * Concurrency Kit's ck_md.h fixes the memory model at its build. A TSO build
 * turns ck_pr_fence_{store,acquire,release} into compiler barriers, which is
 * right on x86 and silently wrong on a weakly ordered CPU: refuse to build.
 */
#if defined(CK_MD_TSO) && !defined(__x86_64__) && !defined(__i386__)
#error "Concurrency Kit is configured for TSO, but this CPU is weakly ordered"
#endif

#if defined(__SANITIZE_THREAD__)
#define ESR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ESR_TSAN 1
#endif
#endif

#ifdef ESR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ESR_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#define ESR_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#else
#define ESR_TSAN_ACQUIRE(addr) ((void)(addr))
#define ESR_TSAN_RELEASE(addr) ((void)(addr))
#endif

/*
 * Drop one of the references *count holds; 1 if it was the last, when the
 * caller frees what it counts. Release before the decrement and acquire
 * after the one that reached 0: every holder's accesses to the object happen
 * before the free, whichever holder frees it.
 */
static inline int esr__count_drop(uint32_t *count)
{
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(count);
	if (ck_pr_faa_32(count, (uint32_t)-1) != 1)
		return 0;
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(count);
	return 1;
}

#endif /* ESR_CORE_SYNC_H */
