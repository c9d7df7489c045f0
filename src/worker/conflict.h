/*-------------------------------------------------------------------------
 *
 * conflict.h
 *		Conflict bookkeeping in the worker, and resolve_conflict.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/conflict.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_CONFLICT_H
#define DATASYNC_CONFLICT_H

#include "storage/lock.h"

#include "target/apply.h"
#include "worker/decode.h"

extern const char *ds_conflict_kind_name(const char *kind);
extern void ds_conflict_session_start(DsDecoder *d, MemoryContext sesscxt);
extern bool ds_conflict_route(DsDecoder *d, DsChange *ch);
extern void ds_conflict_before_commit(DsDecoder *d);
extern void ds_conflict_after_commit(DsDecoder *d);
extern void ds_conflict_lock_tag(LOCKTAG *tag, int64 id);

#endif							/* DATASYNC_CONFLICT_H */
