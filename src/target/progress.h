/*-------------------------------------------------------------------------
 *
 * progress.h
 *		The progress table on PostgreSQL targets: its layout, and whose
 *		rows are whose.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/progress.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_PROGRESS_H
#define DATASYNC_PROGRESS_H

#include "libpq-fe.h"

extern char *ds_progress_source(void);
extern void ds_progress_prepare(PGconn *conn, const char *pipeline,
								const char *incarnation, const char *source);

#endif							/* DATASYNC_PROGRESS_H */
