/*-------------------------------------------------------------------------
 *
 * dropped.c
 *		A synced table that is dropped leaves its pipelines.
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
