/*-------------------------------------------------------------------------
 *
 * decode.c
 *		pgoutput messages to changes and transaction boundaries.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/decode.c
 *
 * NOTES
 *		Messages are parsed with the server's own logicalrep_read_*.  This
 *		file knows the protocol and the transaction boundaries only: a row
 *		change goes to the stages of change.c, a commit or a wait_for_sync
 *		marker to the batches of batch.c.  Each change goes to the target
 *		at once (pipelined), so a worker never holds a whole source
 *		transaction in memory.
 *
 *		A transaction whose commit precedes skip_before was applied before
 *		a restart; change.c skips its changes, and those of the transaction
 *		datasync.skip_transaction named by its commit LSN.
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

#include "libpq/pqformat.h"
#include "replication/logicalproto.h"

#include "worker/batch.h"
#include "worker/change.h"
#include "worker/decode.h"
#include "worker/relmap.h"
#include "worker/spool.h"

/*
 * A row change of the transaction being received: named by the commit LSN
 * of its transaction and its place in it (conflict.c keys rows by that),
 * then handed to the stages of change.c.
 */
static void
new_change(DsDecoder *d, DsChangeKind kind, DsRelation *rel,
		   LogicalRepTupleData *oldtup, LogicalRepTupleData *newtup)
{
	DsChange	ch;

	ch.kind = kind;
	ch.rel = rel;
	ch.oldtup = oldtup;
	ch.newtup = newtup;
	ch.change_lsn = d->final_lsn;
	ch.change_seq = ++d->change_seq;
	ch.commit_time = d->commit_time;
	ds_change_process(d, &ch);
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
	ds_batch_marker(d, lsn, seq);
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
	d->skip_asked = !XLogRecPtrIsInvalid(d->cfg->skip_lsn) && final_lsn == d->cfg->skip_lsn;
	d->skip_txn = final_lsn < d->skip_before || d->skip_asked;
}

/* ... and ends at end_lsn */
static void
commit_txn(DsDecoder *d, XLogRecPtr end_lsn)
{
	d->in_txn = false;
	if (d->skip_asked)
	{
		ereport(LOG,
				(errmsg("datasync pipeline \"%s\" skipped the source transaction committed at %X/%X, as datasync.skip_transaction asked",
						d->cfg->name, LSN_FORMAT_ARGS(d->final_lsn))));
		d->skipped_lsn = d->final_lsn;
		d->skip_asked = false;
	}
	ds_batch_txn_end(d, end_lsn);
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

				new_change(d, DS_CHANGE_INSERT, ds_relmap_get(relid), NULL, &newtup);
				break;
			}
		case LOGICAL_REP_MSG_UPDATE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepTupleData newtup;
				bool		has_old;
				LogicalRepRelId relid = logicalrep_read_update(s, &has_old, &oldtup, &newtup);

				new_change(d, DS_CHANGE_UPDATE, ds_relmap_get(relid),
						   has_old ? &oldtup : NULL, &newtup);
				break;
			}
		case LOGICAL_REP_MSG_DELETE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepRelId relid = logicalrep_read_delete(s, &oldtup);

				new_change(d, DS_CHANGE_DELETE, ds_relmap_get(relid), &oldtup, NULL);
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
					rels = lappend(rels, ds_relmap_get(lfirst_oid(lc)));
				ds_change_truncate(d, rels, cascade, restart_seqs);
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
