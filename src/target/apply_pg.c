/*-------------------------------------------------------------------------
 *
 * apply_pg.c
 *		The PostgreSQL target: batched, pipelined apply over libpq.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg.c
 *
 * NOTES
 *		One connection per pipeline, in non-blocking and (while a batch is
 *		open) pipeline mode.  Statements are prepared once per relation
 *		version and sent without waiting for their results; a batch ends
 *		with the progress row and a Sync, and is confirmed when the Sync's
 *		result comes back (see "Batches").  The first error result raises an
 *		ERROR carrying the target's SQLSTATE; the worker then closes this
 *		target and starts over from the committed progress, so nothing here
 *		has to undo a half-sent batch.
 *
 *		This file has the target's function table, its connection, its
 *		progress rows and its batches (begin, commit, durable).  The rest
 *		is split by concern, all of it working on one PgTarget
 *		(apply_pg_int.h):
 *
 *		- apply_pg_pipe.c: the commands and batches in flight, reading
 *		  their results, confirming batches and when they are durable;
 *		- apply_pg_stmt.c: each change (apply), the plain path's prepared
 *		  statements and the runs of changes sent as one statement;
 *		- apply_pg_copy.c: long runs of inserts as COPY, and table copies;
 *		- apply_pg_check.c: the statements of the conflict-checking path.
 *
 *		What is done for every row stays in apply_pg_stmt.c: a change goes
 *		from apply to its run, or into the open COPY, there.  The other
 *		files are reached once per statement, run or COPY chunk, and on the
 *		checking path for the conflict record of each row.
 *
 *		Progress lives on the target in public.datasync_progress, one row
 *		per (pipeline, source, incarnation, relid): relid 0 is the stream
 *		(end LSN of the last applied source transaction), other rows the
 *		LSN of a table's copy.  Rows of other sources and of an older
 *		pipeline of the same name are not ours (progress.c).
 *
 *		How a change is applied depends on its table's conflict strategy
 *		(relmap.c).  Tables on source-wins without log_conflicts, and every
 *		table without a key whatever its strategy, take the plain path
 *		(apply_pg_stmt.c): the source's version is written (an INSERT or
 *		full UPDATE is an upsert on the key, a DELETE of a missing row
 *		deletes nothing) and conflicts are only counted
 *		(counted_conflicts).  Tables on
 *		target-wins, latest-timestamp or manual, and on source-wins with
 *		log_conflicts, take the conflict-checking path (apply_pg_check.c):
 *		one statement a change finds the target row, decides by the
 *		strategy and writes or not, and each conflict found goes to the
 *		decider (on_conflict, conflict.c).
 *
 *		The session runs with session_replication_role = replica when the
 *		target role may set it, so ordinary triggers and foreign keys do
 *		not fire (as with native logical replication) and ENABLE ALWAYS
 *		triggers do.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "access.h"
#include "pgconn.h"
#include "target/apply.h"
#include "target/apply_pg_int.h"
#include "target/progress.h"

/* ---------------------------------------------------------------------
 * Connection and progress
 * ---------------------------------------------------------------------
 */
/*
 * Open the target session (named appname): the DSN's password from the
 * environment, the check that a non-superuser's DSN used it, no ordinary
 * triggers, the pipeline's synchronous_commit.
 */
void
ds_pg_open_session(PgTarget *pt, const char *appname)
{
	DsPipelineConfig *cfg = pt->base.cfg;
	char	   *password = NULL;
	PGresult   *res;

	if (cfg->password_env)
	{
		password = getenv(cfg->password_env);
		if (password == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PASSWORD),
					 errmsg("environment variable \"%s\" named by target \"%s\" is not set in the server's environment",
							cfg->password_env, cfg->target_name)));
	}
	pt->conn = ds_pq_connect(cfg->dsn, password, false, appname, DS_CONN_TARGET);
	{
		bool		started = ds_xact_start();	/* superuser_arg reads pg_authid */
		PGconn	   *conn = pt->conn;

		pt->conn = NULL;		/* closed by the check if it fails */
		ds_pq_check_password_used(conn, cfg->target_owner, cfg->target_name, cfg->dsn);
		pt->conn = conn;
		ds_xact_commit(started);
	}
	pt->conn_gen++;
	pt->in_pipeline = pt->in_xact = pt->in_copy = false;
	pt->have_progress_stmt = pt->have_guarded_stmt = false;
	pt->syncs_sent = pt->syncs_read = 0;
	pt->fly_count = pt->fly_head = 0;
	pt->pending = pt->syncs = 0;
	pt->what_head = 0;

	/* replica role: no ordinary triggers, no FK checks; optional */
	if (!PQsendQuery(pt->conn, "SET session_replication_role = replica"))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "setting up the session");
	ds_pq_flush(pt->conn, DS_CONN_TARGET);
	while ((res = ds_pq_get_result(pt->conn, DS_CONN_TARGET)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ereport(DEBUG1,
					(errmsg_internal("datasync: target role of pipeline \"%s\" cannot set session_replication_role: %s",
									 cfg->name, PQresultErrorMessage(res))));
		PQclear(res);
	}

	/* how target commits are made durable (see durable()) */
	{
		char	   *sql = psprintf("SET synchronous_commit = %s",
								   quote_literal_cstr(cfg->options.synchronous_commit));

		ds_pq_exec_ok(pt->conn, sql, DS_CONN_TARGET);
		pt->async_commit = strcmp(cfg->options.synchronous_commit, "off") == 0;
	}
	pt->wait_head = pt->wait_count = 0;
	pt->wait_pushed = pt->wait_popped = 0;
}

static void
pg_connect(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;
	DsPipelineConfig *cfg = t->cfg;
	char		appname[NAMEDATALEN];

	snprintf(appname, sizeof(appname), "datasync %s", cfg->name);
	ds_pg_open_session(pt, appname);

	/* the progress table, and the rows 0.1 wrote for us */
	ds_progress_prepare(pt->conn, cfg->name, pt->incarnation, pt->source);

	/* never a system catalog of the target, whatever its name (access.c) */
	ds_target_refuse_system(pt->conn, cfg);
}

static XLogRecPtr
pg_read_progress(DsApplyTarget *t, Oid relid)
{
	PgTarget   *pt = (PgTarget *) t;
	const char *vals[4];
	char		relbuf[16];
	PGresult   *res;
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	ds_pg_leave_pipeline(pt);
	snprintf(relbuf, sizeof(relbuf), "%u", relid);
	vals[0] = t->cfg->name;
	vals[1] = relbuf;
	vals[2] = pt->incarnation;
	vals[3] = pt->source;
	res = ds_pq_exec_params(pt->conn,
							"SELECT lsn FROM " DATASYNC_PROGRESS_TABLE
							" WHERE pipeline = $1 AND relid = $2 AND incarnation = $3 AND source = $4",
							4, vals, DS_CONN_TARGET);
	if (PQntuples(res) == 1)
		lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in,
											  CStringGetDatum(PQgetvalue(res, 0, 0))));
	PQclear(res);
	return lsn;
}

/*
 * Record lsn as relid's progress on the target (relid 0: the stream's), in
 * the transaction being sent.  The statement returns the target's WAL
 * position (see "Batches").  The stream's progress behind a batch in
 * flight is guarded: it moves on only from that batch's end LSN.
 */
void
ds_pg_send_progress(PgTarget *pt, Oid relid, XLogRecPtr lsn)
{
	bool		guarded = (relid == InvalidOid && pt->fly_count > 0);
	const char *name = guarded ? "ds_progress_after" : "ds_progress";
	const char *vals[5];
	char		lsnbuf[32];
	char		lastbuf[32];

	if (!guarded && !pt->have_progress_stmt)
	{
		ds_pg_send_prepare(pt, name,
						   "INSERT INTO " DATASYNC_PROGRESS_TABLE " AS p (pipeline, relid, incarnation, lsn, updated_at, source)"
						   " VALUES ($1, $4, $2, $3, now(), $5)"
						   " ON CONFLICT (pipeline, source, incarnation, relid) DO UPDATE SET"
						   " lsn = EXCLUDED.lsn, updated_at = EXCLUDED.updated_at"
						   " RETURNING pg_catalog.pg_current_wal_insert_lsn(), pg_catalog.pg_current_wal_flush_lsn()",
						   "preparing the progress update");
		pt->have_progress_stmt = true;
	}
	if (guarded && !pt->have_guarded_stmt)
	{
		ds_pg_send_prepare(pt, name,
						   "WITH u AS (UPDATE " DATASYNC_PROGRESS_TABLE " SET lsn = $3, updated_at = now()"
						   " WHERE pipeline = $1 AND relid = 0 AND incarnation = $2 AND lsn = $4 AND source = $5"
						   " RETURNING 1)"
						   " SELECT pg_catalog.pg_current_wal_insert_lsn(), pg_catalog.pg_current_wal_flush_lsn(),"
						   " 1 / pg_catalog.count(*)::int FROM u",
						   "preparing the guarded progress update");
		pt->have_guarded_stmt = true;
	}
	snprintf(lsnbuf, sizeof(lsnbuf), "%X/%X", LSN_FORMAT_ARGS(lsn));
	if (guarded)
		snprintf(lastbuf, sizeof(lastbuf), "%X/%X", LSN_FORMAT_ARGS(pt->last_lsn));
	else
		snprintf(lastbuf, sizeof(lastbuf), "%u", relid);
	vals[0] = pt->base.cfg->name;
	vals[1] = pt->incarnation;
	vals[2] = lsnbuf;
	vals[3] = lastbuf;			/* the previous end LSN, or the relid */
	vals[4] = pt->source;
	ds_pg_sent_use(pt, PQsendQueryPrepared(pt->conn, name, 5, vals, NULL, NULL, 0),
				   guarded ? "updating " DATASYNC_PROGRESS_TABLE " after the batch before"
				   : "updating " DATASYNC_PROGRESS_TABLE,
				   pt->async_commit ? USE_WAL_POS : USE_NONE, 0, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Batches
 *
 * A batch is sent and committed without waiting for the target (commit
 * with wait = false): the worker goes on reading the stream while the
 * target works, and the next batch is queued behind it on the target, so
 * neither side waits for the other between batches.  Results are read as
 * they come; the Sync that ends a batch confirms it (on_committed).
 *
 * The target runs whatever follows a Sync even when the batch before it
 * failed, so a batch committed while another is in flight records its
 * progress with a guard: it moves the stream's progress row only from the
 * end LSN of the batch before it, and divides by the number of rows it
 * moved.  A failed batch thus takes every later one down with it, and the
 * worker, which reads the failure first, starts over from the last batch
 * that committed.  The progress statement also returns the target's WAL
 * insert and flush positions: the insert position is past the commit of
 * every batch before it, which tells when those are durable (see
 * PgTarget.async_commit), with no statement or transaction of its own.
 *
 *   batch 1: INSERT ...; progress = 1/A0 (WAL position); Sync
 *   batch 2: UPDATE ...; progress 1/A0 -> 1/B8, else fail (WAL position); Sync
 * ---------------------------------------------------------------------
 */

/*
 * Start a batch.  No BEGIN is sent: in the extended protocol everything up
 * to the next Sync runs as one implicit transaction, which the Sync that
 * ends the batch commits (two statements fewer a batch).  Copies open an
 * explicit transaction instead (see ds_pg_table_copy_begin).
 */
static void
pg_begin(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->in_xact)
		return;
	ds_pg_enter_pipeline(pt);
	pt->in_xact = true;
	pt->explicit_xact = false;
}

/*
 * Commit the open transaction; with a valid end_lsn also record it as the
 * stream's progress in the same transaction.  With wait (and always for a
 * copy), returns after the target confirmed the commit; else once it is
 * sent, with at most DS_MAX_INFLIGHT batches unconfirmed.
 */
static void
pg_commit(DsApplyTarget *t, uint64 batch_no, XLogRecPtr end_lsn, bool wait)
{
	PgTarget   *pt = (PgTarget *) t;

	if (!pt->in_xact)
		pg_begin(t);
	ds_pg_flush_run(pt);		/* ends an open COPY */
	ds_pg_enter_pipeline(pt);
	if (!XLogRecPtrIsInvalid(end_lsn))
		ds_pg_send_progress(pt, InvalidOid, end_lsn);	/* guarded behind a batch in flight */
	if (pt->explicit_xact)
		ds_pg_send_sql(pt, "COMMIT", "committing a batch");
	ds_pg_send_sync(pt);		/* commits an implicit transaction */
	/* its WAL position comes with the next progress statement */
	if (pt->async_commit && !pt->sync_this_xact && !XLogRecPtrIsInvalid(end_lsn))
		ds_pg_wait_push(pt, end_lsn);
	/* confirmed by the last Sync sent */
	ds_pg_fly_push(pt, batch_no, end_lsn);
	if (!XLogRecPtrIsInvalid(end_lsn))
		pt->last_lsn = end_lsn;
	pt->in_xact = false;
	pt->explicit_xact = false;
	pt->streak_rel = NULL;
	pt->batch_no++;
	if (wait || pt->sync_this_xact || XLogRecPtrIsInvalid(end_lsn))
	{
		ds_pg_wait_all(pt);
		if (pt->sync_this_xact && !XLogRecPtrIsInvalid(end_lsn))
			pt->durable_src = Max(pt->durable_src, end_lsn);
	}
	else
		ds_pg_flush_and_drain(pt);
	pt->sync_this_xact = false;
}

/* Wait until the oldest commit in flight is confirmed. */
static void
pg_wait_confirmed(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;
	int			count = pt->fly_count;

	if (count == 0)
		return;
	ds_pg_flush_and_drain(pt);
	while (pt->fly_count >= count)
	{
		ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
		ds_pg_drain(pt);
	}
}

/*
 * Wait for the results of every statement sent so far, without ending the
 * transaction: a Flush message makes the target send what it has.
 */
static void
pg_settle(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->conn == NULL || (!pt->in_pipeline && pt->copy_rel == NULL))
		return;
	ds_pg_flush_run(pt);
	if (pt->pending == 0 && pt->syncs == 0)
		return;
	if (pt->pending > 0 && !PQsendFlushRequest(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a flush request");
	ds_pg_flush_and_drain(pt);
	while (pt->pending > 0 || pt->syncs > 0)
	{
		ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
		ds_pg_drain(pt);
	}
}

/* the target connection's socket: its closing, or its results */
static void
pg_add_wait_events(DsApplyTarget *t, WaitEventSet *set)
{
	PgTarget   *pt = (PgTarget *) t;

	pt->wait_pos = -1;
	if (pt->conn != NULL && PQsocket(pt->conn) != PGINVALID_SOCKET)
		pt->wait_pos = AddWaitEventToSet(set, WL_SOCKET_CLOSED, PQsocket(pt->conn),
										 NULL, pt);
}

static void
pg_want_results(DsApplyTarget *t, WaitEventSet *set, bool want)
{
	PgTarget   *pt = (PgTarget *) t;

	/* no system call when it stays the same (ModifyWaitEvent) */
	if (pt->wait_pos >= 0)
		ModifyWaitEvent(set, pt->wait_pos,
						want ? WL_SOCKET_READABLE : WL_SOCKET_CLOSED, NULL);
}

/* see PgTarget.async_commit */
static XLogRecPtr
pg_durable(DsApplyTarget *t, bool refresh, bool *all)
{
	PgTarget   *pt = (PgTarget *) t;

	if (refresh && pt->wait_count > 0 && !pt->in_xact)
	{
		ds_pg_enter_pipeline(pt);
		ds_pg_send_sql_use(pt, "SELECT pg_catalog.pg_current_wal_insert_lsn(), pg_catalog.pg_current_wal_flush_lsn()",
						   "reading the target's WAL position", USE_WAL_POS);
		ds_pg_send_sync(pt);
		ds_pg_wait_all(pt);
	}
	*all = pt->wait_count == 0;
	return pt->durable_src;
}

static void
pg_poll(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	/* runs stay buffered: they go out whole, or at their end */
	if (pt->conn == NULL)
		return;
	if (pt->copy_rel != NULL)
		ds_pg_copy_push(pt);
	else
		ds_pg_flush_and_drain(pt);	/* also sees the connection closing */
}

static void
pg_close(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->conn)
		ds_pq_finish(pt->conn);
	pt->conn = NULL;
	pt->in_pipeline = pt->in_xact = pt->in_copy = false;
	pt->pending = pt->syncs = 0;
	pt->sync_this_xact = false;
	pt->wait_count = 0;
	pt->fly_count = pt->fly_head = 0;
	pt->run_n = 0;
	pt->run_bytes = 0;
	pt->run_full = false;
	pt->run_rel = NULL;
	pt->cur_change = NULL;
	pt->sending = NULL;
	pt->unflushed = 0;
	pt->unflushed_bytes = 0;
	MemoryContextReset(pt->runcxt);
	pt->copy_rel = NULL;
	pt->streak_rel = NULL;
	pt->batch_no++;
	MemoryContextReset(pt->copycxt);
	pt->copy_buf.data = NULL;
	pt->table_copy.data = NULL;
	/* hits still waiting for a result; the decider dropped its own */
	MemoryContextReset(pt->hitcxt);
}

/*
 * Create the PostgreSQL target of a pipeline; the caller's memory context
 * must live as long as the target.
 */
DsApplyTarget *
ds_apply_pg_create(DsPipelineConfig *cfg)
{
	PgTarget   *pt = palloc0(sizeof(PgTarget));

	pt->base.connect = pg_connect;
	pt->base.read_progress = pg_read_progress;
	pt->base.begin = pg_begin;
	pt->base.apply = ds_pg_apply;
	pt->base.truncate = ds_pg_truncate;
	pt->base.commit = pg_commit;
	pt->base.put_row = ds_pg_put_row;
	pt->base.wait_confirmed = pg_wait_confirmed;
	pt->base.copy_begin = ds_pg_table_copy_begin;
	pt->base.copy_data = ds_pg_table_copy_data;
	pt->base.copy_end = ds_pg_table_copy_end;
	pt->base.poll = pg_poll;
	pt->base.durable = pg_durable;
	pt->base.close = pg_close;
	pt->base.settle = pg_settle;
	pt->base.nwait_events = 1;
	pt->base.add_wait_events = pg_add_wait_events;
	pt->base.want_results = pg_want_results;
	pt->base.cfg = cfg;
	pt->cxt = CurrentMemoryContext;
	pt->wait_pos = -1;
	pt->what_cap = 1024;
	pt->what = palloc(sizeof(PgPending) * pt->what_cap);
	pt->hitcxt = AllocSetContextCreate(CurrentMemoryContext, "datasync conflict checks",
									   ALLOCSET_DEFAULT_SIZES);
	pt->runcxt = AllocSetContextCreate(CurrentMemoryContext, "datasync insert run",
									   ALLOCSET_DEFAULT_SIZES);
	pt->copycxt = AllocSetContextCreate(CurrentMemoryContext, "datasync COPY chunk",
										ALLOCSET_DEFAULT_SIZES);
	pt->batch_no = 1;
	pt->wait_cap = 64;
	pt->wait_src = palloc(sizeof(XLogRecPtr) * pt->wait_cap);
	pt->wait_tgt = palloc(sizeof(XLogRecPtr) * pt->wait_cap);
	snprintf(pt->incarnation, sizeof(pt->incarnation), INT64_FORMAT, cfg->incarnation);
	pt->source = ds_progress_source();
	return &pt->base;
}
