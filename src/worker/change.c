/*-------------------------------------------------------------------------
 *
 * change.c
 *		The stages every row change passes, in order, on its way to the
 *		target.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/change.c
 *
 * NOTES
 *		decode.c hands each decoded row change to ds_change_process, which
 *		runs the stages of the list below in order.  A stage returns
 *		DS_STAGE_NEXT to pass the change on, or DS_STAGE_DONE when it has
 *		taken care of it (skipped it, joined it to a conflict); the last
 *		stage gives it to the target.  A new stage (transforms and masking,
 *		validation) is one function added to the list at its place:
 *
 *			skip      already applied, not in the pipeline, in the copy
 *			complete  fill unchanged TOAST values (an UPDATE's new row)
 *			route     conflicts: a change of a parked key joins its conflict
 *			apply     hand it to the target, count it in the batch
 *
 *		The trust model (trust.c, docs/security.md) holds for every stage:
 *		the worker runs as the bootstrap superuser, so a stage that
 *		evaluates anything a user can define (a read of the source table
 *		that may run its RLS policies or a type's output function, a
 *		function named in the configuration) runs it through
 *		ds_change_as_owner: in its own transaction, as the table's owner,
 *		under SECURITY_RESTRICTED_OPERATION with the pinned search_path.
 *		No stage calls user code otherwise.
 *
 *		An error raised while a change passes the stages carries a CONTEXT
 *		line naming the pipeline, the table, the change's place in its
 *		source transaction and that transaction's commit LSN, the identity
 *		datasync.conflicts uses.  A target's errors come with the results
 *		of its statements, often of earlier changes: the target names the
 *		changes a failed statement carried itself (apply_pg_pipe.c).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "trust.h"
#include "worker/batch.h"
#include "worker/change.h"
#include "worker/conflict.h"

typedef enum DsStageResult
{
	DS_STAGE_NEXT,				/* pass the change to the next stage */
	DS_STAGE_DONE				/* this stage took care of it */
} DsStageResult;

typedef DsStageResult (*DsStageFn) (DsDecoder *d, DsChange *ch);

static DsStageResult stage_skip(DsDecoder *d, DsChange *ch);
static DsStageResult stage_complete(DsDecoder *d, DsChange *ch);
static DsStageResult stage_route(DsDecoder *d, DsChange *ch);
static DsStageResult stage_apply(DsDecoder *d, DsChange *ch);

/*
 * The stages of a row change, in order (see NOTES).  target: the stage
 * hands changes to the target, which may report the results of earlier
 * changes there; the target's errors name the changes they are about
 * themselves, so this change is not named for them.
 */
static const struct
{
	const char *name;
	DsStageFn	fn;
	bool		target;
}			stages[] =
{
	{"skip", stage_skip, false},
	{"complete", stage_complete, false},
	{"route", stage_route, true},
	{"apply", stage_apply, true},
};

/* for the CONTEXT line of an error */
typedef struct ChangeContext
{
	DsDecoder  *d;
	DsChange   *ch;
	const char *stage;
	bool		target;			/* in a stage whose errors the target names */
} ChangeContext;

static const char *
kind_name(DsChangeKind kind)
{
	switch (kind)
	{
		case DS_CHANGE_INSERT:
			return "INSERT";
		case DS_CHANGE_UPDATE:
			return "UPDATE";
		case DS_CHANGE_DELETE:
			return "DELETE";
	}
	return "?";
}

static void
change_error_context(void *arg)
{
	ChangeContext *cc = arg;
	DsChange   *ch = cc->ch;

	if (cc->target)
		return;
	errcontext("%s of table \"%s.%s\" (change %d of the source transaction committed at %X/%X), %s stage of pipeline \"%s\"",
			   kind_name(ch->kind), ch->rel->nspname, ch->rel->relname,
			   ch->change_seq, LSN_FORMAT_ARGS(ch->change_lsn),
			   cc->stage, cc->d->cfg->name);
}

/* Run a row change through the stages. */
void
ds_change_process(DsDecoder *d, DsChange *ch)
{
	ErrorContextCallback errcallback;
	ChangeContext cc;
	size_t		i;

	cc.d = d;
	cc.ch = ch;
	cc.stage = stages[0].name;
	cc.target = false;
	errcallback.callback = change_error_context;
	errcallback.arg = &cc;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < lengthof(stages); i++)
	{
		cc.stage = stages[i].name;
		cc.target = stages[i].target;
		if (stages[i].fn(d, ch) == DS_STAGE_DONE)
			break;
	}

	error_context_stack = errcallback.previous;
}

/*
 * Run fn(arg), code that may evaluate what a user defined, as the owner of
 * the change's table (see NOTES), in a transaction of its own unless one
 * is open.
 */
void
ds_change_as_owner(DsChange *ch, const char *what, DsOwnerFn fn, void *arg)
{
	bool		started = ds_xact_start();

	(void) ds_as_table_owner(ch->rel->remoteid, what, fn, arg, true);
	ds_xact_commit(started);
}

/* does a change of rel in the transaction being received get applied? */
static bool
wanted(DsDecoder *d, DsRelation *rel)
{
	if (d->skip_txn || !rel->in_pipeline)
		return false;
	/* committed before the table's copy: the copy has it */
	if (!XLogRecPtrIsInvalid(rel->sync_lsn) && d->final_lsn < rel->sync_lsn)
		return false;
	return true;
}

/* skip: applied before a restart, not in the pipeline, or in the copy */
static DsStageResult
stage_skip(DsDecoder *d, DsChange *ch)
{
	return wanted(d, ch->rel) ? DS_STAGE_NEXT : DS_STAGE_DONE;
}

typedef struct CompleteRead
{
	DsRelation *rel;
	LogicalRepTupleData *oldtup;
	LogicalRepTupleData *newtup;
	MemoryContext caller;
} CompleteRead;

/*
 * The look-up of stage_complete, run as the table's owner (trust.c): the
 * table is locked and checked by then, so its name is resolved here, and
 * key values are cast to their base types (a domain's CHECK has nothing
 * to say about a value the source table holds).
 */
static void
complete_read(void *arg)
{
	CompleteRead *cr = arg;
	DsRelation *rel = cr->rel;
	LogicalRepTupleData *newtup = cr->newtup;
	StringInfoData sql;
	Oid		   *argtypes = palloc(sizeof(Oid) * rel->nkeys);
	Datum	   *args = palloc(sizeof(Datum) * rel->nkeys);
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < rel->natts; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", quote_identifier(rel->attnames[i]));
	appendStringInfo(&sql, " FROM %s%s WHERE ",
					 get_rel_relkind(rel->remoteid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel->remoteid)),
												get_rel_name(rel->remoteid)));
	for (i = 0; i < rel->nkeys; i++)
	{
		int			a = rel->keyatts[i];
		LogicalRepTupleData *k = newtup->colstatus[a] == LOGICALREP_COLUMN_TEXT ? newtup : cr->oldtup;

		appendStringInfo(&sql, "%s%s = $%d::%s", i > 0 ? " AND " : "",
						 quote_identifier(rel->attnames[a]), i + 1,
						 format_type_extended(getBaseType(rel->atttyps[a]), -1,
											  FORMAT_TYPE_FORCE_QUALIFY));
		argtypes[i] = TEXTOID;
		args[i] = CStringGetTextDatum(k->colvalues[a].data);
	}

	SPI_connect();
	if (SPI_execute_with_args(sql.data, rel->nkeys, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read a row of table \"%s.%s\"", rel->nspname, rel->relname);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		for (i = 0; i < rel->natts; i++)
		{
			char	   *v;

			if (newtup->colstatus[i] != LOGICALREP_COLUMN_UNCHANGED)
				continue;
			v = SPI_getvalue(tup, desc, i + 1);
			if (v == NULL)
			{
				newtup->colstatus[i] = LOGICALREP_COLUMN_NULL;
				continue;
			}
			v = MemoryContextStrdup(cr->caller, v);
			newtup->colvalues[i].data = v;
			newtup->colvalues[i].len = strlen(v);
			newtup->colvalues[i].maxlen = newtup->colvalues[i].len + 1;
			newtup->colvalues[i].cursor = 0;
			newtup->colstatus[i] = LOGICALREP_COLUMN_TEXT;
		}
	}
	SPI_finish();
	pfree(sql.data);
}

/*
 * complete: pgoutput leaves unchanged TOASTed values out of an UPDATE's
 * new row, so as it stands the change can only modify a row the target
 * already has; when the target lost the row (update_missing), source-wins
 * needs all of it.  Fill the missing values from the old row when the
 * stream sent them (REPLICA IDENTITY FULL), else from the source table's
 * current row, read by key, as the table's owner.  That row may already
 * hold later changes; they follow in the stream, so the target still ends
 * equal to the source.  When the source row is gone (deleted or re-keyed
 * since), the change stays partial: a later change in the stream settles
 * the row.
 */
static DsStageResult
stage_complete(DsDecoder *d, DsChange *ch)
{
	DsRelation *rel = ch->rel;
	LogicalRepTupleData *oldtup = ch->oldtup;
	LogicalRepTupleData *newtup = ch->newtup;
	CompleteRead cr;
	bool		missing = false;
	int			i;

	if (ch->kind != DS_CHANGE_UPDATE)
		return DS_STAGE_NEXT;
	for (i = 0; i < rel->natts; i++)
	{
		if (newtup->colstatus[i] != LOGICALREP_COLUMN_UNCHANGED)
			continue;
		if (oldtup && oldtup->colstatus[i] == LOGICALREP_COLUMN_TEXT)
		{
			newtup->colvalues[i] = oldtup->colvalues[i];
			newtup->colstatus[i] = LOGICALREP_COLUMN_TEXT;
		}
		else
			missing = true;
	}
	if (!missing || rel->nkeys == 0)
		return DS_STAGE_NEXT;

	for (i = 0; i < rel->nkeys; i++)
	{
		int			a = rel->keyatts[i];
		LogicalRepTupleData *k = newtup->colstatus[a] == LOGICALREP_COLUMN_TEXT ? newtup : oldtup;

		/* no usable key value: leave the change partial */
		if (k == NULL || k->colstatus[a] != LOGICALREP_COLUMN_TEXT)
			return DS_STAGE_NEXT;
	}

	cr.rel = rel;
	cr.oldtup = oldtup;
	cr.newtup = newtup;
	cr.caller = CurrentMemoryContext;
	ds_change_as_owner(ch, "read a row of", complete_read, &cr);
	return DS_STAGE_NEXT;
}

/*
 * route: a change of a table whose strategy checks conflicts takes the
 * checking path (the batch then commits waiting, batch.c); under manual,
 * a change of a parked key joins its open conflict instead of going to
 * the target (conflict.c).
 */
static DsStageResult
stage_route(DsDecoder *d, DsChange *ch)
{
	if (!ch->rel->detect)
		return DS_STAGE_NEXT;
	ds_batch_open(d);
	d->b.checked = true;
	if (!ds_conflict_route(d, ch))
		return DS_STAGE_NEXT;
	ds_batch_add(d, ch);
	return DS_STAGE_DONE;
}

/* apply: give the change to the target in the open batch */
static DsStageResult
stage_apply(DsDecoder *d, DsChange *ch)
{
	ds_batch_open(d);
	ds_batch_add(d, ch);
	d->target->apply(d->target, ch);
	ds_batch_count(d, ch->kind);
	return DS_STAGE_DONE;
}

/*
 * A TRUNCATE of rels: the tables the skip stage lets through are
 * truncated on the target in the open batch.  CASCADE is not forwarded:
 * it would reach tables the pipeline does not sync.
 */
void
ds_change_truncate(DsDecoder *d, List *rels, bool cascade, bool restart_seqs)
{
	List	   *wanted_rels = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		DsRelation *rel = lfirst(lc);

		if (wanted(d, rel))
			wanted_rels = lappend(wanted_rels, rel);
	}
	if (wanted_rels == NIL)
		return;
	ds_batch_open(d);
	d->target->truncate(d->target, wanted_rels, false, restart_seqs);
	d->b.rows++;
}
