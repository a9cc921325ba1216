/*
 * tests/store/test_store_memory.c: the conformance suite against the memory store,
 * and the store handle's own argument checks.
 */
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

static esr_status no_append(void *impl, const esr_stream_id *s, uint64_t e,
                            const esr_event *ev, size_t n, esr_append_cb done, void *ctx)
{
	(void)impl, (void)s, (void)e, (void)ev, (void)n, (void)done, (void)ctx;
	return ESR_ENOTSUP;
}

static esr_status no_read(void *impl, const esr_stream_id *s, uint64_t from,
                          esr_visit_fn visit, void *ctx)
{
	(void)impl, (void)s, (void)from, (void)visit, (void)ctx;
	return ESR_ENOTSUP;
}

static esr_status no_version(void *impl, const esr_stream_id *s, uint64_t *v)
{
	(void)impl, (void)s, (void)v;
	return ESR_ENOTSUP;
}

static esr_status refuse_conflict(void *impl, const esr_stream_id *s, uint64_t e,
                                  const esr_event *ev, size_t n, esr_append_cb done,
                                  void *ctx)
{
	(void)impl, (void)s, (void)e, (void)ev, (void)n, (void)done, (void)ctx;
	return ESR_ECONFLICT; /* refused outright: done is never called */
}

static int destroyed;

static void count_destroy(void *impl)
{
	(void)impl;
	destroyed++;
}

static esr_status no_resolve(void *impl, const esr_stream_id *sid, void **handle)
{
	(void)impl, (void)sid, (void)handle;
	return ESR_EIO;
}

static esr_status no_append_resolved(void *impl, void *handle, uint64_t expected,
                                     const esr_event *events, size_t n,
                                     esr_append_cb done, void *ctx)
{
	(void)impl, (void)handle, (void)expected, (void)events, (void)n, (void)done, (void)ctx;
	return ESR_EIO;
}

static void no_destroy(void *impl)
{
	(void)impl;
}

static esr_status broken_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	(void)impl, (void)name, (void)position;
	return ESR_EIO;
}

static esr_status broken_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	(void)impl, (void)name;
	*position = 99; /* a backend's scribble must not reach the caller */
	return ESR_EIO;
}

/* Out-parameters are written only on success (esr.h), whatever the backend. */
static void a_failed_checkpoint_load_leaves_the_position(void **state)
{
	esr_store_vtable vt = {.vtable_version = ESR_STORE_VTABLE_VERSION,
	                       .name = "stub", .append = no_append, .read = no_read,
	                       .version = no_version, .checkpoint_save = broken_checkpoint_save,
	                       .destroy = no_destroy, .checkpoint_load = broken_checkpoint_load};
	esr_store *s = NULL;
	uint64_t pos = 12345;

	(void)state;
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_OK);
	assert_int_equal(esr_store_checkpoint_load(s, "p", &pos), ESR_EIO);
	assert_int_equal(pos, 12345);
	assert_int_equal(esr_store_checkpoint_load(s, "bad name", &pos), ESR_EINVAL);
	assert_int_equal(pos, 12345);
	assert_int_equal(esr_store_close(s), ESR_OK);
}

static void handle_checks_its_arguments(void **state)
{
	esr_store_vtable vt = {.vtable_version = ESR_STORE_VTABLE_VERSION,
	                       .name = "stub", .append = no_append, .read = no_read,
	                       .version = no_version, .destroy = count_destroy};
	esr_stream_id sid = {"T", "i", 1};
	esr_event ev = {.type = 1};
	esr_store *s = NULL;
	uint64_t v;

	(void)state;
	assert_int_equal(esr_memory_store_open(NULL), ESR_EINVAL);
	assert_int_equal(esr_store_create(NULL, NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_store_create(&vt, NULL, NULL), ESR_EINVAL);
	vt.read = NULL;
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_EINVAL);
	vt.read = no_read;
	vt.name = NULL;
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_EINVAL);
	vt.name = "stub";
	vt.resolve = no_resolve; /* resolve without append_resolved */
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_EINVAL);
	vt.resolve = NULL;
	vt.append_resolved = no_append_resolved; /* and the other way round */
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_EINVAL);
	vt.append_resolved = NULL;
	assert_null(s);
	assert_int_equal(esr_store_close(NULL), ESR_OK);
	assert_string_equal(esr_store_name(NULL), "");

	/* a custom backend: its own statuses come back untouched */
	assert_int_equal(esr_store_create(&vt, NULL, &s), ESR_OK);
	assert_string_equal(esr_store_name(s), "stub");
	assert_int_equal(esr_store_append(s, &sid, 0, &ev, 1, NULL), ESR_ENOTSUP);
	{
		esr_append_result r = {.status = ESR_OK, .version = 77};
		vt.append = refuse_conflict; /* the result must not be left unfilled */
		assert_int_equal(esr_store_append(s, &sid, 0, &ev, 1, &r), ESR_ECONFLICT);
		assert_int_equal(r.status, ESR_ECONFLICT);
		assert_int_equal(r.version, 0);
	}
	assert_int_equal(esr_store_version(s, &sid, &v), ESR_ENOTSUP);
	assert_int_equal(esr_store_close(s), ESR_OK);
	assert_int_equal(destroyed, 1);
}

/*
 * A backend written against another contract (an older or newer vtable, or
 * one that never set the field) is refused before any other field is read:
 * no handle is made, nothing is written to *out and impl stays the caller's.
 */
static void a_vtable_of_another_version_is_refused(void **state)
{
	esr_store_vtable vt = {.vtable_version = ESR_STORE_VTABLE_VERSION,
	                       .name = "stub", .append = no_append, .read = no_read,
	                       .version = no_version, .destroy = count_destroy};
	const unsigned others[] = {0, ESR_STORE_VTABLE_VERSION - 1, ESR_STORE_VTABLE_VERSION + 1,
	                           ~0u};
	esr_store *sentinel = (esr_store *)&vt, *s = sentinel;
	int before = destroyed;

	(void)state;
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		vt.vtable_version = others[i];
		assert_int_equal(esr_store_create(&vt, &vt, &s), ESR_ENOTSUP);
		assert_ptr_equal(s, sentinel);
	}
	/* refused before the other checks: the fields may mean something else */
	vt.name = NULL;
	assert_int_equal(esr_store_create(&vt, &vt, &s), ESR_ENOTSUP);
	vt.name = "stub";
	assert_int_equal(destroyed, before);

	/* the same vtable at this version is taken, and owns impl from then on */
	vt.vtable_version = ESR_STORE_VTABLE_VERSION;
	assert_int_equal(esr_store_create(&vt, &vt, &s), ESR_OK);
	assert_ptr_not_equal(s, sentinel);
	assert_int_equal(esr_store_close(s), ESR_OK);
	assert_int_equal(destroyed, before + 1);
}

int main(void)
{
	const struct store_backend memory = {"memory", open_memory, NULL, NULL};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handle_checks_its_arguments),
		cmocka_unit_test(a_failed_checkpoint_load_leaves_the_position),
		cmocka_unit_test(a_vtable_of_another_version_is_refused),
	};
	int failed = cmocka_run_group_tests_name("store handle", tests, NULL, NULL);

	return failed + esr_store_conformance_run(&memory);
}
