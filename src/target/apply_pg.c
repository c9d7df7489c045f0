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
 *		Progress lives on the target in public.datasync_progress, one row
 *		per (pipeline, source, incarnation, relid): relid 0 is the stream
 *		(end LSN of the last applied source transaction), other rows the
 *		LSN of a table's copy.  Rows of other sources and of an older
 *		pipeline of the same name are not ours (progress.c).
 *
 *		Changes are applied as "source wins": an INSERT or full UPDATE is
 *		an upsert on the key, a DELETE of a missing row deletes nothing.
 *		The session runs with session_replication_role = replica when the
 *		target role may set it, so ordinary triggers and foreign keys do
 *		not fire (as with native logical replication) and ENABLE ALWAYS
 *		triggers do.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class_d.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "access.h"
#include "target/apply.h"
#include "worker/conflict.h"
#include "copytext.h"
#include "target/partitioned.h"
#include "pgconn.h"
#include "target/progress.h"
#include "sendlimit.h"

typedef struct PgUpdateVariant
{
	char	   *mask;			/* '1' for each column the UPDATE sets */
	char		name[NAMEDATALEN];
} PgUpdateVariant;

/*
 * A statement of the conflict-checking path: one per change kind, set of
 * columns sent and old-row shape.  Parameters are numbered as the SQL text
 * is built: psrc says where each value comes from ('n' the new row, 'o'
 * the old row, 'c' the source commit time), pcol which column.
 */
typedef struct PgCheckStmt
{
	char		kind;			/* 'i', 'u', 'd' */
	char	   *mask;			/* columns of the new row sent; NULL: all */
	bool		oldfull;		/* the old row is whole */
	bool		oldkey;			/* the key is read from the old row */
	bool		moves;			/* an update that changes the key */
	char		name[NAMEDATALEN];
	int			nparams;
	char	   *psrc;
	int		   *pcol;
} PgCheckStmt;

/* how the result of a pending command is read (see drain) */
typedef enum PgResultUse
{
	USE_NONE,
	USE_WAL_POS,				/* WAL insert and flush positions */
	USE_XMAX_SET,				/* rows whose xmax is set: insert_exists */
	USE_XMAX_ZERO,				/* rows newly inserted: update_missing */
	USE_MISSED,					/* expected - rows affected: *_missing */
	USE_CHECK,					/* one row: kind, applied, target row */
	USE_CHECK_RUN,				/* a row per conflict: n, kind, applied, target row */
	USE_RELKIND					/* the target table's relkind (PgRel.relkind) */
} PgResultUse;

typedef struct PgPending
{
	const char *what;
	PgResultUse use;
	int			expected;		/* USE_MISSED */
	DsConflictHit *hit;			/* USE_CHECK */
	DsConflictHit **hits;		/* USE_CHECK_RUN: expected of them */
	uint64		bound;			/* USE_WAL_POS: the commits sent before it */
	struct PgRel *rel;			/* USE_RELKIND */
} PgPending;

/* per-relation statements; reset when the relation's version changes */
typedef struct PgRel
{
	uint32		version;
	int			conn_gen;
	bool		have_upsert;
	bool		have_delete;
	char		upsert_name[NAMEDATALEN];
	char		delete_name[NAMEDATALEN];
	bool		have_multi;
	char		multi_name[NAMEDATALEN];	/* multi-row INSERT of a full run */
	bool		have_multi_delete;
	char		multi_delete_name[NAMEDATALEN]; /* DELETE of a full run of keys */
	List	   *updates;		/* of PgUpdateVariant */
	bool		have_upsert_u;	/* the upserts of whole-row updates */
	char		upsert_u_name[NAMEDATALEN];
	bool		have_multi_u;
	char		multi_u_name[NAMEDATALEN];
	List	   *checks;			/* of PgCheckStmt */
	bool		have_check_run;
	char		check_run_name[NAMEDATALEN];	/* inserts of a full check run */
	char		relkind;		/* of the target table; '\0': not asked yet */
	bool		copy_off;		/* COPY failed here, not on a key: never again */
	uint64		copy_skip_batch;	/* a key stopped a COPY in this batch */
	char	   *what;			/* "applying changes to table ..." */
} PgRel;

typedef struct PgTarget
{
	DsApplyTarget base;
	PGconn	   *conn;
	int			conn_gen;		/* bumped on every connect */
	bool		in_pipeline;
	bool		in_xact;
	bool		explicit_xact;	/* BEGIN was sent (copies); else implicit */
	bool		in_copy;
	bool		have_progress_stmt;
	int			pending;		/* commands whose result has not come */
	int			syncs;			/* Syncs whose result has not come */
	int			unflushed;		/* commands queued since the last flush */
	Size		unflushed_bytes;	/* and their bytes */
	DsChange   *cur_change;		/* the change being applied, for errors */
	/* each pending command, oldest first: what for errors, how to read it */
	PgPending  *what;
	int			what_cap;
	int			what_head;
	MemoryContext cxt;
	char		incarnation[32];
	char	   *source;			/* this source database (progress.c) */

	/*
	 * Consecutive changes of one kind to one table, sent as one statement:
	 * inserts and whole-row updates as a multi-row upsert ('u': run_n rows
	 * of natts values), deletes by key as one DELETE ('d': run_n rows of
	 * nkeys values).
	 */
	DsRelation *run_rel;
	char		run_kind;
	uint32		run_version;
	int			run_n;
	Size		run_bytes;		/* of its Bind message so far */
	bool		run_full;		/* ended by its bytes (see sendlimit.c) */
	int			run_cap;
	char	  **run_vals;		/* in runcxt */
	DsConflictHit **run_hits;	/* check runs ('c'): a record per row */
	MemoryContext runcxt;

	/*
	 * A long run of inserts goes on as COPY (see "COPY runs"): copy_rel is
	 * the table whose COPY is open, copy_buf the rows of its open chunk in
	 * COPY text (kept until the target confirmed them), copy_sent how much
	 * of it libpq has.  streak_rows counts the rows of the current run of
	 * inserts into streak_rel sent so far; batch_no numbers the batches.
	 */
	DsRelation *copy_rel;
	StringInfoData copy_buf;
	int			copy_sent;
	StringInfoData table_copy;	/* rows of a table copy not yet sent */
	int			copy_rows;
	MemoryContext copycxt;
	DsRelation *streak_rel;
	int64		streak_rows;
	uint64		batch_no;
	MemoryContext hitcxt;		/* DsConflictHits of the checking path */

	/*
	 * With synchronous_commit off (the default, as for native
	 * subscriptions) a commit returns before the target flushed it.  Each
	 * batch's source end LSN waits here with the target's WAL position
	 * after its commit until the target's flush position passes it; only
	 * then may the source slot be told (durable()).
	 */
	bool		async_commit;
	bool		sync_this_xact; /* a copy: committed synchronously */
	XLogRecPtr *wait_src;		/* ring of source end LSNs */
	XLogRecPtr *wait_tgt;		/* and the target WAL position after each */
	int			wait_cap;
	int			wait_head;
	int			wait_count;
	uint64		wait_pushed;	/* commits pushed, and released, so far */
	uint64		wait_popped;
	XLogRecPtr	durable_src;	/* highest source end LSN durable on target */

	/*
	 * Batches committed without waiting (see pg_commit), oldest first: the
	 * number of the Sync that ends each and its source end LSN.  Syncs are
	 * numbered as they are sent (syncs_sent) and as their results are read
	 * (syncs_read).  last_lsn is the end LSN of the newest batch sent: the
	 * next batch checks that it committed.
	 */
	uint64		syncs_sent;
	uint64		syncs_read;
	struct
	{
		uint64		sync;
		XLogRecPtr	lsn;
	}			fly[DS_MAX_INFLIGHT + 1];
	int			fly_head;
	int			fly_count;
	XLogRecPtr	last_lsn;
	bool		have_guarded_stmt;
} PgTarget;

static void flush_run(PgTarget *pt);
static void add_to_run(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup,
					   char kind, DsConflictHit *hit);
static bool copy_wanted(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup);
static bool copy_open(PgTarget *pt, DsRelation *rel);
static void copy_add(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup);
static void copy_push(PgTarget *pt);
static void copy_end(PgTarget *pt);
static void streak_add(PgTarget *pt, DsRelation *rel, int64 n);
static void flush_check_run(PgTarget *pt, DsRelation *rel, PgRel *pr);
static bool is_key_att(DsRelation *rel, int att);
static void prepare_delete(PgTarget *pt, DsRelation *rel, PgRel *pr);
static const char *colval(LogicalRepTupleData *tup, int i);

static PgPending *
pop_pending(PgTarget *pt)
{
	static PgPending none = {"a command", USE_NONE, 0, NULL};
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
static void
wait_push(PgTarget *pt, XLogRecPtr src)
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

		pt->fly_head = (pt->fly_head + 1) % lengthof(pt->fly);
		pt->fly_count--;
		if (!pt->async_commit)
			pt->durable_src = Max(pt->durable_src, lsn);
		if (pt->base.on_committed)
			pt->base.on_committed(pt->base.on_committed_arg, lsn);
	}
}

/*
 * A batch sent: it is committed once the Sync just sent comes back.  There
 * is room: commit() leaves at most DS_MAX_INFLIGHT, then pushes one.
 */
static void
fly_push(PgTarget *pt, XLogRecPtr lsn)
{
	int			i = (pt->fly_head + pt->fly_count) % lengthof(pt->fly);

	if (pt->fly_count == lengthof(pt->fly))
		elog(ERROR, "too many batches in flight");
	pt->fly[i].sync = pt->syncs_sent;
	pt->fly[i].lsn = lsn;
	pt->fly_count++;
}

/*
 * Read every result that has arrived, without waiting.  An error result
 * raises an ERROR naming what the command was about.
 */
static void
drain(PgTarget *pt)
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
					char		what[NAMEDATALEN * 3];

					strlcpy(what, pop_pending(pt)->what, sizeof(what));
					pt->pending--;
					ds_pq_report(pt->conn, res, DS_CONN_TARGET, what);
				}
		}
	}
}

/* Flush what was queued, reading results meanwhile so neither side stalls. */
static void
flush_and_drain(PgTarget *pt)
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
		drain(pt);
	}
	drain(pt);
}

/* Wait until every command sent so far has its result. */
static void
wait_all(PgTarget *pt)
{
	flush_and_drain(pt);
	while (pt->pending > 0 || pt->syncs > 0)
	{
		ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
		drain(pt);
	}
}

static void
sent_use(PgTarget *pt, int ok, const char *what, PgResultUse use, int expected,
		 DsConflictHit *hit, DsConflictHit **hits)
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
		flush_and_drain(pt);
	}
}

static void
sent(PgTarget *pt, int ok, const char *what)
{
	sent_use(pt, ok, what, USE_NONE, 0, NULL, NULL);
}

static void
send_sql(PgTarget *pt, const char *sql, const char *what)
{
	sent(pt, PQsendQueryParams(pt->conn, sql, 0, NULL, NULL, NULL, NULL, 0), what);
}

static void
send_sql_use(PgTarget *pt, const char *sql, const char *what, PgResultUse use)
{
	sent_use(pt, PQsendQueryParams(pt->conn, sql, 0, NULL, NULL, NULL, NULL, 0), what,
			 use, 0, NULL, NULL);
}

static void
send_prepare(PgTarget *pt, const char *name, const char *sql, const char *what)
{
	sent(pt, PQsendPrepare(pt->conn, name, sql, 0, NULL), what);
}

/*
 * Send a prepared statement of rel's changes with text parameters.  Its
 * Bind message must fit in one protocol message (sendlimit.c); what is
 * queued goes out every DS_FLUSH_AFTER_BYTES too, so that libpq's buffer
 * and the conflict records waiting for results stay bounded.
 */
static void
send_prepared(PgTarget *pt, DsRelation *rel, const char *name, int n,
			  const char *const *values, const char *what, PgResultUse use,
			  int expected, DsConflictHit *hit, DsConflictHit **hits)
{
	Size		bytes = ds_bind_bytes(name, n, values);

	if (bytes > ds_statement_limit())
		ds_statement_too_large(pt->base.cfg, rel,
							   pt->cur_change && pt->cur_change->rel == rel ? pt->cur_change : NULL,
							   bytes);
	pt->unflushed_bytes += bytes;
	sent_use(pt, PQsendQueryPrepared(pt->conn, name, n, values, NULL, NULL, 0), what,
			 use, expected, hit, hits);
	if (pt->unflushed_bytes >= DS_FLUSH_AFTER_BYTES)
		flush_and_drain(pt);
}

static void
send_exec(PgTarget *pt, DsRelation *rel, const char *name, int n,
		  const char *const *values, const char *what)
{
	send_prepared(pt, rel, name, n, values, what, USE_NONE, 0, NULL, NULL);
}

static void
send_exec_use(PgTarget *pt, DsRelation *rel, const char *name, int n,
			  const char *const *values, const char *what, PgResultUse use,
			  int expected, DsConflictHit *hit)
{
	send_prepared(pt, rel, name, n, values, what, use, expected, hit, NULL);
}

static void
enter_pipeline(PgTarget *pt)
{
	if (pt->in_pipeline)
		return;
	if (!PQenterPipelineMode(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "entering pipeline mode");
	pt->in_pipeline = true;
}

static void
leave_pipeline(PgTarget *pt)
{
	if (!pt->in_pipeline)
		return;
	if (!PQpipelineSync(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a sync");
	pt->syncs++;
	pt->syncs_sent++;
	wait_all(pt);
	if (!PQexitPipelineMode(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "leaving pipeline mode");
	pt->in_pipeline = false;
}

/* ---------------------------------------------------------------------
 * Connection and progress
 * ---------------------------------------------------------------------
 */
static void
pg_connect(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;
	DsPipelineConfig *cfg = t->cfg;
	char	   *password = NULL;
	char		appname[NAMEDATALEN];
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
	snprintf(appname, sizeof(appname), "datasync %s", cfg->name);
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

	leave_pipeline(pt);
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
static void
send_progress(PgTarget *pt, Oid relid, XLogRecPtr lsn)
{
	bool		guarded = (relid == InvalidOid && pt->fly_count > 0);
	const char *name = guarded ? "ds_progress_after" : "ds_progress";
	const char *vals[5];
	char		lsnbuf[32];
	char		lastbuf[32];

	if (!guarded && !pt->have_progress_stmt)
	{
		send_prepare(pt, name,
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
		send_prepare(pt, name,
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
	sent_use(pt, PQsendQueryPrepared(pt->conn, name, 5, vals, NULL, NULL, 0),
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
 * explicit transaction instead (see pg_copy_begin).
 */
static void
pg_begin(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->in_xact)
		return;
	enter_pipeline(pt);
	pt->in_xact = true;
	pt->explicit_xact = false;
}

static void
send_sync(PgTarget *pt)
{
	if (!PQpipelineSync(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a sync");
	pt->syncs++;
	pt->syncs_sent++;
}

/*
 * Commit the open transaction; with a valid end_lsn also record it as the
 * stream's progress in the same transaction.  With wait (and always for a
 * copy), returns after the target confirmed the commit; else once it is
 * sent, with at most DS_MAX_INFLIGHT batches unconfirmed.
 */
static void
pg_commit(DsApplyTarget *t, XLogRecPtr end_lsn, bool wait)
{
	PgTarget   *pt = (PgTarget *) t;

	if (!pt->in_xact)
		pg_begin(t);
	flush_run(pt);				/* ends an open COPY */
	enter_pipeline(pt);
	if (!XLogRecPtrIsInvalid(end_lsn))
		send_progress(pt, InvalidOid, end_lsn);	/* guarded behind a batch in flight */
	if (pt->explicit_xact)
		send_sql(pt, "COMMIT", "committing a batch");
	send_sync(pt);				/* commits an implicit transaction */
	/* its WAL position comes with the next progress statement */
	if (pt->async_commit && !pt->sync_this_xact && !XLogRecPtrIsInvalid(end_lsn))
		wait_push(pt, end_lsn);
	/* confirmed by the last Sync sent */
	fly_push(pt, end_lsn);
	if (!XLogRecPtrIsInvalid(end_lsn))
		pt->last_lsn = end_lsn;
	pt->in_xact = false;
	pt->explicit_xact = false;
	pt->streak_rel = NULL;
	pt->batch_no++;
	if (wait || pt->sync_this_xact || XLogRecPtrIsInvalid(end_lsn))
	{
		wait_all(pt);
		if (pt->sync_this_xact && !XLogRecPtrIsInvalid(end_lsn))
			pt->durable_src = Max(pt->durable_src, end_lsn);
	}
	else
	{
		flush_and_drain(pt);
		while (pt->fly_count > DS_MAX_INFLIGHT)
		{
			ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
			drain(pt);
		}
	}
	pt->sync_this_xact = false;
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
	flush_run(pt);
	if (pt->pending == 0 && pt->syncs == 0)
		return;
	if (pt->pending > 0 && !PQsendFlushRequest(pt->conn))
		ds_pq_report(pt->conn, NULL, DS_CONN_TARGET, "sending a flush request");
	flush_and_drain(pt);
	while (pt->pending > 0 || pt->syncs > 0)
	{
		ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
		drain(pt);
	}
}

static pgsocket
pg_socket(DsApplyTarget *t)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->conn == NULL)
		return PGINVALID_SOCKET;
	return PQsocket(pt->conn);
}

/* see PgTarget.async_commit */
static XLogRecPtr
pg_durable(DsApplyTarget *t, bool refresh, bool *all)
{
	PgTarget   *pt = (PgTarget *) t;

	if (refresh && pt->wait_count > 0 && !pt->in_xact)
	{
		enter_pipeline(pt);
		send_sql_use(pt, "SELECT pg_catalog.pg_current_wal_insert_lsn(), pg_catalog.pg_current_wal_flush_lsn()",
					 "reading the target's WAL position", USE_WAL_POS);
		send_sync(pt);
		wait_all(pt);
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
		copy_push(pt);
	else
		flush_and_drain(pt);	/* also sees the connection closing */
}

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */
static PgRel *
pg_rel(PgTarget *pt, DsRelation *rel)
{
	PgRel	   *pr = rel->target_private;

	if (pr == NULL)
	{
		pr = MemoryContextAllocZero(pt->cxt, sizeof(PgRel));
		pr->what = MemoryContextStrdup(pt->cxt, psprintf("applying changes to table %s", rel->target_qname));
		rel->target_private = pr;
		pr->version = rel->version;
		pr->conn_gen = pt->conn_gen;
	}
	if (pr->version != rel->version || pr->conn_gen != pt->conn_gen)
	{
		/* statements of an older version stay on the server; names differ */
		pr->version = rel->version;
		pr->conn_gen = pt->conn_gen;
		pr->have_upsert = pr->have_delete = pr->have_multi = false;
		pr->have_multi_delete = pr->have_upsert_u = pr->have_multi_u = false;
		pr->updates = NIL;
		pr->checks = NIL;
		pr->have_check_run = false;
		pr->relkind = '\0';
		pr->what = MemoryContextStrdup(pt->cxt, psprintf("applying changes to table %s", rel->target_qname));
	}
	return pr;
}

static bool
is_key_att(DsRelation *rel, int att)
{
	int			k;

	for (k = 0; k < rel->nkeys; k++)
		if (rel->keyatts[k] == att)
			return true;
	return false;
}

static void
append_key_match(StringInfo sql, DsRelation *rel, int firstparam)
{
	int			i;

	for (i = 0; i < rel->nkeys; i++)
		appendStringInfo(sql, "%s%s = $%d", i > 0 ? " AND " : "",
						 quote_identifier(rel->attnames[rel->keyatts[i]]),
						 firstparam + i);
}

/*
 * rows of a table without a key: the first one equal in every column,
 * by (tableoid, ctid): a ctid alone names a row in each partition
 */
static void
append_full_match(StringInfo sql, DsRelation *rel, int firstparam)
{
	int			i;

	appendStringInfo(sql, "(tableoid, ctid) = (SELECT tableoid, ctid FROM %s WHERE ", rel->target_qname);
	for (i = 0; i < rel->natts; i++)
	{
		const char *col = quote_identifier(rel->attnames[i]);

		if (rel->attcast[i])
			appendStringInfo(sql, "%s%s::text IS NOT DISTINCT FROM $%d::text",
							 i > 0 ? " AND " : "", col, firstparam + i);
		else
			appendStringInfo(sql, "%s%s IS NOT DISTINCT FROM $%d",
							 i > 0 ? " AND " : "", col, firstparam + i);
	}
	appendStringInfoString(sql, " LIMIT 1)");
}

/*
 * INSERT of nrows rows that, on a key the target already has, updates the
 * row instead (source wins).  Its RETURNING xmax counts conflicts: for
 * inserts (flavor 'i') a returned row with xmax set was there already and
 * differed (identical rows are left alone and return nothing); for
 * whole-row updates ('u') a row with xmax 0 was missing.  A table without
 * a key gets plain INSERTs.
 */
/* the stream's columns, or only its key columns, comma-separated */
static void
append_columns(StringInfo sql, DsRelation *rel, bool keys_only)
{
	int			n = keys_only ? rel->nkeys : rel->natts;
	int			i;

	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(rel->attnames[keys_only ? rel->keyatts[i] : i]));
}

/* INSERT INTO tbl AS t (columns) VALUES ($1, ...), ...: nrows rows */
static void
append_insert_rows(StringInfo sql, DsRelation *rel, int nrows)
{
	int			i;
	int			r;

	appendStringInfo(sql, "INSERT INTO %s AS t (", rel->target_qname);
	append_columns(sql, rel, false);
	appendStringInfoString(sql, ") VALUES ");
	for (r = 0; r < nrows; r++)
	{
		appendStringInfoString(sql, r > 0 ? ", (" : "(");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", r * rel->natts + i + 1);
		appendStringInfoChar(sql, ')');
	}
}

/*
 * ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ... over the columns
 * that are not key columns; DO NOTHING (and false) when there are none.
 * With differs, also the condition "t differs from EXCLUDED" there.
 */
static bool
append_on_conflict_update(StringInfo sql, DsRelation *rel, StringInfo differs)
{
	int			i;
	bool		any = false;

	appendStringInfoString(sql, " ON CONFLICT (");
	append_columns(sql, rel, true);
	if (rel->natts == rel->nkeys)
	{
		appendStringInfoString(sql, ") DO NOTHING");
		return false;
	}
	appendStringInfoString(sql, ") DO UPDATE SET ");
	for (i = 0; i < rel->natts; i++)
	{
		const char *col;
		const char *cast = rel->attcast[i] ? "::text" : "";

		if (is_key_att(rel, i))
			continue;
		col = quote_identifier(rel->attnames[i]);
		appendStringInfo(sql, "%s%s = EXCLUDED.%s", any ? ", " : "", col, col);
		if (differs)
			appendStringInfo(differs, "%st.%s%s IS DISTINCT FROM EXCLUDED.%s%s",
							 any ? " OR " : "", col, cast, col, cast);
		any = true;
	}
	return true;
}

/*
 * Does an INSERT into rel's target table return xmax?  Only a plain table's
 * does; a partitioned or foreign table's upserts tell inserted from
 * updated rows another way (partitioned.c).  Asked once a connection, in
 * the batch's pipeline (a round trip).
 */
static bool
target_returns_xmax(PgTarget *pt, DsRelation *rel, PgRel *pr)
{
	const char *vals[1];

	if (pr->relkind == '\0')
	{
		Assert(pt->copy_rel == NULL);
		enter_pipeline(pt);
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
		flush_and_drain(pt);
		while (pr->relkind == '\0')
		{
			ds_pq_wait(pt->conn, WL_SOCKET_READABLE, -1);
			drain(pt);
		}
	}
	return pr->relkind == RELKIND_RELATION;
}

static void
prepare_insert(PgTarget *pt, DsRelation *rel, PgRel *pr, int nrows, const char *name,
			   char flavor)
{
	StringInfoData sql;
	bool		xmax = rel->nkeys > 0 && target_returns_xmax(pt, rel, pr);

	initStringInfo(&sql);
	if (rel->nkeys > 0 && !xmax)
		ds_append_existing_keys(&sql, rel, nrows);
	append_insert_rows(&sql, rel, nrows);
	if (rel->nkeys > 0)
	{
		StringInfoData differs;

		initStringInfo(&differs);
		if (append_on_conflict_update(&sql, rel, &differs) && flavor == 'i')
			appendStringInfo(&sql, " WHERE %s", differs.data);
		if (xmax)
			appendStringInfoString(&sql, " RETURNING t.xmax");
		else
			ds_append_returning_existed(&sql, rel);
		pfree(differs.data);
	}
	send_prepare(pt, name, sql.data, pr->what);
	pfree(sql.data);
}

/* the single-row upsert of an insert ('i') or a whole-row update ('u') */
static const char *
upsert_name(PgTarget *pt, DsRelation *rel, PgRel *pr, char flavor)
{
	if (flavor == 'i')
	{
		if (!pr->have_upsert)
		{
			snprintf(pr->upsert_name, NAMEDATALEN, "ds_%u_%u_i", rel->remoteid, rel->version);
			prepare_insert(pt, rel, pr, 1, pr->upsert_name, 'i');
			pr->have_upsert = true;
		}
		return pr->upsert_name;
	}
	if (!pr->have_upsert_u)
	{
		snprintf(pr->upsert_u_name, NAMEDATALEN, "ds_%u_%u_iu", rel->remoteid, rel->version);
		prepare_insert(pt, rel, pr, 1, pr->upsert_u_name, 'u');
		pr->have_upsert_u = true;
	}
	return pr->upsert_u_name;
}

/* how an upsert's result counts conflicts */
static PgResultUse
upsert_use(DsRelation *rel, char flavor)
{
	if (rel->nkeys == 0)
		return USE_NONE;
	return flavor == 'i' ? USE_XMAX_SET : USE_XMAX_ZERO;
}

/* values a row of a run has: the whole row, or its key for deletes */
static int
run_width(DsRelation *rel, char kind)
{
	return kind == 'd' ? rel->nkeys : rel->natts;
}

/* rows a run statement takes: 64, fewer for wide rows (65535 params) */
static int
run_rows(DsRelation *rel, char kind)
{
	return Max(1, Min(64, 65535 / Max(run_width(rel, kind), 1)));
}

/* DELETE of nrows keys: WHERE key IN (...) */
static void
prepare_multi_delete(PgTarget *pt, DsRelation *rel, PgRel *pr, int nrows)
{
	StringInfoData sql;
	int			i;
	int			r;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE (", rel->target_qname);
	append_columns(&sql, rel, true);
	appendStringInfoString(&sql, ") IN (");
	for (r = 0; r < nrows; r++)
	{
		appendStringInfoString(&sql, r > 0 ? ", (" : "(");
		for (i = 0; i < rel->nkeys; i++)
			appendStringInfo(&sql, "%s$%d", i > 0 ? ", " : "", r * rel->nkeys + i + 1);
		appendStringInfoChar(&sql, ')');
	}
	appendStringInfoChar(&sql, ')');
	snprintf(pr->multi_delete_name, NAMEDATALEN, "ds_%u_%u_md", rel->remoteid, rel->version);
	send_prepare(pt, pr->multi_delete_name, sql.data, pr->what);
	pr->have_multi_delete = true;
	pfree(sql.data);
}

/*
 * Send the buffered run: full runs as one statement, a shorter remainder
 * row by row.  Called before anything else goes to the target, so changes
 * keep their order.
 */
static void
flush_run(PgTarget *pt)
{
	DsRelation *rel;
	PgRel	   *pr;
	int			r;

	/* an open COPY ends here; a chunk it gave back may leave a run */
	if (pt->copy_rel != NULL)
		copy_end(pt);
	rel = pt->run_rel;
	if (rel == NULL || pt->run_n == 0)
	{
		pt->run_rel = NULL;
		return;
	}
	if (rel->version != pt->run_version)
		elog(ERROR, "relation %u changed while a run of changes was buffered", rel->remoteid);
	pr = pg_rel(pt, rel);

	/* a run of inserts that goes on and on continues as COPY */
	if (pt->run_kind == 'i' && (pt->run_n == run_rows(rel, 'i') || pt->run_full))
		streak_add(pt, rel, pt->run_n);
	else
		pt->streak_rel = NULL;
	if (pt->run_kind == 'd')
	{
		if (pt->run_n == run_rows(rel, 'd') && pt->run_n > 1)
		{
			if (!pr->have_multi_delete)
				prepare_multi_delete(pt, rel, pr, pt->run_n);
			send_exec_use(pt, rel, pr->multi_delete_name, pt->run_n * rel->nkeys,
						  (const char *const *) pt->run_vals, pr->what,
						  USE_MISSED, pt->run_n, NULL);
		}
		else
		{
			if (!pr->have_delete)
				prepare_delete(pt, rel, pr);
			for (r = 0; r < pt->run_n; r++)
				send_exec_use(pt, rel, pr->delete_name, rel->nkeys,
							  (const char *const *) pt->run_vals + r * rel->nkeys, pr->what,
							  USE_MISSED, 1, NULL);
		}
	}
	else if (pt->run_kind == 'c')
		flush_check_run(pt, rel, pr);
	else if (pt->run_n == run_rows(rel, pt->run_kind) && pt->run_n > 1)
	{
		bool	   *have = pt->run_kind == 'i' ? &pr->have_multi : &pr->have_multi_u;
		char	   *name = pt->run_kind == 'i' ? pr->multi_name : pr->multi_u_name;

		if (!*have)
		{
			snprintf(name, NAMEDATALEN, "ds_%u_%u_m%c", rel->remoteid, rel->version, pt->run_kind);
			prepare_insert(pt, rel, pr, pt->run_n, name, pt->run_kind);
			*have = true;
		}
		send_exec_use(pt, rel, name, pt->run_n * rel->natts,
					  (const char *const *) pt->run_vals, pr->what,
					  upsert_use(rel, pt->run_kind), 0, NULL);
	}
	else
	{
		const char *name = upsert_name(pt, rel, pr, pt->run_kind);

		for (r = 0; r < pt->run_n; r++)
			send_exec_use(pt, rel, name, rel->natts,
						  (const char *const *) pt->run_vals + r * rel->natts, pr->what,
						  upsert_use(rel, pt->run_kind), 0, NULL);
	}
	pt->run_n = 0;
	pt->run_bytes = 0;
	pt->run_full = false;
	pt->run_rel = NULL;
	MemoryContextReset(pt->runcxt);
}

static bool
same_value(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* does the buffered upsert run hold a row with this key already? */
static bool
run_has_key(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup)
{
	int			r;
	int			k;

	for (r = 0; r < pt->run_n; r++)
	{
		char	  **row = pt->run_vals + r * rel->natts;

		for (k = 0; k < rel->nkeys; k++)
			if (!same_value(row[rel->keyatts[k]], colval(tup, rel->keyatts[k])))
				break;
		if (k == rel->nkeys)
			return true;
	}
	return false;
}

/*
 * Buffer a change of a run: inserts ('i') or whole-row updates ('u': their
 * new rows) or deletes by key ('d': their keys); a full run goes out at once.  One
 * upsert statement may not touch a row twice, so a second change of a key
 * starts a new run.  A run is full at run_rows rows or ds_run_limit()
 * bytes: a row that would take it over starts the next, and a row over it
 * goes out alone at once (sendlimit.c).
 */
static void
add_to_run(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup, char kind,
		   DsConflictHit *hit)
{
	int			i;
	int			max = run_rows(rel, kind);
	int			width = run_width(rel, kind);
	Size		limit = ds_run_limit() - NAMEDATALEN - 16;	/* less the fixed fields */
	Size		bytes = 0;
	bool		over;

	if (kind == 'i' && copy_wanted(pt, rel, tup))
	{
		if (pt->copy_rel == rel || copy_open(pt, rel))
		{
			copy_add(pt, rel, tup);
			return;
		}
	}
	/* its part of the Bind message: a length word and the text a value */
	for (i = 0; i < width; i++)
	{
		int			a = kind == 'd' ? rel->keyatts[i] : i;

		bytes += 4;
		if (tup->colstatus[a] == LOGICALREP_COLUMN_TEXT)
			bytes += tup->colvalues[a].len;
	}
	over = pt->run_n > 0 && pt->run_bytes + bytes > limit;
	if (pt->run_rel != rel || pt->run_kind != kind || over ||
		(kind != 'd' && rel->nkeys > 0 && run_has_key(pt, rel, tup)))
	{
		pt->run_full = over && pt->run_rel == rel && pt->run_kind == kind;
		flush_run(pt);
		pt->run_rel = rel;
		pt->run_kind = kind;
		pt->run_version = rel->version;
		if (pt->run_cap < max * width)
		{
			pt->run_cap = max * width;
			if (pt->run_vals)
				pfree(pt->run_vals);
			pt->run_vals = MemoryContextAlloc(pt->cxt, sizeof(char *) * pt->run_cap);
			if (pt->run_hits)
				pfree(pt->run_hits);
			pt->run_hits = MemoryContextAlloc(pt->cxt, sizeof(DsConflictHit *) * pt->run_cap);
		}
	}
	pt->run_hits[pt->run_n] = hit;
	for (i = 0; i < width; i++)
	{
		const char *v = colval(tup, kind == 'd' ? rel->keyatts[i] : i);

		pt->run_vals[pt->run_n * width + i] = v ? MemoryContextStrdup(pt->runcxt, v) : NULL;
	}
	pt->run_n++;
	pt->run_bytes += bytes;
	if (pt->run_n == max || pt->run_bytes >= limit)
	{
		pt->run_full = pt->run_n < max;
		flush_run(pt);
	}
}

/* ---------------------------------------------------------------------
 * COPY runs
 *
 * A run of inserts into one table that goes on past DS_COPY_AFTER_ROWS
 * rows (sent as multi-row upserts so far) continues as COPY ... FROM
 * STDIN: no statement to start every 64 rows, no speculative insertion
 * and no index probe before each row, and the server inserts rows in
 * batches.  COPY cannot leave alone or update a row whose key the target
 * already holds, so each chunk of up to DS_COPY_CHUNK_BYTES runs under a
 * savepoint and its rows stay here (copy_buf) until the target confirmed
 * them.  A chunk that failed is rolled back to the savepoint and applied
 * again as upserts: an existing key is then overwritten (source wins)
 * and counted, and any other error is raised by the statement that meets
 * it, as without COPY.  After a key conflict the table's inserts stay on
 * upserts until the batch ends; after any other failure (a view, row
 * security, ...) for the rest of the session.
 *
 * libpq runs COPY outside pipeline mode, so opening one turns the batch's
 * implicit transaction into a transaction block (BEGIN; the statements
 * before it belong to it) and waits for the results of everything sent.
 * A 1M-row INSERT thus goes out as:
 *   4 x INSERT (64 rows) ... | BEGIN; SAVEPOINT; Sync (wait) | COPY (wait
 *   for CopyInResponse) | 8 MB of rows | CopyDone (wait) | RELEASE;
 *   SAVEPOINT; Sync (wait) | COPY ... | ... | CopyDone (wait) | RELEASE;
 *   progress; COMMIT; Sync.
 * Rows are handed to libpq every DS_COPY_SEND_BYTES, so the target works
 * while the stream brings more; a chunk stays open while the worker
 * waits for the stream (poll() only pushes what it has).
 * ---------------------------------------------------------------------
 */
#define DS_COPY_AFTER_ROWS		256
#define DS_COPY_CHUNK_BYTES		(8 * 1024 * 1024)
#define DS_COPY_SEND_BYTES		(64 * 1024)
#define DS_COPY_MAX_ROW_BYTES	(1024 * 1024)
#define DS_COPY_SAVEPOINT		"datasync_copy"

/* n more rows of a run of inserts into rel went out in one piece */
static void
streak_add(PgTarget *pt, DsRelation *rel, int64 n)
{
	if (pt->streak_rel != rel)
		pt->streak_rows = 0;
	pt->streak_rel = rel;
	pt->streak_rows += n;
}

/*
 * Should this insert go into a COPY: one is open for its table, or a run
 * of inserts into the table is long enough to open one.  Rows over
 * DS_COPY_MAX_ROW_BYTES stay on upserts (the chunk is kept in memory).
 */
static bool
copy_wanted(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup)
{
	Size		bytes = 0;
	int			i;

	if (pt->copy_rel != rel)
	{
		PgRel	   *pr;

		if (pt->streak_rel != rel || pt->streak_rows < DS_COPY_AFTER_ROWS ||
			(pt->run_rel != NULL && pt->run_n > 0))
			return false;
		pr = pg_rel(pt, rel);
		if (pr->copy_off || pr->copy_skip_batch == pt->batch_no)
			return false;
	}
	for (i = 0; i < rel->natts; i++)
	{
		if (tup->colstatus[i] == LOGICALREP_COLUMN_TEXT)
			bytes += tup->colvalues[i].len;
		else if (tup->colstatus[i] != LOGICALREP_COLUMN_NULL)
			return false;
	}
	return bytes <= DS_COPY_MAX_ROW_BYTES;
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
	PgRel	   *pr = pg_rel(pt, rel);
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
	enter_pipeline(pt);
	send_sql(pt, "ROLLBACK TO SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
	send_sql(pt, "RELEASE SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
}

/*
 * Open a COPY into rel's table in the open batch.  Returns false when the
 * target refused it (the table stays on upserts).
 */
static bool
copy_open(PgTarget *pt, DsRelation *rel)
{
	PgRel	   *pr = pg_rel(pt, rel);
	StringInfoData sql;
	PGresult   *res;

	flush_run(pt);
	if (!pt->explicit_xact)
	{
		send_sql(pt, "BEGIN", pr->what);
		pt->explicit_xact = true;
	}
	send_sql(pt, "SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
	leave_pipeline(pt);			/* raises the error of anything sent before */

	initStringInfo(&sql);
	appendStringInfo(&sql, "COPY %s (", rel->target_qname);
	append_columns(&sql, rel, false);
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

/* one insert into the open COPY */
static void
copy_add(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup)
{
	ds_copytext_append_row(&pt->copy_buf, tup, rel->natts);
	pt->copy_rows++;
	if (pt->copy_buf.len - pt->copy_sent >= DS_COPY_SEND_BYTES)
		copy_push(pt);
	if (pt->copy_buf.len >= DS_COPY_CHUNK_BYTES)
		copy_end(pt);
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
static void
copy_push(PgTarget *pt)
{
	copy_put(pt, pt->copy_buf.data + pt->copy_sent, pt->copy_buf.len - pt->copy_sent);
	pt->copy_sent = pt->copy_buf.len;
}

/*
 * End the open COPY and learn whether the target took its chunk.  If not,
 * roll the chunk back and apply its rows as a run of upserts (which may
 * leave a part run buffered).  Statements pipeline again afterwards.
 */
static void
copy_end(PgTarget *pt)
{
	DsRelation *rel = pt->copy_rel;
	PgRel	   *pr = pg_rel(pt, rel);
	PGresult   *err;
	int			rc;
	int			pos;
	char	  **values;
	char	   *scratch = NULL;
	int			scratch_len = 0;
	LogicalRepTupleData tup;
	int			i;

	copy_push(pt);
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
		enter_pipeline(pt);
		send_sql(pt, "RELEASE SAVEPOINT " DS_COPY_SAVEPOINT, pr->what);
		streak_add(pt, rel, pt->copy_rows);
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
		add_to_run(pt, rel, &tup, 'i', NULL);
		CHECK_FOR_INTERRUPTS();
	}
	resetStringInfo(&pt->copy_buf);
	if (scratch)
		pfree(scratch);
	pfree(values);
	pfree(tup.colvalues);
	pfree(tup.colstatus);
}

static void
prepare_delete(PgTarget *pt, DsRelation *rel, PgRel *pr)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE ", rel->target_qname);
	if (rel->nkeys > 0)
		append_key_match(&sql, rel, 1);
	else
		append_full_match(&sql, rel, 1);
	snprintf(pr->delete_name, NAMEDATALEN, "ds_%u_%u_d", rel->remoteid, rel->version);
	send_prepare(pt, pr->delete_name, sql.data, pr->what);
	pr->have_delete = true;
	pfree(sql.data);
}

/* UPDATE setting the columns in mask, matched by key or by the whole old row */
static const char *
update_variant(PgTarget *pt, DsRelation *rel, PgRel *pr, const char *mask)
{
	ListCell   *lc;
	PgUpdateVariant *v;
	StringInfoData sql;
	int			i;
	int			n = 0;
	MemoryContext old;

	foreach(lc, pr->updates)
	{
		v = lfirst(lc);
		if (strcmp(v->mask, mask) == 0)
			return v->name;
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s SET ", rel->target_qname);
	for (i = 0; i < rel->natts; i++)
	{
		if (mask[i] != '1')
			continue;
		appendStringInfo(&sql, "%s%s = $%d", n > 0 ? ", " : "",
						 quote_identifier(rel->attnames[i]), n + 1);
		n++;
	}
	appendStringInfoString(&sql, " WHERE ");
	if (rel->nkeys > 0)
		append_key_match(&sql, rel, n + 1);
	else
		append_full_match(&sql, rel, n + 1);

	old = MemoryContextSwitchTo(pt->cxt);
	v = palloc(sizeof(PgUpdateVariant));
	v->mask = pstrdup(mask);
	snprintf(v->name, NAMEDATALEN, "ds_%u_%u_u%d", rel->remoteid, rel->version,
			 list_length(pr->updates));
	pr->updates = lappend(pr->updates, v);
	MemoryContextSwitchTo(old);

	send_prepare(pt, v->name, sql.data, pr->what);
	pfree(sql.data);
	return v->name;
}

static const char *
colval(LogicalRepTupleData *tup, int i)
{
	if (tup->colstatus[i] == LOGICALREP_COLUMN_NULL)
		return NULL;
	return tup->colvalues[i].data;
}

/* key values of a change: from the old tuple when sent, else the new one */
static void
key_values(DsRelation *rel, LogicalRepTupleData *tup, const char **out)
{
	int			i;

	for (i = 0; i < rel->nkeys; i++)
	{
		int			a = rel->keyatts[i];

		if (tup->colstatus[a] == LOGICALREP_COLUMN_UNCHANGED)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("key column \"%s\" of table \"%s.%s\" was not sent (unchanged TOAST value)",
							rel->attnames[a], rel->nspname, rel->relname)));
		out[i] = colval(tup, a);
	}
}

/* ---------------------------------------------------------------------
 * The conflict-checking path
 *
 * A table whose strategy detects conflicts gets one statement a change
 * that finds the target row, decides by the strategy and writes, so changes
 * stay pipelined; its result row (kind, whether the source's version is on
 * the target, the target row) goes to the decider (on_conflict) unless the
 * kind is 'none'.  Two shapes:
 *
 * - target-wins, manual (keep_target_stmt): a conflict never writes, so
 *   the clean change goes first (UPDATE ... WHERE key AND row = old row)
 *   and the row is read only when it did nothing.
 * - source-wins with log_conflicts, latest-timestamp (may_win_stmt): the
 *   row is read first (the statement's snapshot), then one write whose
 *   condition on the live row is "clean, or the source wins".
 *
 * Whatever comes first in the text gives the parameters the target
 * columns' types.  Inserts go out in runs (prepare_check_run).
 * ---------------------------------------------------------------------
 */
static int
check_param(PgCheckStmt *cs, char src, int col, int cap)
{
	int			i;

	for (i = 0; i < cs->nparams; i++)
		if (cs->psrc[i] == src && cs->pcol[i] == col)
			return i + 1;
	Assert(cs->nparams < cap);
	cs->psrc[cs->nparams] = src;
	cs->pcol[cs->nparams] = col;
	return ++cs->nparams;
}

/* t.col equals the value of parameter p, NULLs equal */
static void
append_eq(StringInfo sql, DsRelation *rel, int att, int p)
{
	const char *col = quote_identifier(rel->attnames[att]);

	if (rel->attcast[att])
		/* the CASE gives $p the column's type before the cast to text */
		appendStringInfo(sql, "t.%s::text IS NOT DISTINCT FROM (CASE WHEN false THEN t.%s ELSE $%d END)::text",
						 col, col, p);
	else
		appendStringInfo(sql, "t.%s IS NOT DISTINCT FROM $%d", col, p);
}

static void
append_lookup(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, int cap)
{
	int			k;

	for (k = 0; k < rel->nkeys; k++)
	{
		int			a = rel->keyatts[k];

		appendStringInfo(sql, "%st.%s = $%d", k > 0 ? " AND " : "",
						 quote_identifier(rel->attnames[a]),
						 check_param(cs, cs->oldkey ? 'o' : 'n', a, cap));
	}
}

/* AND of t.col = new value over the columns sent (mask) */
static void
append_same_new(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, const char *mask, int cap)
{
	int			i;
	bool		any = false;

	appendStringInfoChar(sql, '(');
	for (i = 0; i < rel->natts; i++)
	{
		if (mask && mask[i] != '1')
			continue;
		if (any)
			appendStringInfoString(sql, " AND ");
		append_eq(sql, rel, i, check_param(cs, 'n', i, cap));
		any = true;
	}
	appendStringInfoString(sql, any ? ")" : "true)");
}

/* AND of t.col = old value over every column; true without the old row */
static void
append_same_old(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, int cap)
{
	int			i;

	if (!cs->oldfull)
	{
		appendStringInfoString(sql, "true");
		return;
	}
	appendStringInfoChar(sql, '(');
	for (i = 0; i < rel->natts; i++)
	{
		if (i > 0)
			appendStringInfoString(sql, " AND ");
		append_eq(sql, rel, i, check_param(cs, 'o', i, cap));
	}
	appendStringInfoChar(sql, ')');
}

/*
 * Does the source's version win a conflict against the target row t?
 * source-wins yes, target-wins and manual no, latest-timestamp when its
 * time is not before the target row's (a NULL time is the oldest; ties go
 * to the source).
 */
static void
append_source_wins(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, const char *mask, int cap)
{
	char	   *src;
	char	   *tgt;

	switch (rel->strategy)
	{
		case DS_SOURCE_WINS:
			appendStringInfoString(sql, "true");
			return;
		case DS_TARGET_WINS:
		case DS_MANUAL:
			appendStringInfoString(sql, "false");
			return;
		case DS_LATEST_TIMESTAMP:
			break;
	}
	if (rel->ts_att >= 0 && cs->kind != 'd' && (mask == NULL || mask[rel->ts_att] == '1'))
		src = psprintf("$%d", check_param(cs, 'n', rel->ts_att, cap));
	else
		src = psprintf("$%d::pg_catalog.timestamptz", check_param(cs, 'c', 0, cap));
	if (rel->ts_att >= 0)
		tgt = psprintf("t.%s", quote_identifier(rel->attnames[rel->ts_att]));
	else
		tgt = "pg_catalog.pg_xact_commit_timestamp(t.xmin)";
	appendStringInfo(sql, "CASE WHEN %s IS NULL THEN true WHEN %s IS NULL THEN false ELSE %s >= %s END",
					 tgt, src, src, tgt);
}

/*
 * latest-timestamp of a run, where each row brings its own time column:
 * does src (an expression for the source's value) win over t?
 */
static char *
run_source_wins(DsRelation *rel, const char *src)
{
	char	   *tgt;

	if (rel->strategy == DS_SOURCE_WINS)
		return "true";
	tgt = psprintf("t.%s", quote_identifier(rel->attnames[rel->ts_att]));
	return psprintf("CASE WHEN %s IS NULL THEN true WHEN %s IS NULL THEN false ELSE %s >= %s END",
					tgt, src, src, tgt);
}

/* SET of the columns sent (an insert leaves its key alone) */
static bool
append_set(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, const char *mask, int cap)
{
	int			i;
	bool		any = false;

	for (i = 0; i < rel->natts; i++)
	{
		if ((mask && mask[i] != '1') || (cs->kind == 'i' && is_key_att(rel, i)))
			continue;
		appendStringInfo(sql, "%s%s = $%d", any ? ", " : "",
						 quote_identifier(rel->attnames[i]), check_param(cs, 'n', i, cap));
		any = true;
	}
	return any;
}

static void
append_insert(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, int cap)
{
	int			i;

	appendStringInfo(sql, "INSERT INTO %s (", rel->target_qname);
	append_columns(sql, rel, false);
	appendStringInfoString(sql, ") ");
	if (cs->kind == 'i')
	{
		appendStringInfoString(sql, "VALUES (");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", check_param(cs, 'n', i, cap));
		appendStringInfoString(sql, ") ON CONFLICT (");
		append_columns(sql, rel, true);
		appendStringInfoString(sql, ") DO NOTHING RETURNING 1");
	}
	else
	{
		appendStringInfoString(sql, "SELECT ");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", check_param(cs, 'n', i, cap));
	}
}

/*
 * target-wins and manual: the clean change first (it gives the parameters
 * the target columns' types), the target row read only when it did
 * nothing; a conflict never writes.
 */
static void
keep_target_stmt(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, const char *mask, int cap)
{
	char		kind = cs->kind;
	const char *done;
	const char *differs;
	const char *missing;

	/* the clean change: parsed first, so it gives the parameters their types */
	switch (kind)
	{
		case 'i':
			appendStringInfoString(sql, "WITH done AS (");
			append_insert(sql, rel, cs, cap);
			appendStringInfoString(sql, ")");
			missing = "'none'";
			differs = "'insert_exists'";
			break;
		case 'u':
			appendStringInfo(sql, "WITH done AS (UPDATE %s t SET ", rel->target_qname);
			(void) append_set(sql, rel, cs, mask, cap);
			appendStringInfoString(sql, " WHERE ");
			append_lookup(sql, rel, cs, cap);
			appendStringInfoString(sql, " AND ");
			append_same_old(sql, rel, cs, cap);
			appendStringInfoString(sql, " RETURNING 1)");
			missing = "'update_missing'";
			differs = "'update_differs'";
			break;
		default:
			appendStringInfo(sql, "WITH done AS (DELETE FROM %s t WHERE ", rel->target_qname);
			append_lookup(sql, rel, cs, cap);
			appendStringInfoString(sql, " AND ");
			append_same_old(sql, rel, cs, cap);
			appendStringInfoString(sql, " RETURNING 1)");
			missing = "'delete_missing'";
			differs = "'delete_differs'";
			break;
	}
	done = "EXISTS (SELECT 1 FROM done)";

	/* c: the target row, read only when the clean change did nothing */
	appendStringInfoString(sql, ", c AS (SELECT pg_catalog.to_jsonb(t.*)::text AS trow, ");
	if (kind == 'd')
		appendStringInfoString(sql, "false");
	else
		append_same_new(sql, rel, cs, mask, cap);
	appendStringInfo(sql, " AS sn, false AS win FROM %s t WHERE ", rel->target_qname);
	append_lookup(sql, rel, cs, cap);
	appendStringInfo(sql, " AND NOT %s)", done);

	/* kind, whether the source's version is on the target, the target row */
	appendStringInfo(sql,
					 " SELECT CASE WHEN %s THEN 'none' WHEN c.trow IS NULL THEN %s"
					 " WHEN c.sn THEN 'none' ELSE %s END,"
					 " CASE WHEN %s THEN true WHEN c.trow IS NULL THEN %s"
					 " WHEN c.sn THEN %s ELSE c.win END, c.trow"
					 " FROM (VALUES (1)) one (x) LEFT JOIN c ON true",
					 done, missing, differs,
					 done,
					 kind == 'i' ? "true" : "false",
					 kind == 'i' ? "true" : "false");

}

/*
 * source-wins with log_conflicts and latest-timestamp: the target row as
 * the statement's snapshot has it (c, first: it gives the parameters the
 * target columns' types), and one write whose condition, evaluated on the
 * live row, is "clean, or the source wins":
 *
 *   WITH c AS (SELECT t AS trec, true AS found, <row = old> AS so, <row = new> AS sn,
 *                     <source wins> AS win FROM tbl t WHERE <key>),
 *        done AS (INSERT ... ON CONFLICT (key) DO UPDATE SET ... WHERE <so or win>
 *               | UPDATE ... WHERE <key> AND (<so> OR <win>)
 *               | DELETE ... WHERE <key> AND (<so> OR <win>))
 *   SELECT <kind>, <applied>, to_jsonb(trec) (conflicts only) FROM c ...
 *
 * Inserts, and updates that keep the key and send the whole row, are
 * upserts (which also insert a row the target lost); other updates are
 * UPDATEs, with an INSERT for a missing row when the whole row was sent.
 */
static void
may_win_stmt(StringInfo sql, DsRelation *rel, PgCheckStmt *cs, const char *mask,
			 bool whole, int cap)
{
	char		kind = cs->kind;
	StringInfoData so;
	StringInfoData sn;
	StringInfoData win;
	StringInfoData set;
	const char *missing;
	const char *differs;
	const char *clean;
	const char *missing_applied;
	bool		upsert = kind == 'i' || (kind == 'u' && whole && !cs->moves);
	int			i;

	initStringInfo(&so);
	initStringInfo(&sn);
	initStringInfo(&win);
	initStringInfo(&set);
	append_same_old(&so, rel, cs, cap);
	if (kind == 'd')
		appendStringInfoString(&sn, "false");
	else
		append_same_new(&sn, rel, cs, mask, cap);
	append_source_wins(&win, rel, cs, mask, cap);

	appendStringInfo(sql, "WITH c AS (SELECT t AS trec, true AS found, %s AS so, %s AS sn, %s AS win FROM %s t WHERE ",
					 so.data, sn.data, win.data, rel->target_qname);
	append_lookup(sql, rel, cs, cap);
	appendStringInfoString(sql, "), done AS (");
	if (upsert)
	{
		appendStringInfo(sql, "INSERT INTO %s AS t (", rel->target_qname);
		append_columns(sql, rel, false);
		appendStringInfoString(sql, ") VALUES (");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", check_param(cs, 'n', i, cap));
		appendStringInfoChar(sql, ')');
		if (append_on_conflict_update(sql, rel, NULL))
		{
			if (kind == 'i')
				appendStringInfo(sql, " WHERE NOT %s AND %s", sn.data, win.data);
			else
				appendStringInfo(sql, " WHERE %s OR %s", so.data, win.data);
		}
		appendStringInfoChar(sql, ')');
	}
	else if (kind == 'u')
	{
		(void) append_set(&set, rel, cs, mask, cap);
		appendStringInfo(sql, "UPDATE %s t SET %s WHERE ", rel->target_qname, set.data);
		append_lookup(sql, rel, cs, cap);
		appendStringInfo(sql, " AND (%s OR %s))", so.data, win.data);
		if (whole)
		{
			appendStringInfoString(sql, ", i AS (");
			append_insert(sql, rel, cs, cap);
			appendStringInfoString(sql, " WHERE NOT EXISTS (SELECT 1 FROM c))");
		}
	}
	else
	{
		appendStringInfo(sql, "DELETE FROM %s t WHERE ", rel->target_qname);
		append_lookup(sql, rel, cs, cap);
		appendStringInfo(sql, " AND (%s OR %s))", so.data, win.data);
	}

	switch (kind)
	{
		case 'i':
			missing = "'none'";
			differs = "'insert_exists'";
			clean = "c.sn";
			missing_applied = "true";
			break;
		case 'u':
			missing = "'update_missing'";
			differs = "'update_differs'";
			clean = "(c.so OR c.sn)";
			missing_applied = whole ? "true" : "false";
			break;
		default:
			missing = "'delete_missing'";
			differs = "'delete_differs'";
			clean = "c.so";
			missing_applied = "true";
			break;
	}
	appendStringInfo(sql,
					 " SELECT CASE WHEN c.found IS NULL THEN %s WHEN %s THEN 'none' ELSE %s END,"
					 " CASE WHEN c.found IS NULL THEN %s WHEN %s THEN true ELSE c.win END,"
					 " CASE WHEN c.found AND NOT %s THEN pg_catalog.to_jsonb(c.trec)::text END"
					 " FROM (VALUES (1)) one (x) LEFT JOIN c ON true",
					 missing, clean, differs, missing_applied, clean, clean);
}

/* The statement of one change kind (see the comment above). */
static PgCheckStmt *
check_stmt(PgTarget *pt, DsRelation *rel, PgRel *pr, char kind, const char *mask,
		   bool oldfull, bool oldkey, bool moves)
{
	ListCell   *lc;
	PgCheckStmt *cs;
	StringInfoData sql;
	MemoryContext old;
	int			cap = rel->natts * 2 + 1;
	int			i;
	bool		whole = true;
	bool		may_win = rel->strategy == DS_SOURCE_WINS || rel->strategy == DS_LATEST_TIMESTAMP;

	foreach(lc, pr->checks)
	{
		cs = lfirst(lc);
		if (cs->kind == kind && cs->oldfull == oldfull && cs->oldkey == oldkey &&
			cs->moves == moves &&
			((cs->mask == NULL && mask == NULL) ||
			 (cs->mask && mask && strcmp(cs->mask, mask) == 0)))
			return cs;
	}

	old = MemoryContextSwitchTo(pt->cxt);
	cs = palloc0(sizeof(PgCheckStmt));
	cs->kind = kind;
	cs->mask = mask ? pstrdup(mask) : NULL;
	cs->oldfull = oldfull;
	cs->oldkey = oldkey;
	cs->moves = moves;
	cs->psrc = palloc(cap);
	cs->pcol = palloc(sizeof(int) * cap);
	snprintf(cs->name, NAMEDATALEN, "ds_%u_%u_c%d", rel->remoteid, rel->version,
			 list_length(pr->checks));
	pr->checks = lappend(pr->checks, cs);
	MemoryContextSwitchTo(old);

	for (i = 0; mask && i < rel->natts; i++)
		if (mask[i] != '1')
			whole = false;

	initStringInfo(&sql);
	if (may_win)
		may_win_stmt(&sql, rel, cs, mask, whole, cap);
	else
		keep_target_stmt(&sql, rel, cs, mask, cap);

	send_prepare(pt, cs->name, sql.data, pr->what);
	pfree(sql.data);
	return cs;
}

/* the values of a tuple's columns, copied into buf (see make_hit) */
static char *
pack_str(char **buf, const char *v)
{
	char	   *r;

	if (v == NULL)
		return NULL;
	r = *buf;
	strcpy(r, v);
	*buf += strlen(v) + 1;
	return r;
}

/* a conflict record for a change, waiting for its statement's result */
static DsConflictHit *
make_hit(PgTarget *pt, DsRelation *rel, DsChange *ch, const char **keyvals,
		 const char **newkeyvals)
{
	Size		len = MAXALIGN(sizeof(DsConflictHit));
	int			n = rel->natts;
	int			k = rel->nkeys;
	DsConflictHit *hit;
	char	   *p;
	char	   *str;
	int			i;

	len += MAXALIGN(sizeof(char *) * n) + MAXALIGN(sizeof(bool) * n) +
		MAXALIGN(sizeof(char *) * k) * 2;
	for (i = 0; i < n; i++)
		if (ch->newtup && ch->newtup->colstatus[i] == LOGICALREP_COLUMN_TEXT)
			len += strlen(ch->newtup->colvalues[i].data) + 1;
	for (i = 0; i < k; i++)
	{
		if (keyvals[i])
			len += strlen(keyvals[i]) + 1;
		if (newkeyvals && newkeyvals[i])
			len += strlen(newkeyvals[i]) + 1;
	}
	p = MemoryContextAllocZero(pt->hitcxt, len);
	hit = (DsConflictHit *) p;
	p += MAXALIGN(sizeof(DsConflictHit));
	hit->newvals = (char **) p;
	p += MAXALIGN(sizeof(char *) * n);
	hit->newsent = (bool *) p;
	p += MAXALIGN(sizeof(bool) * n);
	hit->keyvals = (char **) p;
	p += MAXALIGN(sizeof(char *) * k);
	hit->newkeyvals = (char **) p;
	p += MAXALIGN(sizeof(char *) * k);
	str = p;

	hit->rel = rel;
	hit->change = ch->kind;
	hit->change_lsn = ch->change_lsn;
	hit->change_seq = ch->change_seq;
	hit->commit_time = ch->commit_time;
	hit->has_new = ch->newtup != NULL;
	for (i = 0; i < n && ch->newtup; i++)
	{
		hit->newsent[i] = ch->newtup->colstatus[i] != LOGICALREP_COLUMN_UNCHANGED;
		hit->newvals[i] = ch->newtup->colstatus[i] == LOGICALREP_COLUMN_TEXT ?
			pack_str(&str, ch->newtup->colvalues[i].data) : NULL;
	}
	for (i = 0; i < k; i++)
	{
		hit->keyvals[i] = pack_str(&str, keyvals[i]);
		hit->newkeyvals[i] = newkeyvals ? pack_str(&str, newkeyvals[i]) : hit->keyvals[i];
	}
	return hit;
}

/*
 * A full run of inserts on the checking path: one statement inserts what
 * is missing and returns a row for each key the target had with other
 * values.
 *
 *   WITH done AS (INSERT INTO tbl AS t (...) VALUES (...), ... ON CONFLICT (key)
 *                   DO NOTHING RETURNING true AS ins, key),
 *        v ("#", "1", ...) AS (VALUES (1, $1, ...), ...),
 *        c AS (SELECT v."#", t AS trec, <source wins> AS win, <row = v> AS sn
 *                FROM v JOIN tbl t ON key = v.key
 *               WHERE (SELECT count(*) FROM done WHERE ins) < n
 *                 AND NOT EXISTS (SELECT 1 FROM done d WHERE d.ins AND d.key = v.key))
 *   SELECT "#", 'insert_exists', win, to_jsonb(trec) FROM c WHERE NOT sn
 *
 * c reads the rows as the statement's snapshot has them, before the
 * insert.  Where the source can win (source-wins with log_conflicts,
 * latest-timestamp with a timestamp column), the insert is DO UPDATE ...
 * WHERE <differs> AND <source wins> RETURNING xmax = 0 AS ins instead.
 * latest-timestamp on commit times keeps single statements (each row has
 * its transaction's time); a shorter run goes out row by row.
 */
static void
prepare_check_run(PgTarget *pt, DsRelation *rel, PgRel *pr, int nrows)
{
	StringInfoData sql;
	int			i;
	int			r;
	bool		may_win = rel->strategy == DS_SOURCE_WINS || rel->strategy == DS_LATEST_TIMESTAMP;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH done AS (");
	append_insert_rows(&sql, rel, nrows);
	if (may_win)
	{
		/* the source's row replaces a differing one when it wins */
		StringInfoData differs;

		initStringInfo(&differs);
		if (append_on_conflict_update(&sql, rel, &differs))
			appendStringInfo(&sql, " WHERE (%s) AND %s", differs.data,
							 run_source_wins(rel, psprintf("EXCLUDED.%s",
														   quote_identifier(rel->attnames[Max(rel->ts_att, 0)]))));
		pfree(differs.data);
		/* xmax 0: inserted; the others were there (unknown: look them up) */
		if (target_returns_xmax(pt, rel, pr))
			appendStringInfoString(&sql, " RETURNING t.xmax::text = '0' AS ins, ");
		else
			appendStringInfoString(&sql, " RETURNING false AS ins, ");
	}
	else
	{
		appendStringInfoString(&sql, " ON CONFLICT (");
		append_columns(&sql, rel, true);
		appendStringInfoString(&sql, ") DO NOTHING RETURNING true AS ins, ");
	}
	append_columns(&sql, rel, true);

	/* the same parameters again, typed by the INSERT above */
	appendStringInfoString(&sql, "), v (\"#\"");
	for (i = 0; i < rel->natts; i++)
		appendStringInfo(&sql, ", \"%d\"", i + 1);
	appendStringInfoString(&sql, ") AS (VALUES ");
	for (r = 0; r < nrows; r++)
	{
		appendStringInfo(&sql, "%s(%d", r > 0 ? ", " : "", r + 1);
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(&sql, ", $%d", r * rel->natts + i + 1);
		appendStringInfoChar(&sql, ')');
	}
	appendStringInfo(&sql, "), c AS (SELECT v.\"#\", t AS trec, %s AS win, (",
					 may_win ? run_source_wins(rel, psprintf("v.\"%d\"", Max(rel->ts_att, 0) + 1)) : "false");
	for (i = 0; i < rel->natts; i++)
	{
		const char *col = quote_identifier(rel->attnames[i]);

		if (rel->attcast[i])
			appendStringInfo(&sql, "%st.%s::text IS NOT DISTINCT FROM v.\"%d\"::text",
							 i > 0 ? " AND " : "", col, i + 1);
		else
			appendStringInfo(&sql, "%st.%s IS NOT DISTINCT FROM v.\"%d\"", i > 0 ? " AND " : "", col, i + 1);
	}
	appendStringInfo(&sql, ") AS sn FROM v JOIN %s t ON ", rel->target_qname);
	for (i = 0; i < rel->nkeys; i++)
		appendStringInfo(&sql, "%st.%s = v.\"%d\"", i > 0 ? " AND " : "",
						 quote_identifier(rel->attnames[rel->keyatts[i]]), rel->keyatts[i] + 1);
	appendStringInfo(&sql, " WHERE (SELECT pg_catalog.count(*) FROM done WHERE done.ins) < %d"
					 " AND NOT EXISTS (SELECT 1 FROM done d WHERE d.ins AND ", nrows);
	for (i = 0; i < rel->nkeys; i++)
		appendStringInfo(&sql, "%sd.%s = v.\"%d\"", i > 0 ? " AND " : "",
						 quote_identifier(rel->attnames[rel->keyatts[i]]), rel->keyatts[i] + 1);
	appendStringInfoString(&sql, ")) SELECT c.\"#\", 'insert_exists', c.win,"
						   " pg_catalog.to_jsonb(c.trec)::text FROM c WHERE NOT c.sn");

	snprintf(pr->check_run_name, NAMEDATALEN, "ds_%u_%u_cr", rel->remoteid, rel->version);
	send_prepare(pt, pr->check_run_name, sql.data, pr->what);
	pr->have_check_run = true;
	pfree(sql.data);
}

static void
flush_check_run(PgTarget *pt, DsRelation *rel, PgRel *pr)
{
	int			r;
	int			i;

	if (pt->run_n == run_rows(rel, 'c') && pt->run_n > 1)
	{
		DsConflictHit **hits = MemoryContextAlloc(pt->hitcxt, sizeof(DsConflictHit *) * pt->run_n);

		if (!pr->have_check_run)
			prepare_check_run(pt, rel, pr, pt->run_n);
		memcpy(hits, pt->run_hits, sizeof(DsConflictHit *) * pt->run_n);
		send_prepared(pt, rel, pr->check_run_name, pt->run_n * rel->natts,
					  (const char *const *) pt->run_vals, pr->what, USE_CHECK_RUN,
					  pt->run_n, NULL, hits);
		return;
	}
	for (r = 0; r < pt->run_n; r++)
	{
		PgCheckStmt *cs = check_stmt(pt, rel, pr, 'i', NULL, false, false, false);
		char	  **row = pt->run_vals + r * rel->natts;
		const char **vals = palloc(sizeof(char *) * Max(cs->nparams, 1));

		for (i = 0; i < cs->nparams; i++)
			vals[i] = row[cs->pcol[i]];		/* inserts take new values only */
		send_exec_use(pt, rel, cs->name, cs->nparams, vals, pr->what, USE_CHECK, 0, pt->run_hits[r]);
		pfree(vals);
	}
}

static void
apply_checked(PgTarget *pt, DsRelation *rel, PgRel *pr, DsChange *ch)
{
	char		kind = ch->kind == DS_CHANGE_INSERT ? 'i' :
		ch->kind == DS_CHANGE_UPDATE ? 'u' : 'd';
	bool		oldfull = ch->oldtup != NULL && rel->old_full;
	bool		oldkey = ch->oldtup != NULL;
	char	   *mask = NULL;
	PgCheckStmt *cs;
	const char **vals;
	const char **keys = palloc(sizeof(char *) * rel->nkeys);
	const char **newkeys = NULL;
	char		ctime[MAXDATELEN + 1];
	DsConflictHit *hit;
	bool		moves = false;
	int			i;

	if (ch->kind == DS_CHANGE_INSERT &&
		(rel->strategy != DS_LATEST_TIMESTAMP || rel->ts_att >= 0))
	{
		/* inserts go out as runs, unless they must compare commit times */
		key_values(rel, ch->newtup, keys);
		add_to_run(pt, rel, ch->newtup, 'c', make_hit(pt, rel, ch, keys, NULL));
		pfree(keys);
		return;
	}
	flush_run(pt);
	if (ch->kind == DS_CHANGE_DELETE && ch->oldtup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("DELETE from table \"%s.%s\" came without its key",
						rel->nspname, rel->relname)));
	if (ch->kind == DS_CHANGE_UPDATE)
	{
		for (i = 0; i < rel->natts; i++)
			if (ch->newtup->colstatus[i] == LOGICALREP_COLUMN_UNCHANGED)
			{
				mask = palloc(rel->natts + 1);
				break;
			}
		if (mask)
		{
			for (i = 0; i < rel->natts; i++)
				mask[i] = ch->newtup->colstatus[i] == LOGICALREP_COLUMN_UNCHANGED ? '0' : '1';
			mask[rel->natts] = '\0';
		}
	}
	key_values(rel, oldkey ? ch->oldtup : ch->newtup, keys);
	if (ch->kind == DS_CHANGE_UPDATE)
	{
		newkeys = palloc(sizeof(char *) * rel->nkeys);
		key_values(rel, ch->newtup, newkeys);
		for (i = 0; i < rel->nkeys; i++)
			if (!same_value(keys[i], newkeys[i]))
				moves = true;
	}
	cs = check_stmt(pt, rel, pr, kind, mask, oldfull, oldkey, moves);

	vals = palloc(sizeof(char *) * Max(cs->nparams, 1));
	for (i = 0; i < cs->nparams; i++)
	{
		switch (cs->psrc[i])
		{
			case 'n':
				vals[i] = colval(ch->newtup, cs->pcol[i]);
				break;
			case 'o':
				vals[i] = colval(ch->oldtup, cs->pcol[i]);
				break;
			default:
				strlcpy(ctime, timestamptz_to_str(ch->commit_time), sizeof(ctime));
				vals[i] = ctime;
				break;
		}
	}
	hit = make_hit(pt, rel, ch, keys, newkeys);
	send_exec_use(pt, rel, cs->name, cs->nparams, vals, pr->what, USE_CHECK, 0, hit);
	pfree(vals);
	pfree(keys);
	if (newkeys)
		pfree(newkeys);
	if (mask)
		pfree(mask);
}

static void
apply_change(PgTarget *pt, DsChange *ch)
{
	DsRelation *rel = ch->rel;
	PgRel	   *pr = pg_rel(pt, rel);
	const char **vals = palloc(sizeof(char *) * (rel->natts * 2 + 1));
	int			i;

	Assert(pt->in_xact);

	if (rel->detect)
	{
		apply_checked(pt, rel, pr, ch);
		pfree(vals);
		return;
	}

	switch (ch->kind)
	{
		case DS_CHANGE_INSERT:
			add_to_run(pt, rel, ch->newtup, 'i', NULL);
			break;

		case DS_CHANGE_UPDATE:
			{
				bool		partial = false;
				bool		key_changed = false;

				/* decode.c filled unchanged TOAST values where it could */
				for (i = 0; i < rel->natts; i++)
					if (ch->newtup->colstatus[i] == LOGICALREP_COLUMN_UNCHANGED)
						partial = true;

				if (rel->nkeys > 0 && ch->oldtup != NULL)
				{
					const char **oldk = palloc(sizeof(char *) * rel->nkeys);
					const char **newk = palloc(sizeof(char *) * rel->nkeys);

					key_values(rel, ch->oldtup, oldk);
					key_values(rel, ch->newtup, newk);
					for (i = 0; i < rel->nkeys; i++)
						if (oldk[i] == NULL || newk[i] == NULL ||
							strcmp(oldk[i], newk[i]) != 0)
							key_changed = true;
				}

				/* the whole new row under the same key: an upsert of a run */
				if (rel->nkeys > 0 && !partial && !key_changed)
				{
					add_to_run(pt, rel, ch->newtup, 'u', NULL);
					break;
				}
				flush_run(pt);
				if (rel->nkeys > 0 && !partial)
				{
					/* full new row: delete the old key if it moved, upsert */
					if (key_changed)
					{
						if (!pr->have_delete)
							prepare_delete(pt, rel, pr);
						key_values(rel, ch->oldtup, vals);
						/* the old row missing: update_missing */
						send_exec_use(pt, rel, pr->delete_name, rel->nkeys, vals, pr->what,
									  USE_MISSED, 1, NULL);
					}
					for (i = 0; i < rel->natts; i++)
						vals[i] = colval(ch->newtup, i);
					send_exec(pt, rel, upsert_name(pt, rel, pr, 'u'), rel->natts, vals, pr->what);
				}
				else
				{
					/* set what was sent; match by key or the full old row */
					char	   *mask = palloc(rel->natts + 1);
					int			n = 0;
					const char *name;
					LogicalRepTupleData *match = ch->oldtup ? ch->oldtup : ch->newtup;

					if (rel->nkeys == 0 && ch->oldtup == NULL)
						ereport(ERROR,
								(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								 errmsg("UPDATE of table \"%s.%s\" came without its old row",
										rel->nspname, rel->relname),
								 errhint("A table without a key needs REPLICA IDENTITY FULL.")));
					for (i = 0; i < rel->natts; i++)
					{
						mask[i] = ch->newtup->colstatus[i] == LOGICALREP_COLUMN_UNCHANGED ? '0' : '1';
						if (mask[i] == '1')
							vals[n++] = colval(ch->newtup, i);
					}
					mask[rel->natts] = '\0';
					name = update_variant(pt, rel, pr, mask);
					if (rel->nkeys > 0)
					{
						key_values(rel, match, vals + n);
						n += rel->nkeys;
					}
					else
					{
						for (i = 0; i < rel->natts; i++)
							vals[n++] = colval(match, i);
					}
					send_exec_use(pt, rel, name, n, vals, pr->what, USE_MISSED, 1, NULL);
				}
				break;
			}

		case DS_CHANGE_DELETE:
			if (ch->oldtup == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("DELETE from table \"%s.%s\" came without its key",
								rel->nspname, rel->relname)));
			if (rel->nkeys > 0)
			{
				/* checks that the key was sent */
				key_values(rel, ch->oldtup, vals);
				add_to_run(pt, rel, ch->oldtup, 'd', NULL);
				break;
			}
			flush_run(pt);
			if (!pr->have_delete)
				prepare_delete(pt, rel, pr);
			if (rel->nkeys > 0)
			{
				key_values(rel, ch->oldtup, vals);
				send_exec(pt, rel, pr->delete_name, rel->nkeys, vals, pr->what);
			}
			else
			{
				for (i = 0; i < rel->natts; i++)
					vals[i] = colval(ch->oldtup, i);
				send_exec_use(pt, rel, pr->delete_name, rel->natts, vals, pr->what,
							  USE_MISSED, 1, NULL);
			}
			break;
	}
	pfree(vals);
}

static void
pg_apply(DsApplyTarget *t, DsChange *ch)
{
	PgTarget   *pt = (PgTarget *) t;

	/* names the change if a statement of its own cannot be sent */
	pt->cur_change = ch;
	apply_change(pt, ch);
	pt->cur_change = NULL;
}

static void
pg_truncate(DsApplyTarget *t, List *rels, bool cascade, bool restart_seqs)
{
	PgTarget   *pt = (PgTarget *) t;
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;

	Assert(pt->in_xact);
	flush_run(pt);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "TRUNCATE ");
	foreach(lc, rels)
	{
		DsRelation *rel = lfirst(lc);

		appendStringInfo(&sql, "%s%s", first ? "" : ", ", rel->target_qname);
		first = false;
	}
	if (restart_seqs)
		appendStringInfoString(&sql, " RESTART IDENTITY");
	if (cascade)
		appendStringInfoString(&sql, " CASCADE");
	send_sql(pt, sql.data, "applying a TRUNCATE");
	pfree(sql.data);
}

/* ---------------------------------------------------------------------
 * Copy
 * ---------------------------------------------------------------------
 */
static void
pg_copy_begin(DsApplyTarget *t, const char *target_qname, List *colnames)
{
	PgTarget   *pt = (PgTarget *) t;
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;
	PGresult   *res;

	flush_run(pt);
	Assert(!pt->in_xact || pt->explicit_xact);	/* never inside a batch */
	leave_pipeline(pt);
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

static void
pg_copy_data(DsApplyTarget *t, const char *buf, int len)
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

static void
pg_copy_end(DsApplyTarget *t, Oid relid, XLogRecPtr lsn)
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
	enter_pipeline(pt);
	send_progress(pt, relid, lsn);
	leave_pipeline(pt);
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
	pt->base.apply = pg_apply;
	pt->base.truncate = pg_truncate;
	pt->base.commit = pg_commit;
	pt->base.copy_begin = pg_copy_begin;
	pt->base.copy_data = pg_copy_data;
	pt->base.copy_end = pg_copy_end;
	pt->base.poll = pg_poll;
	pt->base.durable = pg_durable;
	pt->base.close = pg_close;
	pt->base.settle = pg_settle;
	pt->base.socket = pg_socket;
	pt->base.cfg = cfg;
	pt->cxt = CurrentMemoryContext;
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
