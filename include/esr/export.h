/*
 * esr/export.h: ESR_API, the mark on every public function. The library is
 * built with hidden visibility, so only what carries ESR_API is exported
 * from the shared library. Every public header that declares a function
 * includes this one.
 */
#ifndef ESR_EXPORT_H
#define ESR_EXPORT_H

#if defined(__GNUC__)
#define ESR_API __attribute__((visibility("default")))
#else
#define ESR_API
#endif

#endif /* ESR_EXPORT_H */
