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

#include "datatype/timestamp.h"
#include "port/atomics.h"

typedef enum DsCounter
{
	DS_STAT_ROWS_INSERTED,		/* rows inserted on the target */
	DS_STAT_ROWS_UPDATED,		/* ... updated */
	DS_STAT_ROWS_DELETED,		/* ... deleted */
	DS_STAT_TRANSACTIONS,		/* source transactions applied */
	DS_STAT_ERRORS,				/* sessions ended by an error */
	DS_STAT_CONFLICTS,			/* conflicts detected, whatever the strategy */
	DS_STAT_ROWS_COPIED,		/* rows of initial copies and re-syncs */
	DS_STAT_REJECTED,			/* changes validation rejected (issue 18) */
} DsCounter;

#define DS_STAT_COUNT (DS_STAT_REJECTED + 1)

extern PGDLLIMPORT const char *const DsCounterNames[DS_STAT_COUNT];

/*
 * Commit-to-target latency: how long after its commit on the source a
 * transaction was committed on the target, as a histogram (upper bounds in
 * ms; the last bucket has none).  "all" counts since the slot was claimed
 * or reset; "recent" halves every DS_LAT_HALF_LIFE_MS (the worker decays
 * it), so its quantiles describe the last few minutes.
 */
#define DS_LAT_BUCKETS 16
extern PGDLLIMPORT const double DsLatencyBounds[DS_LAT_BUCKETS - 1];
#define DS_LAT_HALF_LIFE_MS 60000

typedef struct DsLatency
{
	pg_atomic_uint64 all[DS_LAT_BUCKETS];
	pg_atomic_uint64 recent[DS_LAT_BUCKETS];
	pg_atomic_uint64 sum_us;	/* of all observations */
} DsLatency;

/* rows applied and lag, sampled every DS_SAMPLE_MS over the last hour (a ring) */
#define DS_SAMPLE_MS 10000
#define DS_SAMPLES 360

typedef struct DsSample
{
	TimestampTz at;				/* 0: empty */
	uint64		rows_applied;
	double		lag_ms;			/* as datasync.status.lag_ms */
} DsSample;

struct DsPipelineSlot;

extern void ds_stats_add(struct DsPipelineSlot *slot, DsCounter c, uint64 n);
extern uint64 ds_stats_read(struct DsPipelineSlot *slot, DsCounter c);
extern void ds_stats_reset(struct DsPipelineSlot *slot, bool init);
extern void ds_stats_latency(struct DsPipelineSlot *slot, double ms, uint64 n);
extern void ds_stats_decay(struct DsPipelineSlot *slot, TimestampTz now);
extern double ds_stats_latency_quantile(struct DsPipelineSlot *slot, double q);
extern double ds_stats_lag_ms(struct DsPipelineSlot *slot, TimestampTz now);
extern void ds_stats_sample(struct DsPipelineSlot *slot, TimestampTz now);
extern double ds_stats_throughput(struct DsPipelineSlot *slot, TimestampTz now);

#endif							/* DATASYNC_STATS_H */
