/*-------------------------------------------------------------------------
 *
 * jobs.h
 *		The run queue of a pipeline in shared memory: the launcher's and
 *		the worker's interface, and the queue operations of the SQL
 *		functions in api/jobs_api.c.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/jobs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_JOBS_H
#define DATASYNC_JOBS_H

#include "shmem.h"

/* launcher and worker */
extern bool ds_jobs_pending(DsPipelineSlot *slot);
extern bool ds_jobs_poll(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline);
extern void ds_jobs_fail_all(DsPipelineSlot *slot, int64 pipeline_id,
							 const char *pipeline, const char *reason);
extern bool ds_jobs_worker_exit(DsPipelineSlot *slot);
extern void ds_jobs_fail_orphans(void);

/* where a run stands in its pipeline's queue (ds_jobs_peek) */
typedef enum DsJobState
{
	DS_JOB_DROPPED,				/* the pipeline was dropped meanwhile */
	DS_JOB_QUEUED,				/* queued or running */
	DS_JOB_ENDED				/* ended */
} DsJobState;

/* requesters (api/jobs_api.c) */
extern const char *ds_job_kind_name(DsJobKind kind);
extern char *ds_jobs_row_json(int64 job_id, char **status);
extern int64 ds_jobs_enqueue(const DsPipelineKey *key, const char *pipeline,
							 DsJobKind kind, Oid requested_by,
							 DsPipelineSlot **slot_out);
extern int64 ds_jobs_find_queued(int64 job_id, DsJobRequest *req);
extern DsJobState ds_jobs_peek(DsPipelineSlot *slot, const DsPipelineKey *key,
							   int64 job_id, bool *failed, char *json);

#endif							/* DATASYNC_JOBS_H */
