/*-------------------------------------------------------------------------
 *
 * jobs.h
 *		Runs of a pipeline: the queue in shared memory, datasync.jobs,
 *		sync_now / create_job / job_status and pg_cron's scheduled runs.
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

extern bool ds_jobs_pending(DsPipelineSlot *slot);
extern bool ds_jobs_poll(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline);
extern void ds_jobs_fail_all(DsPipelineSlot *slot, int64 pipeline_id,
							 const char *pipeline, const char *reason);
extern bool ds_jobs_worker_exit(DsPipelineSlot *slot);
extern void ds_jobs_fail_orphans(void);

#endif							/* DATASYNC_JOBS_H */
