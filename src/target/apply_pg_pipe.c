/*-------------------------------------------------------------------------
 *
 * apply_pg_pipe.c
 *		The PostgreSQL target's pipeline: commands and batches in flight,
 *		their results, and when committed batches are durable.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_pipe.c
 *
 * NOTES
 *		Every command goes out through ds_pg_sent_use (the ds_pg_send_*
 *		functions wrap it), which counts it as pending and queues a
 *		PgPending saying what it is about (for the ERROR if it fails) and
 *		how its result is read: not at all, as the target's WAL positions,
 *		as conflicts to count (the plain path) or as conflicts to report
 *		(the checking path).  Results are read in the order the commands
 *		went out, whenever some have arrived (ds_pg_drain), never by
 *		waiting for one command; the queue is a ring that grows as needed.
 *		What was queued goes out every 256 commands and every
 *		DS_FLUSH_AFTER_BYTES of Bind messages, reading results meanwhile, so
 *		that neither libpq's buffers nor the target's nor the conflict
 *		records waiting for results grow without bound while a large
 *		transaction streams through.
 *
 *		Batches in flight (see "Batches" in apply_pg.c): Syncs are numbered
 *		as they are sent and as their results are read, and a batch is
 *		confirmed (on_committed) once the Sync that ended it is read.  With
 *		synchronous_commit off a confirmed batch is not durable yet: its
 *		source end LSN waits in a second ring until the target's flush
 *		position passes the WAL insert position read after its commit (by
 *		the next batch's progress statement, or by durable()).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class_d.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "pgconn.h"
#include "sendlimit.h"
#include "target/apply.h"
#include "target/apply_pg_int.h"
#include "worker/conflict.h"

/* ---------------------------------------------------------------------
 * Results
 * ---------------------------------------------------------------------
 */
static PgPending *
pop_pending(PgTarget *pt)
{
	static PgPending none = {"a command", {InvalidXLogRecPtr, 0, InvalidXLogRecPtr, 0}, USE_NONE};
	PgPending  *p;

	if (pt->pending <= 0)
		return &none;
	p = &pt->what[pt->what_head];
	pt->what_head = (pt->what_head + 1) % pt->what_cap;
	return p;
}

static void
push_pending(PgTarget *pt, const char *what, PgResultUse use, int expected,
			 DsConflictHit *hit, DsConflictHit **hits)
{
	PgPending  *p;

	/* pending was already incremented by the caller */
	if (pt->pending > pt->what_cap)
	{
		int			newcap = pt->what_cap * 2;
		PgPending  *n = MemoryContextAlloc(pt->cxt, sizeof(PgPending) * newcap);
		int			i;

		for (i = 0; i < pt->pending - 1; i++)
			n[i] = pt->what[(pt->what_head + i) % pt->what_cap];
		pfree(pt->what);
		pt->what = n;
		pt->what_cap = newcap;
		pt->what_head = 0;
	}
	p = &pt->what[(pt->what_head + pt->pending - 1) % pt->what_cap];
	p->what = what;
	if (pt->sending)
		p->ident = *pt->sending;
	else
		p->ident.first_lsn = InvalidXLogRecPtr;
	p->use = use;
	p->expected = expected;
	p->hit = hit;
	p->hits = hits;
	p->bound = pt->wait_pushed;
	p->rel = NULL;
}

static XLogRecPtr
lsn_value(PGresult *res, int col)
{
	return DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(PQgetvalue(res, 0, col))));
}

/* the target flushed its WAL up to flush: release what that makes durable */
static void
target_flushed(PgTarget *pt, XLogRecPtr flush)
{
	while (pt->wait_count > 0)
	{
		int			i = pt->wait_head;

		if (XLogRecPtrIsInvalid(pt->wait_tgt[i]) || pt->wait_tgt[i] > flush)
			break;
		pt->durable_src = Max(pt->durable_src, pt->wait_src[i]);
		pt->wait_head = (i + 1) % pt->wait_cap;
		pt->wait_count--;
		pt->wait_popped++;
	}
}

/* a committed batch whose durability is not known yet */
void
ds_pg_wait_push(PgTarget *pt, XLogRecPtr src)
{
	if (pt->wait_count == pt->wait_cap)
	{
		int			newcap = pt->wait_cap * 2;
		XLogRecPtr *s = MemoryContextAlloc(pt->cxt, sizeof(XLogRecPtr) * newcap);
		XLogRecPtr *t = MemoryContextAlloc(pt->cxt, sizeof(XLogRecPtr) * newcap);
		int			i;

		for (i = 0; i < pt->wait_count; i++)
		{
			s[i] = pt->wait_src[(pt->wait_head + i) % pt->wait_cap];
			t[i] = pt->wait_tgt[(pt->wait_head + i) % pt->wait_cap];
		}
		pfree(pt->wait_src);
		pfree(pt->wait_tgt);
		pt->wait_src = s;
		pt->wait_tgt = t;
		pt->wait_cap = newcap;
		pt->wait_head = 0;
	}
	pt->wait_src[(pt->wait_head + pt->wait_count) % pt->wait_cap] = src;
	pt->wait_tgt[(pt->wait_head + pt->wait_count) % pt->wait_cap] = InvalidXLogRecPtr;
	pt->wait_count++;
	pt->wait_pushed++;
}

/*
 * The target's WAL insert position, read after the commits pushed before
 * bound: it is past their commit records, so once the target has flushed
 * up to it they are durable.  It is read by the next batch's progress
 * statement (which runs after the commit before it), or by durable() when
 * the stream is quiet.
 */
static void
wait_set_target(PgTarget *pt, uint64 bound, XLogRecPtr tgt)
{
	int			i;

	for (i = 0; i < pt->wait_count && pt->wait_popped + i < bound; i++)
	{
		int			j = (pt->wait_head + i) % pt->wait_cap;

		if (XLogRecPtrIsInvalid(pt->wait_tgt[j]))
			pt->wait_tgt[j] = tgt;
	}
}

/* what a command's result says: positions, counted or checked conflicts */
static void
read_result(PgTarget *pt, PgPending *p, PGresult *res)
{
	int			n = PQntuples(res);
	int			i;

	switch (p->use)
	{
		case USE_NONE:
			break;
		case USE_WAL_POS:
			wait_set_target(pt, p->bound, lsn_value(res, 0));
			target_flushed(pt, lsn_value(res, 1));
			break;
		case USE_XMAX_SET:
		case USE_XMAX_ZERO:
			for (i = 0; i < n; i++)
				if ((strcmp(PQgetvalue(res, i, 0), "0") == 0) == (p->use == USE_XMAX_ZERO))
					pt->base.counted_conflicts++;
			break;
		case USE_MISSED:
			{
				int			done = atoi(PQcmdTuples(res));

				if (done < p->expected)
					pt->base.counted_conflicts += p->expected - done;
				break;
			}
		case USE_CHECK:
			{
				DsConflictHit *hit = p->hit;

				p->hit = NULL;
				if (n != 1)
					elog(ERROR, "conflict check of table %s returned %d rows", hit->rel->target_qname, n);
				if (strcmp(PQgetvalue(res, 0, 0), "none") == 0)
				{
					pfree(hit);
					break;
				}
				hit->kind = ds_conflict_kind_name(PQgetvalue(res, 0, 0));
				hit->applied = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
				hit->target_row = PQgetisnull(res, 0, 2) ? NULL :
					MemoryContextStrdup(GetMemoryChunkContext(hit), PQgetvalue(res, 0, 2));
				pt->base.on_conflict(hit, pt->base.on_conflict_arg);
				break;
			}
		case USE_CHECK_RUN:
			{
				DsConflictHit **hits = p->hits;

				p->hits = NULL;
				for (i = 0; i < n; i++)
				{
					int			r = atoi(PQgetvalue(res, i, 0)) - 1;
					DsConflictHit *hit;

					if (r < 0 || r >= p->expected || hits[r] == NULL)
						elog(ERROR, "conflict check of a run returned row %d of %d", r + 1, p->expected);
					hit = hits[r];
					hits[r] = NULL;
					hit->kind = ds_conflict_kind_name(PQgetvalue(res, i, 1));
					hit->applied = strcmp(PQgetvalue(res, i, 2), "t") == 0;
					hit->target_row = PQgetisnull(res, i, 3) ? NULL :
						MemoryContextStrdup(GetMemoryChunkContext(hit), PQgetvalue(res, i, 3));
					pt->base.on_conflict(hit, pt->base.on_conflict_arg);
				}
				for (i = 0; i < p->expected; i++)
					if (hits[i])
						pfree(hits[i]);
				pfree(hits);
				break;
			}
		case USE_RELKIND:
			/* no such table: as a plain one, its statements say what is wrong */
			p->rel->relkind = n == 1 ? PQgetvalue(res, 0, 0)[0] : RELKIND_RELATION;
			break;
	}
}

/* the batches whose last Sync has come back are committed */
static void
confirm_batches(PgTarget *pt)
{
	while (pt->fly_count > 0 && pt->fly[pt->fly_head].sync <= pt->syncs_read)
	{
		XLogRecPtr	lsn = pt->fly[pt->fly_head].lsn;
		uint64		batch_no = pt->fly[pt->fly_head].batch_no;

		pt->fly_head = (pt->fly_head + 1) % lengthof(pt->fly);
		pt->fly_count--;
		if (!pt->async_commit)
			pt->durable_src = Max(pt->durable_src, lsn);
		if (batch_no > 0 && pt->base.on_committed)
			pt->base.on_committed(pt->base.on_committed_arg, batch_no);
	}
}

/*
 * A commit sent: it is confirmed once the Sync just sent comes back.  The
 * caller keeps the batches in flight within DS_MAX_INFLIGHT (see PgTarget).
 */
void
ds_pg_fly_push(PgTarget *pt, uint64 batch_no, XLogRecPtr lsn)
{
	int			i = (pt->fly_head + pt->fly_count) % lengthof(pt->fly);

	if (pt->fly_count == lengthof(pt->fly))
		elog(ERROR, "more than %d batches in flight", DS_MAX_INFLIGHT);
	pt->fly[i].sync = pt->syncs_sent;
	pt->fly[i].batch_no = batch_no;
	pt->fly[i].lsn = lsn;
	pt->fly_count++;
}

/* for the CONTEXT line of a failed command: the changes it carried */
typedef struct IdentContext
{
	PgIdent		ident;
	const char *pipeline;
} IdentContext;

static void
ident_error_context(void *arg)
{
	IdentContext *ic = arg;
	PgIdent    *id = &ic->ident;

	if (XLogRecPtrIsInvalid(id->first_lsn))
		errcontext("pipeline \"%s\"", ic->pipeline);
	else if (id->first_lsn == id->last_lsn && id->first_seq == id->last_seq)
		errcontext("change %d of the source transaction committed at %X/%X, pipeline \"%s\"",
				   id->first_seq, LSN_FORMAT_ARGS(id->first_lsn), ic->pipeline);
	else if (id->first_lsn == id->last_lsn)
		errcontext("changes %d to %d of the source transaction committed at %X/%X, pipeline \"%s\"",
				   id->first_seq, id->last_seq, LSN_FORMAT_ARGS(id->first_lsn), ic->pipeline);
	else
		errcontext("changes from change %d of the source transaction committed at %X/%X to change %d of the one committed at %X/%X, pipeline \"%s\"",
				   id->first_seq, LSN_FORMAT_ARGS(id->first_lsn),
				   id->last_seq, LSN_FORMAT_ARGS(id->last_lsn), ic->pipeline);
}

/*
 * Read every result that has arrived, without waiting.  An error result
 * raises an ERROR naming what the command was about.
 */
void
ds_pg_drain(PgTarget *pt)
{
	int			nulls = 0;

	if (PQconsumeInput(pt->conn) == 0)
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "receiving results");

	while (pt->pending > 0 || pt->syncs > 0)
	{
		PGresult   *res;

		if (PQisBusy(pt->conn))
			break;
		res = PQgetResult(pt->conn);
		if (res == NULL)
		{
			/* end of one command's results; two in a row: nothing more */
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(res))
		{
			case PGRES_PIPELINE_SYNC:
				pt->syncs--;
				pt->syncs_read++;
				PQclear(res);
				confirm_batches(pt);
				break;
			case PGRES_COMMAND_OK:
			case PGRES_TUPLES_OK:
				{
					PgPending  *p = pop_pending(pt);

					pt->pending--;
					read_result(pt, p, res);
					PQclear(res);
					break;
				}
			default:
				{
					PgPending  *p = pop_pending(pt);
					char		what[NAMEDATALEN * 3];
					IdentContext ic;
					ErrorContextCallback errcallback;

					strlcpy(what, p->what, sizeof(what));
					ic.ident = p->ident;
					ic.pipeline = pt->base.cfg->name;
					errcallback.callback = ident_error_context;
					errcallback.arg = &ic;
					errcallback.previous = error_context_stack;
					error_context_stack = &errcallback;
					pt->pending--;
					ds_pq_report(pt->conn, res, DS_CONN_TARGET, what);
					error_context_stack = errcallback.previous;
				}
		}
	}
}

/* Flush what was queued, reading results meanwhile so neither side stalls. */
void
ds_pg_flush_and_drain(PgTarget *pt)
{
	pt->unflushed = 0;
	pt->unflushed_bytes = 0;
	for (;;)
	{
		int			rc = PQflush(pt->conn);

		if (rc == 0)
			break;
		if (rc < 0)
			ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending");
		ds_pq_wait(pt->conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, -1);
		ds_pg_drain(pt);
	}
	ds_pg_drain(pt);
}

/* Wait until every command sent so far has its result. */
void
ds_pg_wait_all(PgTarget *pt)
{
	ds_pg_flush_and_drain(pt);
	while (pt->pending > 0 || pt->syncs > 0)
	{
		ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
		ds_pg_drain(pt);
	}
}

/* ---------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------
 */

/* a command was handed to libpq (ok: it took it); its result is to come */
void
ds_pg_sent_use(PgTarget *pt, int ok, const char *what, PgResultUse use,
			   int expected, DsConflictHit *hit, DsConflictHit **hits)
{
	if (!ok)
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, what);
	if (pt->copy_rel != NULL)
		elog(ERROR, "a statement was sent while a COPY was open");
	pt->pending++;
	push_pending(pt, what, use, expected, hit, hits);
	/*
	 * libpq sends by itself once 64 kB are queued; push out and read back
	 * every so often, so that neither its buffers nor the target's grow
	 * without bound while a large transaction streams through.
	 */
	if (++pt->unflushed >= 256)
	{
		pt->unflushed = 0;
		ds_pg_flush_and_drain(pt);
	}
}

static void
sent(PgTarget *pt, int ok, const char *what)
{
	ds_pg_sent_use(pt, ok, what, USE_NONE, 0, NULL, NULL);
}

void
ds_pg_send_sql(PgTarget *pt, const char *sql, const char *what)
{
	sent(pt, PQsendQueryParams(pt->conn, sql, 0, NULL, NULL, NULL, NULL, 0), what);
}

void
ds_pg_send_sql_use(PgTarget *pt, const char *sql, const char *what,
				   PgResultUse use)
{
	ds_pg_sent_use(pt, PQsendQueryParams(pt->conn, sql, 0, NULL, NULL, NULL, NULL, 0), what,
				   use, 0, NULL, NULL);
}

void
ds_pg_send_prepare(PgTarget *pt, const char *name, const char *sql,
				   const char *what)
{
	sent(pt, PQsendPrepare(pt->conn, name, sql, 0, NULL), what);
}

/*
 * Send a prepared statement of rel's changes with text parameters.  Its
 * Bind message must fit in one protocol message (sendlimit.c); what is
 * queued goes out every DS_FLUSH_AFTER_BYTES too, so that libpq's buffer
 * and the conflict records waiting for results stay bounded.
 */
void
ds_pg_send_prepared(PgTarget *pt, DsRelation *rel, const char *name, int n,
					const char *const *values, const char *what,
					PgResultUse use, int expected, DsConflictHit *hit,
					DsConflictHit **hits)
{
	Size		bytes = ds_bind_bytes(name, n, values);

	if (bytes > ds_statement_limit())
		ds_statement_too_large(pt->base.cfg, rel,
							   pt->cur_change && pt->cur_change->rel == rel ? pt->cur_change : NULL,
							   bytes);
	pt->unflushed_bytes += bytes;
	ds_pg_sent_use(pt, PQsendQueryPrepared(pt->conn, name, n, values, NULL, NULL, 0), what,
				   use, expected, hit, hits);
	if (pt->unflushed_bytes >= DS_FLUSH_AFTER_BYTES)
		ds_pg_flush_and_drain(pt);
}

void
ds_pg_send_exec(PgTarget *pt, DsRelation *rel, const char *name, int n,
				const char *const *values, const char *what)
{
	ds_pg_send_prepared(pt, rel, name, n, values, what, USE_NONE, 0, NULL, NULL);
}

void
ds_pg_send_exec_use(PgTarget *pt, DsRelation *rel, const char *name, int n,
					const char *const *values, const char *what,
					PgResultUse use, int expected, DsConflictHit *hit)
{
	ds_pg_send_prepared(pt, rel, name, n, values, what, use, expected, hit, NULL);
}

void
ds_pg_enter_pipeline(PgTarget *pt)
{
	if (pt->in_pipeline)
		return;
	if (!PQenterPipelineMode(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "entering pipeline mode");
	pt->in_pipeline = true;
}

void
ds_pg_leave_pipeline(PgTarget *pt)
{
	if (!pt->in_pipeline)
		return;
	if (!PQpipelineSync(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a sync");
	pt->syncs++;
	pt->syncs_sent++;
	ds_pg_wait_all(pt);
	if (!PQexitPipelineMode(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "leaving pipeline mode");
	pt->in_pipeline = false;
}

void
ds_pg_send_sync(PgTarget *pt)
{
	if (!PQpipelineSync(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a sync");
	pt->syncs++;
	pt->syncs_sent++;
}

/*
 * Does an INSERT into rel's target table return xmax?  Only a plain table's
 * does; a partitioned or foreign table's upserts tell inserted from
 * updated rows another way (partitioned.c).  Asked once a connection, in
 * the batch's pipeline (a round trip).
 */
bool
ds_pg_target_returns_xmax(PgTarget *pt, DsRelation *rel, PgRel *pr)
{
	const char *vals[1];

	if (pr->relkind == '\0')
	{
		Assert(pt->copy_rel == NULL);
		ds_pg_enter_pipeline(pt);
		vals[0] = rel->target_qname;
		if (!PQsendQueryParams(pt->conn,
							   "SELECT c.relkind FROM pg_catalog.pg_class c"
							   " WHERE c.oid = pg_catalog.to_regclass($1)",
							   1, NULL, vals, NULL, NULL, 0) ||
			!PQsendFlushRequest(pt->conn))
			ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, pr->what);
		pt->pending++;
		push_pending(pt, pr->what, USE_RELKIND, 0, NULL, NULL);
		pt->what[(pt->what_head + pt->pending - 1) % pt->what_cap].rel = pr;
		ds_pg_flush_and_drain(pt);
		while (pr->relkind == '\0')
		{
			ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
			ds_pg_drain(pt);
		}
	}
	return pr->relkind == RELKIND_RELATION;
}
