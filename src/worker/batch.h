/*-------------------------------------------------------------------------
 *
 * batch.h
 *		Target batches: which source transactions share a target
 *		transaction, the batches in flight, and what is recorded on the
 *		source before the target commits one.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/batch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_BATCH_H
#define DATASYNC_BATCH_H

#include "rowchange.h"
#include "shmem.h"
#include "target/apply.h"

struct DsDecoder;

/*
 * A batch sent to the target whose commit is not confirmed yet.  Once it
 * is, everything up to marker_lsn is done (transactions after it with
 * nothing for the target included) and wait_for_sync ticket marker passed.
 */
/* commit times of a batch's transactions kept for the latency histogram */
#define DS_LAT_SAMPLES 32

typedef struct DsBatchSent
{
	uint64		no;				/* the batch's number in this session */
	TimestampTz first_commit;	/* of its first source transaction */
	int			nsamples;		/* commit times of its transactions ... */
	TimestampTz samples[DS_LAT_SAMPLES];	/* ... a uniform sample of them */
	XLogRecPtr	end_lsn;
	XLogRecPtr	marker_lsn;
	uint64		marker;
	uint64		ins;
	uint64		upd;
	uint64		del;
	uint64		txns;
} DsBatchSent;

/* the open batch and the batches in flight of a streaming session */
typedef struct DsBatches
{
	/* the open target batch */
	bool		open;
	int			rows;
	Size		bytes;			/* of the values of its changes */
	int			txns;
	TimestampTz started;
	XLogRecPtr	end_lsn;
	uint64		ins;
	uint64		upd;
	uint64		del;
	uint64		marker;			/* wait_for_sync ticket to publish at commit */
	XLogRecPtr	marker_lsn;		/* where the last marker in the batch was */
	bool		checked;		/* a change took the conflict-checking path */
	TimestampTz first_commit;	/* of its first source transaction */
	int			nsamples;		/* commit times of its transactions */
	TimestampTz samples[DS_LAT_SAMPLES];

	/* highest end LSN everything before which is on the target */
	XLogRecPtr	done_lsn;

	/* batches committed without waiting, oldest first (a ring) */
	uint64		next_no;		/* number of the next batch committed */
	DsBatchSent fly[DS_MAX_INFLIGHT + 1];
	int			fly_head;
	int			inflight;
} DsBatches;

extern void ds_batch_start(struct DsDecoder *d);
extern void ds_batch_open(struct DsDecoder *d);
extern void ds_batch_add(struct DsDecoder *d, DsChange *ch);
extern void ds_batch_count(struct DsDecoder *d, DsChangeKind kind);
extern void ds_batch_uncount(struct DsDecoder *d, DsChangeKind kind);
extern bool ds_batch_full(struct DsDecoder *d);
extern void ds_batch_close(struct DsDecoder *d);
extern void ds_batch_settle(struct DsDecoder *d);
extern bool ds_batch_awaits_confirmation(struct DsDecoder *d);
extern void ds_batch_txn_end(struct DsDecoder *d, XLogRecPtr end_lsn);
extern void ds_batch_marker(struct DsDecoder *d, XLogRecPtr lsn, uint64 seq);
extern void ds_batch_set_done(struct DsDecoder *d, XLogRecPtr lsn);
extern void ds_batch_publish_marker(DsPipelineSlot *slot, uint64 seq);

#endif							/* DATASYNC_BATCH_H */
