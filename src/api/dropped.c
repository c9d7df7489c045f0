/*-------------------------------------------------------------------------
 *
 * dropped.c
 *		Drops that concern pipelines: a synced table that is dropped leaves
 *		its pipelines; the extension is not dropped while pipelines exist.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/dropped.c
 *
 * NOTES
 *		datasync._table_dropped is the function of the event trigger
 *		datasync_table_dropped (sql_drop, ENABLE ALWAYS).  A dropped table
 *		leaves the publications by itself; here it leaves
 *		datasync._pipeline_tables too, so that no pipeline keeps an OID that
 *		names nothing (or, once OIDs wrap around, another table).  Each
 *		removal is reported to the dropping session (WARNING), written to
 *		datasync.audit_log with the dropping role as actor, and restarts the
 *		pipeline's worker session at commit.  The SQL API copes with a
 *		dangling OID as well (a table dropped while the trigger was
 *		disabled, or before 0.2): remove_table removes it.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "api/apiutil.h"

PG_FUNCTION_INFO_V1(datasync_table_dropped);

Datum
datasync_table_dropped(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller;
	uint64		n;
	uint64		i;
	int64	   *ids;
	int64	   *incarnations;
	char	  **pipelines;
	char	  **tables;
	bool		isnull;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("datasync._table_dropped() must be called by an event trigger")));
	caller = ds_api_enter(fcinfo, &call);
	SPI_connect();
	ds_spi_exec("DELETE FROM datasync._pipeline_tables pt"
				" USING pg_catalog.pg_event_trigger_dropped_objects() d, datasync._pipelines p"
				" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0"
				" AND pt.relid = d.objid AND p.id = pt.pipeline_id"
				" RETURNING p.id, p.name, d.object_identity, p.incarnation",
				0, NULL, NULL, SPI_OK_DELETE_RETURNING);
	n = SPI_processed;
	ids = palloc(sizeof(int64) * Max(n, 1));
	incarnations = palloc(sizeof(int64) * Max(n, 1));
	pipelines = palloc(sizeof(char *) * Max(n, 1));
	tables = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		pipelines[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		tables[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		incarnations[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		StringInfoData details;

		ereport(WARNING,
				(errmsg("table \"%s\" was dropped: it is no longer synced by pipeline \"%s\"",
						tables[i], pipelines[i])));
		initStringInfo(&details);
		appendStringInfoChar(&details, '{');
		ds_json_add(&details, "table", tables[i]);
		appendStringInfoChar(&details, '}');
		ds_audit(caller, "table_dropped", psprintf("pipeline %s", pipelines[i]), details.data);
		ds_signal_at_commit(ids[i], incarnations[i]);
	}
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(datasync_extension_drop);

/*
 * datasync._extension_drop is the function of the event trigger
 * datasync_extension_drop (ddl_command_start of DROP EXTENSION, ENABLE
 * ALWAYS).  Dropping the extension while pipelines exist would leave their
 * replication slots (which hold WAL on this server until dropped by hand)
 * and publications behind, and the sync workers without a catalog: it is
 * refused, naming the pipelines.  drop_pipeline removes each with its slot
 * and publication.
 */
Datum
datasync_extension_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *stmt;
	ListCell   *lc;
	bool		ours = false;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("datasync._extension_drop() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
	{
		if (strcmp(strVal(lfirst(lc)), "datasync") == 0)
			ours = true;
	}
	if (!ours)
		PG_RETURN_VOID();

	SPI_connect();
	ds_spi_read("SELECT count(*), string_agg(pg_catalog.quote_literal(name), ', ' ORDER BY name) "
				"FROM datasync._pipelines", 0, NULL, NULL, NULL);
	{
		bool		isnull;
		int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop extension datasync while it has %s", n == 1 ? "a pipeline" : "pipelines"),
					 errdetail("Pipelines: %s.  Each has a replication slot, which keeps WAL on this server until it is dropped, and a publication; DROP EXTENSION would leave them behind.",
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
					 errhint("Drop the pipelines first: SELECT datasync.drop_pipeline(name) FROM datasync.pipelines;")));
	}
	SPI_finish();
	PG_RETURN_VOID();
}
