/*-------------------------------------------------------------------------
 *
 * jobs_api.c
 *		SQL functions of runs ("jobs"): sync_now, create_job, job_status,
 *		and _scheduled_run, what a scheduled pipeline's pg_cron job calls.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/jobs_api.c
 *
 * NOTES
 *		These run in the caller's transaction.  They check that the
 *		pipeline can run, queue the run in shared memory
 *		(worker/jobs.c, ds_jobs_enqueue) and, for sync_now and
 *		_scheduled_run, wait for its outcome on DsShmem->progress_cv; the
 *		worker writes the run's row to datasync.jobs.  They never insert
 *		that row themselves: it would stay invisible to the worker until
 *		the caller's transaction ends, while the caller waits for the run.
 *
 *		The caller must not hold an xid while it waits for a first run
 *		that creates the pipeline's slot: slot creation waits for every
 *		transaction with an xid (check_first_run_wait).  For the same
 *		reason job ids come from a counter in shared memory, not from a
 *		sequence.
 *
 *		A run's error text may quote row values: job_status and sync_now
 *		show it only to roles that may read every table of the pipeline
 *		(valueacl.c, ds_reveal_job_error).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/condition_variable.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "api/apiutil.h"
#include "api/valueacl.h"
#include "isolation.h"
#include "shmem.h"
#include "worker/jobs.h"

PG_FUNCTION_INFO_V1(datasync_sync_now);
PG_FUNCTION_INFO_V1(datasync_create_job);
PG_FUNCTION_INFO_V1(datasync_job_status);
PG_FUNCTION_INFO_V1(datasync_scheduled_run);

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
	ds_spi_read("SELECT id, name, slot_name, mode, enabled, error, xmin, incarnation"
				" FROM datasync._pipelines WHERE name = $1 OR id = $2",
				2, argtypes, args, nulls);
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

/* Queue a run of pipeline p. */
static int64
job_enqueue(JobPipeline *p, DsJobKind kind, Oid requested_by, DsPipelineSlot **slot_out)
{
	DsPipelineKey key;

	ds_pipeline_key(&key, p->id, p->incarnation);
	return ds_jobs_enqueue(&key, p->name, kind, requested_by, slot_out);
}

/* a run still in a queue, as JSON, or NULL */
static char *
queued_json(int64 job_id, bool *started)
{
	DsJobRequest req;
	int64		pipeline_id = ds_jobs_find_queued(job_id, &req);
	JobPipeline p;
	char	   *who;
	StringInfoData buf;

	if (pipeline_id == 0)
		return NULL;
	who = GetUserNameFromId(req.requested_by, true);
	*started = req.started;
	if (!lookup_pipeline(NULL, pipeline_id, &p))
		p.name = "";
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"id\": " INT64_FORMAT ", \"pipeline\": ", job_id);
	escape_json(&buf, p.name);
	appendStringInfo(&buf, ", \"pipeline_id\": " INT64_FORMAT ", \"kind\": \"%s\", \"status\": \"%s\", \"requested_by\": ",
					 pipeline_id, ds_job_kind_name(req.kind), req.started ? "running" : "queued");
	if (who)
		escape_json(&buf, who);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"requested_at\": \"%s\", \"upto_lsn\": \"%X/%X\"}",
					 timestamptz_to_str(req.requested_at), LSN_FORMAT_ARGS(req.lsn));
	return buf.data;
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
	json = ds_jobs_row_json(job_id, &st);
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
		char		json[DS_JOB_JSON_LEN];
		DsJobState state = ds_jobs_peek(slot, &key, job_id, failed, json);
		long		wait_ms = 1000;

		if (state == DS_JOB_DROPPED)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pipeline \"%s\" was dropped before job " INT64_FORMAT " finished", p->name, job_id)));
		}
		if (state == DS_JOB_ENDED && json[0] != '\0')
		{
			result = pstrdup(json);
			break;
		}
		if (state == DS_JOB_ENDED)
		{
			/* ended, but its outcome is only in the table */
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
	/* the worker marks tables copied: not read_only, to see it at once */
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

	ds_arg_required(fcinfo, 0, "id");
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

	ds_arg_required(fcinfo, 0, "pipeline_id");
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
