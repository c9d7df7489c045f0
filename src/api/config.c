/*-------------------------------------------------------------------------
 *
 * config.c
 *		datasync.apply_config: the declarative set-up, its errors kept out
 *		of the server log's statement lines, its runs audited.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/config.c
 *
 * NOTES
 *		The work is datasync._config_apply (PL/pgSQL, SECURITY INVOKER),
 *		called here as the caller: it calls the SQL API, whose functions
 *		check the calling role themselves, so a document can do exactly what
 *		its caller could do by calling them.  Its argument holds passwords,
 *		so an error is re-raised with hide_stmt (PL/pgSQL cannot do that):
 *		the server log then shows the error without the statement.  A
 *		successful run is written to datasync.audit_log with what it did
 *		(names and keys, never a value of the document).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/jsonb.h"

#include "api/apiutil.h"

PG_FUNCTION_INFO_V1(datasync_apply_config);

#define CONFIG_ERROR_PREFIX "invalid configuration at "

/* the document applied by datasync._config_apply, as the caller */
static Datum
apply_document(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1];
	char		nulls[1];
	bool		isnull;
	Datum		d;

	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	SPI_connect();
	ds_spi_execute("SELECT datasync._config_apply($1)", 1, argtypes, args, nulls,
				   false, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "datasync._config_apply returned no result");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "datasync._config_apply returned NULL");
	d = SPI_datumTransfer(d, false, -1);
	SPI_finish();
	return d;
}

Datum
datasync_apply_config(PG_FUNCTION_ARGS)
{
	/* an error of the document names its path: the helpers are noise */
	Jsonb	   *result = DatumGetJsonbP(ds_call_hiding_statement(apply_document, fcinfo,
																 CONFIG_ERROR_PREFIX));
	DsApiCall	call;

	(void) ds_api_enter(fcinfo, &call);
	SPI_connect();
	ds_audit(call.caller, "apply_config", NULL,
			 JsonbToCString(NULL, &result->root, VARSIZE(result)));
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_JSONB_P(result);
}
