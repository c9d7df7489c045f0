/*-------------------------------------------------------------------------
 *
 * partitioned.c
 *		Upserts into target tables that cannot return xmax: partitioned
 *		and foreign tables.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/partitioned.c
 *
 * NOTES
 *		The upserts of the plain path count conflicts with RETURNING t.xmax:
 *		0 for a row the statement inserted, set for one it updated
 *		(apply_pg_stmt.c, prepare_insert).  A partitioned table routes the row to
 *		its partition and returns it through a slot that has no system
 *		columns: "cannot retrieve a system column in this context", on the
 *		first change.  So does a foreign table.
 *
 *		For those, the statement reads first which of its keys the table
 *		holds (a CTE under the statement's snapshot, so before its own
 *		insert), and RETURNING says, for each row it wrote, whether its key
 *		was there: 1 (updated) or 0 (inserted), read like xmax.
 *
 *		  WITH e AS MATERIALIZED (SELECT t.id FROM tbl t WHERE t.id IN ($1, $3))
 *		  INSERT INTO tbl AS t (id, v) VALUES ($1, $2), ($3, $4)
 *			ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v WHERE ...
 *			RETURNING ((t.id) IN (SELECT e.id FROM e))::int
 *
 *		Cost: one more index probe a row (on every partition that run-time
 *		pruning keeps) and a hashed look-up in e; only such tables pay it.
 *		The key parameters are typed by the CTE, which comes first: the key
 *		columns' types, as the INSERT would give them.  A key inserted by
 *		another session after the statement's snapshot was taken counts as
 *		inserted (the counter only; the row is written all the same).
 *
 *		The checking path's run of inserts (prepare_check_run) only uses
 *		its xmax to skip a join: it returns false there instead.  Tables
 *		without a key are matched by (tableoid, ctid), which is unique in a
 *		partitioned table too (ctid alone is not).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "utils/builtins.h"

#include "target/partitioned.h"

/* (t.k1, t.k2) or t.k1, with prefix "t." or "e." */
static void
append_key_tuple(StringInfo sql, const DsRelation *rel, const char *alias)
{
	int			k;

	if (rel->nkeys > 1)
		appendStringInfoChar(sql, '(');
	for (k = 0; k < rel->nkeys; k++)
		appendStringInfo(sql, "%s%s.%s", k > 0 ? ", " : "", alias,
						 quote_identifier(rel->attnames[rel->keyatts[k]]));
	if (rel->nkeys > 1)
		appendStringInfoChar(sql, ')');
}

/*
 * WITH e AS MATERIALIZED (SELECT <key> FROM tbl t WHERE <key> IN (...)):
 * the keys of the nrows rows of a multi-row INSERT (parameters numbered
 * row by row, natts each) that the table holds.
 */
void
ds_append_existing_keys(StringInfo sql, const DsRelation *rel, int nrows)
{
	int			r;
	int			k;

	Assert(rel->nkeys > 0);
	appendStringInfoString(sql, "WITH e AS MATERIALIZED (SELECT ");
	for (k = 0; k < rel->nkeys; k++)
		appendStringInfo(sql, "%st.%s", k > 0 ? ", " : "",
						 quote_identifier(rel->attnames[rel->keyatts[k]]));
	appendStringInfo(sql, " FROM %s t WHERE ", rel->target_qname);
	append_key_tuple(sql, rel, "t");
	appendStringInfoString(sql, " IN (");
	for (r = 0; r < nrows; r++)
	{
		if (r > 0)
			appendStringInfoString(sql, ", ");
		if (rel->nkeys > 1)
			appendStringInfoChar(sql, '(');
		for (k = 0; k < rel->nkeys; k++)
			appendStringInfo(sql, "%s$%d", k > 0 ? ", " : "",
							 r * rel->natts + rel->keyatts[k] + 1);
		if (rel->nkeys > 1)
			appendStringInfoChar(sql, ')');
	}
	appendStringInfoString(sql, ")) ");
}

/* RETURNING 1 for a row whose key e found, 0 for one inserted */
void
ds_append_returning_existed(StringInfo sql, const DsRelation *rel)
{
	int			k;

	appendStringInfoString(sql, " RETURNING (");
	append_key_tuple(sql, rel, "t");
	appendStringInfoString(sql, " IN (SELECT ");
	for (k = 0; k < rel->nkeys; k++)
		appendStringInfo(sql, "%se.%s", k > 0 ? ", " : "",
						 quote_identifier(rel->attnames[rel->keyatts[k]]));
	appendStringInfoString(sql, " FROM e))::int");
}
