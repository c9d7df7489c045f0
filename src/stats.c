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
#include "utils/timestamp.h"

/* as datasync.status names them */
const char *const DsCounterNames[DS_STAT_COUNT] = {
	[DS_STAT_ROWS_INSERTED] = "rows_inserted",
	[DS_STAT_ROWS_UPDATED] = "rows_updated",
	[DS_STAT_ROWS_DELETED] = "rows_deleted",
	[DS_STAT_TRANSACTIONS] = "transactions",
	[DS_STAT_ERRORS] = "errors",
	[DS_STAT_CONFLICTS] = "conflicts",
	[DS_STAT_ROWS_COPIED] = "rows_copied",
	[DS_STAT_REJECTED] = "rejected",
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

/* upper bounds of the latency buckets, in ms (the last bucket: above) */
const double DsLatencyBounds[DS_LAT_BUCKETS - 1] = {
	1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};

static void
set_u64(pg_atomic_uint64 *v, bool init)
{
	if (init)
		pg_atomic_init_u64(v, 0);
	else
		pg_atomic_write_u64(v, 0);
}

/*
 * Zero every counter and the latency histogram of a slot, and empty its
 * samples; init: its shared memory is new.
 */
void
ds_stats_reset(DsPipelineSlot *slot, bool init)
{
	int			c;

	for (c = 0; c < DS_STAT_COUNT; c++)
		set_u64(&slot->counters[c], init);
	for (c = 0; c < DS_LAT_BUCKETS; c++)
	{
		set_u64(&slot->latency.all[c], init);
		set_u64(&slot->latency.recent[c], init);
	}
	set_u64(&slot->latency.sum_us, init);
	set_u64(&slot->queue_size, init);
	set_u64(&slot->oldest_pending, init);
	slot->last_decay = 0;
	SpinLockAcquire(&slot->mutex);
	memset(slot->samples, 0, sizeof(slot->samples));
	slot->sample_next = 0;
	SpinLockRelease(&slot->mutex);
}

/* n transactions reached the target ms after their commit on the source */
void
ds_stats_latency(DsPipelineSlot *slot, double ms, uint64 n)
{
	int			b = 0;

	if (n == 0)
		return;
	if (ms < 0)
		ms = 0;					/* clocks of two servers */
	while (b < DS_LAT_BUCKETS - 1 && ms > DsLatencyBounds[b])
		b++;
	pg_atomic_fetch_add_u64(&slot->latency.all[b], n);
	pg_atomic_fetch_add_u64(&slot->latency.recent[b], n);
	pg_atomic_fetch_add_u64(&slot->latency.sum_us, (uint64) (ms * 1000.0) * n);
}

/* the worker: halve the recent histogram every DS_LAT_HALF_LIFE_MS */
void
ds_stats_decay(DsPipelineSlot *slot, TimestampTz now)
{
	int			b;

	if (slot->last_decay == 0)
		slot->last_decay = now;
	if (!TimestampDifferenceExceeds(slot->last_decay, now, DS_LAT_HALF_LIFE_MS))
		return;
	slot->last_decay = now;
	for (b = 0; b < DS_LAT_BUCKETS; b++)
	{
		uint64		v = pg_atomic_read_u64(&slot->latency.recent[b]);

		/* the worker is the only writer besides readers' reads */
		pg_atomic_write_u64(&slot->latency.recent[b], v / 2);
	}
}

/*
 * The q-quantile of the recent latencies in ms, interpolated within its
 * bucket; -1 when there are none.  The last bucket answers its lower bound.
 */
double
ds_stats_latency_quantile(DsPipelineSlot *slot, double q)
{
	uint64		counts[DS_LAT_BUCKETS];
	uint64		total = 0;
	double		rank;
	uint64		seen = 0;
	int			b;

	for (b = 0; b < DS_LAT_BUCKETS; b++)
	{
		counts[b] = pg_atomic_read_u64(&slot->latency.recent[b]);
		total += counts[b];
	}
	if (total == 0)
		return -1;
	rank = q * total;
	for (b = 0; b < DS_LAT_BUCKETS; b++)
	{
		double		lo = b == 0 ? 0 : DsLatencyBounds[b - 1];

		if (counts[b] > 0 && seen + counts[b] >= rank)
		{
			if (b == DS_LAT_BUCKETS - 1)
				return lo;
			return lo + (DsLatencyBounds[b] - lo) * (rank - seen) / counts[b];
		}
		seen += counts[b];
	}
	return DsLatencyBounds[DS_LAT_BUCKETS - 2];
}

static uint64
rows_applied(DsPipelineSlot *slot)
{
	return ds_stats_read(slot, DS_STAT_ROWS_INSERTED) +
		ds_stats_read(slot, DS_STAT_ROWS_UPDATED) +
		ds_stats_read(slot, DS_STAT_ROWS_DELETED);
}

/*
 * How long ago the oldest change received and not yet on the target was
 * committed on the source, in ms; 0 when there is none (status lag_ms).
 */
double
ds_stats_lag_ms(DsPipelineSlot *slot, TimestampTz now)
{
	uint64		pending = pg_atomic_read_u64(&slot->oldest_pending);

	return pending == 0 ? 0 : Max(0, (now - (TimestampTz) pending) / 1000.0);
}

/* the worker: a sample every DS_SAMPLE_MS into the ring */
void
ds_stats_sample(DsPipelineSlot *slot, TimestampTz now)
{
	DsSample   *last;

	SpinLockAcquire(&slot->mutex);
	last = &slot->samples[(slot->sample_next + DS_SAMPLES - 1) % DS_SAMPLES];
	if (last->at == 0 || TimestampDifferenceExceeds(last->at, now, DS_SAMPLE_MS))
	{
		DsSample   *s = &slot->samples[slot->sample_next];

		s->at = now;
		s->rows_applied = rows_applied(slot);
		s->lag_ms = ds_stats_lag_ms(slot, now);
		slot->sample_next = (slot->sample_next + 1) % DS_SAMPLES;
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * Rows applied a second over the last minute or so: since the newest
 * sample at least a minute old (or the oldest there is), until now.
 */
double
ds_stats_throughput(DsPipelineSlot *slot, TimestampTz now)
{
	DsSample	base = {0, 0, 0};
	int			i;
	long		secs;
	int			usecs;

	SpinLockAcquire(&slot->mutex);
	for (i = 1; i <= DS_SAMPLES; i++)
	{
		DsSample   *s = &slot->samples[(slot->sample_next + DS_SAMPLES - i) % DS_SAMPLES];

		if (s->at == 0)
			break;
		base = *s;
		if (TimestampDifferenceExceeds(s->at, now, 60000))
			break;
	}
	SpinLockRelease(&slot->mutex);
	if (base.at == 0)
		return 0;
	TimestampDifference(base.at, now, &secs, &usecs);
	if (secs + usecs / 1e6 < 1)
		return 0;
	return (rows_applied(slot) - base.rows_applied) / (secs + usecs / 1e6);
}
