/*-------------------------------------------------------------------------
 *
 * pipetables.c
 *		SQL functions that change the tables of a pipeline: add_table,
 *		remove_table, resync_table.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/pipetables.c
 *
 * NOTES
 *		Like the rest of the pipeline API (pipeline.c) they run as their
 *		caller: the table is checked for the caller (SELECT, row-level
 *		security, ownership for REPLICA IDENTITY), the pipeline's target
 *		must be usable by the caller, the role that added a table is
 *		recorded, and every change is audited.  A table dropped under the
 *		pipeline left the publication with it; remove_table removes its
 *		row (by OID) and resync_table refuses it.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "api/apiutil.h"
#include "isolation.h"
#include "api/pipeline.h"

PG_FUNCTION_INFO_V1(datasync_add_table);
PG_FUNCTION_INFO_V1(datasync_remove_table);
PG_FUNCTION_INFO_V1(datasync_resync_table);

/* is the table in the pipeline? */
static bool
is_member(int64 pipeline_id, Oid relid)
{
	Oid			argtypes[2] = {INT8OID, OIDOID};
	Datum		args[2];

	args[0] = Int64GetDatum(pipeline_id);
	args[1] = ObjectIdGetDatum(relid);
	ds_spi_exec("SELECT 1 FROM datasync._pipeline_tables WHERE pipeline_id = $1 AND relid = $2",
				2, argtypes, args, SPI_OK_SELECT);
	return SPI_processed > 0;
}

static Oid
arg_table(FunctionCallInfo fcinfo, int argno)
{
	ds_arg_required(fcinfo, argno, "tbl");
	return PG_GETARG_OID(argno);
}

typedef enum TableOp
{
	TABLE_ADD,
	TABLE_REMOVE,
	TABLE_RESYNC
} TableOp;

/* is the table in the pipeline's publication? */
static bool
in_publication(const char *pubname, Oid relid)
{
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2];

	args[0] = CStringGetTextDatum(pubname);
	args[1] = ObjectIdGetDatum(relid);
	ds_spi_exec("SELECT 1 FROM pg_catalog.pg_publication_rel pr"
				" JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid"
				" WHERE p.pubname = $1 AND pr.prrelid = $2",
				2, argtypes, args, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * add_table, remove_table, resync_table: change the publication and the
 * membership row; the worker starts a new session with them at commit
 * (copying an added or resynced table first).  A table dropped under the
 * pipeline left the publication with it: remove_table removes its row.
 */
static void
change_table(FunctionCallInfo fcinfo, TableOp op)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "pipeline");
	Oid			relid = arg_table(fcinfo, 1);
	PipelineRow r;
	Oid			argtypes[3] = {INT8OID, OIDOID, OIDOID};
	Datum		args[3];
	bool		member;
	bool		dropped;
	char	   *display;
	static const char *const actions[] = {"add_table", "remove_table", "resync_table"};

	/* a worker copies added and resynced tables: refuse where none runs */
	if (op != TABLE_REMOVE)
		ds_require_launcher_database();
	if (op == TABLE_ADD)
		ds_check_sync_table(relid, caller);
	SPI_connect();
	r = pipeline_row(name, true);
	ds_target_check_right(r.target_id, caller, DS_TARGET_USE);
	member = is_member(r.id, relid);
	dropped = get_rel_name(relid) == NULL;
	display = table_display(relid);
	if (op == TABLE_ADD && member)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" is already in pipeline \"%s\"", display, name)));
	if (op == TABLE_ADD)
	{
		DsPipelineOptions parsed;

		ds_options_parse(r.options, &parsed);
		ds_check_mapped_tables(list_make1_oid(relid), &parsed);
		check_conflict_tables(list_make1_oid(relid), r.strategy, &parsed, caller,
							  r.target_id);
	}
	if (op != TABLE_ADD && !member)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not in pipeline \"%s\"", display, name)));
	if (op == TABLE_RESYNC && dropped)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u of pipeline \"%s\" was dropped", relid, name),
				 errhint("Remove it with SELECT datasync.remove_table('%s', %u).", name, relid)));

	args[0] = Int64GetDatum(r.id);
	args[1] = ObjectIdGetDatum(relid);
	args[2] = ObjectIdGetDatum(caller);
	switch (op)
	{
		case TABLE_ADD:
			ds_spi_exec(psprintf("ALTER PUBLICATION %s ADD TABLE %s", quote_identifier(r.slot_name),
								 publication_member(relid)),
						0, NULL, NULL, SPI_OK_UTILITY);
			ds_spi_exec(PIPELINE_TABLES_INSERT, 3, argtypes, args, SPI_OK_INSERT);
			break;
		case TABLE_REMOVE:
			if (!dropped && in_publication(r.slot_name, relid))
				ds_spi_exec(psprintf("ALTER PUBLICATION %s DROP TABLE %s", quote_identifier(r.slot_name),
									 table_sql(relid)),
							0, NULL, NULL, SPI_OK_UTILITY);
			ds_spi_exec("DELETE FROM datasync._pipeline_tables WHERE pipeline_id = $1 AND relid = $2",
						2, argtypes, args, SPI_OK_DELETE);
			break;
		case TABLE_RESYNC:
			ds_spi_exec("UPDATE datasync._pipeline_tables SET sync_state = 's' WHERE pipeline_id = $1 AND relid = $2",
						2, argtypes, args, SPI_OK_UPDATE);
			break;
	}
	{
		StringInfoData details;

		initStringInfo(&details);
		appendStringInfoChar(&details, '{');
		ds_json_add(&details, "table", display);
		if (dropped)
			appendStringInfoString(&details, ", \"dropped\": true");
		appendStringInfoChar(&details, '}');
		pipeline_audit(caller, actions[op], name, details.data);
	}
	SPI_finish();
	ds_signal_at_commit(r.id, r.incarnation);
	ds_api_leave(&call);
}

Datum
datasync_add_table(PG_FUNCTION_ARGS)
{
	change_table(fcinfo, TABLE_ADD);
	PG_RETURN_VOID();
}

Datum
datasync_remove_table(PG_FUNCTION_ARGS)
{
	change_table(fcinfo, TABLE_REMOVE);
	PG_RETURN_VOID();
}

Datum
datasync_resync_table(PG_FUNCTION_ARGS)
{
	change_table(fcinfo, TABLE_RESYNC);
	PG_RETURN_VOID();
}
