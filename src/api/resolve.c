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
 *		to the target with the target's put_row (target/apply_pg_row.c),
 *		in one target transaction: the row's old key is deleted when the
 *		latest version moved it or deleted the row, then the version is
 *		upserted.
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
#include "target/apply.h"
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

/*
 * Write the latest source version of a conflict to the target (put_row):
 * the row of its old key goes first when the version moved or deleted it.
 */
static void
apply_source(DsPipelineConfig *cfg, const char *target_table, const char *key,
			 List *keycols, const char *source_row, List *cols, bool key_moved)
{
	DsApplyTarget *t = ds_apply_create(cfg);

	if ((t->caps & DS_TARGET_CAN_PUT_ROW) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("target \"%s\" of kind \"%s\" cannot take a single row", cfg->target_name, cfg->target_kind),
				 errhint("Resolve the conflict with 'target' and write the row to the target yourself.")));
	PG_TRY();
	{
		t->put_row(t, target_table, keycols, cols,
				   (source_row == NULL || key_moved) ? key : NULL, source_row);
	}
	PG_FINALLY();
	{
		t->close(t);
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
