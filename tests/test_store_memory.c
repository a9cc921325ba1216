/* tests/test_store_memory.c: the conformance suite against the memory store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_conformance.h"

static esr_status open_memory(void *arg, esr_store **out)
{
	(void)arg;
	return esr_memory_store_open(out);
}

int main(void)
{
	const struct store_backend memory = {"memory", open_memory, NULL};

	return esr_store_conformance_run(&memory);
}
