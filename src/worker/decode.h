/*-------------------------------------------------------------------------
 *
 * decode.h
 *		pgoutput messages to changes, grouped into target batches.
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
#include "shmem.h"

/*
 * A batch sent to the target whose commit is not confirmed yet.  Once it
 * is, everything up to marker_lsn is done (transactions after it with
 * nothing for the target included) and wait_for_sync ticket marker passed.
 */
typedef struct DsBatchSent
{
	XLogRecPtr	end_lsn;
	XLogRecPtr	marker_lsn;
	uint64		marker;
	uint64		ins;
	uint64		upd;
	uint64		del;
	uint64		txns;
} DsBatchSent;

typedef struct DsDecoder
{
	DsApplyTarget *target;
	DsPipelineConfig *cfg;
	DsPipelineSlot *slot;

	/* the source transaction being received */
	bool		in_txn;
	bool		skip_txn;		/* already applied before a restart */
	XLogRecPtr	final_lsn;		/* its commit record's LSN */
	XLogRecPtr	skip_before;	/* transactions committed before: applied */
	TimestampTz commit_time;	/* its commit time */
	int			change_seq;		/* changes of it so far */

	/* the open target batch */
	bool		batch_open;
	int			batch_rows;
	Size		batch_bytes;	/* of the values of its changes */
	int			batch_txns;
	TimestampTz batch_started;
	XLogRecPtr	batch_end_lsn;
	uint64		batch_ins;
	uint64		batch_upd;
	uint64		batch_del;
	uint64		batch_marker;	/* wait_for_sync ticket to publish at commit */
	bool		marker_seen;	/* a datasync marker passed (jobs check it) */
	XLogRecPtr	batch_marker_lsn;	/* where the last marker in the batch was */
	bool		batch_checked;	/* a change took the conflict-checking path */

	/* highest end LSN everything before which is on the target */
	XLogRecPtr	done_lsn;

	/* batches committed without waiting, oldest first (a ring) */
	DsBatchSent fly[DS_MAX_INFLIGHT + 1];
	int			fly_head;
	int			inflight;
} DsDecoder;

extern void ds_decode_message(DsDecoder *d, StringInfo s);
extern bool ds_decode_batch_full(DsDecoder *d);
extern void ds_decode_close_batch(DsDecoder *d);
extern void ds_decode_publish_marker(DsPipelineSlot *slot, uint64 seq);
extern void ds_decode_set_done(DsDecoder *d, XLogRecPtr lsn);
extern void ds_decode_start(DsDecoder *d);
extern void ds_decode_settle(DsDecoder *d);
extern bool ds_decode_awaits_confirmation(DsDecoder *d);

#endif							/* DATASYNC_DECODE_H */
