/*
 * store/file/file_cmds.c: the file store's command ids in memory: per
 * stream, a map from command id to the versions its events got.
 * docs/architecture.md has the map.
 *
 * A stream that never saw an id has no map (its `cmds` is NULL). A map is an
 * open-addressing table of pointers to entries, one entry per command,
 * allocated by the appender before it takes the queue lock; the table grows
 * by doubling, so an append inserts without allocating once esr__cmds_room
 * has made room. Entries are never removed: the store remembers a stream's
 * ids as long as it keeps the stream, and a reopen rebuilds them from the
 * records (store/file/file_recover.c). Every call on a map of a running
 * store is made under the queue lock (fs->lock), which is also what makes
 * the duplicate check atomic with the version claim (store/file/file.c).
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "store/file/file_internal.h"

#define CMDS_FIRST 4 /* slots of a new map */

struct esr__cmds {
	size_t mask; /* slots - 1, a power of two */
	size_t used;
	struct esr__cmd *slot[];
};

struct esr__cmd *esr__cmd_new(const void *id, size_t len, uint64_t first, size_t count)
{
	struct esr__cmd *c = malloc(sizeof *c + len);

	if (c != NULL) {
		c->first = first;
		c->count = (uint16_t)count;
		c->len = (uint8_t)len;
		memcpy(c->id, id, len);
	}
	return c;
}

static size_t home(const struct esr__cmds *t, uint64_t seed, const void *id, size_t len)
{
	return (size_t)esr__hash_bytes(seed, id, len) & t->mask;
}

const struct esr__cmd *esr__cmds_find(const struct esr__cmds *t, uint64_t seed, const void *id,
                                      size_t len)
{
	size_t i;

	if (t == NULL)
		return NULL;
	for (i = home(t, seed, id, len); t->slot[i] != NULL; i = (i + 1) & t->mask)
		if (t->slot[i]->len == len && memcmp(t->slot[i]->id, id, len) == 0)
			return t->slot[i];
	return NULL;
}

/* Put c in a table with a free slot (linear probing; the load stays <= 3/4). */
static void place(struct esr__cmds *t, uint64_t seed, struct esr__cmd *c)
{
	size_t i = home(t, seed, c->id, c->len);

	while (t->slot[i] != NULL)
		i = (i + 1) & t->mask;
	t->slot[i] = c;
	t->used++;
}

int esr__cmds_room(struct esr__cmds **tp, uint64_t seed, size_t more)
{
	struct esr__cmds *t = *tp, *bigger;
	size_t slots = t ? t->mask + 1 : CMDS_FIRST, i;

	if (more == 0 || (t != NULL && 4 * (t->used + more) <= 3 * slots))
		return 0;
	while (4 * ((t ? t->used : 0) + more) > 3 * slots)
		slots *= 2;
	if ((bigger = calloc(1, sizeof *bigger + slots * sizeof bigger->slot[0])) == NULL)
		return -1;
	bigger->mask = slots - 1;
	for (i = 0; t != NULL && i <= t->mask; i++)
		if (t->slot[i] != NULL)
			place(bigger, seed, t->slot[i]);
	free(t);
	*tp = bigger;
	return 0;
}

void esr__cmds_put(struct esr__cmds *t, uint64_t seed, struct esr__cmd *c)
{
	place(t, seed, c);
}

size_t esr__cmds_count(const struct esr__cmds *t)
{
	return t ? t->used : 0;
}

void esr__cmds_free(struct esr__cmds *t)
{
	size_t i;

	for (i = 0; t != NULL && i <= t->mask; i++)
		free(t->slot[i]);
	free(t);
}
