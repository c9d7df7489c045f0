/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		Runs of a pipeline: the queue in shared memory, datasync.jobs,
 *		sync_now / create_job / job_status and pg_cron's scheduled runs.
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
 *		to the pipeline's queue in shared memory; the run is done once the
 *		worker has applied everything before that marker.  The queue lives
 *		in shared memory, not in a table, because sync_now waits for the
 *		run inside the caller's transaction: a row the caller inserted
 *		would stay invisible to the worker until that transaction ends.
 *
 *		The worker runs the queue in order, one run at a time: it writes
 *		the run's row to datasync.jobs when it starts it, and when the run
 *		ends it updates the row and sends NOTIFY datasync_events in the
 *		same transaction, then pops the request and leaves the outcome in
 *		a small ring for waiters.  A worker that dies in between finds the
 *		request still queued and its row still 'running', and finishes it
 *		once (the row update only applies to a running row).
 *
 *		Real-time pipelines stream all the time; their worker completes
 *		runs as it passes their markers.  Manual and scheduled pipelines
 *		have a worker only while runs are queued (launcher.c starts it).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "api/apiutil.h"
#include "catalog.h"
#include "isolation.h"
#include "worker/jobs.h"
#include "shmem.h"
#include "stats.h"
#include "api/valueacl.h"

PG_FUNCTION_INFO_V1(datasync_sync_now);
PG_FUNCTION_INFO_V1(datasync_create_job);
PG_FUNCTION_INFO_V1(datasync_job_status);
PG_FUNCTION_INFO_V1(datasync_scheduled_run);

static const char *
kind_name(DsJobKind kind)
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
 * The row of a run as JSON text and its status, or NULL; caller is
 * connected to SPI.
 */
static char *
job_row_json(int64 job_id, char **status)
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
	args[3] = CStringGetTextDatum(kind_name(req->kind));
	args[4] = who ? CStringGetTextDatum(who) : (Datum) 0;
	nulls[4] = who ? ' ' : 'n';
	args[5] = TimestampTzGetDatum(req->requested_at);
	args[6] = LSNGetDatum(req->lsn);
	nulls[7] = 'n';

	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO datasync.jobs (id, pipeline_id, pipeline, kind, status,"
							  " requested_by, requested_at, started_at, upto_lsn)"
							  " VALUES ($1, $2, $3, $4, 'running', $5, $6, pg_catalog.now(), $7)"
							  " ON CONFLICT (id) DO NOTHING",
							  7, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record job " INT64_FORMAT, req->job_id);
	if (SPI_processed == 0)
	{
		char	   *status = NULL;
		char	   *j = job_row_json(req->job_id, &status);

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
	" 'transactions', j.transactions, 'conflicts', j.conflicts, 'rejected', j.rejected," \
	" 'errors', j.errors, 'duration_ms', j.duration_ms)::text"

/* what counter c of the slot counted since the run started */
static int64
run_count(DsPipelineSlot *slot, DsJobRequest *req, DsCounter c)
{
	if (!req->started)
		return 0;
	return (int64) (ds_stats_read(slot, c) - req->base[c]);
}

/*
 * End a run: its row gets the outcome and NOTIFY datasync_events goes out
 * in the same transaction; then it leaves the queue.
 */
static void
job_finish(DsPipelineSlot *slot, int64 pipeline_id, const char *pipeline,
		   DsJobRequest *req, const char *error)
{
	Oid			argtypes[15] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, PG_LSNOID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TEXTOID, INT8OID};
	Datum		args[15];
	char		nulls[15] = "               ";
	char	   *who;
	bool		started = ds_xact_start();
	bool		failed = error != NULL;
	char	   *json = NULL;
	MemoryContext caller = CurrentMemoryContext;

	who = GetUserNameFromId(req->requested_by, true);
	args[0] = Int64GetDatum(req->job_id);
	args[1] = Int64GetDatum(pipeline_id);
	args[2] = CStringGetTextDatum(pipeline);
	args[3] = CStringGetTextDatum(kind_name(req->kind));
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

	SPI_connect();
	if (SPI_execute_with_args("WITH j AS ("
							  " INSERT INTO datasync.jobs AS j (id, pipeline_id, pipeline, kind, status,"
							  "  requested_by, requested_at, started_at, finished_at, upto_lsn,"
							  "  rows_inserted, rows_updated, rows_deleted, transactions, errors, error, conflicts)"
							  " VALUES ($1, $2, $3, $4, CASE WHEN $14 IS NULL THEN 'succeeded' ELSE 'failed' END,"
							  "  $5, $6, coalesce($7, pg_catalog.now()), pg_catalog.now(), $8, $9, $10, $11, $12, $13, $14, $15)"
							  " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
							  "  finished_at = excluded.finished_at, rows_inserted = excluded.rows_inserted,"
							  "  rows_updated = excluded.rows_updated, rows_deleted = excluded.rows_deleted,"
							  "  transactions = excluded.transactions, errors = excluded.errors,"
							  "  error = excluded.error, conflicts = excluded.conflicts"
							  " WHERE j.status = 'running'"
							  " RETURNING j.*)"
							  " SELECT to_jsonb(j)::text,"
							  "  pg_catalog.pg_notify('datasync_events', " JOB_EVENT_PAYLOAD("CASE WHEN j.status = 'succeeded'"
							  "     THEN 'jobCompleted' ELSE 'jobFailed' END") ")"
							  " FROM j",
							  15, argtypes, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not record the outcome of job " INT64_FORMAT, req->job_id);
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
		char	   *j = job_row_json(req->job_id, &status);
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
 * Requester side: SQL functions
 * ---------------------------------------------------------------------
 */

typedef struct JobPipeline
{
	int64		id;
	int64		incarnation;
	char	   *name;
	char	   *slot_name;
	char	   *mode;
	bool		enabled;
	char	   *error;
	bool		changed_here;	/* written by the calling transaction */
} JobPipeline;

static bool
lookup_pipeline(const char *name, int64 id, JobPipeline *p)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	char		nulls[2] = "  ";
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext spi;

	args[0] = name ? CStringGetTextDatum(name) : (Datum) 0;
	nulls[0] = name ? ' ' : 'n';
	args[1] = Int64GetDatum(id);
	nulls[1] = name ? 'n' : ' ';
	SPI_connect();
	if (SPI_execute_with_args("SELECT id, name, slot_name, mode, enabled, error, xmin, incarnation"
							  " FROM datasync._pipelines WHERE name = $1 OR id = $2",
							  2, argtypes, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read datasync pipelines");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	spi = MemoryContextSwitchTo(caller);
	p->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	p->name = SPI_getvalue(tup, desc, 2);
	p->slot_name = SPI_getvalue(tup, desc, 3);
	p->mode = SPI_getvalue(tup, desc, 4);
	p->enabled = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
	p->error = SPI_getvalue(tup, desc, 6);
	p->changed_here = TransactionIdIsCurrentTransactionId(DatumGetTransactionId(SPI_getbinval(tup, desc, 7, &isnull)));
	p->incarnation = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	MemoryContextSwitchTo(spi);
	SPI_finish();
	return true;
}

/* a pipeline a run can be asked of; errors explain why not */
static JobPipeline
runnable_pipeline(const char *name)
{
	JobPipeline p;

	if (!lookup_pipeline(name, 0, &p))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", name)));
	if (p.changed_here)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" was created or changed in this transaction", name),
				 errhint("Commit the transaction first: the worker only sees committed pipelines.")));
	if (!p.enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" is paused", name),
				 errhint("Run SELECT datasync.resume('%s') first.", name)));
	if (p.error)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" is stopped by an error", name),
				 errdetail("%s", p.error),
				 errhint("Fix the cause, then run SELECT datasync.resume('%s').", name)));
	return p;
}

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
 * Queue a run: marker first (its position bounds what the run applies),
 * then the request, then wake whoever must act on it.
 */
static int64
job_enqueue(JobPipeline *p, DsJobKind kind, Oid requested_by, DsPipelineSlot **slot_out)
{
	DsPipelineSlot *slot;
	DsPipelineKey key;
	int64		job_id;
	uint64		seq;
	XLogRecPtr	lsn;
	Latch	   *latch;

	job_id = next_job_id();

	ds_pipeline_key(&key, p->id, p->incarnation);
	slot = ds_slot_attach(&key);

	/* a marker that no run waits for (queue full) is passed over */
	seq = pg_atomic_add_fetch_u64(&DsShmem->marker_seq, 1);
	lsn = LogLogicalMessage(DATASYNC_MARKER_PREFIX, (const char *) &seq, sizeof(seq), false);
	XLogFlush(lsn);

	SpinLockAcquire(&slot->mutex);
	if (!ds_key_equal(&slot->key, &key))
	{
		/* dropped since we looked it up */
		SpinLockRelease(&slot->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", p->name)));
	}
	if (slot->njobs >= DS_MAX_JOBS)
	{
		SpinLockRelease(&slot->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("pipeline \"%s\" has %d runs queued already", p->name, DS_MAX_JOBS),
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

/* a run still in a queue, as JSON, or NULL */
static char *
queued_json(int64 job_id, bool *started)
{
	int			i;

	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		DsJobRequest req;
		int64		pipeline_id = 0;
		int			j;

		memset(&req, 0, sizeof(req));
		SpinLockAcquire(&slot->mutex);
		/* only runs of this database's pipelines */
		for (j = 0; slot->key.dboid == MyDatabaseId && j < slot->njobs; j++)
		{
			if (slot->jobs[j].job_id == job_id)
			{
				req = slot->jobs[j];
				pipeline_id = slot->key.id;
				break;
			}
		}
		SpinLockRelease(&slot->mutex);

		if (pipeline_id != 0)
		{
			JobPipeline p;
			char	   *who = GetUserNameFromId(req.requested_by, true);
			StringInfoData buf;

			*started = req.started;
			if (!lookup_pipeline(NULL, pipeline_id, &p))
				p.name = "";
			initStringInfo(&buf);
			appendStringInfo(&buf, "{\"id\": " INT64_FORMAT ", \"pipeline\": ", job_id);
			escape_json(&buf, p.name);
			appendStringInfo(&buf, ", \"pipeline_id\": " INT64_FORMAT ", \"kind\": \"%s\", \"status\": \"%s\", \"requested_by\": ",
							 pipeline_id, kind_name(req.kind), req.started ? "running" : "queued");
			if (who)
				escape_json(&buf, who);
			else
				appendStringInfoString(&buf, "null");
			appendStringInfo(&buf, ", \"requested_at\": \"%s\", \"upto_lsn\": \"%X/%X\"}",
							 timestamptz_to_str(req.requested_at), LSN_FORMAT_ARGS(req.lsn));
			return buf.data;
		}
	}
	return NULL;
}

/*
 * A run's status as JSON text, or NULL when it is unknown; *status gets
 * "queued", "running", "succeeded" or "failed".
 */
static char *
job_json(int64 job_id, char **status)
{
	char	   *json;
	char	   *st = NULL;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	json = job_row_json(job_id, &st);
	if (json)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		json = pstrdup(json);
		st = pstrdup(st);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	if (json == NULL || strcmp(st, "running") == 0)
	{
		/* not started or running: the queue knows which */
		bool		started;
		char	   *q = queued_json(job_id, &started);

		if (q)
		{
			json = q;
			st = started ? "running" : "queued";
		}
	}
	if (status)
		*status = st;
	return json;
}

/*
 * Wait for a run to end; its outcome as JSON text, or NULL when timeout_ms
 * (< 0: none) passed first.
 */
static char *
job_wait(DsPipelineSlot *slot, JobPipeline *p, int64 job_id, int64 timeout_ms,
		 bool *failed)
{
	TimestampTz deadline = timeout_ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	char	   *result = NULL;
	DsPipelineKey key;

	ds_pipeline_key(&key, p->id, p->incarnation);
	*failed = false;
	ConditionVariablePrepareToSleep(&DsShmem->progress_cv);
	for (;;)
	{
		bool		gone;
		bool		pending = false;
		bool		finished = false;
		char		json[DS_JOB_JSON_LEN];
		int			i;
		long		wait_ms = 1000;

		json[0] = '\0';
		SpinLockAcquire(&slot->mutex);
		gone = !ds_key_equal(&slot->key, &key);
		if (!gone)
		{
			for (i = 0; i < slot->njobs; i++)
				if (slot->jobs[i].job_id == job_id)
					pending = true;
			for (i = 0; i < DS_JOB_RESULTS && !pending; i++)
			{
				if (slot->results[i].job_id == job_id)
				{
					finished = true;
					*failed = slot->results[i].failed;
					strlcpy(json, slot->results[i].json, sizeof(json));
				}
			}
		}
		SpinLockRelease(&slot->mutex);

		if (gone)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pipeline \"%s\" was dropped before job " INT64_FORMAT " finished", p->name, job_id)));
		}
		if (finished && json[0] != '\0')
		{
			result = pstrdup(json);
			break;
		}
		if (!pending)
		{
			/* finished, but its outcome is only in the table */
			char	   *st = NULL;

			result = job_json(job_id, &st);
			if (result == NULL)
			{
				ConditionVariableCancelSleep();
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("job " INT64_FORMAT " of pipeline \"%s\" ended but its outcome cannot be read", job_id, p->name),
						 errhint("Look it up in datasync.jobs.")));
			}
			*failed = strcmp(st, "failed") == 0;
			break;
		}
		if (timeout_ms >= 0)
		{
			long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			if (remaining <= 0)
				break;
			wait_ms = Min(wait_ms, remaining);
		}
		(void) ConditionVariableTimedSleep(&DsShmem->progress_cv, wait_ms, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return result;
}

static Datum
json_datum(const char *json)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
}

/*
 * The first run creates the slot, which waits for every transaction that
 * has an xid: a caller that waits for the run must not hold one then.
 */
static void
check_first_run_wait(JobPipeline *p)
{
	bool		copying;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	args[0] = Int64GetDatum(p->id);
	SPI_connect();
	ds_spi_exec("SELECT 1 FROM datasync._pipeline_tables WHERE pipeline_id = $1 AND sync_state <> 'r'",
				1, argtypes, args, SPI_OK_SELECT);
	copying = SPI_processed > 0;
	SPI_finish();

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	if (copying || SearchNamedReplicationSlot(p->slot_name, false) == NULL)
	{
		LWLockRelease(ReplicationSlotControlLock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot wait for a run of pipeline \"%s\" that copies tables in a transaction that has written data", p->name),
				 errdetail("A run that copies tables creates a replication slot, which waits for this transaction to end."),
				 errhint("Call datasync.sync_now() in a transaction of its own, or use datasync.create_job().")));
	}
	LWLockRelease(ReplicationSlotControlLock);
}

/*
 * sync_now(name, timeout): run the pipeline now and wait for the outcome.
 * On a timeout the run goes on; the result then has its current status.
 */
Datum
datasync_sync_now(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	int64		timeout_ms = -1;
	JobPipeline p;
	DsPipelineSlot *slot;
	int64		job_id;
	char	   *json;
	bool		failed;

	/* NULL, or a year or more: until the run is done */
	if (!PG_ARGISNULL(1))
	{
		timeout_ms = ds_arg_timeout_ms(fcinfo, 1);
		if (timeout_ms >= DS_TIMEOUT_MAX_MS)
			timeout_ms = -1;
	}
	ds_require_preload();
	ds_require_launcher_database();
	p = runnable_pipeline(name);
	check_first_run_wait(&p);

	job_id = job_enqueue(&p, DS_JOB_MANUAL, caller, &slot);
	json = job_wait(slot, &p, job_id, timeout_ms, &failed);
	if (json == NULL)
		json = job_json(job_id, NULL);
	if (json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("job " INT64_FORMAT " of pipeline \"%s\" vanished", job_id, name)));
	json = ds_reveal_job_error(json, job_id, caller);
	ds_api_leave(&call);
	PG_RETURN_DATUM(json_datum(json));
}

/* create_job(name): queue a run and return its id at once */
Datum
datasync_create_job(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	JobPipeline p;
	DsPipelineSlot *slot;
	int64		job_id;

	ds_require_preload();
	ds_require_launcher_database();
	p = runnable_pipeline(name);
	job_id = job_enqueue(&p, DS_JOB_API, caller, &slot);
	ds_api_leave(&call);
	PG_RETURN_INT64(job_id);
}

/* job_status(id): a run's row as JSON, or its place in a queue */
Datum
datasync_job_status(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller;
	int64		job_id;
	char	   *json;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"id\" must not be null")));
	job_id = PG_GETARG_INT64(0);
	ds_require_preload();
	caller = ds_api_enter(fcinfo, &call);
	json = job_json(job_id, NULL);
	if (json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job " INT64_FORMAT " does not exist", job_id),
				 errhint("datasync.jobs lists the jobs.")));
	json = ds_reveal_job_error(json, job_id, caller);
	ds_api_leave(&call);
	PG_RETURN_DATUM(json_datum(json));
}

/*
 * _scheduled_run(pipeline_id): what a scheduled pipeline's pg_cron job
 * runs.  It waits for the run, so pg_cron's own history (cron.job_run_details)
 * shows its duration and a failure as an error; pg_cron never starts a
 * job again while its previous run goes on.  A paused pipeline skips the
 * run (NULL).
 */
Datum
datasync_scheduled_run(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller;
	JobPipeline p;
	DsPipelineSlot *slot;
	int64		job_id;
	char	   *json;
	bool		failed;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"pipeline_id\" must not be null")));
	ds_require_preload();
	ds_require_launcher_database();
	caller = ds_api_enter(fcinfo, &call);
	if (!lookup_pipeline(NULL, PG_GETARG_INT64(0), &p))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline with id " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)),
				 errhint("Remove the pg_cron job that calls it.")));
	if (!p.enabled)
	{
		ds_api_leave(&call);
		PG_RETURN_NULL();
	}
	if (p.error)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" is stopped by an error", p.name),
				 errdetail("%s", p.error),
				 errhint("Fix the cause, then run SELECT datasync.resume('%s').", p.name)));

	job_id = job_enqueue(&p, DS_JOB_SCHEDULED, caller, &slot);
	json = job_wait(slot, &p, job_id, -1, &failed);
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("scheduled run " INT64_FORMAT " of pipeline \"%s\" failed", job_id, p.name),
				 errdetail("%s", json)));
	ds_api_leave(&call);
	PG_RETURN_DATUM(json_datum(json));
}
