/* tests/runtime/test_config.c: strategy names and configuration from the environment. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include <esr/esr.h>

static void strategies_parse_exactly(void **state)
{
	esr_strategy s = (esr_strategy)42;

	(void)state;
	assert_int_equal(esr_strategy_parse("optimistic", &s), ESR_OK);
	assert_int_equal(s, ESR_OPTIMISTIC);
	assert_int_equal(esr_strategy_parse("unchecked", &s), ESR_OK);
	assert_int_equal(s, ESR_UNCHECKED);
	assert_int_equal(esr_strategy_parse("Optimistic", &s), ESR_EINVAL);
	assert_int_equal(esr_strategy_parse("unchecked ", &s), ESR_EINVAL);
	assert_int_equal(esr_strategy_parse("", &s), ESR_EINVAL);
	assert_int_equal(esr_strategy_parse("both", &s), ESR_EINVAL);
	assert_int_equal(s, ESR_UNCHECKED); /* untouched by the failures */
	assert_int_equal(esr_strategy_parse(NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_strategy_parse("optimistic", NULL), ESR_EINVAL);
	assert_string_equal(esr_strategy_name(ESR_OPTIMISTIC), "optimistic");
	assert_string_equal(esr_strategy_name(ESR_UNCHECKED), "unchecked");
	assert_string_equal(esr_strategy_name((esr_strategy)9), "?");
}

static void defaults_are_optimistic(void **state)
{
	esr_repository_config c = {.strategy = ESR_UNCHECKED};

	(void)state;
	assert_int_equal(esr_repository_config_default(&c), ESR_OK);
	assert_int_equal(c.strategy, ESR_OPTIMISTIC);
	assert_int_equal(esr_repository_config_default(NULL), ESR_EINVAL);
}

static void environment_sets_the_strategy(void **state)
{
	esr_repository_config c;

	(void)state;
	unsetenv("ESR_STRATEGY");
	c.strategy = ESR_UNCHECKED;
	assert_int_equal(esr_repository_config_from_env(&c), ESR_OK);
	assert_int_equal(c.strategy, ESR_OPTIMISTIC);

	setenv("ESR_STRATEGY", "unchecked", 1);
	assert_int_equal(esr_repository_config_from_env(&c), ESR_OK);
	assert_int_equal(c.strategy, ESR_UNCHECKED);

	setenv("ESR_STRATEGY", "", 1);
	assert_int_equal(esr_repository_config_from_env(&c), ESR_OK);
	assert_int_equal(c.strategy, ESR_OPTIMISTIC);

	/* an unknown value is an error, and the config is left as it was */
	c.strategy = ESR_UNCHECKED;
	setenv("ESR_STRATEGY", "pessimistic", 1);
	assert_int_equal(esr_repository_config_from_env(&c), ESR_EINVAL);
	assert_int_equal(c.strategy, ESR_UNCHECKED);
	assert_int_equal(esr_repository_config_from_env(NULL), ESR_EINVAL);
	unsetenv("ESR_STRATEGY");
}

static void a_repository_takes_its_strategy_from_the_environment(void **state)
{
	esr_repository_config c;
	esr_repository *repo;
	esr_store *store;
	esr_strategy s;

	(void)state;
	setenv("ESR_STRATEGY", "unchecked", 1);
	assert_int_equal(esr_repository_config_from_env(&c), ESR_OK);
	unsetenv("ESR_STRATEGY");
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	assert_int_equal(esr_repository_open(store, &c, &repo), ESR_OK);
	assert_int_equal(esr_repository_strategy(repo, &s), ESR_OK);
	assert_int_equal(s, ESR_UNCHECKED);
	esr_repository_close(repo);
	assert_int_equal(esr_repository_open(store, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_strategy(repo, &s), ESR_OK);
	assert_int_equal(s, ESR_OPTIMISTIC);
	esr_repository_close(repo);
	esr_store_close(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strategies_parse_exactly),
		cmocka_unit_test(defaults_are_optimistic),
		cmocka_unit_test(environment_sets_the_strategy),
		cmocka_unit_test(a_repository_takes_its_strategy_from_the_environment),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
