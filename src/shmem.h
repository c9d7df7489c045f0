/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared state of the launcher and the sync workers.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_SHMEM_H
#define DATASYNC_SHMEM_H

#include "access/xlogdefs.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "stats.h"

/* what a sync worker is doing; shown by datasync.status */
typedef enum DsWorkerState
{
	DS_STATE_STARTING = 0,
	DS_STATE_SYNCING,			/* initial copy or a table resync */
	DS_STATE_STREAMING,
	DS_STATE_RETRYING,			/* waiting out a backoff after a transient error */
	DS_STATE_ERROR,				/* stopped on a permanent error */
	DS_STATE_STOPPED
} DsWorkerState;

#define DS_LAST_ERROR_LEN 512
#define DS_MAX_JOBS 8			/* queued runs a pipeline (incl. the current) */
#define DS_JOB_RESULTS 8		/* finished runs a waiter can still read */
#define DS_JOB_JSON_LEN 2048

/* what started a run: sync_now, create_job, or pg_cron */
typedef enum DsJobKind
{
	DS_JOB_MANUAL = 0,
	DS_JOB_API,
	DS_JOB_SCHEDULED
} DsJobKind;

/*
 * A requested run of a pipeline.  It is done once the worker has applied
 * everything before the marker the requester wrote (marker_seq / lsn), as
 * wait_for_sync; the counters at its start give its row counts.
 */
typedef struct DsJobRequest
{
	int64		job_id;
	DsJobKind	kind;
	uint64		marker_seq;
	XLogRecPtr	lsn;
	Oid			requested_by;
	TimestampTz requested_at;
	bool		started;		/* the worker wrote its row, counters below */
	TimestampTz started_at;
	uint64		base[DS_STAT_COUNT];	/* the slot's counters when it started */
} DsJobRequest;

/* a finished run, as the JSON of its datasync.jobs row */
typedef struct DsJobResult
{
	int64		job_id;			/* 0: unused */
	bool		failed;
	char		json[DS_JOB_JSON_LEN];	/* "" when it did not fit */
} DsJobResult;

/*
 * What names a pipeline in shared memory: its database, its id there, and
 * its incarnation (the random number _pipelines.incarnation gives every
 * pipeline).  Ids are only unique in one database and start again at 1
 * when the extension is created again; the three together never repeat.
 */
typedef struct DsPipelineKey
{
	Oid			dboid;
	int64		id;				/* 0: no pipeline */
	int64		incarnation;
} DsPipelineKey;

/*
 * One slot a pipeline.  A slot is claimed by the pipeline's worker and kept
 * (with its counters) across worker restarts; drop_pipeline frees it, and
 * so does the launcher once the pipeline is gone from the catalog (the
 * extension was dropped).  Counters are atomics written by the worker
 * alone; the other fields are protected by the spinlock; the key is
 * changed only with DsShared.lock held exclusively, too.
 */
typedef struct DsPipelineSlot
{
	slock_t		mutex;
	DsPipelineKey key;			/* key.id 0 when free */
	pid_t		pid;			/* worker pid, 0 when none runs */
	Latch	   *latch;			/* worker's latch while pid != 0 */
	DsWorkerState state;
	XLogRecPtr	applied_lsn;	/* end LSN of the last source transaction
								 * committed on the target */
	TimestampTz last_sync_at;	/* when that target commit happened */
	XLogRecPtr	done_lsn;		/* everything before it is on the target (or
								 * was irrelevant); wait_for_sync reads it */
	int			retry_attempt;
	TimestampTz next_attempt_at;
	char		last_error[DS_LAST_ERROR_LEN];
	bool		clean_exit;		/* the last worker exited with code 0 */
	bool		copy_base_set;	/* a session's copies went before its first
								 * runs started: they count from ... */
	uint64		copy_base;		/* ... this rows_copied */

	/* runs: FIFO, jobs[0] is the current one; results is a ring */
	int			njobs;
	DsJobRequest jobs[DS_MAX_JOBS];
	int			next_result;
	DsJobResult results[DS_JOB_RESULTS];

	pg_atomic_uint64 marker_seq;	/* highest wait_for_sync marker applied */
	pg_atomic_uint64 counters[DS_STAT_COUNT];	/* stats.h */
	DsLatency	latency;		/* stats.h */
	pg_atomic_uint64 queue_size;	/* rows in the retry queue (issue 19) */
	pg_atomic_uint64 oldest_pending;	/* commit time of the oldest change
										 * received and not yet on the
										 * target; 0: none */
	TimestampTz last_decay;		/* worker only: latency.recent halved */
	int			sample_next;	/* the ring of samples, under mutex */
	DsSample	samples[DS_SAMPLES];
	pg_atomic_uint32 config_generation; /* bumped when the catalog changed */
} DsPipelineSlot;

typedef struct DsShared
{
	LWLock	   *lock;			/* protects slot claiming */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	pg_atomic_uint64 marker_seq;	/* last wait_for_sync ticket handed out */
	pg_atomic_uint64 last_job_id;	/* 0 until read from datasync.jobs */
	ConditionVariable progress_cv;	/* broadcast when any marker_seq moves */
	int			nslots;
	DsPipelineSlot slots[FLEXIBLE_ARRAY_MEMBER];
} DsShared;

extern DsShared *DsShmem;

extern bool ds_shmem_available(void);
extern void ds_pipeline_key(DsPipelineKey *key, int64 id, int64 incarnation);
extern bool ds_key_equal(const DsPipelineKey *a, const DsPipelineKey *b);
extern DsPipelineSlot *ds_slot_find(const DsPipelineKey *key);
extern DsPipelineSlot *ds_slot_claim(const DsPipelineKey *key);
extern DsPipelineSlot *ds_slot_attach(const DsPipelineKey *key);
extern void ds_slot_release(const DsPipelineKey *key);
extern void ds_slot_set_state(DsPipelineSlot *slot, DsWorkerState state);
extern void ds_slot_set_error(DsPipelineSlot *slot, const char *msg);
extern const char *ds_state_name(DsWorkerState state);
extern void ds_signal_pipeline(const DsPipelineKey *key);
extern pid_t ds_slot_pid(const DsPipelineKey *key);
extern List *ds_slot_keys(Oid dboid);
extern void ds_slot_retire(const DsPipelineKey *key);

#endif							/* DATASYNC_SHMEM_H */
