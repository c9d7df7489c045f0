/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *		SQL functions that manage pipelines and their tables.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/pipeline.c
 *
 * NOTES
 *		These functions change the catalog and the pipeline's publication
 *		in the caller's transaction, and wake the launcher or the worker at
 *		commit.  They never create a replication slot: slot creation waits
 *		for every transaction with an xid, including the caller's, so the
 *		worker creates it after the pipeline row is committed.
 *		drop_pipeline stops the worker, then drops the slot last, so an
 *		error before leaves the pipeline whole.
 *
 *		Every function validates all of its arguments before it changes
 *		anything; an error leaves no half-created state behind.
 *
 *		The functions run as their caller (SECURITY INVOKER): privileges
 *		are checked for the caller, then the catalog work runs as the
 *		extension's owner (ds_api_enter).  Changing a pipeline, or creating
 *		one, needs the use of its target (access.c); every change is
 *		written to datasync.audit_log.  A table dropped under a pipeline
 *		(its OID no longer names a relation) is skipped by the checks of
 *		alter_pipeline.  add_table, remove_table and resync_table are in
 *		pipetables.c.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "access.h"
#include "api/apiutil.h"
#include "api/capacity.h"
#include "catalog.h"
#include "api/cron.h"
#include "isolation.h"
#include "api/pipeline.h"
#include "target/apply.h"
#include "shmem.h"
#include "worker/worker.h"

PG_FUNCTION_INFO_V1(datasync_create_pipeline);
PG_FUNCTION_INFO_V1(datasync_alter_pipeline);
PG_FUNCTION_INFO_V1(datasync_drop_pipeline);
PG_FUNCTION_INFO_V1(datasync_pause);
PG_FUNCTION_INFO_V1(datasync_resume);
PG_FUNCTION_INFO_V1(datasync_wait_for_sync);

/* Look up a pipeline (locking its row); an error when it does not exist. */
PipelineRow
pipeline_row(const char *name, bool lock)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	PipelineRow r;
	bool		isnull;

	args[0] = CStringGetTextDatum(name);
	/* FOR UPDATE cannot be read_only, nor can what the caller reads after */
	ds_spi_execute(lock ?
				   "SELECT id, slot_name, enabled, error IS NOT NULL, mode, schedule, conflict_strategy, options, target_id, incarnation FROM datasync._pipelines WHERE name = $1 FOR UPDATE" :
				   "SELECT id, slot_name, enabled, error IS NOT NULL, mode, schedule, conflict_strategy, options, target_id, incarnation FROM datasync._pipelines WHERE name = $1",
				   1, argtypes, args, NULL, !lock, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", name)));
	r.id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	r.slot_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	r.enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	r.has_error = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	r.mode = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
	r.schedule = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);
	r.strategy = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7);
	r.options = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &isnull));
	r.target_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull));
	r.incarnation = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10, &isnull));
	return r;
}

/*
 * schema.table as messages show it (in double quotes, not quoted again);
 * the OID of a table that was dropped
 */
char *
table_display(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (rel == NULL || nsp == NULL)
		return psprintf("%u", relid);
	return psprintf("%s.%s", nsp, rel);
}

/* schema.table as SQL text; an error when the table was dropped */
char *
table_sql(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (rel == NULL || nsp == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(nsp, rel);
}

/* the table list of an array argument: no NULLs, no duplicates, valid */
static List *
table_list(FunctionCallInfo fcinfo, int argno, Oid caller)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			j;
	List	   *result = NIL;

	ds_arg_required(fcinfo, argno, "tables");
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("argument \"tables\" must be a one-dimensional array")));
	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"tables\" must not be empty"),
				 errhint("Name at least one table, for example ARRAY['public.users']::regclass[].")));
	for (i = 0; i < n; i++)
	{
		Oid			relid;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"tables\" must not contain NULL")));
		relid = DatumGetObjectId(elems[i]);
		ds_check_sync_table(relid, caller);
		for (j = 0; j < i; j++)
			if (DatumGetObjectId(elems[j]) == relid)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("table \"%s\" is listed twice", table_display(relid))));
		result = lappend_oid(result, relid);
	}
	return result;
}

/* "a", "a and b", "a, b and c" */
static char *
text_list(List *items)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, items)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, foreach_current_index(lc) == list_length(items) - 1 ? " and " : ", ");
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * Can the target detect conflicts, as strategy needs?  A kind of target
 * says so with its capabilities (target/apply.c).  Runs inside SPI.
 */
static void
check_target_detects(int64 target_id, const char *strategy)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	char	   *name;
	char	   *kind;

	args[0] = Int64GetDatum(target_id);
	ds_spi_read("SELECT name, kind FROM datasync._targets WHERE id = $1", 1, argtypes, args, NULL);
	if (SPI_processed != 1)
		return;
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if ((ds_apply_kind_caps(kind) & DS_TARGET_CAN_DETECT_CONFLICTS) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("conflict strategy \"%s\" needs a target that can detect conflicts", strategy),
				 errdetail("Target \"%s\" is of kind \"%s\", which cannot compare its rows with the source's.",
						   name, kind),
				 errhint("Use \"source-wins\" without log_conflicts for this target.")));
}

/*
 * Conflict detection compares the target row with the source's old row,
 * which the stream carries only for REPLICA IDENTITY FULL.  Every table
 * whose strategy detects conflicts (all but source-wins, and source-wins
 * with log_conflicts) needs it: set it when the options consent
 * (replica_identity_full), else refuse.  A latest-timestamp table's
 * timestamp_column must exist.  Runs inside SPI.  Tables dropped under
 * the pipeline are skipped (remove_table removes them).
 */
void
check_conflict_tables(List *relids, const char *strategy, DsPipelineOptions *opts,
					  Oid caller, int64 target_id)
{
	ListCell   *lc;
	List	   *commit_ts = NIL;
	bool		target_checked = false;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *rel = get_rel_name(relid);
		char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;
		const char *s;
		const char *tscol;
		HeapTuple	tup;
		char		replident;

		if (rel == NULL || nsp == NULL)
			continue;
		s = ds_table_option(opts->table_strategies, nsp, rel);
		tscol = ds_table_option(opts->timestamp_columns, nsp, rel);
		if (s == NULL)
			s = strategy;
		if (strcmp(s, "latest-timestamp") == 0 && tscol != NULL &&
			get_attnum(relid, tscol) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("timestamp_column \"%s\" does not exist in table \"%s\"", tscol, table_display(relid)),
					 errhint("Name a column of every latest-timestamp table, per table as {\"timestamp_column\": {\"schema.table\": \"column\"}}, or leave it out to compare commit timestamps.")));
		if (strcmp(s, "latest-timestamp") == 0 && tscol == NULL)
			commit_ts = lappend(commit_ts, table_display(relid));
		if (strcmp(s, "source-wins") == 0 && !opts->log_conflicts)
			continue;
		if (!target_checked)
			check_target_detects(target_id, s);
		target_checked = true;

		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tup))
			continue;
		replident = ((Form_pg_class) GETSTRUCT(tup))->relreplident;
		ReleaseSysCache(tup);
		if (replident == REPLICA_IDENTITY_FULL)
			continue;
		if (!opts->replica_identity_full)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("conflict strategy \"%s\" needs REPLICA IDENTITY FULL on table \"%s\"", s, table_display(relid)),
					 errdetail("Conflicts are found by comparing the target row with the source's old row, which the stream carries only for REPLICA IDENTITY FULL."),
					 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL, or pass the option {\"replica_identity_full\": true} to let the pipeline set it.",
							 table_sql(relid))));
		/* the caller consents; this function runs as the extension's owner */
		if (!pg_class_ownercheck(relid, caller))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of table \"%s\" to set its REPLICA IDENTITY", table_display(relid))));
		ds_spi_exec(psprintf("ALTER TABLE %s REPLICA IDENTITY FULL", table_sql(relid)),
					0, NULL, NULL, SPI_OK_UTILITY);
	}

	/*
	 * Commit times are compared on the target, which has them only with
	 * track_commit_timestamp; it is not connected to here: say so.
	 */
	if (commit_ts != NIL)
		ereport(NOTICE,
				(errmsg("conflict strategy \"latest-timestamp\" compares commit times of %s %s on the target",
						list_length(commit_ts) == 1 ? "table" : "tables",
						text_list(commit_ts)),
				 errdetail("That needs track_commit_timestamp = on on the target (a restart); without it the pipeline stops with the target's error \"could not get commit timestamp data\"."),
				 errhint("datasync.test_target() says whether the target has it. Or compare a column of the rows: {\"timestamp_column\": \"column\"}.")));
}

/* the tables of a pipeline */
static List *
pipeline_tables(int64 pipeline_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	List	   *result = NIL;
	uint64		i;
	bool		isnull;

	args[0] = Int64GetDatum(pipeline_id);
	ds_spi_exec("SELECT relid FROM datasync._pipeline_tables WHERE pipeline_id = $1 ORDER BY relid",
				1, argtypes, args, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
		result = lappend_oid(result, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	 SPI_tuptable->tupdesc, 1, &isnull)));
	return result;
}

/* slot and publication name: datasync_ + the name in [a-z0-9_] */
static char *
slot_name_for(const char *name)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	appendStringInfoString(&buf, DATASYNC_PREFIX);
	for (p = name; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			appendStringInfoChar(&buf, c);
		else if (c >= 'A' && c <= 'Z')
			appendStringInfoChar(&buf, pg_ascii_tolower(c));
		else
			appendStringInfoChar(&buf, '_');
	}
	return buf.data;
}

/* "ONLY schema.table" for ordinary tables; partitioned tables whole */
char *
publication_member(Oid relid)
{
	char		kind = get_rel_relkind(relid);

	return psprintf("%s%s", kind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ", table_sql(relid));
}

/* an audit entry about pipeline name; details: a JSON object or NULL */
void
pipeline_audit(Oid caller, const char *action, const char *name, const char *details)
{
	ds_audit(caller, action, psprintf("pipeline %s", name), details);
}

/* an options document as JSON text for the audit log */
static char *
jsonb_text(Jsonb *options)
{
	return options ? JsonbToCString(NULL, &options->root, VARSIZE(options)) : "{}";
}

Datum
datasync_create_pipeline(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	char	   *target = ds_arg_text(fcinfo, 1, "target");
	List	   *tables;
	const char *mode = ds_mode_parse(ds_arg_text(fcinfo, 3, "mode"));
	const char *strategy = ds_strategy_parse(ds_arg_text(fcinfo, 5, "conflict_strategy"), NULL);
	Jsonb	   *options = ds_arg_jsonb(fcinfo, 6, "options");
	DsPipelineOptions parsed;
	char	   *slot;
	char	   *schedule = NULL;
	int64		target_id;
	int64		pipeline_id;
	int64		incarnation;
	StringInfoData sql;
	ListCell   *lc;
	bool		isnull;
	Oid			argtypes[9] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, JSONBOID, INT8OID, TEXTOID, OIDOID};
	Datum		args[9];
	char		nulls[9] = "         ";

	ds_check_name("pipeline", name);
	ds_require_preload();
	ds_require_launcher_database();
	tables = table_list(fcinfo, 2, caller);
	if (ds_mode_is(mode, DS_MODE_SCHEDULED))
	{
		schedule = ds_cron_check_schedule(PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)));
		ds_cron_require();
	}
	else if (!PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a schedule is only valid for mode \"scheduled\""),
				 errhint("Leave schedule NULL for mode \"%s\".", mode)));
	ds_options_parse(options, &parsed);
	slot = slot_name_for(name);

	SPI_connect();
	args[0] = CStringGetTextDatum(target);
	ds_spi_exec("SELECT id FROM datasync._targets WHERE name = $1 FOR SHARE", 1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("target \"%s\" does not exist", target)));
	target_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ds_target_check_right(target_id, caller, DS_TARGET_USE);
	ds_check_mapped_tables(tables, &parsed);

	/* serialize creators, then check names and limits */
	ds_spi_exec("LOCK TABLE datasync._pipelines IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(slot);
	ds_spi_exec("SELECT name, name = $1 FROM datasync._pipelines WHERE name = $1 OR slot_name = $2",
				2, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("pipeline \"%s\" already exists", name)));
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("pipeline name \"%s\" maps to slot \"%s\", which pipeline \"%s\" uses", name, slot, other),
				 errdetail("Slot and publication names keep only lowercase letters, digits and underscores of the pipeline name."),
				 errhint("Choose a name that differs in more than case or punctuation.")));
	}
	ds_spi_exec("SELECT (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = $2),"
				" (SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = $2),"
				" (SELECT count(*) FROM datasync._pipelines)",
				2, argtypes, args, SPI_OK_SELECT);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replication slot \"%s\" already exists", slot),
				 errhint("Drop the slot with pg_drop_replication_slot('%s') if nothing uses it, or choose another pipeline name.", slot)));
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("publication \"%s\" already exists", slot),
				 errhint("Drop the publication if nothing uses it, or choose another pipeline name.")));
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)) >= datasync_max_pipelines)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot create pipeline \"%s\": datasync.max_pipelines (%d) reached", name, datasync_max_pipelines),
				 errhint("Drop a pipeline, or raise datasync.max_pipelines and restart the server.")));
	ds_check_capacity(name, ds_mode_is(mode, DS_MODE_REALTIME));

	check_conflict_tables(tables, strategy, &parsed, caller, target_id);

	/* the publication: an explicit table list, never FOR ALL TABLES */
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE PUBLICATION %s FOR TABLE ", quote_identifier(slot));
	foreach(lc, tables)
		appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 publication_member(lfirst_oid(lc)));
	appendStringInfoString(&sql, " WITH (publish_via_partition_root = true)");
	ds_spi_exec(sql.data, 0, NULL, NULL, SPI_OK_UTILITY);

	if (!pg_strong_random(&incarnation, sizeof(incarnation)))
		elog(ERROR, "could not generate a random number");
	incarnation &= INT64CONST(0x7FFFFFFFFFFFFFFF);

	args[2] = Int64GetDatum(target_id);
	args[3] = CStringGetTextDatum(mode);
	args[4] = CStringGetTextDatum(strategy);
	args[5] = options ? JsonbPGetDatum(options) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	args[6] = Int64GetDatum(incarnation);
	args[7] = schedule ? CStringGetTextDatum(schedule) : (Datum) 0;
	nulls[7] = schedule ? ' ' : 'n';
	args[8] = ObjectIdGetDatum(caller);
	ds_spi_execute(ds_catalog_has_column("_pipelines", "created_by") ?
				   "INSERT INTO datasync._pipelines (name, slot_name, target_id, mode, conflict_strategy, options, incarnation, schedule, created_by)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id" :
				   "INSERT INTO datasync._pipelines (name, slot_name, target_id, mode, conflict_strategy, options, incarnation, schedule)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
				   ds_catalog_has_column("_pipelines", "created_by") ? 9 : 8,
				   argtypes, args, nulls, false, SPI_OK_INSERT_RETURNING);
	pipeline_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	initStringInfo(&sql);
	appendStringInfoChar(&sql, '{');
	ds_json_add(&sql, "target", target);
	appendStringInfoString(&sql, ", \"tables\": [");
	foreach(lc, tables)
	{
		Oid			targtypes[3] = {INT8OID, OIDOID, OIDOID};
		Datum		targs[3];

		targs[0] = Int64GetDatum(pipeline_id);
		targs[1] = ObjectIdGetDatum(lfirst_oid(lc));
		targs[2] = ObjectIdGetDatum(caller);
		ds_spi_exec(PIPELINE_TABLES_INSERT, 3, targtypes, targs, SPI_OK_INSERT);
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&sql, ", ");
		escape_json(&sql, table_display(lfirst_oid(lc)));
	}
	appendStringInfoChar(&sql, ']');
	ds_json_add(&sql, "mode", mode);
	ds_json_add(&sql, "schedule", schedule);
	ds_json_add(&sql, "conflict_strategy", strategy);
	appendStringInfo(&sql, ", \"options\": %s}", jsonb_text(options));
	pipeline_audit(caller, "create_pipeline", name, sql.data);
	SPI_finish();
	/* last: pg_cron validates the expression; an error undoes it all */
	if (schedule)
		ds_cron_schedule(pipeline_id, name, schedule);
	ds_launcher_wakeup_at_commit();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

/*
 * alter_pipeline(name, options): keys merge into the pipeline's options (a
 * JSON null removes one); "conflict_strategy" and "mode" change those.
 * The worker starts a new session with the result.
 */
Datum
datasync_alter_pipeline(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	Jsonb	   *options = ds_arg_jsonb(fcinfo, 1, "options");
	PipelineRow r;
	Oid			argtypes[5] = {INT8OID, JSONBOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = "     ";
	const char *strategy = NULL;
	const char *mode = NULL;
	const char *new_mode;
	JsonbValue *sv;
	bool		schedule_given = false;
	char	   *schedule = NULL;
	char	   *new_schedule = NULL;
	Jsonb	   *merged;
	bool		isnull;
	DsPipelineOptions parsed;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of pipeline \"%s\" must be a JSON object", name)));
	if (getKeyJsonValueFromContainer(&options->root, "conflict_strategy", 17, NULL))
	{
		char	   *s = ds_jsonb_get_text(options, "conflict_strategy");

		if (s == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pipeline option \"conflict_strategy\" must be a string")));
		strategy = ds_strategy_parse(s, NULL);
	}
	if (getKeyJsonValueFromContainer(&options->root, "mode", 4, NULL))
	{
		char	   *m = ds_jsonb_get_text(options, "mode");

		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pipeline option \"mode\" must be a string")));
		mode = ds_mode_parse(m);
	}
	if ((sv = getKeyJsonValueFromContainer(&options->root, "schedule", 8, NULL)) != NULL)
	{
		schedule_given = true;
		schedule = ds_jsonb_get_text(options, "schedule");
		if (schedule == NULL && sv->type != jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pipeline option \"schedule\" must be a string")));
	}

	SPI_connect();
	r = pipeline_row(name, true);
	ds_target_check_right(r.target_id, caller, DS_TARGET_USE);

	/* mode and schedule go together: a scheduled pipeline has a pg_cron job */
	new_mode = mode ? mode : r.mode;
	if (ds_mode_is(new_mode, DS_MODE_SCHEDULED))
	{
		new_schedule = ds_cron_check_schedule(schedule_given ? schedule : r.schedule);
		ds_cron_require();
	}
	else if (schedule_given && schedule != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a schedule is only valid for mode \"scheduled\""),
				 errhint("Pass {\"mode\": \"scheduled\", \"schedule\": \"...\"} to schedule pipeline \"%s\".", name)));

	args[0] = Int64GetDatum(r.id);
	args[1] = JsonbPGetDatum(options);
	ds_spi_exec("SELECT coalesce(jsonb_object_agg(e.key, e.value) FILTER (WHERE jsonb_typeof(e.value) <> 'null'), '{}') "
				"FROM datasync._pipelines p, jsonb_each(p.options || ($2 - 'conflict_strategy' - 'mode' - 'schedule')) e WHERE p.id = $1",
				2, argtypes, args, SPI_OK_SELECT);
	merged = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ds_options_parse(merged, &parsed);
	{
		List	   *relids = pipeline_tables(r.id);

		ds_check_mapped_tables(relids, &parsed);
		check_conflict_tables(relids, strategy ? strategy : r.strategy, &parsed, caller,
							  r.target_id);
	}

	args[1] = JsonbPGetDatum(merged);
	args[2] = strategy ? CStringGetTextDatum(strategy) : (Datum) 0;
	args[3] = mode ? CStringGetTextDatum(mode) : (Datum) 0;
	nulls[2] = strategy ? ' ' : 'n';
	nulls[3] = mode ? ' ' : 'n';
	args[4] = new_schedule ? CStringGetTextDatum(new_schedule) : (Datum) 0;
	nulls[4] = new_schedule ? ' ' : 'n';
	ds_spi_execute("UPDATE datasync._pipelines SET options = $2,"
				   " conflict_strategy = coalesce($3, conflict_strategy),"
				   " mode = coalesce($4, mode), schedule = $5 WHERE id = $1",
				   5, argtypes, args, nulls, false, SPI_OK_UPDATE);
	pipeline_audit(caller, "alter_pipeline", name, psprintf("{\"options\": %s}", jsonb_text(options)));
	SPI_finish();

	/* the pg_cron job follows; a change of mode needs no other step */
	if (new_schedule && (r.schedule == NULL || strcmp(r.schedule, new_schedule) != 0 ||
						 !ds_mode_is(r.mode, DS_MODE_SCHEDULED)))
		ds_cron_schedule(r.id, name, new_schedule);
	else if (new_schedule == NULL && ds_mode_is(r.mode, DS_MODE_SCHEDULED))
		ds_cron_unschedule(name);
	ds_signal_at_commit(r.id, r.incarnation);
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

/* Stop the pipeline's worker and wait until it has exited. */
static void
stop_worker_and_lock(const DsPipelineKey *key)
{
	LOCKTAG		tag;
	pid_t		pid = ds_slot_pid(key);

	if (pid != 0)
		kill(pid, SIGTERM);
	ds_pipeline_locktag(&tag, key->id);
	/* the worker holds this lock shared for its life; no new one starts */
	(void) LockAcquire(&tag, AccessExclusiveLock, false, false);
}

/*
 * Drop a pipeline's slot.  Its worker is gone; the walsender that served
 * it may still hold the slot for a moment, or may still be creating it
 * (waiting for running transactions, ours included): terminate it.  A
 * slot of that name made in another database is not ours (a pipeline
 * restored from a dump of that database): it stays.
 */
static void
drop_slot(const char *slot_name)
{
	int			tries;

	for (tries = 0; tries < 300; tries++)
	{
		ReplicationSlot *slot;
		pid_t		active_pid = 0;
		bool		exists;

		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		slot = SearchNamedReplicationSlot(slot_name, false);
		exists = slot != NULL && slot->data.database == MyDatabaseId;
		if (exists)
		{
			SpinLockAcquire(&slot->mutex);
			active_pid = slot->active_pid;
			SpinLockRelease(&slot->mutex);
		}
		LWLockRelease(ReplicationSlotControlLock);

		if (!exists)
			return;
		if (active_pid == 0)
		{
			ReplicationSlotDrop(slot_name, true);
			return;
		}
		(void) kill(active_pid, SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("replication slot \"%s\" is still in use", slot_name),
			 errhint("Try again in a moment.")));
}

/*
 * Slots of pipelines dropped in the current transaction: dropped just
 * before it commits (an error there aborts the transaction, so a rollback
 * keeps both the pipeline and its slot), and forgotten if the transaction
 * or the subtransaction that dropped the pipeline rolls back.
 */
typedef struct PendingSlotDrop
{
	char	   *slot_name;
	DsPipelineKey key;
	SubTransactionId subxid;
} PendingSlotDrop;

static List *pending_drops = NIL;
static bool drop_callbacks_registered = false;

static void
drop_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			foreach(lc, pending_drops)
				drop_slot(((PendingSlotDrop *) lfirst(lc))->slot_name);
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (pending_drops != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that dropped a datasync pipeline")));
			break;
		case XACT_EVENT_COMMIT:
			foreach(lc, pending_drops)
				ds_slot_release(&((PendingSlotDrop *) lfirst(lc))->key);
			pending_drops = NIL;	/* its memory goes with the transaction */
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_drops = NIL;
			break;
		default:
			break;
	}
}

static void
drop_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_drops)
			if (((PendingSlotDrop *) lfirst(lc))->subxid == mySubid)
				pending_drops = foreach_delete_current(pending_drops, lc);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_drops)
			if (((PendingSlotDrop *) lfirst(lc))->subxid == mySubid)
				((PendingSlotDrop *) lfirst(lc))->subxid = parentSubid;
	}
}

/*
 * drop_pipeline(name): stop the worker, remove the catalog rows and the
 * publication; the slot goes at commit.
 */
Datum
datasync_drop_pipeline(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	PipelineRow r;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	MemoryContext old;
	PendingSlotDrop *pd;
	DsPipelineKey key;

	ds_require_preload();
	SPI_connect();
	r = pipeline_row(name, true);
	ds_target_check_right(r.target_id, caller, DS_TARGET_USE);
	ds_pipeline_key(&key, r.id, r.incarnation);
	stop_worker_and_lock(&key);

	args[0] = Int64GetDatum(r.id);
	ds_spi_exec("DELETE FROM datasync._pipelines WHERE id = $1", 1, argtypes, args, SPI_OK_DELETE);
	/* a run that was going on ends with the pipeline */
	ds_spi_exec("UPDATE datasync.jobs SET status = 'failed', finished_at = now(),"
				" error = 'the pipeline was dropped' WHERE pipeline_id = $1 AND status = 'running'",
				1, argtypes, args, SPI_OK_UPDATE);
	ds_spi_exec(psprintf("DROP PUBLICATION IF EXISTS %s", quote_identifier(r.slot_name)),
				0, NULL, NULL, SPI_OK_UTILITY);
	pipeline_audit(caller, "drop_pipeline", name, NULL);
	SPI_finish();
	if (ds_mode_is(r.mode, DS_MODE_SCHEDULED))
		ds_cron_unschedule(name);

	if (!drop_callbacks_registered)
	{
		RegisterXactCallback(drop_xact_callback, NULL);
		RegisterSubXactCallback(drop_subxact_callback, NULL);
		drop_callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	pd = palloc(sizeof(PendingSlotDrop));
	pd->slot_name = pstrdup(r.slot_name);
	pd->key = key;
	pd->subxid = GetCurrentSubTransactionId();
	pending_drops = lappend(pending_drops, pd);
	MemoryContextSwitchTo(old);
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

static void
set_enabled(FunctionCallInfo fcinfo, bool enabled)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	PipelineRow r;
	Oid			argtypes[2] = {INT8OID, BOOLOID};
	Datum		args[2];

	/* resuming starts a worker: refuse where none runs */
	if (enabled)
		ds_require_launcher_database();
	SPI_connect();
	r = pipeline_row(name, true);
	args[0] = Int64GetDatum(r.id);
	args[1] = BoolGetDatum(enabled);
	ds_spi_exec(enabled ?
				"UPDATE datasync._pipelines SET enabled = $2, error = NULL WHERE id = $1" :
				"UPDATE datasync._pipelines SET enabled = $2 WHERE id = $1",
				2, argtypes, args, SPI_OK_UPDATE);
	pipeline_audit(caller, enabled ? "resume" : "pause", name, NULL);
	SPI_finish();
	ds_signal_at_commit(r.id, r.incarnation);
	ds_api_leave(&call);
}

Datum
datasync_pause(PG_FUNCTION_ARGS)
{
	set_enabled(fcinfo, false);
	PG_RETURN_VOID();
}

Datum
datasync_resume(PG_FUNCTION_ARGS)
{
	set_enabled(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * wait_for_sync(name, timeout): emit a marker into the WAL (a logical
 * message carrying a ticket) and wait until the pipeline's worker has
 * committed on the target everything before it.  Tickets are handed out
 * in order, so a worker that passed any later ticket passed ours too.  A
 * pipeline whose slot was created after the marker has everything before
 * it in its initial copy: its done position is past the marker then.
 * False on timeout, or at once when the pipeline is paused or stopped by
 * an error.
 */
Datum
datasync_wait_for_sync(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	int64		timeout_ms;
	PipelineRow r;
	uint64		seq;
	XLogRecPtr	lsn;
	TimestampTz deadline;
	bool		done = false;
	DsPipelineKey key;

	ds_arg_required(fcinfo, 1, "timeout");
	timeout_ms = ds_arg_timeout_ms(fcinfo, 1);
	ds_require_preload();
	ds_require_launcher_database();

	(void) ds_api_enter(fcinfo, &call);
	SPI_connect();
	r = pipeline_row(name, false);
	SPI_finish();
	ds_pipeline_key(&key, r.id, r.incarnation);
	ds_api_leave(&call);
	if (!r.enabled || r.has_error)
		PG_RETURN_BOOL(false);

	seq = pg_atomic_add_fetch_u64(&DsShmem->marker_seq, 1);
	lsn = LogLogicalMessage(DATASYNC_MARKER_PREFIX, (const char *) &seq, sizeof(seq), false);
	XLogFlush(lsn);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ConditionVariablePrepareToSleep(&DsShmem->progress_cv);
	for (;;)
	{
		DsPipelineSlot *slot = ds_slot_find(&key);
		long		remaining;

		if (slot)
		{
			XLogRecPtr	applied;
			bool		mine;

			SpinLockAcquire(&slot->mutex);
			mine = ds_key_equal(&slot->key, &key);	/* not freed meanwhile */
			applied = slot->done_lsn;
			SpinLockRelease(&slot->mutex);
			/* our marker arrived, or the slot starts after it */
			if (mine && (pg_atomic_read_u64(&slot->marker_seq) >= seq || applied >= lsn))
			{
				done = true;
				break;
			}
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;
		(void) ConditionVariableTimedSleep(&DsShmem->progress_cv, Min(remaining, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(done);
}
