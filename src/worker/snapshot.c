/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *		Initial copy: COPY TO under the slot's snapshot, piped into the
 *		target's COPY FROM.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/snapshot.c
 *
 * NOTES
 *		The copy runs on the replication connection itself: BEGIN READ ONLY
 *		ISOLATION LEVEL REPEATABLE READ; CREATE_REPLICATION_SLOT ...
 *		(SNAPSHOT 'use'); COPY t (cols) TO STDOUT per plain table or leaf
 *		partition; COMMIT.  Relation-form COPY, never COPY (SELECT ...):
 *		the server refuses a relation that became a view or a foreign table
 *		at the moment of the copy, so no owner code runs (trust.c).
 *		The transaction's snapshot is the slot's consistent point, so a
 *		change is either in the copy or streamed after it, never both.
 *		Data goes from source to target in CopyData-sized pieces; nothing
 *		lands on disk in between.  Every table of a copy is replaced in one
 *		target transaction that also records the copy's LSN per table (and,
 *		for the pipeline's first copy, as the stream's start), so a crash
 *		mid-copy leaves the target as it was and the copy starts over.
 *
 *		A table added later, or resynced, is copied the same way under a
 *		temporary slot of its own, while the stream is stopped: its changes
 *		committed before that slot's point are then skipped by the stream.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "target/apply.h"
#include "pgconn.h"
#include "worker/relmap.h"
#include "worker/snapshot.h"
#include "trust.h"

typedef struct CopyPlan
{
	Oid			relid;
	List	   *source_sqls;	/* one COPY ... TO STDOUT per leaf */
	bool		rls;			/* a leaf has row-level security */
	char	   *target_qname;
	List	   *cols;
} CopyPlan;

static List *
plan_copies(DsPipelineConfig *cfg, List *relids)
{
	List	   *plans = NIL;
	ListCell   *lc;
	bool		started = ds_xact_start();

	foreach(lc, relids)
	{
		CopyPlan   *p = palloc0(sizeof(CopyPlan));
		char	   *nsp;
		char	   *rel;
		bool		partitioned;
		StringInfoData cols;
		ListCell   *c;
		bool		first = true;

		p->relid = lfirst_oid(lc);
		ds_recheck_table(cfg, p->relid);
		p->cols = ds_table_columns(p->relid, &nsp, &rel, &partitioned);
		p->target_qname = ds_target_qname(cfg, nsp, rel);
		initStringInfo(&cols);
		foreach(c, p->cols)
		{
			appendStringInfo(&cols, "%s%s", first ? "" : ", ", quote_identifier(strVal(lfirst(c))));
			first = false;
		}
		foreach(c, ds_copy_leaves(p->relid, &p->rls))
		{
			Oid			leaf = lfirst_oid(c);

			p->source_sqls = lappend(p->source_sqls,
									 psprintf("COPY %s (%s) TO STDOUT",
											  quote_qualified_identifier(get_namespace_name(get_rel_namespace(leaf)),
																		 get_rel_name(leaf)),
											  cols.data));
		}
		plans = lappend(plans, p);
	}
	ds_xact_commit(started);
	return plans;
}

/* a row libpq handed us, not yet freed when an error interrupted */
static char *copybuf = NULL;

/* rows the copies of this session sent, not yet counted (ds_snapshot_take_rows) */
static uint64 rows_copied = 0;

/* The rows copied since the last call, once their copies are committed. */
uint64
ds_snapshot_take_rows(void)
{
	uint64		n = rows_copied;

	rows_copied = 0;
	return n;
}

static void copy_leaf(DsStream *s, DsApplyTarget *t, const char *sql);

static void
copy_one(DsStream *s, DsApplyTarget *t, CopyPlan *p, XLogRecPtr lsn)
{
	ListCell   *lc;

	if (copybuf)
		PQfreemem(copybuf);
	copybuf = NULL;

	if (p->rls)
	{
		bool		started = ds_xact_start();

		ds_check_copy_role(PQuser(s->conn), p->relid);
		ds_xact_commit(started);
	}
	t->copy_begin(t, p->target_qname, p->cols);
	foreach(lc, p->source_sqls)
		copy_leaf(s, t, lfirst(lc));
	t->copy_end(t, p->relid, lsn);
}

/* one relation-form COPY TO of the source, piped into the open target COPY */
static void
copy_leaf(DsStream *s, DsApplyTarget *t, const char *sql)
{
	PGresult   *res;

	res = ds_pq_exec(s->conn, sql, DS_CONN_SOURCE);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
		ds_pq_report(s->conn, res, DS_CONN_SOURCE, "COPY TO");
	PQclear(res);
	for (;;)
	{
		char	   *buf = NULL;
		int			len = PQgetCopyData(s->conn, &buf, 1);

		if (len > 0)
		{
			/* an error in copy_data leaves it to the next copy to free */
			copybuf = buf;
			t->copy_data(t, buf, len);
			PQfreemem(buf);
			copybuf = NULL;
			rows_copied++;		/* COPY TO STDOUT hands out one row a call */
			continue;
		}
		if (len == 0)
		{
			ds_pq_wait(s->conn, WL_SOCKET_READABLE, -1);
			if (PQconsumeInput(s->conn) == 0)
				ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "COPY TO");
			continue;
		}
		if (len == -2)
			ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "COPY TO");
		break;					/* -1: done */
	}
	while ((res = ds_pq_get_result(s->conn, DS_CONN_SOURCE)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ds_pq_report(s->conn, res, DS_CONN_SOURCE, "COPY TO");
		PQclear(res);
	}
}

/*
 * Create the slot (on the stream connection s, not yet streaming) and,
 * when copy is true, copy relids under its snapshot.  The target commits
 * the copy together with the stream's start position.  Returns the slot's
 * consistent point.
 */
XLogRecPtr
ds_snapshot_initial(DsStream *s, DsApplyTarget *t, DsPipelineConfig *cfg,
					List *relids, bool copy)
{
	List	   *plans = copy ? plan_copies(cfg, relids) : NIL;
	XLogRecPtr	lsn;
	ListCell   *lc;

	ds_pq_exec_ok(s->conn, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", DS_CONN_SOURCE);
	lsn = ds_stream_create_slot(s, cfg->slot_name, false);
	foreach(lc, plans)
		copy_one(s, t, lfirst(lc), lsn);
	t->commit(t, 0, lsn, true);
	ds_pq_exec_ok(s->conn, "COMMIT", DS_CONN_SOURCE);
	return lsn;
}

/*
 * Copy relids under a temporary slot of a new replication connection
 * (the caller has stopped its stream).  Returns the copy's LSN.
 */
XLogRecPtr
ds_snapshot_tables(DsApplyTarget *t, DsPipelineConfig *cfg, List *relids)
{
	List	   *plans = plan_copies(cfg, relids);
	DsStream   *s;
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	char		appname[NAMEDATALEN];
	char		slot[NAMEDATALEN];

	snprintf(appname, sizeof(appname), "datasync copy %s", cfg->name);
	{
		/*
		 * The suffix whole, the pipeline's slot name cut to fit: never the
		 * pipeline's own name, and not one another pipeline can be named to.
		 */
		char		suffix[32];

		snprintf(suffix, sizeof(suffix), "_copy_%d_%08x", MyProcPid,
				 pg_prng_uint32(&pg_global_prng_state));
		snprintf(slot, sizeof(slot), "%.*s%s",
				 (int) (NAMEDATALEN - 1 - strlen(suffix)), cfg->slot_name, suffix);
	}
	s = ds_stream_connect(appname);
	PG_TRY();
	{
		ListCell   *lc;

		ds_pq_exec_ok(s->conn, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", DS_CONN_SOURCE);
		lsn = ds_stream_create_slot(s, slot, true);
		foreach(lc, plans)
			copy_one(s, t, lfirst(lc), lsn);
		t->commit(t, 0, InvalidXLogRecPtr, true);
		ds_pq_exec_ok(s->conn, "COMMIT", DS_CONN_SOURCE);
	}
	PG_FINALLY();
	{
		ds_stream_close(s);
	}
	PG_END_TRY();
	return lsn;
}
