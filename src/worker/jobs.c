/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		The run queue of a pipeline in shared memory: what the launcher
 *		and the worker call to start, end and fail runs ("jobs"), and the
 *		queue operations the SQL functions of jobs_api.c build on.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/jobs.c
 *
 * NOTES
 *		A run ("job") applies everything committed before it was asked
 *		for.  The requester writes a marker into the WAL (a logical message
 *		carrying a ticket, as wait_for_sync does) and appends the request
 *		to the pipeline's queue in shared memory (ds_jobs_enqueue); the run
 *		is done once the worker has applied everything before that marker.
 *		The queue lives in shared memory, not in a table, because sync_now
 *		waits for the run inside the caller's transaction: a row the
 *		caller inserted would stay invisible to the worker until that
 *		transaction ends.
 *
 *		The worker runs the queue in order, one run at a time: it writes
 *		the run's row to datasync.jobs when it starts it, and when the run
 *		ends it updates the row and sends NOTIFY datasync_events in the
 *		same transaction, then pops the request and leaves the outcome in
 *		a small ring for waiters (ds_jobs_peek).  A worker that dies in
 *		between finds the request still queued and its row still
 *		'running', and finishes it once (the row update only applies to a
 *		running row).
 *
 *		Real-time pipelines stream all the time; their worker completes
 *		runs as it passes their markers.  Manual and scheduled pipelines
 *		have a worker only while runs are queued (launcher.c starts it).
 *
 *		Every access to a slot's queue and result ring is in this file,
 *		under the slot's spinlock; jobs_api.c only calls the functions
 *		declared in jobs.h.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "shmem.h"
#include "stats.h"
#include "worker/jobs.h"

/* the word datasync.jobs.kind stores for a run's kind */
const char *
ds_job_kind_name(DsJobKind kind)
{
	switch (kind)
	{
		case DS_JOB_MANUAL:
			return "manual";
		case DS_JOB_API:
			return "api";
		case DS_JOB_SCHEDULED:
			return "scheduled";
	}
	return "manual";
}

/* ---------------------------------------------------------------------
 * Worker side
 * ---------------------------------------------------------------------
 */

bool
ds_jobs_pending(DsPipelineSlot *slot)
{
	bool		pending;

	SpinLockAcquire(&slot->mutex);
	pending = slot->njobs > 0;
	SpinLockRelease(&slot->mutex);
	return pending;
}

/* Take a run off the queue and leave its outcome for waiters. */
static void
job_done(DsPipelineSlot *slot, int64 job_id, bool failed, const char *json)
{
	int			i;

	SpinLockAcquire(&slot->mutex);
	for (i = 0; i < slot->njobs; i++)
	{
		if (slot->jobs[i].job_id == job_id)
		{
			memmove(&slot->jobs[i], &slot->jobs[i + 1],
					(slot->njobs - i - 1) * sizeof(DsJobRequest));
			slot->njobs--;
			break;
		}
	}
	{
		DsJobResult *r = &slot->results[slot->next_result];

		r->job_id = job_id;
		r->failed = failed;
		if (json && strlen(json) < DS_JOB_JSON_LEN)
			strlcpy(r->json, json, DS_JOB_JSON_LEN);
		else
			r->json[0] = '\0';
		slot->next_result = (slot->next_result + 1) % DS_JOB_RESULTS;
	}
	SpinLockRelease(&slot->mutex);
	ConditionVariableBroadcast(&DsShmem->progress_cv);
}

/*
 * The row of a run in datasync.jobs as JSON text and its status, or NULL;
 * caller is connected to SPI.  Read with a snapshot of its own: a waiter
 * reads the outcome the worker committed after the waiter's statement
 * began.
 */
char *
ds_jobs_row_json(int64 job_id, char **status)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	args[0] = Int64GetDatum(job_id);
	ds_spi_exec("SELECT to_jsonb(j)::text, j.status FROM datasync.jobs j WHERE j.id = $1",
				1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	if (status)
		*status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * Write the row of a run that starts now.  A row that exists already is
 * from before a restart of the worker: a finished one means the run only
 * has to leave the queue.
 */
static void
job_start(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline,
		  DsJobRequest *req)
{
	Oid			argtypes[8] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, PG_LSNOID, INT8OID};
	Datum		args[8];
	char		nulls[8] = "        ";
	bool		started = ds_xact_start();
	char	   *who = GetUserNameFromId(req->requested_by, true);
	bool		finished = false;
	bool		failed = false;
	char	   *json = NULL;
	int			c;
	MemoryContext caller = CurrentMemoryContext;

	args[0] = Int64GetDatum(req->job_id);
	args[1] = Int64GetDatum(pipeline_id);
	args[2] = CStringGetTextDatum(pipeline);
	args[3] = CStringGetTextDatum(ds_job_kind_name(req->kind));
	args[4] = who ? CStringGetTextDatum(who) : (Datum) 0;
	nulls[4] = who ? ' ' : 'n';
	args[5] = TimestampTzGetDatum(req->requested_at);
	args[6] = LSNGetDatum(req->lsn);
	nulls[7] = 'n';

	SPI_connect();
	ds_spi_execute("INSERT INTO datasync.jobs (id, pipeline_id, pipeline, kind, status,"
				   " requested_by, requested_at, started_at, upto_lsn)"
				   " VALUES ($1, $2, $3, $4, 'running', $5, $6, pg_catalog.now(), $7)"
				   " ON CONFLICT (id) DO NOTHING",
				   7, argtypes, args, nulls, false, SPI_OK_INSERT);
	if (SPI_processed == 0)
	{
		char	   *status = NULL;
		char	   *j = ds_jobs_row_json(req->job_id, &status);

		if (j && strcmp(status, "running") != 0)
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);

			json = pstrdup(j);
			finished = true;
			failed = strcmp(status, "failed") == 0;
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	ds_xact_commit(started);

	if (finished)
	{
		job_done(slot, req->job_id, failed, json);
		return;
	}

	SpinLockAcquire(&slot->mutex);
	if (slot->njobs > 0 && slot->jobs[0].job_id == req->job_id)
	{
		DsJobRequest *head = &slot->jobs[0];

		head->started = true;
		head->started_at = GetCurrentTimestamp();
		for (c = 0; c < DS_STAT_COUNT; c++)
			head->base[c] = ds_stats_read(slot, c);
		/* the rows its session copied before runs could start are its own */
		if (slot->copy_base_set)
			head->base[DS_STAT_ROWS_COPIED] = slot->copy_base;
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * The payload of NOTIFY datasync_events for the job row j: ids, states and
 * counts only.  Any role may LISTEN, so it never carries the error text
 * (it may quote row values) nor who asked for the run.
 */
#define JOB_EVENT_PAYLOAD(event) \
	"pg_catalog.jsonb_build_object('event', " event ", 'id', j.id," \
	" 'pipeline', j.pipeline, 'kind', j.kind, 'status', j.status," \
	" 'requested_at', j.requested_at, 'started_at', j.started_at, 'finished_at', j.finished_at," \
	" 'upto_lsn', j.upto_lsn, 'rows_applied', j.rows_applied, 'rows_inserted', j.rows_inserted," \
	" 'rows_updated', j.rows_updated, 'rows_deleted', j.rows_deleted," \
	" 'transactions', j.transactions, 'conflicts', j.conflicts, 'rejected', j.rejected, 'rows_copied', j.rows_copied," \
	" 'errors', j.errors, 'duration_ms', j.duration_ms)::text"

/* what counter c of the slot counted since the run started */
static int64
run_count(DsPipelineSlot *slot, DsJobRequest *req, DsCounter c)
{
	uint64		now;

	if (!req->started)
		return 0;
	now = ds_stats_read(slot, c);
	/* reset_stats during the run: what came after it */
	return (int64) (now >= req->base[c] ? now - req->base[c] : now);
}

/*
 * End a run: its row gets the outcome and NOTIFY datasync_events goes out
 * in the same transaction; then it leaves the queue.
 */
static void
job_finish(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline,
		   DsJobRequest *req, const char *error)
{
	Oid			argtypes[17] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, PG_LSNOID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID};
	Datum		args[17];
	char		nulls[17] = "                 ";
	char	   *who;
	bool		started = ds_xact_start();
	bool		failed = error != NULL;
	char	   *json = NULL;
	MemoryContext caller = CurrentMemoryContext;

	who = GetUserNameFromId(req->requested_by, true);
	args[0] = Int64GetDatum(req->job_id);
	args[1] = Int64GetDatum(pipeline_id);
	args[2] = CStringGetTextDatum(pipeline);
	args[3] = CStringGetTextDatum(ds_job_kind_name(req->kind));
	args[4] = who ? CStringGetTextDatum(who) : (Datum) 0;
	nulls[4] = who ? ' ' : 'n';
	args[5] = TimestampTzGetDatum(req->requested_at);
	args[6] = TimestampTzGetDatum(req->started_at);
	nulls[6] = req->started ? ' ' : 'n';
	args[7] = LSNGetDatum(req->lsn);
	args[8] = Int64GetDatum(run_count(slot, req, DS_STAT_ROWS_INSERTED));
	args[9] = Int64GetDatum(run_count(slot, req, DS_STAT_ROWS_UPDATED));
	args[10] = Int64GetDatum(run_count(slot, req, DS_STAT_ROWS_DELETED));
	args[11] = Int64GetDatum(run_count(slot, req, DS_STAT_TRANSACTIONS));
	args[12] = Int64GetDatum(run_count(slot, req, DS_STAT_ERRORS));
	args[13] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[13] = error ? ' ' : 'n';
	args[14] = Int64GetDatum(run_count(slot, req, DS_STAT_CONFLICTS));
	args[15] = Int64GetDatum(run_count(slot, req, DS_STAT_ROWS_COPIED));
	args[16] = Int64GetDatum(run_count(slot, req, DS_STAT_REJECTED));

	SPI_connect();
	ds_spi_execute("WITH j AS ("
				   " INSERT INTO datasync.jobs AS j (id, pipeline_id, pipeline, kind, status,"
				   "  requested_by, requested_at, started_at, finished_at, upto_lsn,"
				   "  rows_inserted, rows_updated, rows_deleted, transactions, errors, error, conflicts, rows_copied, rejected)"
				   " VALUES ($1, $2, $3, $4, CASE WHEN $14 IS NULL THEN 'succeeded' ELSE 'failed' END,"
				   "  $5, $6, coalesce($7, pg_catalog.now()), pg_catalog.now(), $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
				   " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
				   "  finished_at = excluded.finished_at, rows_inserted = excluded.rows_inserted,"
				   "  rows_updated = excluded.rows_updated, rows_deleted = excluded.rows_deleted,"
				   "  transactions = excluded.transactions, errors = excluded.errors,"
				   "  error = excluded.error, conflicts = excluded.conflicts, rows_copied = excluded.rows_copied,"
				   "  rejected = excluded.rejected"
				   " WHERE j.status = 'running'"
				   " RETURNING j.*)"
				   " SELECT to_jsonb(j)::text,"
				   "  pg_catalog.pg_notify('datasync_events', " JOB_EVENT_PAYLOAD("CASE WHEN j.status = 'succeeded'"
				   "     THEN 'jobCompleted' ELSE 'jobFailed' END") ")"
				   " FROM j",
				   17, argtypes, args, nulls, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *j = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		json = pstrdup(j);
		MemoryContextSwitchTo(spi);
	}
	else
	{
		/* finished before a restart: keep what it recorded */
		char	   *status = NULL;
		char	   *j = ds_jobs_row_json(req->job_id, &status);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		json = j ? pstrdup(j) : NULL;
		failed = j && strcmp(status, "failed") == 0;
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	ds_xact_commit(started);

	job_done(slot, req->job_id, failed, json);
}

/*
 * Start and end queued runs as far as the worker got: a run is done when
 * its marker was applied, or when everything up to its LSN is done (the
 * slot was created after it).  Returns whether runs remain queued.
 */
bool
ds_jobs_poll(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline)
{
	for (;;)
	{
		DsJobRequest head;
		XLogRecPtr	done_lsn;

		SpinLockAcquire(&slot->mutex);
		if (slot->njobs == 0)
		{
			SpinLockRelease(&slot->mutex);
			return false;
		}
		head = slot->jobs[0];
		done_lsn = slot->done_lsn;
		SpinLockRelease(&slot->mutex);

		if (!head.started)
		{
			job_start(slot, pipeline_id, pipeline, &head);
			continue;
		}
		if (pg_atomic_read_u64(&slot->marker_seq) < head.marker_seq &&
			(XLogRecPtrIsInvalid(done_lsn) || done_lsn < head.lsn))
			return true;
		job_finish(slot, pipeline_id, pipeline, &head, NULL);
	}
}

/* Fail every queued run (a permanent error, a pause, a drop). */
void
ds_jobs_fail_all(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline,
				 const char *reason)
{
	DsPipelineKey key;

	/* the slot as the caller found it; stop if it is freed meanwhile */
	SpinLockAcquire(&slot->mutex);
	key = slot->key;
	SpinLockRelease(&slot->mutex);
	if (key.id != pipeline_id || key.dboid != MyDatabaseId)
		return;
	for (;;)
	{
		DsJobRequest head;

		SpinLockAcquire(&slot->mutex);
		if (slot->njobs == 0 || !ds_key_equal(&slot->key, &key))
		{
			SpinLockRelease(&slot->mutex);
			return;
		}
		head = slot->jobs[0];
		SpinLockRelease(&slot->mutex);
		job_finish(slot, pipeline_id, pipeline, &head, reason);
	}
}

/*
 * A worker of a manual or scheduled pipeline may exit once no run is
 * queued.  Checked and given up under the slot's lock, so a run queued
 * concurrently either is seen here or finds no worker and wakes the
 * launcher.
 */
bool
ds_jobs_worker_exit(DsPipelineSlot *slot)
{
	bool		can_exit;

	SpinLockAcquire(&slot->mutex);
	can_exit = slot->njobs == 0;
	if (can_exit && slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->latch = NULL;
		slot->state = DS_STATE_STOPPED;
		slot->clean_exit = true;
	}
	SpinLockRelease(&slot->mutex);
	return can_exit;
}

/*
 * Rows left 'running' by a server restart (the queue did not survive it):
 * the launcher marks them failed when it starts.  Caller has a transaction.
 */
void
ds_jobs_fail_orphans(void)
{
	StringInfoData ids;
	int			i;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	initStringInfo(&ids);
	appendStringInfoChar(&ids, '{');
	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		int			j;

		SpinLockAcquire(&slot->mutex);
		for (j = 0; slot->key.dboid == MyDatabaseId && j < slot->njobs; j++)
			appendStringInfo(&ids, "%s" INT64_FORMAT, ids.len > 1 ? "," : "",
							 slot->jobs[j].job_id);
		SpinLockRelease(&slot->mutex);
	}
	appendStringInfoChar(&ids, '}');
	args[0] = CStringGetTextDatum(ids.data);

	SPI_connect();
	ds_spi_exec("WITH j AS ("
				" UPDATE datasync.jobs j SET status = 'failed', finished_at = pg_catalog.now(),"
				"  error = 'interrupted: the server restarted while the job ran'"
				" WHERE j.status = 'running' AND j.id <> ALL ($1::bigint[]) RETURNING j.*)"
				" SELECT pg_catalog.pg_notify('datasync_events', " JOB_EVENT_PAYLOAD("'jobFailed'") ") FROM j",
				1, argtypes, args, SPI_OK_SELECT);
	SPI_finish();
}

/* ---------------------------------------------------------------------
 * Requester side: the queue operations of the SQL functions (jobs_api.c)
 * ---------------------------------------------------------------------
 */

/*
 * A new job id.  Not from a sequence: nextval assigns the caller an xid,
 * and a first run's slot creation would then wait for the caller while
 * the caller waits for the run.  Ids continue after the highest one in
 * datasync.jobs (read once after a server start).
 */
static int64
next_job_id(void)
{
	if (pg_atomic_read_u64(&DsShmem->last_job_id) == 0)
	{
		int64		max_id;
		bool		isnull;

		SPI_connect();
		ds_spi_exec("SELECT coalesce(max(id), 0) FROM datasync.jobs", 0, NULL, NULL, SPI_OK_SELECT);
		max_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		LWLockAcquire(DsShmem->lock, LW_EXCLUSIVE);
		if (pg_atomic_read_u64(&DsShmem->last_job_id) == 0)
			pg_atomic_write_u64(&DsShmem->last_job_id, (uint64) max_id);
		LWLockRelease(DsShmem->lock);
	}
	return (int64) pg_atomic_add_fetch_u64(&DsShmem->last_job_id, 1);
}

/*
 * Queue a run of the pipeline key names (called pipeline in errors):
 * marker first (its position bounds what the run applies), then the
 * request, then wake whoever must act on it.  Returns the job id and the
 * slot whose queue holds it.
 */
int64
ds_jobs_enqueue(const DsPipelineKey *key, const char *pipeline, DsJobKind kind,
				Oid requested_by, DsPipelineSlot **slot_out)
{
	DsPipelineSlot *slot;
	int64		job_id;
	uint64		seq;
	XLogRecPtr	lsn;
	Latch	   *latch;

	job_id = next_job_id();

	slot = ds_slot_attach(key);

	/* a marker that no run waits for (queue full) is passed over */
	seq = pg_atomic_add_fetch_u64(&DsShmem->marker_seq, 1);
	lsn = LogLogicalMessage(DATASYNC_MARKER_PREFIX, (const char *) &seq, sizeof(seq), false);
	XLogFlush(lsn);

	SpinLockAcquire(&slot->mutex);
	if (!ds_key_equal(&slot->key, key))
	{
		/* dropped since the caller looked it up */
		SpinLockRelease(&slot->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", pipeline)));
	}
	if (slot->njobs >= DS_MAX_JOBS)
	{
		SpinLockRelease(&slot->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("pipeline \"%s\" has %d runs queued already", pipeline, DS_MAX_JOBS),
				 errhint("Wait for them to finish (see datasync.jobs and datasync.job_status()).")));
	}
	{
		DsJobRequest *req = &slot->jobs[slot->njobs++];

		memset(req, 0, sizeof(*req));
		req->job_id = job_id;
		req->kind = kind;
		req->marker_seq = seq;
		req->lsn = lsn;
		req->requested_by = requested_by;
		req->requested_at = GetCurrentTimestamp();
	}
	latch = slot->latch;
	SpinLockRelease(&slot->mutex);

	if (latch)
		SetLatch(latch);
	if (DsShmem->launcher_latch)
		SetLatch(DsShmem->launcher_latch);
	*slot_out = slot;
	return job_id;
}

/*
 * A run still queued (or running) in a queue of this database's
 * pipelines: copies its request to *req and returns its pipeline's id, or
 * 0 when no queue holds it.
 */
int64
ds_jobs_find_queued(int64 job_id, DsJobRequest *req)
{
	int			i;

	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		int64		pipeline_id = 0;
		int			j;

		SpinLockAcquire(&slot->mutex);
		/* only runs of this database's pipelines */
		for (j = 0; slot->key.dboid == MyDatabaseId && j < slot->njobs; j++)
		{
			if (slot->jobs[j].job_id == job_id)
			{
				*req = slot->jobs[j];
				pipeline_id = slot->key.id;
				break;
			}
		}
		SpinLockRelease(&slot->mutex);
		if (pipeline_id != 0)
			return pipeline_id;
	}
	return 0;
}

/*
 * Where run job_id of the pipeline key stands in slot.  DS_JOB_ENDED sets
 * *failed and copies its outcome to json (DS_JOB_JSON_LEN bytes), which
 * is "" when only datasync.jobs has it (it did not fit, or the ring has
 * moved on).
 */
DsJobState
ds_jobs_peek(DsPipelineSlot *slot, const DsPipelineKey *key, int64 job_id,
			 bool *failed, char *json)
{
	DsJobState state = DS_JOB_ENDED;
	int			i;

	json[0] = '\0';
	SpinLockAcquire(&slot->mutex);
	if (!ds_key_equal(&slot->key, key))
		state = DS_JOB_DROPPED;
	else
	{
		for (i = 0; i < slot->njobs; i++)
			if (slot->jobs[i].job_id == job_id)
				state = DS_JOB_QUEUED;
		for (i = 0; i < DS_JOB_RESULTS && state == DS_JOB_ENDED; i++)
		{
			if (slot->results[i].job_id == job_id)
			{
				*failed = slot->results[i].failed;
				strlcpy(json, slot->results[i].json, DS_JOB_JSON_LEN);
			}
		}
	}
	SpinLockRelease(&slot->mutex);
	return state;
}
