/*-------------------------------------------------------------------------
 *
 * apply_pg_stmt.c
 *		The PostgreSQL target's changes: the plain path's prepared
 *		statements, and runs of changes sent as one statement.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_stmt.c
 *
 * NOTES
 *		Every change comes in here (ds_pg_apply), whichever path its table
 *		takes, and what is done for each row stays in this file: a change
 *		joins a run (ds_pg_add_to_run), and a run of inserts long enough
 *		to go on as COPY appends its rows to the open COPY from here as
 *		well (copy_wanted, copy_add; the COPY itself is apply_pg_copy.c).
 *		A change of the conflict-checking path is handed to
 *		apply_pg_check.c, except inserts that go in runs: they join one
 *		here, with a conflict record each (ds_pg_make_hit).
 *
 *		The plain path (tables on source-wins without log_conflicts, and
 *		tables without a key) writes the source's version and only counts
 *		conflicts, from what each statement returns or how many rows it
 *		touched (counted_conflicts, read in apply_pg_pipe.c):
 *
 *		- an INSERT, and an UPDATE that sends the whole new row under the
 *		  same key, is an upsert on the key; an existing row that differs
 *		  is overwritten (insert_exists), a missing one is inserted
 *		  (update_missing);
 *		- an UPDATE that moves the key deletes the old key (a missing row:
 *		  update_missing) and upserts the new row;
 *		- an UPDATE with columns not sent (unchanged TOAST values) sets the
 *		  columns sent; a missing row stays missing (update_missing);
 *		- a DELETE of a missing row deletes nothing (delete_missing).
 *
 *		A table without a key gets plain INSERTs, and its UPDATEs and
 *		DELETEs match the first row equal to the whole old row.
 *
 *		Statements are prepared once per relation version and connection
 *		(PgRel), under names that hold the relation's version, so the
 *		statements of an older version can stay on the server.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "copytext.h"
#include "sendlimit.h"
#include "target/apply.h"
#include "target/apply_pg_int.h"
#include "target/partitioned.h"

typedef struct PgUpdateVariant
{
	char	   *mask;			/* '1' for each column the UPDATE sets */
	char		name[NAMEDATALEN];
} PgUpdateVariant;

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */

/* rel's statements on this connection, forgotten when rel changed */
PgRel *
ds_pg_rel(PgTarget *pt, DsRelation *rel)
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

bool
ds_pg_is_key_att(DsRelation *rel, int att)
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

/* the stream's columns, or only its key columns, comma-separated */
void
ds_pg_append_columns(StringInfo sql, DsRelation *rel, bool keys_only)
{
	int			n = keys_only ? rel->nkeys : rel->natts;
	int			i;

	for (i = 0; i < n; i++)
		appendStringInfo(sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(rel->attnames[keys_only ? rel->keyatts[i] : i]));
}

/* INSERT INTO tbl AS t (columns) VALUES ($1, ...), ...: nrows rows */
void
ds_pg_append_insert_rows(StringInfo sql, DsRelation *rel, int nrows)
{
	int			i;
	int			r;

	appendStringInfo(sql, "INSERT INTO %s AS t (", rel->target_qname);
	ds_pg_append_columns(sql, rel, false);
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
bool
ds_pg_append_on_conflict_update(StringInfo sql, DsRelation *rel,
								StringInfo differs)
{
	int			i;
	bool		any = false;

	appendStringInfoString(sql, " ON CONFLICT (");
	ds_pg_append_columns(sql, rel, true);
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

		if (ds_pg_is_key_att(rel, i))
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
 * INSERT of nrows rows that, on a key the target already has, updates the
 * row instead (source wins).  Its RETURNING xmax counts conflicts: for
 * inserts (flavor 'i') a returned row with xmax set was there already and
 * differed (identical rows are left alone and return nothing); for
 * whole-row updates ('u') a row with xmax 0 was missing.  A table without
 * a key gets plain INSERTs.
 */
static void
prepare_insert(PgTarget *pt, DsRelation *rel, PgRel *pr, int nrows, const char *name,
			   char flavor)
{
	StringInfoData sql;
	bool		xmax = rel->nkeys > 0 && ds_pg_target_returns_xmax(pt, rel, pr);

	initStringInfo(&sql);
	if (rel->nkeys > 0 && !xmax)
		ds_append_existing_keys(&sql, rel, nrows);
	ds_pg_append_insert_rows(&sql, rel, nrows);
	if (rel->nkeys > 0)
	{
		StringInfoData differs;

		initStringInfo(&differs);
		if (ds_pg_append_on_conflict_update(&sql, rel, &differs) && flavor == 'i')
			appendStringInfo(&sql, " WHERE %s", differs.data);
		if (xmax)
			appendStringInfoString(&sql, " RETURNING t.xmax");
		else
			ds_append_returning_existed(&sql, rel);
		pfree(differs.data);
	}
	ds_pg_send_prepare(pt, name, sql.data, pr->what);
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

/* DELETE of nrows keys: WHERE key IN (...) */
static void
prepare_multi_delete(PgTarget *pt, DsRelation *rel, PgRel *pr, int nrows)
{
	StringInfoData sql;
	int			i;
	int			r;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE (", rel->target_qname);
	ds_pg_append_columns(&sql, rel, true);
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
	ds_pg_send_prepare(pt, pr->multi_delete_name, sql.data, pr->what);
	pr->have_multi_delete = true;
	pfree(sql.data);
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
	ds_pg_send_prepare(pt, pr->delete_name, sql.data, pr->what);
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

	ds_pg_send_prepare(pt, v->name, sql.data, pr->what);
	pfree(sql.data);
	return v->name;
}

/* ---------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------------
 */

/* values a row of a run has: the whole row, or its key for deletes */
static int
run_width(DsRelation *rel, char kind)
{
	return kind == 'd' ? rel->nkeys : rel->natts;
}

/* rows a run statement takes: 64, fewer for wide rows (65535 params) */
int
ds_pg_run_rows(DsRelation *rel, char kind)
{
	return Max(1, Min(64, 65535 / Max(run_width(rel, kind), 1)));
}

/*
 * Send the buffered run: full runs as one statement, a shorter remainder
 * row by row.  Called before anything else goes to the target, so changes
 * keep their order.
 */
void
ds_pg_flush_run(PgTarget *pt)
{
	DsRelation *rel;
	PgRel	   *pr;
	int			r;
	PgIdent    *was_sending = pt->sending;

	/* an open COPY ends here; a chunk it gave back may leave a run */
	if (pt->copy_rel != NULL)
		ds_pg_copy_end(pt);
	rel = pt->run_rel;
	if (rel == NULL || pt->run_n == 0)
	{
		pt->run_rel = NULL;
		return;
	}
	if (rel->version != pt->run_version)
		elog(ERROR, "relation %u changed while a run of changes was buffered", rel->remoteid);
	pr = ds_pg_rel(pt, rel);
	pt->sending = &pt->run_ident;

	/* a run of inserts that goes on and on continues as COPY */
	if (pt->run_kind == 'i' && (pt->run_n == ds_pg_run_rows(rel, 'i') || pt->run_full))
		ds_pg_streak_add(pt, rel, pt->run_n);
	else
		pt->streak_rel = NULL;
	if (pt->run_kind == 'd')
	{
		if (pt->run_n == ds_pg_run_rows(rel, 'd') && pt->run_n > 1)
		{
			if (!pr->have_multi_delete)
				prepare_multi_delete(pt, rel, pr, pt->run_n);
			ds_pg_send_exec_use(pt, rel, pr->multi_delete_name, pt->run_n * rel->nkeys,
								(const char *const *) pt->run_vals, pr->what,
								USE_MISSED, pt->run_n, NULL);
		}
		else
		{
			if (!pr->have_delete)
				prepare_delete(pt, rel, pr);
			for (r = 0; r < pt->run_n; r++)
				ds_pg_send_exec_use(pt, rel, pr->delete_name, rel->nkeys,
									(const char *const *) pt->run_vals + r * rel->nkeys, pr->what,
									USE_MISSED, 1, NULL);
		}
	}
	else if (pt->run_kind == 'c')
		ds_pg_flush_check_run(pt, rel, pr);
	else if (pt->run_n == ds_pg_run_rows(rel, pt->run_kind) && pt->run_n > 1)
	{
		bool	   *have = pt->run_kind == 'i' ? &pr->have_multi : &pr->have_multi_u;
		char	   *name = pt->run_kind == 'i' ? pr->multi_name : pr->multi_u_name;

		if (!*have)
		{
			snprintf(name, NAMEDATALEN, "ds_%u_%u_m%c", rel->remoteid, rel->version, pt->run_kind);
			prepare_insert(pt, rel, pr, pt->run_n, name, pt->run_kind);
			*have = true;
		}
		ds_pg_send_exec_use(pt, rel, name, pt->run_n * rel->natts,
							(const char *const *) pt->run_vals, pr->what,
							upsert_use(rel, pt->run_kind), 0, NULL);
	}
	else
	{
		const char *name = upsert_name(pt, rel, pr, pt->run_kind);

		for (r = 0; r < pt->run_n; r++)
			ds_pg_send_exec_use(pt, rel, name, rel->natts,
								(const char *const *) pt->run_vals + r * rel->natts, pr->what,
								upsert_use(rel, pt->run_kind), 0, NULL);
	}
	pt->sending = was_sending;
	pt->run_n = 0;
	pt->run_bytes = 0;
	pt->run_full = false;
	pt->run_rel = NULL;
	MemoryContextReset(pt->runcxt);
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
			if (!ds_pg_same_value(row[rel->keyatts[k]], ds_pg_colval(tup, rel->keyatts[k])))
				break;
		if (k == rel->nkeys)
			return true;
	}
	return false;
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
		pr = ds_pg_rel(pt, rel);
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

/* one insert into the open COPY */
static void
copy_add(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup)
{
	ds_copytext_append_row(&pt->copy_buf, tup, rel->natts);
	pt->copy_rows++;
	if (pt->copy_buf.len - pt->copy_sent >= DS_COPY_SEND_BYTES)
		ds_pg_copy_push(pt);
	if (pt->copy_buf.len >= DS_COPY_CHUNK_BYTES)
		ds_pg_copy_end(pt);
}

/*
 * Buffer a change of a run: inserts ('i') or whole-row updates ('u': their
 * new rows) or deletes by key ('d': their keys), or inserts of the checking
 * path ('c', hit their conflict record); a full run goes out at once.  One
 * upsert statement may not touch a row twice, so a second change of a key
 * starts a new run.  A run is full at ds_pg_run_rows rows or ds_run_limit()
 * bytes: a row that would take it over starts the next, and a row over it
 * goes out alone at once (sendlimit.c).
 */
void
ds_pg_add_to_run(PgTarget *pt, DsRelation *rel, LogicalRepTupleData *tup,
				 char kind, DsConflictHit *hit)
{
	int			i;
	int			max = ds_pg_run_rows(rel, kind);
	int			width = run_width(rel, kind);
	Size		limit = ds_run_limit() - NAMEDATALEN - 16;	/* less the fixed fields */
	Size		bytes = 0;
	bool		over;

	if (kind == 'i' && copy_wanted(pt, rel, tup))
	{
		if (pt->copy_rel == rel || ds_pg_copy_open(pt, rel))
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
		ds_pg_flush_run(pt);
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
	if (pt->cur_change == NULL)
		pt->run_ident.first_lsn = InvalidXLogRecPtr;	/* rows of a refused COPY chunk */
	else if (pt->run_n == 0 || !XLogRecPtrIsInvalid(pt->run_ident.first_lsn))
	{
		if (pt->run_n == 0)
		{
			pt->run_ident.first_lsn = pt->cur_change->change_lsn;
			pt->run_ident.first_seq = pt->cur_change->change_seq;
		}
		pt->run_ident.last_lsn = pt->cur_change->change_lsn;
		pt->run_ident.last_seq = pt->cur_change->change_seq;
	}
	for (i = 0; i < width; i++)
	{
		const char *v = ds_pg_colval(tup, kind == 'd' ? rel->keyatts[i] : i);

		pt->run_vals[pt->run_n * width + i] = v ? MemoryContextStrdup(pt->runcxt, v) : NULL;
	}
	pt->run_n++;
	pt->run_bytes += bytes;
	if (pt->run_n == max || pt->run_bytes >= limit)
	{
		pt->run_full = pt->run_n < max;
		ds_pg_flush_run(pt);
	}
}

/* ---------------------------------------------------------------------
 * Changes
 * ---------------------------------------------------------------------
 */

/* key values of a change: from the old tuple when sent, else the new one */
void
ds_pg_key_values(DsRelation *rel, LogicalRepTupleData *tup, const char **out)
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
		out[i] = ds_pg_colval(tup, a);
	}
}

static void
apply_change(PgTarget *pt, DsChange *ch)
{
	DsRelation *rel = ch->rel;
	PgRel	   *pr = ds_pg_rel(pt, rel);
	const char **vals = palloc(sizeof(char *) * (rel->natts * 2 + 1));
	int			i;

	Assert(pt->in_xact);

	if (rel->detect)
	{
		/*
		 * The checking path (apply_pg_check.c).  Its inserts go out in runs,
		 * with a conflict record a row, but for latest-timestamp on commit
		 * times, which keeps a statement a row (see prepare_check_run).
		 */
		if (ch->kind == DS_CHANGE_INSERT &&
			(rel->strategy != DS_LATEST_TIMESTAMP || rel->ts_att >= 0))
		{
			const char **keys = palloc(sizeof(char *) * rel->nkeys);

			ds_pg_key_values(rel, ch->newtup, keys);
			ds_pg_add_to_run(pt, rel, ch->newtup, 'c',
							 ds_pg_make_hit(pt, rel, ch, keys, NULL));
			pfree(keys);
		}
		else
			ds_pg_apply_checked(pt, rel, pr, ch);
		pfree(vals);
		return;
	}

	switch (ch->kind)
	{
		case DS_CHANGE_INSERT:
			ds_pg_add_to_run(pt, rel, ch->newtup, 'i', NULL);
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

					ds_pg_key_values(rel, ch->oldtup, oldk);
					ds_pg_key_values(rel, ch->newtup, newk);
					for (i = 0; i < rel->nkeys; i++)
						if (oldk[i] == NULL || newk[i] == NULL ||
							strcmp(oldk[i], newk[i]) != 0)
							key_changed = true;
				}

				/* the whole new row under the same key: an upsert of a run */
				if (rel->nkeys > 0 && !partial && !key_changed)
				{
					ds_pg_add_to_run(pt, rel, ch->newtup, 'u', NULL);
					break;
				}
				ds_pg_flush_run(pt);
				if (rel->nkeys > 0 && !partial)
				{
					/* full new row: delete the old key if it moved, upsert */
					if (key_changed)
					{
						if (!pr->have_delete)
							prepare_delete(pt, rel, pr);
						ds_pg_key_values(rel, ch->oldtup, vals);
						/* the old row missing: update_missing */
						ds_pg_send_exec_use(pt, rel, pr->delete_name, rel->nkeys, vals, pr->what,
											USE_MISSED, 1, NULL);
					}
					for (i = 0; i < rel->natts; i++)
						vals[i] = ds_pg_colval(ch->newtup, i);
					ds_pg_send_exec(pt, rel, upsert_name(pt, rel, pr, 'u'), rel->natts, vals, pr->what);
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
							vals[n++] = ds_pg_colval(ch->newtup, i);
					}
					mask[rel->natts] = '\0';
					name = update_variant(pt, rel, pr, mask);
					if (rel->nkeys > 0)
					{
						ds_pg_key_values(rel, match, vals + n);
						n += rel->nkeys;
					}
					else
					{
						for (i = 0; i < rel->natts; i++)
							vals[n++] = ds_pg_colval(match, i);
					}
					ds_pg_send_exec_use(pt, rel, name, n, vals, pr->what, USE_MISSED, 1, NULL);
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
				ds_pg_key_values(rel, ch->oldtup, vals);
				ds_pg_add_to_run(pt, rel, ch->oldtup, 'd', NULL);
				break;
			}
			/* no key: the first row equal to the whole old row */
			ds_pg_flush_run(pt);
			if (!pr->have_delete)
				prepare_delete(pt, rel, pr);
			for (i = 0; i < rel->natts; i++)
				vals[i] = ds_pg_colval(ch->oldtup, i);
			ds_pg_send_exec_use(pt, rel, pr->delete_name, rel->natts, vals, pr->what,
								USE_MISSED, 1, NULL);
			break;
	}
	pfree(vals);
}

void
ds_pg_apply(DsApplyTarget *t, DsChange *ch)
{
	PgTarget   *pt = (PgTarget *) t;

	PgIdent		ident;

	/* names the change if a statement of its own cannot be sent */
	pt->cur_change = ch;
	/* and in the CONTEXT of an error of a statement of its own */
	ident.first_lsn = ident.last_lsn = ch->change_lsn;
	ident.first_seq = ident.last_seq = ch->change_seq;
	pt->sending = &ident;
	apply_change(pt, ch);
	pt->sending = NULL;
	pt->cur_change = NULL;
}

void
ds_pg_truncate(DsApplyTarget *t, List *rels, bool cascade, bool restart_seqs)
{
	PgTarget   *pt = (PgTarget *) t;
	StringInfoData sql;
	ListCell   *lc;
	bool		first = true;

	Assert(pt->in_xact);
	ds_pg_flush_run(pt);
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
	ds_pg_send_sql(pt, sql.data, "applying a TRUNCATE");
	pfree(sql.data);
}
