/* A program outside the tree, built against an installed esr. */
#include <stdio.h>
#include <string.h>

#include <esr/esr.h>

struct counter {
	long value;
};

static void apply(void *state, const esr_event *ev)
{
	(void)ev;
	((struct counter *)state)->value++;
}

static int handle(const void *state, const void *command, esr_emitter *emit)
{
	(void)state;
	(void)command;
	return esr_emit(emit, 1, NULL, 0);
}

int main(void)
{
	const esr_aggregate_type counter = {
		.name = "Counter", .state_size = sizeof(struct counter), .apply = apply, .handle = handle};
	esr_repository *repo;
	esr_store *store;
	esr_result r;
	esr_status st;

	if (esr_memory_store_open(&store) != ESR_OK ||
	    esr_repository_open(store, NULL, &repo) != ESR_OK ||
	    esr_repository_register(repo, &counter) != ESR_OK)
		return 1;
	st = esr_repository_execute(repo, "Counter", "c", 1, NULL, &r);
	printf("consumer: esr %s, %s, version %llu\n", esr_version(), esr_strerror(st),
	       (unsigned long long)r.version);
	esr_repository_close(repo);
	esr_store_close(store);
	/* the installed headers and library are of one version */
	return st != ESR_OK || r.version != 1 || esr_version_number() != ESR_VERSION_NUMBER;
}
