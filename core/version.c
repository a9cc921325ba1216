/*
 * core/version.c: the library's own version, from esr/version.h at the time
 * the library was built (see docs/architecture.md for the map).
 */
#include "esr/version.h"

/* Two steps, so that the macros expand before they are made a string. */
#define STRING(x) #x
#define VERSION_STRING(a, b, c) STRING(a) "." STRING(b) "." STRING(c)

const char *esr_version(void)
{
	return VERSION_STRING(ESR_VERSION_MAJOR, ESR_VERSION_MINOR, ESR_VERSION_PATCH);
}

int esr_version_number(void)
{
	return ESR_VERSION_NUMBER;
}
