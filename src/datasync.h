/*-------------------------------------------------------------------------
 *
 * datasync.h
 *		Declarations shared by every datasync module: GUCs, limits, names.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/datasync.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_H
#define DATASYNC_H

#include "postgres.h"

#define DATASYNC_EXTNAME		"datasync"
#define DATASYNC_SCHEMA			"datasync"
/* slots and publications are named DATASYNC_PREFIX || pipeline name */
#define DATASYNC_PREFIX			"datasync_"
/* prefix of the logical messages wait_for_sync emits */
#define DATASYNC_MARKER_PREFIX	"datasync.marker"
/* the progress table on PostgreSQL targets */
#define DATASYNC_PROGRESS_TABLE	"public.datasync_progress"

/* longest pipeline name: slot names are limited to NAMEDATALEN - 1 */
#define DATASYNC_MAX_NAME_LEN	(NAMEDATALEN - 1 - (int) (sizeof(DATASYNC_PREFIX) - 1))

/* guc.c */
extern char *datasync_database;
extern int	datasync_max_pipelines;
extern int	datasync_naptime;
extern char *datasync_source_conninfo;
extern char *datasync_http_listen;
extern int	datasync_http_port;

extern void ds_guc_init(void);

/* shmem.c */
extern void ds_shmem_init(void);

/* launcher.c, worker.c */
extern PGDLLEXPORT void DatasyncLauncherMain(Datum main_arg);
extern PGDLLEXPORT void DatasyncWorkerMain(Datum main_arg);
extern void ds_launcher_register(void);
extern PGDLLEXPORT void DatasyncHttpdMain(Datum main_arg);
extern void ds_httpd_register(void);
extern void ds_launcher_wakeup_at_commit(void);
extern void ds_signal_at_commit(int64 pipeline_id, int64 incarnation);

#endif							/* DATASYNC_H */
