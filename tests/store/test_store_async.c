/*
 * tests/store/test_store_async.c: the conformance suite against a store whose
 * appends complete later on another thread (tests/fixtures/async_store.c), so the
 * contract is checked for the completion path durable stores will take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "async_store.h"
#include "store_conformance.h"

static esr_status open_async(void *arg, esr_store **out)
{
	esr_store *inner;
	esr_status st;

	(void)arg;
	if ((st = esr_memory_store_open(&inner)) != ESR_OK)
		return st;
	if ((st = async_store_open(inner, 1, out)) != ESR_OK)
		esr_store_close(inner);
	return st;
}

int main(void)
{
	const struct store_backend async = {"async (memory, completed later)", open_async, NULL, NULL};

	return esr_store_conformance_run(&async);
}
