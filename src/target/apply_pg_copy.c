/*-------------------------------------------------------------------------
 *
 * apply_pg_copy.c
 *		The PostgreSQL target's COPY: long runs of inserts, and table
 *		copies.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_copy.c
 *
 * NOTES
 *		COPY runs.  A run of inserts into one table that goes on past
 *		DS_COPY_AFTER_ROWS rows (sent as multi-row upserts so far) continues
 *		as COPY ... FROM STDIN: no statement to start every 64 rows, no
 *		speculative insertion and no index probe before each row, and the
 *		server inserts rows in batches.  COPY cannot leave alone or update a
 *		row whose key the target already holds, so each chunk of up to
 *		DS_COPY_CHUNK_BYTES runs under a savepoint and its rows stay here
 *		(copy_buf) until the target confirmed them.  A chunk that failed is
 *		rolled back to the savepoint and applied again as upserts: an
 *		existing key is then overwritten (source wins: only the plain path's
 *		inserts go into COPY) and counted, and any other error is raised by
 *		the statement that meets it, as without COPY.  After a key conflict
 *		the table's inserts stay on upserts until the batch ends; after any
 *		other failure (a view, row security, ...) for the rest of the
 *		session.
 *
 *		libpq runs COPY outside pipeline mode, so opening one turns the
 *		batch's implicit transaction into a transaction block (BEGIN; the
 *		statements before it belong to it) and waits for the results of
 *		everything sent.  A 1M-row INSERT thus goes out as:
 *		  4 x INSERT (64 rows) ... | BEGIN; SAVEPOINT; Sync (wait) | COPY (wait
 *		  for CopyInResponse) | 8 MB of rows | CopyDone (wait) | RELEASE;
 *		  SAVEPOINT; Sync (wait) | COPY ... | ... | CopyDone (wait) | RELEASE;
 *		  progress; COMMIT; Sync.
 *		Rows are handed to libpq every DS_COPY_SEND_BYTES, so the target
 *		works while the stream brings more; a chunk stays open while the
 *		worker waits for the stream (poll() only pushes what it has).
 *
 *		Whether an insert goes into the COPY (copy_wanted) and appending
 *		it (copy_add) are done for every row, so they sit beside
 *		ds_pg_add_to_run in apply_pg_stmt.c; this file opens, pushes and
 *		ends the COPY, and hands a refused chunk back to the runs.
 *
 *		Table copies (copy_begin, copy_data and copy_end of the target
 *		interface) fill a table for its initial sync, never inside a batch:
 *		in a transaction block that commits synchronously (the catalog
 *		marks the table copied once it commits), the table's rows are
 *		deleted, the source's COPY data is passed on in messages of about
 *		DS_COPY_SEND_BYTES, and the copy's LSN is recorded as the table's
 *		progress.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "copytext.h"
#include "pgconn.h"
#include "target/apply.h"
#include "target/apply_pg_int.h"

/* ---------------------------------------------------------------------
 * COPY runs
 * ---------------------------------------------------------------------
 */
#define DS_COPY_SAVEPOINT		"datasync_copy"

/* n more rows of a run of inserts into rel went out in one piece */
void
ds_pg_streak_add(PgTarget *pt, DsRelation *rel, int64 n)
{
	if (pt->streak_rel != rel)
		pt->streak_rows = 0;
	pt->streak_rel = rel;
	pt->streak_rows += n;
}

/* read a command's results to the end; the first error's, if any */
static PGresult *
copy_results(PgTarget *pt)
{
	PGresult   *res;
	PGresult   *err = NULL;

	while ((res = ds_pq_get_result(pt->conn, DS_CONN_TARGET)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_COMMAND_OK || err != NULL)
			PQclear(res);
		else
			err = res;
		if (PQstatus(pt->conn) == CONNECTION_BAD)
			ds_pq_report(pt->conn, err, DS_CONN_TARGET, "COPY");
	}
	return err;
}

/* back to the savepoint of a chunk that failed; statements pipeline again */
static void
copy_rollback(PgTarget *pt, DsRelation *rel, PGresult *err)
{
	PgRel	   *pr = ds_pg_rel(pt, rel);
	const char *state = PQresultErrorField(err, PG_DIAG_SQLSTATE);

	/* a key the target holds: upserts for the rest of this batch */
	if (state && strcmp(state, "23505") == 0)
		pr->copy_skip_batch = pt->batch_no;
	else
		pr->copy_off = true;
	/* the primary message only: the detail may quote the row */
	ereport(DEBUG1,
			(errmsg_internal("datasync: COPY into %s failed (%s: %s), applying its rows as upserts",
							 rel->target_qname, state ? state : "?",
							 PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY))));
	PQclear(err);
	ds_pg_enter_pipeline(pt);
	ds_pg_send_sql(pt, "ROLLBACK TO SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
	ds_pg_send_sql(pt, "RELEASE SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
}

/*
 * Open a COPY into rel's table in the open batch.  Returns false when the
 * target refused it (the table stays on upserts).
 */
bool
ds_pg_copy_open(PgTarget *pt, DsRelation *rel)
{
	PgRel	   *pr = ds_pg_rel(pt, rel);
	StringInfoData sql;
	PGresult   *res;

	ds_pg_flush_run(pt);
	if (!pt->explicit_xact)
	{
		ds_pg_send_sql(pt, "BEGIN", pr->what);
		pt->explicit_xact = true;
	}
	ds_pg_send_sql(pt, "SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
	ds_pg_leave_pipeline(pt);	/* raises the error of anything sent before */

	initStringInfo(&sql);
	appendStringInfo(&sql, "COPY %s (", rel->target_qname);
	ds_pg_append_columns(&sql, rel, false);
	appendStringInfoString(&sql, ") FROM STDIN");
	if (!PQsendQuery(pt->conn, sql.data))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, pr->what);
	pfree(sql.data);
	ds_pq_flush(pt->conn, DS_CONN_TARGET);
	res = ds_pq_get_result(pt->conn, DS_CONN_TARGET);
	if (res == NULL)
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, pr->what);
	if (PQresultStatus(res) == PGRES_COPY_IN)
	{
		PQclear(res);
		pt->copy_rel = rel;
		pt->copy_rows = 0;
		pt->copy_sent = 0;
		if (pt->copy_buf.data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(pt->copycxt);

			initStringInfo(&pt->copy_buf);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(&pt->copy_buf);
		return true;
	}

	/* refused (a view, row security, ...): its error, then nothing more */
	PQclear(copy_results(pt));
	if (PQstatus(pt->conn) == CONNECTION_BAD)
		ds_pq_report(pt->conn, res, DS_CONN_TARGET, pr->what);
	copy_rollback(pt, rel, res);
	return false;
}

/*
 * Hand len bytes of COPY data to libpq as one CopyData message and wait
 * until all of it is sent: libpq's buffer stays small (it would otherwise
 * grow while the target is slower, and libpq moves what it holds to the
 * buffer's start after every 8 kB it sends).
 */
static void
copy_put(PgTarget *pt, const char *buf, int len)
{
	while (len > 0)
	{
		int			rc = PQputCopyData(pt->conn, buf, len);

		if (rc == 1)
			break;
		if (rc < 0)
			ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending COPY data");
		/* would block: wait until the socket takes more */
		ds_pq_wait(pt->conn, WL_SOCKET_WRITEABLE, -1);
	}
	ds_pq_flush(pt->conn, DS_CONN_TARGET);
}

/*
 * Hand libpq the rows it does not have yet and send them; wait while the
 * target's socket takes no more (the target is the slower side then).
 */
void
ds_pg_copy_push(PgTarget *pt)
{
	copy_put(pt, pt->copy_buf.data + pt->copy_sent, pt->copy_buf.len - pt->copy_sent);
	pt->copy_sent = pt->copy_buf.len;
}

/*
 * End the open COPY and learn whether the target took its chunk.  If not,
 * roll the chunk back and apply its rows as a run of upserts (which may
 * leave a part run buffered).  Statements pipeline again afterwards.
 */
void
ds_pg_copy_end(PgTarget *pt)
{
	DsRelation *rel = pt->copy_rel;
	PgRel	   *pr = ds_pg_rel(pt, rel);
	PGresult   *err;
	int			rc;
	int			pos;
	char	  **values;
	char	   *scratch = NULL;
	int			scratch_len = 0;
	LogicalRepTupleData tup;
	int			i;

	ds_pg_copy_push(pt);
	while ((rc = PQputCopyEnd(pt->conn, NULL)) != 1)
	{
		if (rc < 0)
			ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "ending COPY");
		ds_pq_wait(pt->conn, WL_SOCKET_WRITEABLE, -1);
	}
	ds_pq_flush(pt->conn, DS_CONN_TARGET);
	err = copy_results(pt);
	pt->copy_rel = NULL;
	if (err == NULL)
	{
		ds_pg_enter_pipeline(pt);
		ds_pg_send_sql(pt, "RELEASE SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
		ds_pg_streak_add(pt, rel, pt->copy_rows);
		resetStringInfo(&pt->copy_buf);
		return;
	}
	copy_rollback(pt, rel, err);

	/* the chunk again, row by row through the upsert runs */
	values = palloc(sizeof(char *) * Max(rel->natts, 1));
	tup.ncols = rel->natts;
	tup.colvalues = palloc0(sizeof(StringInfoData) * Max(rel->natts, 1));
	tup.colstatus = palloc(Max(rel->natts, 1));
	for (pos = 0; pos < pt->copy_buf.len;)
	{
		char	   *nl = memchr(pt->copy_buf.data + pos, '\n', pt->copy_buf.len - pos);
		int			rowlen = nl ? nl - (pt->copy_buf.data + pos) + 1 : pt->copy_buf.len - pos;

		if (rowlen > scratch_len)
		{
			if (scratch)
				pfree(scratch);
			scratch_len = Max(rowlen, 1024);
			scratch = palloc(scratch_len);
		}
		pos = ds_copytext_next_row(pt->copy_buf.data, pt->copy_buf.len, pos,
								   rel->natts, values, scratch);
		for (i = 0; i < rel->natts; i++)
		{
			tup.colstatus[i] = values[i] ? LOGICALREP_COLUMN_TEXT : LOGICALREP_COLUMN_NULL;
			tup.colvalues[i].data = values[i];
			tup.colvalues[i].len = values[i] ? strlen(values[i]) : 0;
		}
		ds_pg_add_to_run(pt, rel, &tup, 'i', NULL);
		CHECK_FOR_INTERRUPTS();
	}
	resetStringInfo(&pt->copy_buf);
	if (scratch)
		pfree(scratch);
	pfree(values);
	pfree(tup.colvalues);
	pfree(tup.colstatus);
}

/* ---------------------------------------------------------------------
 * Table copies
 * ---------------------------------------------------------------------
 */
void
ds_pg_table_copy_begin(DsApplyTarget *t, const char *target_qname,
					   List *colnames)
{
	PgTarget   *pt = (PgTarget *) t;
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;
	PGresult   *res;

	ds_pg_flush_run(pt);
	Assert(!pt->in_xact || pt->explicit_xact);	/* never inside a batch */
	ds_pg_leave_pipeline(pt);
	if (!pt->in_xact)
	{
		ds_pq_exec_ok(pt->conn, "BEGIN", DS_CONN_TARGET);
		pt->in_xact = true;
		pt->explicit_xact = true;
	}
	/* the catalog marks a table copied once this commits: make it durable */
	if (pt->async_commit && !pt->sync_this_xact)
	{
		ds_pq_exec_ok(pt->conn, "SET LOCAL synchronous_commit = on", DS_CONN_TARGET);
		pt->sync_this_xact = true;
	}

	/* the copy replaces whatever the table held */
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", target_qname);
	res = ds_pq_exec(pt->conn, sql.data, DS_CONN_TARGET);
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "DELETE FROM %s", target_qname);
		ds_pq_exec_ok(pt->conn, sql.data, DS_CONN_TARGET);
	}
	PQclear(res);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "COPY %s (", target_qname);
	foreach(lc, colnames)
	{
		appendStringInfo(&sql, "%s%s", first ? "" : ", ", quote_identifier(strVal(lfirst(lc))));
		first = false;
	}
	appendStringInfoString(&sql, ") FROM STDIN");
	res = ds_pq_exec(pt->conn, sql.data, DS_CONN_TARGET);
	if (PQresultStatus(res) != PGRES_COPY_IN)
		ds_pq_report(pt->conn, res, DS_CONN_TARGET, "starting COPY");
	PQclear(res);
	pt->in_copy = true;
	pfree(sql.data);
}

/*
 * Send the rows of a table copy gathered so far (up to DS_COPY_SEND_BYTES
 * a message).  Rows come from the source one message each; passed on one
 * by one they cost a send() here and a message on the target each.
 */
static void
table_copy_send(PgTarget *pt)
{
	if (pt->table_copy.data == NULL || pt->table_copy.len == 0)
		return;
	copy_put(pt, pt->table_copy.data, pt->table_copy.len);
	resetStringInfo(&pt->table_copy);
}

void
ds_pg_table_copy_data(DsApplyTarget *t, const char *buf, int len)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->table_copy.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(pt->copycxt);

		initStringInfo(&pt->table_copy);
		MemoryContextSwitchTo(old);
	}
	/* a large row goes in a message of its own, not appended (sendlimit.c) */
	if (len >= DS_COPY_SEND_BYTES)
	{
		table_copy_send(pt);
		copy_put(pt, buf, len);
		return;
	}
	appendBinaryStringInfo(&pt->table_copy, buf, len);
	if (pt->table_copy.len >= DS_COPY_SEND_BYTES)
		table_copy_send(pt);
}

void
ds_pg_table_copy_end(DsApplyTarget *t, Oid relid, XLogRecPtr lsn)
{
	PgTarget   *pt = (PgTarget *) t;
	PGresult   *res;
	PGresult   *last = NULL;

	table_copy_send(pt);
	for (;;)
	{
		int			rc = PQputCopyEnd(pt->conn, NULL);

		if (rc == 1)
			break;
		if (rc < 0)
			ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "ending COPY");
		ds_pq_wait(pt->conn, WL_SOCKET_WRITEABLE, -1);
	}
	ds_pq_flush(pt->conn, DS_CONN_TARGET);
	while ((res = ds_pq_get_result(pt->conn, DS_CONN_TARGET)) != NULL)
	{
		if (last)
			PQclear(last);
		last = res;
	}
	pt->in_copy = false;
	if (last == NULL || PQresultStatus(last) != PGRES_COMMAND_OK)
		ds_pq_report(pt->conn, last, DS_CONN_TARGET, "COPY");
	PQclear(last);

	/* the table's copy LSN, in the same transaction */
	ds_pg_enter_pipeline(pt);
	ds_pg_send_progress(pt, relid, lsn);
	ds_pg_leave_pipeline(pt);
}
