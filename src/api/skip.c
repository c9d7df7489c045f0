/*-------------------------------------------------------------------------
 *
 * skip.c
 *		datasync.skip_transaction: let a pipeline pass one source
 *		transaction that can never apply.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/skip.c
 *
 * NOTES
 *		The counterpart of ALTER SUBSCRIPTION ... SKIP.  The transaction is
 *		named by its commit LSN, which the CONTEXT line of the error that
 *		stopped the pipeline gives ("... of the source transaction
 *		committed at 0/1A2B3C8").  The worker skips every change of that
 *		transaction (decode.c, change.c) and clears the request once a
 *		later batch is on the target (worker.c); until then a restart skips
 *		it again.  Nothing of the transaction reaches the target: the
 *		target is then different from the source for its rows, which the
 *		caller takes on (the audit log records who did it).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"

#include "api/apiutil.h"
#include "api/pipeline.h"
#include "catalog.h"

PG_FUNCTION_INFO_V1(datasync_skip_transaction);

/*
 * skip_transaction(pipeline, commit_lsn): skip the source transaction that
 * committed at commit_lsn; NULL takes a request back.  The pipeline's
 * worker starts a new session with it (resume() a pipeline stopped by the
 * transaction's error).
 */
Datum
datasync_skip_transaction(PG_FUNCTION_ARGS)
{
	DsApiCall	call;
	Oid			caller = ds_api_enter(fcinfo, &call);
	char	   *name = ds_arg_text(fcinfo, 0, "pipeline");
	bool		clear = PG_ARGISNULL(1);
	XLogRecPtr	lsn = clear ? InvalidXLogRecPtr : PG_GETARG_LSN(1);
	PipelineRow r;
	Oid			argtypes[2] = {INT8OID, PG_LSNOID};
	Datum		args[2];
	char		nulls[2] = "  ";

	if (!clear && XLogRecPtrIsInvalid(lsn))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid commit LSN 0/0"),
				 errhint("Give the LSN the error's CONTEXT names: \"... of the source transaction committed at <LSN>\".")));
	SPI_connect();
	r = pipeline_row(name, true);
	if (!clear)
	{
		Oid			stypes[1] = {TEXTOID};
		Datum		sargs[1];

		/* the slot has confirmed everything before this: done already */
		sargs[0] = CStringGetTextDatum(r.slot_name);
		ds_spi_read("SELECT confirmed_flush_lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
					1, stypes, sargs, NULL);
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		confirmed = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull && lsn < DatumGetLSN(confirmed))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("pipeline \"%s\" is past the transaction committed at %X/%X",
								name, LSN_FORMAT_ARGS(lsn)),
						 errdetail("Its slot has confirmed everything before %X/%X: that transaction was applied or skipped.",
								   LSN_FORMAT_ARGS(DatumGetLSN(confirmed)))));
		}
	}
	args[0] = Int64GetDatum(r.id);
	args[1] = LSNGetDatum(lsn);
	nulls[1] = clear ? 'n' : ' ';
	ds_spi_execute("UPDATE datasync._pipelines SET skip_lsn = $2 WHERE id = $1",
				   2, argtypes, args, nulls, false, SPI_OK_UPDATE);
	pipeline_audit(caller, "skip_transaction", name,
				   clear ? "{\"commit_lsn\": null}" :
				   psprintf("{\"commit_lsn\": \"%X/%X\"}", LSN_FORMAT_ARGS(lsn)));
	SPI_finish();
	ds_signal_at_commit(r.id, r.incarnation);
	ds_api_leave(&call);
	PG_RETURN_VOID();
}
