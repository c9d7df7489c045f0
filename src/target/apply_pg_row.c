/*-------------------------------------------------------------------------
 *
 * apply_pg_row.c
 *		One row written to a PostgreSQL target outside the stream: the
 *		target's put_row, which resolve_conflict uses.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_row.c
 *
 * NOTES
 *		The row comes as JSON (datasync.conflicts keeps rows as jsonb) and
 *		is turned into the target table's row type on the target with
 *		jsonb_populate_record, so every value goes through the target
 *		column type's own input function, as the stream's text values do.
 *		The session is the pipeline's (ds_pg_open_session): the same role,
 *		no ordinary triggers, and waits that answer interrupts.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "pgconn.h"
#include "target/apply_pg_int.h"

static void
exec_row(PgTarget *pt, const char *sql, const char *param)
{
	PGresult   *res = ds_pq_exec_params(pt->conn, sql, param ? 1 : 0,
										param ? &param : NULL, DS_CONN_TARGET);

	PQclear(res);
}

/* is col one of keycols? */
static bool
is_key(List *keycols, const char *col)
{
	ListCell   *lc;

	foreach(lc, keycols)
	{
		if (strcmp(lfirst(lc), col) == 0)
			return true;
	}
	return false;
}

/* DELETE the row whose key the JSON object $1 holds */
static char *
delete_sql(const char *target_qname, List *keycols)
{
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s t USING pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) k WHERE ",
					 target_qname, target_qname);
	foreach(lc, keycols)
		appendStringInfo(&sql, "%st.%s = k.%s", foreach_current_index(lc) > 0 ? " AND " : "",
						 (char *) lfirst(lc), (char *) lfirst(lc));
	return sql.data;
}

/* INSERT the row the JSON object $1 holds, over the row of its key */
static char *
upsert_sql(const char *target_qname, List *keycols, List *cols)
{
	StringInfoData sql;
	ListCell   *lc;
	bool		any = false;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (", target_qname);
	foreach(lc, cols)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
	appendStringInfoString(&sql, ") SELECT ");
	foreach(lc, cols)
		appendStringInfo(&sql, "%sr.%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
	appendStringInfo(&sql, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r ON CONFLICT (",
					 target_qname);
	foreach(lc, keycols)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
	appendStringInfoChar(&sql, ')');
	foreach(lc, cols)
	{
		char	   *col = lfirst(lc);

		if (is_key(keycols, col))
			continue;
		appendStringInfo(&sql, "%s%s = EXCLUDED.%s", any ? ", " : " DO UPDATE SET ", col, col);
		any = true;
	}
	if (!any)
		appendStringInfoString(&sql, " DO NOTHING");
	return sql.data;
}

void
ds_pg_put_row(DsApplyTarget *t, const char *target_qname, List *keycols,
			  List *cols, const char *old_key, const char *row)
{
	PgTarget   *pt = (PgTarget *) t;

	if (pt->conn == NULL)
		ds_pg_open_session(pt, "datasync resolve_conflict");
	exec_row(pt, "BEGIN", NULL);
	/* a person's decision: durable before it is marked done on the source */
	exec_row(pt, "SET LOCAL synchronous_commit = on", NULL);
	if (old_key != NULL)
		exec_row(pt, delete_sql(target_qname, keycols), old_key);
	if (row != NULL)
		exec_row(pt, upsert_sql(target_qname, keycols, cols), row);
	exec_row(pt, "COMMIT", NULL);
}
