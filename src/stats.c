/*-------------------------------------------------------------------------
 *
 * stats.c
 *		The counters of a pipeline: one table of them, one way to add.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "shmem.h"
#include "stats.h"

/* as datasync.status names them */
const char *const DsCounterNames[DS_STAT_COUNT] = {
	[DS_STAT_ROWS_INSERTED] = "rows_inserted",
	[DS_STAT_ROWS_UPDATED] = "rows_updated",
	[DS_STAT_ROWS_DELETED] = "rows_deleted",
	[DS_STAT_TRANSACTIONS] = "transactions",
	[DS_STAT_ERRORS] = "errors",
	[DS_STAT_CONFLICTS] = "conflicts",
};

/* Add n to counter c of a pipeline's slot. */
void
ds_stats_add(DsPipelineSlot *slot, DsCounter c, uint64 n)
{
	Assert(c >= 0 && c < DS_STAT_COUNT);
	if (n > 0)
		pg_atomic_fetch_add_u64(&slot->counters[c], n);
}

uint64
ds_stats_read(DsPipelineSlot *slot, DsCounter c)
{
	Assert(c >= 0 && c < DS_STAT_COUNT);
	return pg_atomic_read_u64(&slot->counters[c]);
}

/* Zero every counter of a slot; init: its shared memory is new. */
void
ds_stats_reset(DsPipelineSlot *slot, bool init)
{
	int			c;

	for (c = 0; c < DS_STAT_COUNT; c++)
	{
		if (init)
			pg_atomic_init_u64(&slot->counters[c], 0);
		else
			pg_atomic_write_u64(&slot->counters[c], 0);
	}
}
