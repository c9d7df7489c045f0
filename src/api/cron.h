/*-------------------------------------------------------------------------
 *
 * cron.h
 *		Schedules of scheduled pipelines, kept as pg_cron jobs.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/cron.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_CRON_H
#define DATASYNC_CRON_H

extern void ds_cron_require(void);
extern char *ds_cron_check_schedule(const char *schedule);
extern void ds_cron_schedule(int64 pipeline_id, const char *pipeline, const char *schedule);
extern void ds_cron_unschedule(const char *pipeline);

#endif							/* DATASYNC_CRON_H */
