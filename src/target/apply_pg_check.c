/*-------------------------------------------------------------------------
 *
 * apply_pg_check.c
 *		The PostgreSQL target's conflict-checking path: one statement a
 *		change that finds the target row, decides and writes.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_check.c
 *
 * NOTES
 *		A table whose strategy detects conflicts (target-wins, manual,
 *		latest-timestamp, and source-wins with log_conflicts; relmap.c)
 *		gets one statement a change that finds the target row, decides by
 *		the strategy and writes, so changes stay pipelined; its result row
 *		(kind, whether the source's version is on the target, the target
 *		row) goes to the decider (on_conflict) unless the kind is 'none'.
 *		Two shapes:
 *
 *		- target-wins, manual (keep_target_stmt): a conflict never writes,
 *		  so the clean change goes first (UPDATE ... WHERE key AND row = old
 *		  row) and the row is read only when it did nothing.
 *		- source-wins with log_conflicts, latest-timestamp (may_win_stmt):
 *		  the row is read first (the statement's snapshot), then one write
 *		  whose condition on the live row is "clean, or the source wins".
 *
 *		Whatever comes first in the text gives the parameters the target
 *		columns' types.  Inserts go out in runs (prepare_check_run), which
 *		apply_pg_stmt.c buffers with a conflict record a row
 *		(ds_pg_make_hit), but for latest-timestamp on commit times; those
 *		and the other changes come here one by one (ds_pg_apply_checked).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/memutils.h"

#include "target/apply.h"
#include "target/apply_pg_int.h"

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
		if ((mask && mask[i] != '1') || (cs->kind == 'i' && ds_pg_is_key_att(rel, i)))
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
	ds_pg_append_columns(sql, rel, false);
	appendStringInfoString(sql, ") ");
	if (cs->kind == 'i')
	{
		appendStringInfoString(sql, "VALUES (");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", check_param(cs, 'n', i, cap));
		appendStringInfoString(sql, ") ON CONFLICT (");
		ds_pg_append_columns(sql, rel, true);
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
		ds_pg_append_columns(sql, rel, false);
		appendStringInfoString(sql, ") VALUES (");
		for (i = 0; i < rel->natts; i++)
			appendStringInfo(sql, "%s$%d", i > 0 ? ", " : "", check_param(cs, 'n', i, cap));
		appendStringInfoChar(sql, ')');
		if (ds_pg_append_on_conflict_update(sql, rel, NULL))
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

	ds_pg_send_prepare(pt, cs->name, sql.data, pr->what);
	pfree(sql.data);
	return cs;
}

/* the values of a tuple's columns, copied into buf (see ds_pg_make_hit) */
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
DsConflictHit *
ds_pg_make_hit(PgTarget *pt, DsRelation *rel, DsChange *ch,
			   const char **keyvals, const char **newkeyvals)
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
	ds_pg_append_insert_rows(&sql, rel, nrows);
	if (may_win)
	{
		/* the source's row replaces a differing one when it wins */
		StringInfoData differs;

		initStringInfo(&differs);
		if (ds_pg_append_on_conflict_update(&sql, rel, &differs))
			appendStringInfo(&sql, " WHERE (%s) AND %s", differs.data,
							 run_source_wins(rel, psprintf("EXCLUDED.%s",
														   quote_identifier(rel->attnames[Max(rel->ts_att, 0)]))));
		pfree(differs.data);
		/* xmax 0: inserted; the others were there (unknown: look them up) */
		if (ds_pg_target_returns_xmax(pt, rel, pr))
			appendStringInfoString(&sql, " RETURNING t.xmax::text = '0' AS ins, ");
		else
			appendStringInfoString(&sql, " RETURNING false AS ins, ");
	}
	else
	{
		appendStringInfoString(&sql, " ON CONFLICT (");
		ds_pg_append_columns(&sql, rel, true);
		appendStringInfoString(&sql, ") DO NOTHING RETURNING true AS ins, ");
	}
	ds_pg_append_columns(&sql, rel, true);

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
	ds_pg_send_prepare(pt, pr->check_run_name, sql.data, pr->what);
	pr->have_check_run = true;
	pfree(sql.data);
}

/*
 * Send the buffered run of inserts (ds_pg_flush_run): a full run as one
 * statement, a shorter one row by row.
 */
void
ds_pg_flush_check_run(PgTarget *pt, DsRelation *rel, PgRel *pr)
{
	int			r;
	int			i;

	if (pt->run_n == ds_pg_run_rows(rel, 'c') && pt->run_n > 1)
	{
		DsConflictHit **hits = MemoryContextAlloc(pt->hitcxt, sizeof(DsConflictHit *) * pt->run_n);

		if (!pr->have_check_run)
			prepare_check_run(pt, rel, pr, pt->run_n);
		memcpy(hits, pt->run_hits, sizeof(DsConflictHit *) * pt->run_n);
		ds_pg_send_prepared(pt, rel, pr->check_run_name, pt->run_n * rel->natts,
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
		ds_pg_send_exec_use(pt, rel, cs->name, cs->nparams, vals, pr->what, USE_CHECK, 0, pt->run_hits[r]);
		pfree(vals);
	}
}

/*
 * A change of the checking path as a statement of its own: updates,
 * deletes, and inserts that compare commit times (the others go in runs,
 * see apply_change).
 */
void
ds_pg_apply_checked(PgTarget *pt, DsRelation *rel, PgRel *pr, DsChange *ch)
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

	ds_pg_flush_run(pt);
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
	ds_pg_key_values(rel, oldkey ? ch->oldtup : ch->newtup, keys);
	if (ch->kind == DS_CHANGE_UPDATE)
	{
		newkeys = palloc(sizeof(char *) * rel->nkeys);
		ds_pg_key_values(rel, ch->newtup, newkeys);
		for (i = 0; i < rel->nkeys; i++)
			if (!ds_pg_same_value(keys[i], newkeys[i]))
				moves = true;
	}
	cs = check_stmt(pt, rel, pr, kind, mask, oldfull, oldkey, moves);

	vals = palloc(sizeof(char *) * Max(cs->nparams, 1));
	for (i = 0; i < cs->nparams; i++)
	{
		switch (cs->psrc[i])
		{
			case 'n':
				vals[i] = ds_pg_colval(ch->newtup, cs->pcol[i]);
				break;
			case 'o':
				vals[i] = ds_pg_colval(ch->oldtup, cs->pcol[i]);
				break;
			default:
				strlcpy(ctime, timestamptz_to_str(ch->commit_time), sizeof(ctime));
				vals[i] = ctime;
				break;
		}
	}
	hit = ds_pg_make_hit(pt, rel, ch, keys, newkeys);
	ds_pg_send_exec_use(pt, rel, cs->name, cs->nparams, vals, pr->what, USE_CHECK, 0, hit);
	pfree(vals);
	pfree(keys);
	if (newkeys)
		pfree(newkeys);
	if (mask)
		pfree(mask);
}
