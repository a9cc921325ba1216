/*
 * core/why.c: esr__why, a failure's sentence formatted into a caller's `why`
 * buffer, for the stores' open paths and the selector. docs/architecture.md
 * has the map.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"

void esr__why(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}
