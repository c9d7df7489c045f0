/*-------------------------------------------------------------------------
 *
 * stream.c
 *		The replication connection: slots, START_REPLICATION, feedback.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/stream.c
 *
 * NOTES
 *		A sync worker opens a replication=database connection to its own
 *		server and reads pgoutput over it, as the native apply worker does.
 *		The walsender accepts only the simple query protocol, so commands
 *		here go through ds_pq_exec.  Feedback ('r') reports as flushed only
 *		what the target committed; the walsender then releases WAL up to it.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "pgconn.h"
#include "worker/stream.h"

/* how often to send feedback when nothing else makes us */
#define DS_FEEDBACK_INTERVAL_MS 10000

DsStream *
ds_stream_connect(const char *appname)
{
	DsStream   *s = palloc0(sizeof(DsStream));

	s->conn = ds_pq_connect(ds_source_conninfo(), NULL, true, appname, DS_CONN_SOURCE);
	return s;
}

void
ds_stream_close(DsStream *s)
{
	if (s == NULL)
		return;
	ds_pq_finish(s->conn);
	s->conn = NULL;
	s->streaming = false;
}

bool
ds_stream_slot_exists(DsStream *s, const char *slot)
{
	/* a slot of that name in another database is not ours */
	char	   *sql = psprintf("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = %s"
							   " AND database = pg_catalog.current_database()",
							   quote_literal_cstr(slot));
	PGresult   *res = ds_pq_exec(s->conn, sql, DS_CONN_SOURCE);
	bool		exists = PQntuples(res) > 0;

	PQclear(res);
	pfree(sql);
	return exists;
}

void
ds_stream_drop_slot(DsStream *s, const char *slot)
{
	char	   *sql = psprintf("DROP_REPLICATION_SLOT %s WAIT", quote_identifier(slot));

	ds_pq_exec_ok(s->conn, sql, DS_CONN_SOURCE);
	pfree(sql);
}

/*
 * Create a logical slot for pgoutput whose snapshot the connection's open
 * REPEATABLE READ transaction takes ("use"), so a COPY on this
 * connection sees exactly what precedes the slot's consistent point.
 * Returns that point.  The caller has sent BEGIN READ ONLY ISOLATION
 * LEVEL REPEATABLE READ.
 */
XLogRecPtr
ds_stream_create_slot(DsStream *s, const char *slot, bool temporary)
{
	char	   *sql = psprintf("CREATE_REPLICATION_SLOT %s%s LOGICAL pgoutput (SNAPSHOT 'use')",
							   quote_identifier(slot), temporary ? " TEMPORARY" : "");
	PGresult   *res = ds_pq_exec(s->conn, sql, DS_CONN_SOURCE);
	XLogRecPtr	lsn;

	if (PQntuples(res) != 1 || PQnfields(res) < 2)
		elog(ERROR, "unexpected result of CREATE_REPLICATION_SLOT");
	lsn = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(PQgetvalue(res, 0, 1))));
	PQclear(res);
	pfree(sql);
	return lsn;
}

/*
 * START_REPLICATION from start (the server begins at the later of start
 * and the slot's confirmed position).  A slot still held by the walsender
 * of our previous connection is released within moments: wait for it.
 */
void
ds_stream_start(DsStream *s, const char *slot, const char *publication,
				XLogRecPtr start)
{
	char	   *sql = psprintf("START_REPLICATION SLOT %s LOGICAL %X/%X "
							   "(proto_version '2', streaming 'on', publication_names %s, messages 'true')",
							   quote_identifier(slot), LSN_FORMAT_ARGS(start),
							   quote_literal_cstr(quote_identifier(publication)));
	int			tries = 0;

	for (;;)
	{
		PGresult   *res;

		if (!PQsendQuery(s->conn, sql))
			ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "START_REPLICATION");
		ds_pq_flush(s->conn, DS_CONN_SOURCE);
		res = ds_pq_get_result(s->conn, DS_CONN_SOURCE);
		if (res && PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			PQclear(res);
			break;
		}
		if (res && tries < 100)
		{
			char	   *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			if (state && strcmp(state, "55006") == 0)	/* object in use */
			{
				PGresult   *r;

				PQclear(res);
				while ((r = ds_pq_get_result(s->conn, DS_CONN_SOURCE)) != NULL)
					PQclear(r);
				tries++;
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 100, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				continue;
			}
		}
		ds_pq_report(s->conn, res, DS_CONN_SOURCE, "START_REPLICATION");
	}
	s->streaming = true;
	s->last_feedback = GetCurrentTimestamp();
	pfree(sql);
}

/*
 * Next CopyData message without waiting: > 0 its length (free *buf with
 * PQfreemem), 0 none available now.  The end of the stream is an error.
 */
int
ds_stream_receive(DsStream *s, char **buf)
{
	int			len = PQgetCopyData(s->conn, buf, 1);

	if (len == 0 || len > 0)
		return len;
	if (len == -1)
	{
		PGresult   *res = PQgetResult(s->conn);

		if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
			ds_pq_report(s->conn, res, DS_CONN_SOURCE, "replication");
		if (res)
			PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the replication stream ended unexpectedly")));
	}
	ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "receiving the replication stream");
	return -1;					/* keep compiler quiet */
}

/*
 * Send a standby status update: everything up to flush is durable on the
 * target.  Unless forced, only when the position moved or the interval
 * passed.
 */
void
ds_stream_feedback(DsStream *s, XLogRecPtr flush, bool force)
{
	TimestampTz now = GetCurrentTimestamp();
	StringInfoData buf;
	XLogRecPtr	write = Max(s->received_lsn, flush);
	int			rc;

	if (!s->streaming)
		return;
	if (!force && flush == s->flushed_lsn &&
		!TimestampDifferenceExceeds(s->last_feedback, now, DS_FEEDBACK_INTERVAL_MS))
		return;

	initStringInfo(&buf);
	pq_sendbyte(&buf, 'r');
	pq_sendint64(&buf, write);
	pq_sendint64(&buf, flush);
	pq_sendint64(&buf, flush);
	pq_sendint64(&buf, now);
	pq_sendbyte(&buf, 0);
	rc = PQputCopyData(s->conn, buf.data, buf.len);
	pfree(buf.data);
	if (rc < 0 || PQflush(s->conn) < 0)
		ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "sending feedback");
	if (rc == 0)
		return;					/* output buffer full: try again later */
	s->flushed_lsn = flush;
	s->last_feedback = now;
}
