/*
 * runtime/passivate.h: epoch records and the janitor that evicts idle actors
 * (runtime/passivate.c). See docs/architecture.md for the actor lifecycle.
 */
#ifndef ESR_RUNTIME_PASSIVATE_H
#define ESR_RUNTIME_PASSIVATE_H

#include <ck_epoch.h>

#include "esr/esr.h"

struct esr_runtime;

esr_status esr__epoch_init(struct esr_runtime *rt);
ck_epoch_record_t *esr__epoch_record(struct esr_runtime *rt);
void esr__epoch_fini(struct esr_runtime *rt);
esr_status esr__janitor_start(struct esr_runtime *rt);
void esr__janitor_stop(struct esr_runtime *rt);

#endif /* ESR_RUNTIME_PASSIVATE_H */
