/*-------------------------------------------------------------------------
 *
 * apiutil.c
 *		Argument checks shared by the SQL-callable functions.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/apiutil.c
 *
 * NOTES
 *		The SQL functions are not STRICT, so that a NULL argument gets an
 *		error naming it rather than a silent NULL result.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xlog.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "apiutil.h"
#include "shmem.h"

char *
ds_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", argname)));
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

/* run one SPI statement, raising on failure; the caller is connected */
void
ds_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%s): %s", SPI_result_code_string(rc), sql);
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
