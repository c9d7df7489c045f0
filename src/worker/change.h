/*-------------------------------------------------------------------------
 *
 * change.h
 *		The stages every row change passes, in order, on its way to the
 *		target.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/change.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_WORKER_CHANGE_H
#define DATASYNC_WORKER_CHANGE_H

#include "rowchange.h"
#include "trust.h"
#include "worker/decode.h"

extern void ds_change_process(DsDecoder *d, DsChange *ch);
extern void ds_change_truncate(DsDecoder *d, List *rels, bool cascade,
							   bool restart_seqs);
extern void ds_change_as_owner(DsChange *ch, const char *what,
							   DsOwnerFn fn, void *arg);

#endif							/* DATASYNC_WORKER_CHANGE_H */
