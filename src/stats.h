/*-------------------------------------------------------------------------
 *
 * stats.h
 *		The counters of a pipeline: one table of them, one way to add.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/stats.h
 *
 * NOTES
 *		Like PostgreSQL's ConflictType and ConflictTypeNames: an enum and
 *		the names datasync.status shows them by.  A counter lives in the
 *		pipeline's shared memory slot (shmem.h), is added to only with
 *		ds_stats_add and read with ds_stats_read; datasync.status and
 *		datasync.jobs read the same table.  A new counter is one enum
 *		member and one name.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_STATS_H
#define DATASYNC_STATS_H

typedef enum DsCounter
{
	DS_STAT_ROWS_INSERTED,		/* rows inserted on the target */
	DS_STAT_ROWS_UPDATED,		/* ... updated */
	DS_STAT_ROWS_DELETED,		/* ... deleted */
	DS_STAT_TRANSACTIONS,		/* source transactions applied */
	DS_STAT_ERRORS,				/* sessions ended by an error */
	DS_STAT_CONFLICTS,			/* conflicts detected, whatever the strategy */
} DsCounter;

#define DS_STAT_COUNT (DS_STAT_CONFLICTS + 1)

extern PGDLLIMPORT const char *const DsCounterNames[DS_STAT_COUNT];

struct DsPipelineSlot;

extern void ds_stats_add(struct DsPipelineSlot *slot, DsCounter c, uint64 n);
extern uint64 ds_stats_read(struct DsPipelineSlot *slot, DsCounter c);
extern void ds_stats_reset(struct DsPipelineSlot *slot, bool init);

#endif							/* DATASYNC_STATS_H */
