/*-------------------------------------------------------------------------
 *
 * resolve.c
 *		datasync.resolve_conflict: settle an open (manual) conflict.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/resolve.c
 *
 * NOTES
 *		'source' writes the conflict's latest source version (source_row)
 *		to the target over a connection of its own, in one target
 *		transaction: the row's old key is deleted when the latest version
 *		moved it or deleted the row, then the version is upserted.
 *		'target' keeps the target row.  Either way the conflict is marked
 *		resolved (who: the calling role, see ds_api_enter; when) and an
 *		entry goes to datasync.audit_log.
 *
 *		The conflict's advisory lock is taken before its row: a worker
 *		joining a change to the conflict holds it until its batch is
 *		written (conflict.c), so the resolution sees every joined change,
 *		and a change after it flows normally.
 *
 *		The target commits before the local transaction does; should that
 *		fail afterwards, the conflict stays open and resolving it again
 *		writes the same version again.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "api/apiutil.h"
#include "catalog.h"
#include "worker/conflict.h"
#include "pgconn.h"
#include "api/valueacl.h"

PG_FUNCTION_INFO_V1(datasync_resolve_conflict);

/* the column names of a text[] datum, quoted */
static List *
quoted_names(Datum arr)
{
	Datum	   *elems;
	int			n;
	int			i;
	List	   *result = NIL;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	for (i = 0; i < n; i++)
		result = lappend(result, (char *) quote_identifier(TextDatumGetCString(elems[i])));
	return result;
}

static void
exec_target(PGconn *conn, const char *sql, const char *param)
{
	PGresult   *res = ds_pq_exec_params(conn, sql, param ? 1 : 0, param ? &param : NULL,
										DS_CONN_TARGET);

	PQclear(res);
}

/* write the latest source version of a conflict to the target */
static void
apply_source(DsPipelineConfig *cfg, const char *target_table, const char *key,
			 List *keycols, const char *source_row, List *cols, bool key_moved)
{
	PGconn	   *volatile conn = NULL;
	char	   *password = cfg->password_env ? getenv(cfg->password_env) : NULL;

	if (cfg->password_env && password == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("environment variable \"%s\" named by target \"%s\" is not set in the server's environment",
						cfg->password_env, cfg->target_name)));
	PG_TRY();
	{
		StringInfoData sql;
		ListCell   *lc;
		PGresult   *res;
		PGconn	   *c;

		c = ds_pq_connect(cfg->dsn, password, false, "datasync resolve_conflict", DS_CONN_TARGET);
		ds_pq_check_password_used(c, cfg->target_owner, cfg->target_name, cfg->dsn);
		conn = c;

		/* as the worker: no ordinary triggers, when the role may */
		res = PQexec(conn, "SET session_replication_role = replica");
		PQclear(res);
		exec_target(conn, "BEGIN", NULL);
		initStringInfo(&sql);
		if (source_row == NULL || key_moved)
		{
			appendStringInfo(&sql, "DELETE FROM %s t USING pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) k WHERE ",
							 target_table, target_table);
			foreach(lc, keycols)
				appendStringInfo(&sql, "%st.%s = k.%s", foreach_current_index(lc) > 0 ? " AND " : "",
								 (char *) lfirst(lc), (char *) lfirst(lc));
			exec_target(conn, sql.data, key);
		}
		if (source_row != NULL)
		{
			bool		any = false;

			resetStringInfo(&sql);
			appendStringInfo(&sql, "INSERT INTO %s (", target_table);
			foreach(lc, cols)
				appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
			appendStringInfoString(&sql, ") SELECT ");
			foreach(lc, cols)
				appendStringInfo(&sql, "%sr.%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
			appendStringInfo(&sql, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1::pg_catalog.jsonb) r ON CONFLICT (",
							 target_table);
			foreach(lc, keycols)
				appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
			appendStringInfoString(&sql, ") DO UPDATE SET ");
			foreach(lc, cols)
			{
				char	   *col = lfirst(lc);
				ListCell   *kc;
				bool		iskey = false;

				foreach(kc, keycols)
					if (strcmp(lfirst(kc), col) == 0)
						iskey = true;
				if (iskey)
					continue;
				appendStringInfo(&sql, "%s%s = EXCLUDED.%s", any ? ", " : "", col, col);
				any = true;
			}
			if (!any)
			{
				sql.len -= strlen(" DO UPDATE SET ");
				sql.data[sql.len] = '\0';
				appendStringInfoString(&sql, " DO NOTHING");
			}
			exec_target(conn, sql.data, source_row);
		}
		exec_target(conn, "COMMIT", NULL);
	}
	PG_FINALLY();
	{
		if (conn)
			ds_pq_finish(conn);
	}
	PG_END_TRY();
}

Datum
datasync_resolve_conflict(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	int64		id;
	char	   *resolution;
	char	   *r;
	char	   *p;
	LOCKTAG		tag;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		args[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		pipeline_id;
	char	   *actor;
	Jsonb	   *result;

	ds_arg_required(fcinfo, 0, "id");
	id = PG_GETARG_INT64(0);
	resolution = ds_arg_text(fcinfo, 1, "resolution");
	r = pstrdup(resolution);
	for (p = r; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	if (strcmp(r, "source") != 0 && strcmp(r, "target") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid resolution \"%s\"", resolution),
				 errhint("Use 'source' to apply the latest source version or 'target' to keep the target row.")));
	actor = GetUserNameFromId(caller, false);

	/* before the row: see NOTES */
	ds_conflict_lock_tag(&tag, id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	SPI_connect();
	args[0] = Int64GetDatum(id);
	ds_spi_exec("SELECT pipeline_id, status, resolution, resolved_by, resolved_at::text, target_table,"
				" key::text, source_row::text, source_row @> key,"
				" ARRAY(SELECT pg_catalog.jsonb_object_keys(key)),"
				" ARRAY(SELECT pg_catalog.jsonb_object_keys(source_row)),"
				" \"table\"::oid, \"table\"::text"
				" FROM datasync.conflicts WHERE id = $1 FOR UPDATE",
				1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("conflict " INT64_FORMAT " does not exist", id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	/*
	 * A conflict is row values: only a role that may read its table sees it
	 * (datasync.conflicts' policy) and resolves it (the result, and any
	 * error of the target, show the rows).
	 */
	if (!ds_role_can_read_values(DatumGetObjectId(SPI_getbinval(tup, desc, 12, &isnull)),
								 caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to resolve conflict " INT64_FORMAT, id),
				 errdetail("Conflict " INT64_FORMAT " holds rows of table %s, which role \"%s\" may not read.",
						   id, SPI_getvalue(tup, desc, 13), actor),
				 errhint("A role resolves the conflicts of the tables it may SELECT and whose row-level security does not apply to it.")));
	pipeline_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (strcmp(SPI_getvalue(tup, desc, 2), "open") != 0)
	{
		char	   *by = SPI_getvalue(tup, desc, 4);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("conflict " INT64_FORMAT " is already resolved", id),
				 errdetail("It was resolved for the %s at %s%s%s.", SPI_getvalue(tup, desc, 3),
						   SPI_getvalue(tup, desc, 5), by ? " by " : " by its strategy", by ? by : "")));
	}

	if (strcmp(r, "source") == 0)
	{
		char	   *target_table = SPI_getvalue(tup, desc, 6);
		char	   *key = SPI_getvalue(tup, desc, 7);
		char	   *source_row = SPI_getvalue(tup, desc, 8);
		bool		same_key_null;
		bool		same_key = DatumGetBool(SPI_getbinval(tup, desc, 9, &same_key_null));
		List	   *keycols = quoted_names(SPI_getbinval(tup, desc, 10, &isnull));
		List	   *cols = quoted_names(SPI_getbinval(tup, desc, 11, &isnull));
		DsPipelineConfig *cfg = ds_catalog_load(pipeline_id);

		if (cfg == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the pipeline of conflict " INT64_FORMAT " no longer exists", id),
					 errhint("Resolve it with 'target', which leaves the target as it is.")));
		if (strcmp(cfg->target_kind, "postgresql") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("resolving conflicts with 'source' needs a PostgreSQL target")));
		apply_source(cfg, target_table, key, keycols, source_row, cols,
					 !same_key_null && !same_key);
	}

	args[1] = CStringGetTextDatum(r);
	args[2] = CStringGetTextDatum(actor);
	ds_spi_exec("UPDATE datasync.conflicts SET status = 'resolved', resolution = $2,"
				" resolved_at = pg_catalog.now(), resolved_by = $3 WHERE id = $1",
				3, argtypes, args, SPI_OK_UPDATE);
	ds_spi_exec("SELECT datasync._audit($3, 'resolve_conflict', 'conflict ' || $1,"
				" pg_catalog.jsonb_build_object('pipeline', c.pipeline, 'table', c.\"table\"::text,"
				" 'key', c.key, 'kind', c.kind, 'resolution', $2, 'source_row', c.source_row))"
				" FROM datasync.conflicts c WHERE c.id = $1",
				3, argtypes, args, SPI_OK_SELECT);
	ds_spi_exec("SELECT pg_catalog.jsonb_build_object('id', id, 'pipeline', pipeline, 'table', \"table\"::text,"
				" 'key', key, 'kind', kind, 'source_row', source_row, 'target_row', target_row,"
				" 'strategy', strategy, 'status', status, 'resolution', resolution,"
				" 'detected_at', detected_at, 'resolved_at', resolved_at, 'resolved_by', resolved_by,"
				" 'changes', changes) FROM datasync.conflicts WHERE id = $1",
				1, argtypes, args, SPI_OK_SELECT);
	result = DatumGetJsonbP(SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
											  false, -1));
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_JSONB_P(result);
}
