/*-------------------------------------------------------------------------
 *
 * spool.h
 *		Source transactions streamed while in progress, kept in temporary
 *		files until they commit.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/spool.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_SPOOL_H
#define DATASYNC_SPOOL_H

#include "lib/stringinfo.h"

typedef void (*DsSpoolReplayFn) (StringInfo msg, void *arg);

extern void ds_spool_init(MemoryContext cxt);
extern void ds_spool_reset(void);
extern void ds_spool_start(TransactionId xid, bool first_segment);
extern void ds_spool_stop(void);
extern bool ds_spool_in_stream(void);
extern void ds_spool_change(TransactionId xid, char action, StringInfo s);
extern void ds_spool_abort(TransactionId xid, TransactionId subxid);
extern void ds_spool_replay(TransactionId xid, DsSpoolReplayFn fn, void *arg);

#endif							/* DATASYNC_SPOOL_H */
