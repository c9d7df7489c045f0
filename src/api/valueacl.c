/*-------------------------------------------------------------------------
 *
 * valueacl.c
 *		Who may see row values of a table.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/valueacl.c
 *
 * NOTES
 *		datasync keeps row values of source tables in its own tables
 *		(conflicts, the audit log's row values) and in error texts.  They
 *		reach a role only when it may read the table itself: it is a
 *		superuser, or it holds SELECT on the table and the table's
 *		row-level security does not apply to it (owner, BYPASSRLS, or no
 *		RLS enabled).  A role that may read only some columns, or only
 *		some rows, sees no values.  A table that no longer exists is
 *		readable by superusers only.
 *
 *		The SQL function datasync.can_read_values(regclass) states the
 *		same rule for the current role (row-level security policies and
 *		views use it); this is the form for C code that runs as the
 *		extension's owner on behalf of another role.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rls.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/namespace.h"

#include "api/valueacl.h"
#include "catalog.h"

bool
ds_role_can_read_values(Oid relid, Oid roleid)
{
	if (superuser_arg(roleid))
		return true;
	if (!OidIsValid(relid) ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		return false;
	if (pg_class_aclcheck(relid, roleid, ACL_SELECT) != ACLCHECK_OK)
		return false;
	return check_enable_rls(relid, roleid, true) != RLS_ENABLED;
}

/*
 * sync_now() and job_status() return a run's row, whose error is the fixed
 * text that every reader may see (the whole text is in _job_errors).  The
 * role that called them gets the whole text back when it may read every
 * table of the pipeline, as datasync.job_errors would show it.  Runs in
 * the caller's transaction, as the extension owner (ds_api_enter); json
 * is returned unchanged when there is nothing to add.  The row was
 * committed after the caller's statement began (the worker wrote it), so
 * it is read with a snapshot of its own (not read_only).
 */
char *
ds_reveal_job_error(char *json, int64 job_id, Oid caller)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	char	   *result = json;
	char	   *error;
	int64		pipeline_id;
	bool		isnull;
	bool		all = true;
	uint64		i;

	if (json == NULL ||
		!OidIsValid(get_relname_relid("_job_errors", get_namespace_oid(DATASYNC_SCHEMA, false))))
		return json;
	SPI_connect();
	args[0] = Int64GetDatum(job_id);
	ds_spi_exec("SELECT e.error, j.pipeline_id FROM datasync._job_errors e"
				" JOIN datasync.jobs j ON j.id = e.job_id WHERE e.job_id = $1",
				1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		pipeline_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		args[0] = Int64GetDatum(pipeline_id);
		ds_spi_read("SELECT relid FROM datasync._pipeline_tables WHERE pipeline_id = $1",
					1, argtypes, args, NULL);
		if (SPI_processed == 0 && !superuser_arg(caller))
			all = false;
		for (i = 0; i < SPI_processed && all; i++)
			all = ds_role_can_read_values(DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																		 SPI_tuptable->tupdesc, 1, &isnull)),
										  caller);
		if (all)
		{
			args[0] = CStringGetTextDatum(json);
			args[1] = CStringGetTextDatum(error);
			argtypes[0] = TEXTOID;
			ds_spi_read("SELECT ($1::pg_catalog.jsonb || pg_catalog.jsonb_build_object('error', $2))::pg_catalog.text",
						2, argtypes, args, NULL);
			result = MemoryContextStrdup(outer,
										 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		}
	}
	SPI_finish();
	return result;
}
