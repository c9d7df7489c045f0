/*-------------------------------------------------------------------------
 *
 * apiutil.c
 *		Argument checks shared by the SQL-callable functions.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/apiutil.c
 *
 * NOTES
 *		The SQL functions are not STRICT, so that a NULL argument gets an
 *		error naming it rather than a silent NULL result: every one of
 *		them checks through ds_arg_required (22004, argument "x" must not
 *		be null).
 *
 *		They are SECURITY INVOKER: ds_api_enter takes the role that called
 *		the function (current_user at that moment, which a SECURITY DEFINER
 *		function could not see), then switches to the function's owner,
 *		the extension's, for the catalog work, the way SECURITY DEFINER
 *		would.  Every privilege check uses the caller.  An error restores
 *		the user at the abort of the (sub)transaction; ds_api_leave does at
 *		a normal return.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xlog.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "api/apiutil.h"
#include "shmem.h"

/*
 * Refuse a NULL for argument argno, named argname in the error.  Every
 * NULL check of an argument goes through here, so they all raise the same
 * error.
 */
void
ds_arg_required(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", argname)));
}

/* a text argument that must not be NULL, as a C string */
char *
ds_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	ds_arg_required(fcinfo, argno, argname);
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* a jsonb argument; NULL reads as an empty document */
Jsonb *
ds_arg_jsonb(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_JSONB_P(argno);
}

/* names of targets and pipelines: non-empty, printable, short enough */
void
ds_check_name(const char *what, const char *name)
{
	const char *p;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s name must not be empty", what)));
	if (strlen(name) > DATASYNC_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s name \"%s\" is too long", what, name),
				 errdetail("Names may have at most %d bytes.", DATASYNC_MAX_NAME_LEN)));
	for (p = name; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("%s name must not contain control characters", what)));
}

/*
 * A non-NULL interval argument "timeout" in milliseconds, at most a year
 * (longer is "wait until done" in practice).  Negative ones are refused.
 */
int64
ds_arg_timeout_ms(FunctionCallInfo fcinfo, int argno)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(argno);

	/* in double: a huge interval must not overflow */
	double		ms = timeout->time / 1000.0 +
		((double) timeout->day + (double) timeout->month * DAYS_PER_MONTH) * 86400000.0;

	if (ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"timeout\" must not be negative: \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(timeout))))));
	return ms > DS_TIMEOUT_MAX_MS ? DS_TIMEOUT_MAX_MS : (int64) ms;
}

/* pipelines need datasync preloaded and logical WAL */
void
ds_require_preload(void)
{
	if (!ds_shmem_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("datasync is not loaded through shared_preload_libraries"),
				 errhint("Add datasync to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wal_level must be \"logical\" for datasync pipelines"),
				 errhint("Set wal_level = logical in postgresql.conf and restart the server.")));
}

/*
 * Enter a SQL API function: remember the calling role and become the
 * function's owner.  Returns the caller.
 *
 * Functions still declared SECURITY DEFINER (the 0.1 catalog, before
 * ALTER EXTENSION datasync UPDATE) already run as the owner and cannot
 * know their caller: they get the outer user, as 0.1 did.
 */
Oid
ds_api_enter(FunctionCallInfo fcinfo, DsApiCall *call)
{
	HeapTuple	tup;
	Oid			owner;
	bool		secdef;

	GetUserIdAndSecContext(&call->save_userid, &call->save_sec_context);
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	secdef = ((Form_pg_proc) GETSTRUCT(tup))->prosecdef;
	ReleaseSysCache(tup);

	call->switched = false;
	if (secdef)
	{
		call->caller = GetOuterUserId();
		return call->caller;
	}
	call->caller = call->save_userid;
	SetUserIdAndSecContext(owner, call->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	call->switched = true;
	return call->caller;
}

/* Back to the caller's user id (at a normal return). */
void
ds_api_leave(DsApiCall *call)
{
	if (call->switched)
		SetUserIdAndSecContext(call->save_userid, call->save_sec_context);
	call->switched = false;
}

/*
 * Append "key": "val" (val NULL: null) to a JSON object being written in
 * buf, which starts with '{'; the caller closes it.
 */
void
ds_json_add(StringInfo buf, const char *key, const char *val)
{
	if (buf->len > 0 && buf->data[buf->len - 1] != '{')
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	if (val)
		escape_json(buf, val);
	else
		appendStringInfoString(buf, "null");
}

/*
 * Add an entry to datasync.audit_log: actor did action to object; details
 * is a JSON object (text) or NULL, with no secret in it.  When the session
 * user is another role (SET ROLE, a SECURITY DEFINER wrapper), it is
 * recorded too.  The caller is connected to SPI and runs as the owner.
 */
void
ds_audit(Oid actor, const char *action, const char *object, const char *details)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[4];
	char		nulls[4] = "    ";

	args[0] = CStringGetTextDatum(GetUserNameFromId(actor, false));
	args[1] = CStringGetTextDatum(action);
	args[2] = object ? CStringGetTextDatum(object) : (Datum) 0;
	nulls[2] = object ? ' ' : 'n';
	args[3] = details ? CStringGetTextDatum(details) : (Datum) 0;
	nulls[3] = details ? ' ' : 'n';
	ds_spi_execute("SELECT datasync._audit($1, $2, $3,"
				   " CASE WHEN $1 = session_user::text THEN $4::jsonb"
				   " ELSE coalesce($4::jsonb, '{}') || pg_catalog.jsonb_build_object('session_user', session_user::text) END)",
				   4, argtypes, args, nulls, false, SPI_OK_SELECT);
}

/*
 * Run fn; if it raises an error, have the server log leave out the
 * statement, whose text may hold a DSN or a document with a password
 * (create_target, alter_target, apply_config).  An error whose message
 * starts with quiet_prefix (when not NULL) loses its context too: it
 * names what was wrong already.
 */
Datum
ds_call_hiding_statement(PGFunction fn, FunctionCallInfo fcinfo, const char *quiet_prefix)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;

	PG_TRY();
	{
		result = fn(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		if (quiet_prefix && edata->message &&
			strncmp(edata->message, quiet_prefix, strlen(quiet_prefix)) == 0)
			edata->context = NULL;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}
