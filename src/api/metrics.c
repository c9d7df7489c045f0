/*-------------------------------------------------------------------------
 *
 * metrics.c
 *		The function behind datasync.status (and datasync.metrics, a view
 *		of it), and reset_stats.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/metrics.c
 *
 * NOTES
 *		Copies each pipeline slot under its spinlock and returns one row per
 *		claimed slot of a pipeline that the current database's catalog
 *		holds (same id and incarnation: never the worker of another
 *		database, or of a pipeline of the same id from before the extension
 *		was dropped and created again); NULL for values never set.  The
 *		views join this with the catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/timestamp.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "api/apiutil.h"
#include "api/pipeline.h"
#include "isolation.h"
#include "shmem.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(datasync_worker_stats);

Datum
datasync_worker_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;
	List	   *keys;

	InitMaterializedSRF(fcinfo, 0);
	if (DsShmem == NULL)
		PG_RETURN_VOID();
	keys = ds_catalog_keys();

	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		DsPipelineSlot copy;
		Datum		values[21];
		bool		nulls[21];
		TimestampTz now = GetCurrentTimestamp();
		double		p50;
		double		p99;

		SpinLockAcquire(&slot->mutex);
		memcpy(&copy, slot, offsetof(DsPipelineSlot, njobs));
		SpinLockRelease(&slot->mutex);
		if (copy.key.id == 0 || !ds_key_list_member(keys, &copy.key))
			continue;

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum(copy.key.id);
		values[1] = Int32GetDatum(copy.pid);
		nulls[1] = copy.pid == 0;
		values[2] = CStringGetTextDatum(copy.pid == 0 && copy.state != DS_STATE_ERROR ?
										"idle" : ds_state_name(copy.state));
		values[3] = LSNGetDatum(copy.applied_lsn);
		nulls[3] = XLogRecPtrIsInvalid(copy.applied_lsn);
		values[4] = TimestampTzGetDatum(copy.last_sync_at);
		nulls[4] = copy.last_sync_at == 0;
		values[5] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_ROWS_INSERTED));
		values[6] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_ROWS_UPDATED));
		values[7] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_ROWS_DELETED));
		values[8] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_TRANSACTIONS));
		values[9] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_ERRORS));
		values[10] = Int32GetDatum(copy.retry_attempt);
		nulls[10] = copy.state != DS_STATE_RETRYING;
		values[11] = TimestampTzGetDatum(copy.next_attempt_at);
		nulls[11] = copy.state != DS_STATE_RETRYING;
		values[12] = CStringGetTextDatum(copy.last_error);
		nulls[12] = copy.last_error[0] == '\0';
		values[13] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_CONFLICTS));
		values[14] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_ROWS_COPIED));
		values[15] = Int64GetDatum((int64) ds_stats_read(slot, DS_STAT_REJECTED));
		values[16] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->queue_size));
		values[17] = Float8GetDatum(ds_stats_lag_ms(slot, now));
		nulls[17] = copy.pid == 0;
		values[18] = Float8GetDatum(ds_stats_throughput(slot, now));
		nulls[18] = copy.pid == 0;
		p50 = ds_stats_latency_quantile(slot, 0.5);
		p99 = ds_stats_latency_quantile(slot, 0.99);
		values[19] = Float8GetDatum(p50);
		nulls[19] = p50 < 0;
		values[20] = Float8GetDatum(p99);
		nulls[20] = p99 < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(datasync_reset_stats);

/*
 * reset_stats(name): start a pipeline's counters, latency histogram and
 * throughput samples from zero (status, metrics).  Runs in progress count
 * from where they were (never below zero).  Audited.
 */
Datum
datasync_reset_stats(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	PipelineRow r;
	DsPipelineKey key;
	DsPipelineSlot *slot;

	SPI_connect();
	r = pipeline_row(name, false);
	ds_pipeline_key(&key, r.id, r.incarnation);
	slot = ds_slot_find(&key);
	if (slot)
	{
		/* the slot stays this pipeline's while the lock is held */
		LWLockAcquire(DsShmem->lock, LW_SHARED);
		if (ds_key_equal(&slot->key, &key))
			ds_stats_reset(slot, false);
		LWLockRelease(DsShmem->lock);
	}
	pipeline_audit(caller, "reset_stats", name, NULL);
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(datasync_samples);

/*
 * _samples(): the last hour of each pipeline's samples (every 10 s while
 * its worker runs): rows applied so far and lag_ms.  The status page
 * draws its charts from them.
 */
Datum
datasync_samples(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *keys;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (DsShmem == NULL)
		PG_RETURN_VOID();
	keys = ds_catalog_keys();
	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		DsPipelineKey key;
		DsSample	samples[DS_SAMPLES];
		int			j;

		SpinLockAcquire(&slot->mutex);
		key = slot->key;
		memcpy(samples, slot->samples, sizeof(samples));
		SpinLockRelease(&slot->mutex);
		if (key.id == 0 || !ds_key_list_member(keys, &key))
			continue;
		for (j = 0; j < DS_SAMPLES; j++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			if (samples[j].at == 0)
				continue;
			values[0] = Int64GetDatum(key.id);
			values[1] = TimestampTzGetDatum(samples[j].at);
			values[2] = Int64GetDatum((int64) samples[j].rows_applied);
			values[3] = Float8GetDatum(samples[j].lag_ms);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_RETURN_VOID();
}
