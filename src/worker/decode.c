/*-------------------------------------------------------------------------
 *
 * decode.c
 *		pgoutput messages to changes, grouped into target batches.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/decode.c
 *
 * NOTES
 *		Messages are parsed with the server's own logicalrep_read_*.  Each
 *		change goes to the target at once (pipelined), so a worker never
 *		holds a whole source transaction in memory.  Source transactions
 *		are grouped into one target transaction (a batch) that the worker
 *		closes at a commit boundary when the stream has nothing more
 *		pending, or when batch_size rows, batch_max_bytes of values or
 *		batch_timeout_ms are reached (ds_decode_batch_full).  The batch's
 *		last end LSN is written on the target in the same transaction
 *		(exactly once across restarts).
 *
 *		Example: B(t1) I I C(t1) B(t2) U C(t2) <nothing pending>
 *		-> target: upsert (2 rows); upsert; progress=end(t2); Sync.
 *
 *		A batch is committed without waiting for the target (unless it
 *		checked conflicts): its progress (counters, applied LSN, markers,
 *		done_lsn) is published when the target confirms it
 *		(batch_committed), in order, while the worker reads on.
 *
 *		A transaction whose commit precedes skip_before was applied before
 *		a restart and is skipped; so are a table's changes committed before
 *		its copy (sync_lsn).
 *
 *		A transaction the walsender streams while it is in progress (STREAM
 *		START ... STREAM STOP, several times) goes to a temporary file
 *		(spool.c) and is replayed here, as BEGIN, its messages and COMMIT,
 *		when its STREAM COMMIT arrives; so it is applied in commit order and
 *		only once the source committed it.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq/pqformat.h"
#include "replication/logicalproto.h"
#include "storage/condition_variable.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "worker/conflict.h"
#include "worker/decode.h"
#include "worker/relmap.h"
#include "sendlimit.h"
#include "worker/spool.h"
#include "trust.h"

/* make wait_for_sync callers whose ticket is <= seq return */
void
ds_decode_publish_marker(DsPipelineSlot *slot, uint64 seq)
{
	if (seq == 0 || pg_atomic_read_u64(&slot->marker_seq) >= seq)
		return;
	pg_atomic_write_u64(&slot->marker_seq, seq);
	ConditionVariableBroadcast(&DsShmem->progress_cv);
}

/*
 * Everything that committed before lsn is on the target: remember it and
 * tell wait_for_sync callers (their marker may precede the slot).
 */
static void
publish_done(DsDecoder *d, XLogRecPtr lsn)
{
	DsPipelineSlot *slot = d->slot;

	if (lsn <= d->done_lsn)
		return;
	d->done_lsn = lsn;
	SpinLockAcquire(&slot->mutex);
	slot->done_lsn = lsn;
	SpinLockRelease(&slot->mutex);
	ConditionVariableBroadcast(&DsShmem->progress_cv);
}

/*
 * Nothing up to lsn is for the target (and the marker seq, if any, passed):
 * done now, or with the newest batch in flight, which the stream sent
 * before it.
 */
static void
idle_done(DsDecoder *d, XLogRecPtr lsn, uint64 marker)
{
	if (d->inflight > 0)
	{
		DsBatchSent *b = &d->fly[(d->fly_head + d->inflight - 1) % lengthof(d->fly)];

		b->marker_lsn = Max(b->marker_lsn, lsn);
		b->marker = Max(b->marker, marker);
		return;
	}
	ds_decode_publish_marker(d->slot, marker);
	publish_done(d, lsn);
}

void
ds_decode_set_done(DsDecoder *d, XLogRecPtr lsn)
{
	idle_done(d, lsn, 0);
}

static void
open_batch(DsDecoder *d)
{
	if (d->batch_open)
		return;
	d->target->begin(d->target);
	d->batch_open = true;
	d->batch_rows = 0;
	d->batch_bytes = 0;
	d->batch_txns = 0;
	d->batch_ins = d->batch_upd = d->batch_del = 0;
	d->batch_started = GetCurrentTimestamp();
}

/* should a batch close at this commit boundary although more is pending? */
bool
ds_decode_batch_full(DsDecoder *d)
{
	if (!d->batch_open || d->in_txn)
		return false;
	if (d->batch_rows >= d->cfg->options.batch_size ||
		d->batch_bytes >= (Size) d->cfg->options.batch_max_bytes)
		return true;
	return TimestampDifferenceExceeds(d->batch_started, GetCurrentTimestamp(),
									  d->cfg->options.batch_timeout_ms);
}

/*
 * The target confirmed the oldest batch in flight: publish its progress
 * (counters, applied LSN, wait_for_sync markers, done).  Called from
 * inside the target's result reading: touches no target.
 */
static void
batch_committed(void *arg, XLogRecPtr end_lsn)
{
	DsDecoder  *d = arg;
	DsPipelineSlot *slot = d->slot;
	DsBatchSent *b;
	uint64		counted;

	if (d->inflight == 0 || XLogRecPtrIsInvalid(end_lsn))
		return;					/* a copy's commit: not a batch of ours */
	b = &d->fly[d->fly_head];
	if (b->end_lsn != end_lsn)
		elog(ERROR, "target confirmed batch %X/%X, expected %X/%X",
			 LSN_FORMAT_ARGS(end_lsn), LSN_FORMAT_ARGS(b->end_lsn));
	d->fly_head = (d->fly_head + 1) % lengthof(d->fly);
	d->inflight--;

	pg_atomic_fetch_add_u64(&slot->rows_inserted, b->ins);
	pg_atomic_fetch_add_u64(&slot->rows_updated, b->upd);
	pg_atomic_fetch_add_u64(&slot->rows_deleted, b->del);
	pg_atomic_fetch_add_u64(&slot->transactions, b->txns);
	/* conflicts its statements counted (their results came before) */
	counted = d->target->counted_conflicts;
	d->target->counted_conflicts = 0;
	if (counted > 0)
		pg_atomic_fetch_add_u64(&slot->conflicts, counted);
	SpinLockAcquire(&slot->mutex);
	slot->applied_lsn = b->end_lsn;
	slot->last_sync_at = GetCurrentTimestamp();
	/* progress: an earlier failure is over (worker.c) */
	slot->retry_attempt = 0;
	slot->last_error[0] = '\0';
	if (slot->state == DS_STATE_RETRYING)
		slot->state = DS_STATE_STREAMING;
	SpinLockRelease(&slot->mutex);
	ds_decode_publish_marker(slot, b->marker);
	publish_done(d, Max(b->end_lsn, b->marker_lsn));
}

/* Set the decoder up for a streaming session on d->target. */
void
ds_decode_start(DsDecoder *d)
{
	d->target->on_committed = batch_committed;
	d->target->on_committed_arg = d;
}

/*
 * Is anything waiting for the confirmation of a batch in flight?  The open
 * batch, once its last transaction is complete (it commits only after the
 * batches before it), and a wait_for_sync ticket riding on a batch.  The
 * rest a confirmation publishes (counters, applied LSN, feedback) can wait
 * for the worker's next wake-up: the target committed the data already.
 */
bool
ds_decode_awaits_confirmation(DsDecoder *d)
{
	int			i;

	if (d->inflight == 0)
		return false;
	if (d->batch_open && !d->in_txn)
		return true;
	for (i = 0; i < d->inflight; i++)
	{
		if (d->fly[(d->fly_head + i) % lengthof(d->fly)].marker > 0)
			return true;
	}
	return false;
}

/* Wait until the target confirmed every batch in flight. */
void
ds_decode_settle(DsDecoder *d)
{
	if (d->inflight > 0)
		d->target->settle(d->target);
	Assert(d->inflight == 0);
}

/*
 * Commit the open batch on the target; its progress is published when the
 * target confirms it (batch_committed).  A batch that checked conflicts
 * waits for that: its conflicts are recorded around the commit
 * (conflict.c).  Any other is committed without waiting, so the worker
 * reads on while the target applies it.
 */
void
ds_decode_close_batch(DsDecoder *d)
{
	DsBatchSent *b;
	bool		wait = d->batch_checked;

	Assert(d->batch_open && !d->in_txn);
	ds_conflict_before_commit(d);

	/* commit() left at most DS_MAX_INFLIGHT unconfirmed: there is room */
	if (d->inflight == lengthof(d->fly))
		elog(ERROR, "too many batches in flight");
	b = &d->fly[(d->fly_head + d->inflight) % lengthof(d->fly)];
	b->end_lsn = d->batch_end_lsn;
	b->marker = d->batch_marker;
	b->marker_lsn = d->batch_marker_lsn;
	b->ins = d->batch_ins;
	b->upd = d->batch_upd;
	b->del = d->batch_del;
	b->txns = d->batch_txns;
	d->inflight++;
	d->batch_marker = 0;
	d->batch_marker_lsn = InvalidXLogRecPtr;
	d->batch_open = false;

	d->target->commit(d->target, d->batch_end_lsn, wait);
	ds_conflict_after_commit(d);
}

/* does this change get applied? */
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

typedef struct CompleteRead
{
	DsRelation *rel;
	LogicalRepTupleData *oldtup;
	LogicalRepTupleData *newtup;
	MemoryContext caller;
} CompleteRead;

/*
 * The look-up of complete_update, run as the table's owner (trust.c): the
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
 * pgoutput leaves unchanged TOASTed values out of an UPDATE's new row, so
 * as it stands the change can only modify a row the target already has;
 * when the target lost the row (update_missing), source-wins needs all of
 * it.  Fill the missing values from the old row when the stream sent them
 * (REPLICA IDENTITY FULL), else from the source table's current row, read
 * by key, as the table's owner.  That row may already hold later changes; they follow in the
 * stream, so the target still ends equal to the source.  When the source
 * row is gone (deleted or re-keyed since), the change stays partial: a
 * later change in the stream settles the row.
 */
static void
complete_update(DsRelation *rel, LogicalRepTupleData *oldtup, LogicalRepTupleData *newtup)
{
	CompleteRead cr;
	bool		missing = false;
	bool		started;
	int			i;

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
		return;

	for (i = 0; i < rel->nkeys; i++)
	{
		int			a = rel->keyatts[i];
		LogicalRepTupleData *k = newtup->colstatus[a] == LOGICALREP_COLUMN_TEXT ? newtup : oldtup;

		/* no usable key value: leave the change partial */
		if (k == NULL || k->colstatus[a] != LOGICALREP_COLUMN_TEXT)
			return;
	}

	cr.rel = rel;
	cr.oldtup = oldtup;
	cr.newtup = newtup;
	cr.caller = CurrentMemoryContext;
	started = ds_xact_start();
	(void) ds_as_table_owner(rel->remoteid, "read a row of", complete_read, &cr, true);
	ds_xact_commit(started);
}

static void
apply_change(DsDecoder *d, DsChangeKind kind, DsRelation *rel,
			 LogicalRepTupleData *oldtup, LogicalRepTupleData *newtup)
{
	DsChange	ch;

	/* a change's place in its transaction names it (conflict.c) */
	d->change_seq++;
	if (!wanted(d, rel))
		return;
	if (kind == DS_CHANGE_UPDATE)
		complete_update(rel, oldtup, newtup);
	open_batch(d);
	ch.kind = kind;
	ch.rel = rel;
	ch.oldtup = oldtup;
	ch.newtup = newtup;
	ch.change_lsn = d->final_lsn;
	ch.change_seq = d->change_seq;
	ch.commit_time = d->commit_time;
	d->batch_rows++;
	d->batch_bytes += ds_tuple_bytes(oldtup) + ds_tuple_bytes(newtup);
	if (rel->detect)
	{
		d->batch_checked = true;
		/* manual: a change of a parked key joins its conflict */
		if (ds_conflict_route(d, &ch))
			return;
	}
	d->target->apply(d->target, &ch);
	if (kind == DS_CHANGE_INSERT)
		d->batch_ins++;
	else if (kind == DS_CHANGE_UPDATE)
		d->batch_upd++;
	else
		d->batch_del++;
}

/* a logical message: wait_for_sync markers are ours, the rest is ignored */
static void
handle_message(DsDecoder *d, StringInfo s)
{
	const char *prefix;
	int			len;
	uint64		seq = 0;
	XLogRecPtr	lsn;

	(void) pq_getmsgbyte(s);	/* flags */
	lsn = pq_getmsgint64(s);
	prefix = pq_getmsgstring(s);
	len = pq_getmsgint(s, 4);
	if (strcmp(prefix, DATASYNC_MARKER_PREFIX) != 0 || len != sizeof(uint64))
		return;
	memcpy(&seq, pq_getmsgbytes(s, len), sizeof(uint64));
	d->marker_seen = true;

	/*
	 * Everything that committed before the marker came before it in the
	 * stream: once that is on the target, so is everything up to it.
	 */
	if (d->batch_open || d->in_txn)
	{
		d->batch_marker = Max(d->batch_marker, seq);
		d->batch_marker_lsn = Max(d->batch_marker_lsn, lsn);
	}
	else
		idle_done(d, lsn, seq);
}

/*
 * A source transaction starts: BEGIN, or STREAM COMMIT of one that was
 * streamed while in progress (its messages follow from the spool).
 */
static void
begin_txn(DsDecoder *d, XLogRecPtr final_lsn, TimestampTz commit_time)
{
	if (d->in_txn || ds_spool_in_stream())
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("a transaction begins inside another in the replication stream")));
	d->in_txn = true;
	d->final_lsn = final_lsn;
	d->commit_time = commit_time;
	d->change_seq = 0;
	d->skip_txn = final_lsn < d->skip_before;
}

/* ... and ends at end_lsn */
static void
commit_txn(DsDecoder *d, XLogRecPtr end_lsn)
{
	d->in_txn = false;
	if (d->batch_open)
	{
		d->batch_end_lsn = end_lsn;
		d->batch_txns++;
	}
	else
	{
		/* nothing of it went to the target: done already */
		idle_done(d, Max(end_lsn, d->batch_marker_lsn), d->batch_marker);
		d->batch_marker = 0;
		d->batch_marker_lsn = InvalidXLogRecPtr;
	}
}

/* messages that carry the (sub)transaction's xid inside a stream */
static bool
streamed_action(char action)
{
	switch (action)
	{
		case LOGICAL_REP_MSG_INSERT:
		case LOGICAL_REP_MSG_UPDATE:
		case LOGICAL_REP_MSG_DELETE:
		case LOGICAL_REP_MSG_TRUNCATE:
		case LOGICAL_REP_MSG_RELATION:
		case LOGICAL_REP_MSG_TYPE:
		case LOGICAL_REP_MSG_MESSAGE:
			return true;
		default:
			return false;
	}
}

/* a message of a streamed transaction, replayed at its commit */
static void
replay_message(StringInfo msg, void *arg)
{
	ds_decode_message((DsDecoder *) arg, msg);
}

/*
 * Dispatch one pgoutput message.  Allocations go to the caller's
 * per-message context.
 */
void
ds_decode_message(DsDecoder *d, StringInfo s)
{
	char		action = pq_getmsgbyte(s);

	/* inside STREAM START/STOP: to the transaction's file (spool.c) */
	if (streamed_action(action) && ds_spool_in_stream())
	{
		TransactionId xid = pq_getmsgint(s, 4);

		ds_spool_change(xid, action, s);
		return;
	}

	switch (action)
	{
		case LOGICAL_REP_MSG_BEGIN:
			{
				LogicalRepBeginData begin;

				logicalrep_read_begin(s, &begin);
				begin_txn(d, begin.final_lsn, begin.committime);
				break;
			}
		case LOGICAL_REP_MSG_COMMIT:
			{
				LogicalRepCommitData commit;

				logicalrep_read_commit(s, &commit);
				if (!d->in_txn)
					ereport(ERROR,
							(errcode(ERRCODE_PROTOCOL_VIOLATION),
							 errmsg("COMMIT without BEGIN in the replication stream")));
				commit_txn(d, commit.end_lsn);
				break;
			}
		case LOGICAL_REP_MSG_STREAM_START:
			{
				bool		first_segment;
				TransactionId xid;

				if (d->in_txn)
					ereport(ERROR,
							(errcode(ERRCODE_PROTOCOL_VIOLATION),
							 errmsg("STREAM START inside a transaction in the replication stream")));
				xid = logicalrep_read_stream_start(s, &first_segment);
				ds_spool_start(xid, first_segment);
				break;
			}
		case LOGICAL_REP_MSG_STREAM_STOP:
			ds_spool_stop();
			break;
		case LOGICAL_REP_MSG_STREAM_ABORT:
			{
				TransactionId xid;
				TransactionId subxid;

				logicalrep_read_stream_abort(s, &xid, &subxid);
				ds_spool_abort(xid, subxid);
				break;
			}
		case LOGICAL_REP_MSG_STREAM_COMMIT:
			{
				LogicalRepCommitData commit;
				TransactionId xid;

				/* begin_txn and the spool check where it may come */
				xid = logicalrep_read_stream_commit(s, &commit);
				begin_txn(d, commit.commit_lsn, commit.committime);
				ds_spool_replay(xid, replay_message, d);
				commit_txn(d, commit.end_lsn);
				break;
			}
		case LOGICAL_REP_MSG_RELATION:
			{
				LogicalRepRelation *lrel = logicalrep_read_rel(s);

				/*
				 * A new version of the relation: a run the target buffered
				 * keeps the old one and goes out in its shape.
				 */
				ds_relmap_update(lrel);
				break;
			}
		case LOGICAL_REP_MSG_INSERT:
			{
				LogicalRepTupleData newtup;
				LogicalRepRelId relid = logicalrep_read_insert(s, &newtup);

				apply_change(d, DS_CHANGE_INSERT, ds_relmap_get(relid), NULL, &newtup);
				break;
			}
		case LOGICAL_REP_MSG_UPDATE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepTupleData newtup;
				bool		has_old;
				LogicalRepRelId relid = logicalrep_read_update(s, &has_old, &oldtup, &newtup);

				apply_change(d, DS_CHANGE_UPDATE, ds_relmap_get(relid),
							 has_old ? &oldtup : NULL, &newtup);
				break;
			}
		case LOGICAL_REP_MSG_DELETE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepRelId relid = logicalrep_read_delete(s, &oldtup);

				apply_change(d, DS_CHANGE_DELETE, ds_relmap_get(relid), &oldtup, NULL);
				break;
			}
		case LOGICAL_REP_MSG_TRUNCATE:
			{
				bool		cascade;
				bool		restart_seqs;
				List	   *relids = logicalrep_read_truncate(s, &cascade, &restart_seqs);
				List	   *rels = NIL;
				ListCell   *lc;

				foreach(lc, relids)
				{
					DsRelation *rel = ds_relmap_get(lfirst_oid(lc));

					if (wanted(d, rel))
						rels = lappend(rels, rel);
				}
				if (rels != NIL)
				{
					open_batch(d);
					/* CASCADE is not forwarded: it would reach unsynced tables */
					d->target->truncate(d->target, rels, false, restart_seqs);
					d->batch_rows++;
				}
				break;
			}
		case LOGICAL_REP_MSG_MESSAGE:
			handle_message(d, s);
			break;
		case LOGICAL_REP_MSG_ORIGIN:
		case LOGICAL_REP_MSG_TYPE:
			/* nothing to do: values travel as text */
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unexpected logical replication message type \"%c\"", action)));
	}
}
