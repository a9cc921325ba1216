/*
 * store/open.c: esr_store_open_spec, a store named by one selector string.
 * docs/architecture.md has the map.
 */
#include <string.h>

#include "core/internal.h"
#include "esr/esr.h"

esr_status esr_store_open_spec(const char *spec, char *why, size_t why_size, esr_store **out)
{
	if (why != NULL && why_size > 0)
		why[0] = '\0';
	if (spec == NULL || out == NULL) {
		esr__why(why, why_size, "%s '%s'", "a store selector and out are required, got",
		         spec ? spec : "");
		return ESR_EINVAL;
	}
	if (strcmp(spec, "memory") == 0)
		return esr_memory_store_open(out);
	if (strncmp(spec, "file:", 5) == 0 && spec[5] != '\0') {
		esr_file_store_options o;
		esr_file_store_options_default(&o);
		o.why = why;
		o.why_size = why_size;
		return esr_file_store_open(spec + 5, &o, out);
	}
	if (strncmp(spec, "postgres:", 9) == 0) {
		esr_pg_store_options o;
		esr_pg_store_options_default(&o);
		o.why = why;
		o.why_size = why_size;
		return esr_pg_store_open(spec + 9, &o, out);
	}
	esr__why(why, why_size, "%s '%s'", "expected memory, file:DIR or postgres:CONNINFO, got",
	         spec);
	return ESR_EINVAL;
}
