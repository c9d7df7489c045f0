/*-------------------------------------------------------------------------
 *
 * target.c
 *		SQL functions that manage targets.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/target.c
 *
 * NOTES
 *		A target's DSN may hold a password: it is stored in
 *		datasync._targets, which only the extension owner reads, and shown
 *		only through ds_mask_conninfo; an error in create_target or
 *		alter_target keeps the statement (which holds the DSN) out of the
 *		server log.  A DSN libpq cannot parse is refused; libpq's reason is
 *		shown only when it names a keyword, since it may quote a value.
 *
 *		A target set up by a role that is not a superuser must log in with
 *		the password in its DSN (see ds_pq_check_password_used), and only a
 *		superuser may name a server environment variable (password_env).
 *
 *		The functions run as their caller (SECURITY INVOKER, see
 *		ds_api_enter): the owner recorded for a target and every check are
 *		the calling role's.  Who may use a target is recorded (its owner,
 *		plus the roles in grantees) and enforced (access.c): using it
 *		(test_target, pipelines) needs the use, changing, dropping,
 *		granting and revoking it needs the ownership.  Every change is
 *		written to datasync.audit_log, DSNs masked.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "access.h"
#include "api/apiutil.h"
#include "catalog.h"
#include "pgconn.h"
#include "worker/relmap.h"

PG_FUNCTION_INFO_V1(datasync_create_target);
PG_FUNCTION_INFO_V1(datasync_alter_target);
PG_FUNCTION_INFO_V1(datasync_drop_target);
PG_FUNCTION_INFO_V1(datasync_test_target);
PG_FUNCTION_INFO_V1(datasync_mask_dsn);
PG_FUNCTION_INFO_V1(datasync_grant_target);
PG_FUNCTION_INFO_V1(datasync_revoke_target);
PG_FUNCTION_INFO_V1(datasync_config_target_dsn_is);

/*
 * A DSN must parse and name something.  libpq's parse error is not shown:
 * it quotes the offending part, which may be a password.
 */
static void
check_dsn(const char *target, const char *dsn)
{
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &err);
	const char *p;

	if (opts == NULL)
	{
		char	   *msg = err ? pchomp(err) : NULL;

		if (err)
			PQfreemem(err);
		/* only libpq messages that quote a keyword, never a value */
		if (msg && (strncmp(msg, "invalid connection option", 25) == 0 ||
					strncmp(msg, "invalid URI query parameter", 27) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid DSN for target \"%s\": %s", target, msg)));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid DSN for target \"%s\"", target),
				 errdetail("The DSN is not a valid libpq connection string or URI."),
				 errhint("Write keyword=value pairs (host=... port=... dbname=...) or a postgresql:// URI.")));
	}
	PQconninfoFree(opts);
	for (p = dsn; *p; p++)
		if (!isspace((unsigned char) *p))
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("DSN of target \"%s\" must not be empty", target)));
}

/*
 * Only a superuser may point a target at an environment variable of the
 * server: its value is sent as a password to whatever host the DSN names.
 */
static void
check_password_env(Jsonb *options, const char *target, Oid caller)
{
	if (options && JB_ROOT_IS_OBJECT(options) &&
		getKeyJsonValueFromContainer(&options->root, "password_env", 12, NULL) != NULL &&
		!superuser_arg(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"password_env\" of target \"%s\"", target),
				 errdetail("Only superusers may name an environment variable of the server.")));
}

/* id of a target, or an error */
static int64
target_id(const char *name, bool for_update)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;

	args[0] = CStringGetTextDatum(name);
	/* FOR UPDATE cannot be read_only, nor can what the caller reads after */
	ds_spi_execute(for_update ?
				   "SELECT id FROM datasync._targets WHERE name = $1 FOR UPDATE" :
				   "SELECT id FROM datasync._targets WHERE name = $1",
				   1, argtypes, args, NULL, !for_update, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("target \"%s\" does not exist", name)));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * An audit entry about target name: the options given (without "dsn") and
 * the DSN, masked, when one was set.  The caller is connected to SPI.
 */
static void
audit_target(Oid caller, const char *action, const char *name, const char *dsn,
			 Jsonb *options)
{
	Oid			argtypes[2] = {JSONBOID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = "  ";

	args[0] = options ? JsonbPGetDatum(options) : (Datum) 0;
	nulls[0] = options ? ' ' : 'n';
	args[1] = dsn ? CStringGetTextDatum(ds_mask_conninfo(dsn)) : (Datum) 0;
	nulls[1] = dsn ? ' ' : 'n';
	ds_spi_read("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
				"'options', NULLIF($1 - 'dsn', '{}'), 'dsn', $2))::text",
				2, argtypes, args, nulls);
	ds_audit(caller, action, psprintf("target %s", name),
			 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

static Datum
create_target(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	char	   *dsn = ds_arg_text(fcinfo, 1, "dsn");
	Jsonb	   *options = ds_arg_jsonb(fcinfo, 2, "options");
	Oid			argtypes[4] = {TEXTOID, TEXTOID, JSONBOID, OIDOID};
	Datum		args[4];

	ds_check_name("target", name);
	check_dsn(name, dsn);
	ds_target_options_check(options, name);
	check_password_env(options, name, caller);

	SPI_connect();
	args[0] = CStringGetTextDatum(name);
	ds_spi_read("SELECT 1 FROM datasync._targets WHERE name = $1", 1, argtypes, args, NULL);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("target \"%s\" already exists", name)));
	args[1] = CStringGetTextDatum(dsn);
	args[2] = options ? JsonbPGetDatum(options) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	args[3] = ObjectIdGetDatum(caller);
	ds_spi_exec("INSERT INTO datasync._targets (name, dsn, options, owner) VALUES ($1, $2, $3, $4)",
				4, argtypes, args, SPI_OK_INSERT);
	audit_target(caller, "create_target", name, dsn, options);
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

/*
 * alter_target(name, options): {"dsn": "..."} replaces the DSN; other keys
 * are merged into the options (a JSON null removes one).  The target's
 * pipelines reconnect with the new settings.
 */
static Datum
alter_target(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	Jsonb	   *options = ds_arg_jsonb(fcinfo, 1, "options");
	char	   *newdsn;
	Oid			argtypes[4] = {INT8OID, JSONBOID, TEXTOID, OIDOID};
	Datum		args[4];
	int64		id;
	Jsonb	   *merged;
	uint64		i;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of target \"%s\" must be a JSON object", name)));

	SPI_connect();
	id = target_id(name, true);
	ds_target_check_right(id, caller, DS_TARGET_OWN);
	newdsn = ds_jsonb_get_text(options, "dsn");
	if (newdsn == NULL && getKeyJsonValueFromContainer(&options->root, "dsn", 3, NULL) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target option \"dsn\" must be a string")));
	if (newdsn)
		check_dsn(name, newdsn);

	/* merged options: old || new - 'dsn', then drop JSON nulls */
	args[0] = Int64GetDatum(id);
	args[1] = JsonbPGetDatum(options);
	ds_spi_exec("SELECT coalesce(jsonb_object_agg(e.key, e.value) FILTER (WHERE jsonb_typeof(e.value) <> 'null'), '{}') "
				"FROM datasync._targets t, jsonb_each((t.options || $2) - 'dsn') e WHERE t.id = $1",
				2, argtypes, args, SPI_OK_SELECT);
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		merged = isnull ? NULL : DatumGetJsonbPCopy(d);
	}
	ds_target_options_check(merged, name);
	/* a new DSN takes the variable along to a new host */
	check_password_env(newdsn ? merged : options, name, caller);

	args[1] = merged ? JsonbPGetDatum(merged) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	args[2] = newdsn ? CStringGetTextDatum(newdsn) : (Datum) 0;
	args[3] = ObjectIdGetDatum(caller);
	/* whoever sets the DSN owns the connection it makes */
	ds_spi_execute("UPDATE datasync._targets SET options = $2, dsn = coalesce($3, dsn),"
				   " owner = CASE WHEN $3 IS NULL THEN owner ELSE $4 END WHERE id = $1",
				   4, argtypes, args, newdsn ? "    " : "  n ", false, SPI_OK_UPDATE);

	ds_spi_exec("SELECT id, incarnation FROM datasync._pipelines WHERE target_id = $1", 1, argtypes, args, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		ds_signal_at_commit(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
							DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)));
	}
	audit_target(caller, "alter_target", name, newdsn, options);
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

Datum
datasync_create_target(PG_FUNCTION_ARGS)
{
	return ds_call_hiding_statement(create_target, fcinfo, NULL);
}

Datum
datasync_alter_target(PG_FUNCTION_ARGS)
{
	return ds_call_hiding_statement(alter_target, fcinfo, NULL);
}

Datum
datasync_drop_target(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	SPI_connect();
	args[0] = Int64GetDatum(target_id(name, true));
	ds_target_check_right(DatumGetInt64(args[0]), caller, DS_TARGET_OWN);
	ds_spi_exec("SELECT name FROM datasync._pipelines WHERE target_id = $1 ORDER BY name LIMIT 1",
				1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("target \"%s\" is used by pipeline \"%s\"", name,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errhint("Drop the pipelines that use it first.")));
	ds_spi_exec("DELETE FROM datasync._targets WHERE id = $1", 1, argtypes, args, SPI_OK_DELETE);
	audit_target(caller, "drop_target", name, NULL, NULL);
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

/* one {"kind": ..., "name": ...} item of test_target's "missing" */
static char *
missing_item(const char *kind, const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	ds_json_add(&buf, "kind", kind);
	ds_json_add(&buf, "name", name);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* is col among the names of a text[] value libpq returned? */
static bool
array_has_name(PGresult *res, int row, int col, const char *name)
{
	Datum		arr = OidInputFunctionCall(F_ARRAY_IN, PQgetvalue(res, row, col), TEXTOID, -1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), name) == 0)
			return true;
	return false;
}

/* a table test_target checks, as one pipeline would send it */
typedef struct ProbeTable
{
	Oid			relid;
	DsPipelineOptions opts;		/* that pipeline's options */
	const char *strategy;		/* its conflict strategy */
} ProbeTable;

/*
 * Does this table compare commit timestamps (latest-timestamp without a
 * timestamp_column), which needs track_commit_timestamp on the target?
 */
static bool
needs_commit_ts(ProbeTable *pt, const char *nsp, const char *rel)
{
	const char *s = ds_table_option(pt->opts.table_strategies, nsp, rel);

	if (s == NULL)
		s = pt->strategy;
	return strcmp(s, "latest-timestamp") == 0 &&
		ds_table_option(pt->opts.timestamp_columns, nsp, rel) == NULL;
}

/* what test_target checks once connected; appends to out and missing */
static void
probe_target(PGconn *conn, StringInfo out, List *tables, List **missing)
{
	instr_time	start;
	instr_time	elapsed;
	PGresult   *res;
	bool		commit_ts;
	ListCell   *tc;

	res = ds_pq_exec(conn, "SELECT pg_catalog.current_setting('server_version'), current_user,"
					 " pg_catalog.current_setting('is_superuser') = 'on',"
					 " pg_catalog.current_setting('track_commit_timestamp') = 'on'", DS_CONN_TARGET);
	appendStringInfoString(out, ", \"version\": ");
	escape_json(out, PQgetvalue(res, 0, 0));
	appendStringInfoString(out, ", \"role\": ");
	escape_json(out, PQgetvalue(res, 0, 1));
	/* such a role can write anything there, system catalogs included */
	appendStringInfo(out, ", \"superuser\": %s",
					 strcmp(PQgetvalue(res, 0, 2), "t") == 0 ? "true" : "false");
	commit_ts = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	appendStringInfo(out, ", \"track_commit_timestamp\": %s", commit_ts ? "true" : "false");
	PQclear(res);

	INSTR_TIME_SET_CURRENT(start);
	PQclear(ds_pq_exec(conn, "SELECT 1", DS_CONN_TARGET));
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	appendStringInfo(out, ", \"latency_ms\": %.3f", INSTR_TIME_GET_MILLISEC(elapsed));

	foreach(tc, tables)
	{
		ProbeTable *t = lfirst(tc);
		Oid			relid = t->relid;
		DsPipelineConfig cfg;
		char	   *nsp;
		char	   *rel;
		bool		part;
		List	   *cols;
		char	   *qname;
		const char *vals[1];
		ListCell   *lc;

		/* a source table dropped under its pipeline */
		if (get_rel_name(relid) == NULL)
		{
			*missing = lappend(*missing, missing_item("dropped table", psprintf("%u", relid)));
			continue;
		}
		cols = ds_table_columns(relid, &nsp, &rel, &part);

		/* where the pipeline's options send this table */
		memset(&cfg, 0, sizeof(cfg));
		cfg.options = t->opts;
		qname = ds_target_qname(&cfg, nsp, rel);

		vals[0] = qname;
		res = ds_pq_exec_params(conn,
								"SELECT c.oid IS NOT NULL,"
								" array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p"
								"       WHERE NOT pg_catalog.has_table_privilege(c.oid, p)), ', '),"
								" ARRAY(SELECT attname::text FROM pg_catalog.pg_attribute"
								"       WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped),"
								" c.oid < 16384 OR EXISTS (SELECT 1 FROM pg_catalog.pg_class r"
								"       JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.oid"
								"       AND (n.nspname = 'information_schema' OR n.nspname OPERATOR(pg_catalog.^@) 'pg_'))"
								" FROM (SELECT pg_catalog.to_regclass($1) AS oid) c",
								1, vals, DS_CONN_TARGET);
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			*missing = lappend(*missing, missing_item("table", qname));
		else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0)
			*missing = lappend(*missing, missing_item("system table", qname));
		else
		{
			if (PQgetvalue(res, 0, 1)[0] != '\0')
				*missing = lappend(*missing,
								   missing_item("privilege", psprintf("%s on %s", PQgetvalue(res, 0, 1), qname)));
			foreach(lc, cols)
			{
				char	   *col = strVal(lfirst(lc));

				if (!array_has_name(res, 0, 2, col))
					*missing = lappend(*missing,
									   missing_item("column", psprintf("%s.%s", qname, quote_identifier(col))));
			}
		}
		PQclear(res);

		/* latest-timestamp on commit times reads them on the target */
		if (!commit_ts && needs_commit_ts(t, nsp, rel))
			*missing = lappend(*missing,
							   missing_item("setting", psprintf("track_commit_timestamp = on (latest-timestamp compares commit times of %s)",
																qname)));
	}

	/* the progress table: usable, or creatable */
	res = ds_pq_exec(conn,
					 "SELECT CASE WHEN pg_catalog.to_regclass('" DATASYNC_PROGRESS_TABLE "') IS NULL"
					 " THEN pg_catalog.has_schema_privilege('public', 'CREATE')"
					 " ELSE pg_catalog.has_table_privilege('" DATASYNC_PROGRESS_TABLE "', 'SELECT')"
					 " AND pg_catalog.has_table_privilege('" DATASYNC_PROGRESS_TABLE "', 'INSERT')"
					 " AND pg_catalog.has_table_privilege('" DATASYNC_PROGRESS_TABLE "', 'UPDATE') END",
					 DS_CONN_TARGET);
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		*missing = lappend(*missing, missing_item("privilege", "SELECT, INSERT, UPDATE on " DATASYNC_PROGRESS_TABLE " (or CREATE on schema public)"));
	PQclear(res);
}

/*
 * The tables test_target checks: those of the target's pipelines, each
 * with its pipeline's options and strategy.  Runs inside SPI.
 */
static pg_noinline List *
pipeline_probe_tables(Datum target_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	List	   *result = NIL;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	bool		isnull;

	args[0] = target_id;
	ds_spi_read("SELECT pt.relid, p.options, p.conflict_strategy FROM datasync._pipeline_tables pt "
				"JOIN datasync._pipelines p ON p.id = pt.pipeline_id WHERE p.target_id = $1 ORDER BY 1, p.id",
				1, argtypes, args, NULL);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		ProbeTable *t = palloc0(sizeof(ProbeTable));

		t->relid = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		ds_options_parse(DatumGetJsonbP(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull)), &t->opts);
		t->strategy = ds_strategy_parse(SPI_getvalue(tt->vals[i], tt->tupdesc, 3), NULL);
		result = lappend(result, t);
	}
	return result;
}

/*
 * The tables test_target checks when given a list: as one new pipeline
 * with these options would send them ({"conflict_strategy": ...} as
 * alter_pipeline takes it, the other keys as create_pipeline's options).
 * Runs inside SPI.
 */
static pg_noinline List *
listed_probe_tables(FunctionCallInfo fcinfo)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	const char *strategy = "source-wins";
	DsPipelineOptions opts;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;

	if (options != NULL && (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));
	if (options != NULL)
	{
		Oid			argtypes[1] = {JSONBOID};
		Datum		args[1];
		char	   *s = ds_jsonb_get_text(options, "conflict_strategy");
		bool		isnull;

		if (s != NULL)
			strategy = ds_strategy_parse(s, NULL);
		args[0] = JsonbPGetDatum(options);
		ds_spi_read("SELECT $1 - 'conflict_strategy' - 'mode' - 'schedule'", 1, argtypes, args, NULL);
		options = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	ds_options_parse(options, &opts);

	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		ProbeTable *t;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"tables\" must not contain NULL")));
		t = palloc0(sizeof(ProbeTable));
		t->relid = DatumGetObjectId(elems[i]);
		t->opts = opts;
		t->strategy = strategy;
		result = lappend(result, t);
	}
	return result;
}

/*
 * test_target(name [, tables [, options]]): connect, report the server
 * version and round-trip latency, and for each table whether it exists
 * there (under the name the pipeline's options give it) with every column
 * and the privileges apply needs, whether track_commit_timestamp is on
 * where latest-timestamp compares commit times, and whether the progress
 * table is usable.  The tables are those of the target's pipelines, or
 * the given list as one new pipeline with the given options would send
 * them.  A target that cannot be reached is reported, not raised.
 */
Datum
datasync_test_target(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "name");
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	char	   *dsn;
	char	   *password = NULL;
	char	   *password_env;
	Jsonb	   *topts;
	StringInfoData out;
	List	   *missing = NIL;
	PGconn	   *volatile conn = NULL;
	char	   *volatile error = NULL;
	bool		isnull;
	List	   *tables;
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *lc;
	Oid			owner;

	SPI_connect();
	args[0] = Int64GetDatum(target_id(name, false));
	ds_target_check_right(DatumGetInt64(args[0]), caller, DS_TARGET_USE);
	ds_spi_read("SELECT dsn, options, owner FROM datasync._targets WHERE id = $1", 1, argtypes, args, NULL);
	dsn = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	topts = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	password_env = ds_jsonb_get_text(topts, "password_env");
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
		tables = listed_probe_tables(fcinfo);
	else
		tables = pipeline_probe_tables(args[0]);

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	ds_json_add(&out, "target", name);
	ds_json_add(&out, "dsn", ds_mask_conninfo(dsn));

	if (password_env && (password = getenv(password_env)) == NULL)
		error = psprintf("environment variable \"%s\" is not set in the server's environment", password_env);
	else
	{
		PG_TRY();
		{
			instr_time	start;
			instr_time	elapsed;

			INSTR_TIME_SET_CURRENT(start);
			conn = ds_pq_connect(dsn, password, false, "datasync test_target", DS_CONN_TARGET);
			{
				PGconn	   *c = conn;

				conn = NULL;	/* closed by the check if it fails */
				ds_pq_check_password_used(c, owner, name, dsn);
				conn = c;
			}
			INSTR_TIME_SET_CURRENT(elapsed);
			INSTR_TIME_SUBTRACT(elapsed, start);
			appendStringInfo(&out, ", \"connect_ms\": %.3f", INSTR_TIME_GET_MILLISEC(elapsed));
			probe_target(conn, &out, tables, &missing);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (edata->elevel > ERROR || edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				PG_RE_THROW();
			FlushErrorState();
			error = edata->message;
		}
		PG_END_TRY();
		ds_pq_finish(conn);
	}

	appendStringInfo(&out, ", \"ok\": %s", error == NULL && missing == NIL ? "true" : "false");
	if (error)
	{
		appendStringInfoString(&out, ", \"error\": ");
		escape_json(&out, error);
	}
	appendStringInfoString(&out, ", \"missing\": [");
	foreach(lc, missing)
		appendStringInfo(&out, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", (char *) lfirst(lc));
	appendStringInfoString(&out, "]}");
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

Datum
datasync_mask_dsn(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ds_mask_conninfo(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * grant_target(target, grantee), revoke_target(target, grantee): let a
 * role (and its members) use a target, or no longer.  Only the target's
 * owner and superusers may.  Granting twice, or revoking what was not
 * granted, changes nothing.  A revoke restarts the sessions of the
 * target's pipelines, whose workers check again that the role that
 * created each may still use the target (trust.c): those of a role that
 * lost it stop in state error.
 */
static void
change_grantees(FunctionCallInfo fcinfo, bool grant)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "target");
	Oid			grantee;
	char	   *grantee_name;
	Oid			argtypes[3] = {INT8OID, OIDOID, BOOLOID};
	Datum		args[3];
	StringInfoData details;

	ds_arg_required(fcinfo, 1, "grantee");
	grantee = PG_GETARG_OID(1);
	grantee_name = OidIsValid(grantee) ? GetUserNameFromId(grantee, true) : NULL;
	if (grantee_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", grantee)));

	SPI_connect();
	args[0] = Int64GetDatum(target_id(name, true));
	ds_target_check_right(DatumGetInt64(args[0]), caller, DS_TARGET_OWN);
	args[1] = ObjectIdGetDatum(grantee);
	args[2] = BoolGetDatum(grant);
	ds_spi_exec("UPDATE datasync._targets SET grantees = CASE"
				" WHEN NOT $3 THEN pg_catalog.array_remove(grantees, $2)"
				" WHEN $2 = ANY (grantees) THEN grantees ELSE grantees || $2 END WHERE id = $1",
				3, argtypes, args, SPI_OK_UPDATE);
	initStringInfo(&details);
	appendStringInfoChar(&details, '{');
	ds_json_add(&details, "grantee", grantee_name);
	appendStringInfoChar(&details, '}');
	ds_audit(caller, grant ? "grant_target" : "revoke_target", psprintf("target %s", name), details.data);
	if (!grant)
	{
		uint64		i;

		ds_spi_exec("SELECT id, incarnation FROM datasync._pipelines WHERE target_id = $1",
					1, argtypes, args, SPI_OK_SELECT);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			ds_signal_at_commit(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
								DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)));
		}
	}
	SPI_finish();
	ds_api_leave(&call);
}

Datum
datasync_grant_target(PG_FUNCTION_ARGS)
{
	change_grantees(fcinfo, true);
	PG_RETURN_VOID();
}

Datum
datasync_revoke_target(PG_FUNCTION_ARGS)
{
	change_grantees(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * _config_target_dsn_is(name, dsn): is the stored DSN of target name
 * exactly dsn?  apply_config asks it for documents that give a password.
 * It answers only the target's owner (who set that password) and
 * superusers: to anyone else it would be an oracle for password guesses.
 * False when there is no such target.
 */
Datum
datasync_config_target_dsn_is(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	bool		isnull;
	bool		result = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		ds_api_leave(&call);
		PG_RETURN_BOOL(false);
	}
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	ds_spi_read("SELECT id, dsn = $2 FROM datasync._targets WHERE name = $1", 2, argtypes, args, NULL);
	if (SPI_processed > 0)
	{
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		ds_target_check_right(id, caller, DS_TARGET_OWN);
	}
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_BOOL(result);
}
