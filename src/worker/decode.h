/*-------------------------------------------------------------------------
 *
 * decode.h
 *		pgoutput messages to changes and transaction boundaries.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/decode.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_DECODE_H
#define DATASYNC_DECODE_H

#include "lib/stringinfo.h"

#include "target/apply.h"
#include "worker/batch.h"
#include "shmem.h"

/*
 * The state of a streaming session: the source transaction being received
 * (decode.c) and the target batches (batch.c).
 */
typedef struct DsDecoder
{
	DsApplyTarget *target;
	DsPipelineConfig *cfg;
	DsPipelineSlot *slot;

	/* the source transaction being received */
	bool		in_txn;
	bool		skip_txn;		/* already applied before a restart, or
								 * skip_transaction asked to skip it */
	bool		skip_asked;		/* ... the latter */
	XLogRecPtr	skipped_lsn;	/* a transaction skipped as asked, until a
								 * later batch is on the target */
	XLogRecPtr	final_lsn;		/* its commit record's LSN */
	XLogRecPtr	skip_before;	/* transactions committed before: applied */
	TimestampTz commit_time;	/* its commit time */
	int			change_seq;		/* changes of it so far */
	bool		marker_seen;	/* a datasync marker passed (jobs check it) */
	bool		skip_done;		/* skipped_lsn is behind the target's progress */

	DsBatches	b;				/* batch.c's */
} DsDecoder;

extern void ds_decode_message(DsDecoder *d, StringInfo s);

#endif							/* DATASYNC_DECODE_H */
