/*
 * esr/version.h: the version of esr, kept here and nowhere else (the build
 * reads it from this file, see CMakeLists.txt). Semantic versioning: MAJOR
 * changes break the ABI, MINOR adds to it, PATCH only fixes. Before 1.0 a
 * MINOR step may break it, and the shared library's soname then carries
 * MAJOR.MINOR (libesr.so.0.2): 0.2 put a version first in esr_store_vtable.
 *
 * The macros give the version a program was compiled against; esr_version()
 * and esr_version_number() give the library it runs with, so a host can
 * tell the two apart (a shared library swapped under it).
 */
#ifndef ESR_VERSION_H
#define ESR_VERSION_H

#include "esr/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESR_VERSION_MAJOR 0
#define ESR_VERSION_MINOR 2
#define ESR_VERSION_PATCH 0

/* MAJOR * 10000 + MINOR * 100 + PATCH: 0.2.0 is 200, 1.2.3 is 10203. */
#define ESR_VERSION_NUMBER \
	(ESR_VERSION_MAJOR * 10000 + ESR_VERSION_MINOR * 100 + ESR_VERSION_PATCH)

/*
 * esr_version: the library's version as "MAJOR.MINOR.PATCH" ("0.2.0"). The
 * string is static; never NULL.
 */
ESR_API const char *esr_version(void);

/* esr_version_number: the library's ESR_VERSION_NUMBER (200 for 0.2.0). */
ESR_API int esr_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* ESR_VERSION_H */
