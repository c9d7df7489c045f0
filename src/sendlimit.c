/*-------------------------------------------------------------------------
 *
 * sendlimit.c
 *		How much one message to a PostgreSQL target may carry, and how a
 *		change that cannot fit is reported.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/sendlimit.c
 *
 * NOTES
 *		A PostgreSQL server reads a protocol message of at most
 *		PQ_LARGE_MESSAGE_LIMIT (1 GB - 2) bytes; a larger one ("invalid
 *		message length") makes it close the connection, which to the worker
 *		looks like a transient failure.  Sending the same statement again
 *		fails the same way, so nothing the worker sends may reach that
 *		size (target/apply_pg_stmt.c, apply_pg_pipe.c):
 *
 *		- a multi-row statement (a run of up to 64 rows) carries at most
 *		  DS_RUN_MAX_BYTES of values; a row that does not fit ends the run
 *		  and starts the next, and a row over it goes alone, as the
 *		  single-row statement of its change;
 *		- a COPY chunk is at most DS_COPY_CHUNK_BYTES plus one row of at
 *		  most DS_COPY_MAX_ROW_BYTES, and goes in messages of about
 *		  DS_COPY_SEND_BYTES;
 *		- a single statement whose Bind message would still be over the
 *		  limit (a row of several columns near 1 GB each, or an UPDATE that
 *		  sends the whole old and new row) cannot be sent at all: that is a
 *		  permanent error naming the pipeline, the table and the change's
 *		  LSN (ds_statement_too_large), so the pipeline stops in state
 *		  "error" instead of retrying for ever.
 *
 *		A batch (one target transaction) is capped by the pipeline option
 *		batch_max_bytes as well as batch_size (worker/batch.c): it closes at the
 *		next source commit once its changes carry that many bytes.
 *
 *		The developer option datasync.statement_max_bytes lowers the limit
 *		of one statement (and with it the multi-row cap) so that tests can
 *		cross it with rows of a few hundred kilobytes.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "utils/builtins.h"

#include "sendlimit.h"

int			datasync_statement_max_bytes = (int) DS_PG_MESSAGE_LIMIT;

/* the most one statement's message may take */
Size
ds_statement_limit(void)
{
	return Min((Size) datasync_statement_max_bytes, DS_PG_MESSAGE_LIMIT);
}

/* the most the values of one multi-row statement may take */
Size
ds_run_limit(void)
{
	return Min((Size) DS_RUN_MAX_BYTES, ds_statement_limit());
}

/* bytes of the values a change's row carries (unchanged TOAST: none) */
Size
ds_tuple_bytes(const LogicalRepTupleData *tup)
{
	Size		bytes = 0;
	int			i;

	if (tup == NULL)
		return 0;
	for (i = 0; i < tup->ncols; i++)
		if (tup->colstatus[i] == LOGICALREP_COLUMN_TEXT ||
			tup->colstatus[i] == LOGICALREP_COLUMN_BINARY)
			bytes += tup->colvalues[i].len;
	return bytes;
}

/*
 * Length of the Bind message libpq builds for a prepared statement with
 * text parameters, as the server counts it (from the length word on):
 * length, portal name, statement name, parameter format codes (none),
 * the parameters (a length word and the text each; NULL has no text),
 * result format codes (one).
 */
Size
ds_bind_bytes(const char *stmt, int nparams, const char *const *values)
{
	Size		bytes = 4 + 1 + strlen(stmt) + 1 + 2 + 2 + 2 + 2;
	int			i;

	for (i = 0; i < nparams; i++)
	{
		bytes += 4;
		if (values[i])
			bytes += strlen(values[i]);
	}
	return bytes;
}

/*
 * A statement of bytes bytes cannot be sent: stop the pipeline with an
 * error that says which change it was.  Permanent (54000): sending it again
 * cannot work.  No value of the row is quoted.
 */
void
ds_statement_too_large(const DsPipelineConfig *cfg, const DsRelation *rel,
					   const DsChange *ch, Size bytes)
{
	if (ch != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("change %d of the transaction committed at %X/%X to table \"%s.%s\" is too large to send to the target of pipeline \"%s\"",
						ch->change_seq, LSN_FORMAT_ARGS(ch->change_lsn),
						rel->nspname, rel->relname, cfg->name),
				 errdetail("Applying it to %s takes a statement of %zu bytes; one protocol message may carry at most %zu bytes.",
						   rel->target_qname, bytes, ds_statement_limit()),
				 errhint("Make the row smaller on the source or remove the table from the pipeline, then run SELECT datasync.resume(%s).",
						 quote_literal_cstr(cfg->name))));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("a statement for table \"%s.%s\" is too large to send to the target of pipeline \"%s\"",
					rel->nspname, rel->relname, cfg->name),
			 errdetail("Applying it to %s takes a statement of %zu bytes; one protocol message may carry at most %zu bytes.",
					   rel->target_qname, bytes, ds_statement_limit())));
}
