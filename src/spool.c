/*-------------------------------------------------------------------------
 *
 * spool.c
 *		Source transactions streamed while in progress, kept in temporary
 *		files until they commit.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/spool.c
 *
 * NOTES
 *		The worker asks for protocol version 2 with streaming 'on'.  A
 *		source transaction that outgrows logical_decoding_work_mem then
 *		reaches the worker in pieces while it still runs:
 *
 *			STREAM START <xid> <changes, each with its (sub)xid> STREAM STOP
 *
 *		any number of times, interleaved with other transactions, and
 *		finally STREAM COMMIT or STREAM ABORT.  The walsender decodes such
 *		a transaction as it goes, instead of spilling it to disk and
 *		decoding it all at its commit.
 *
 *		Each piece's messages are appended, without their xid, to a
 *		temporary file of the transaction (BufFile: 8 kB of memory, however
 *		large the transaction).  At STREAM COMMIT decode.c replays the file
 *		as one ordinary transaction, in commit order and with its commit
 *		LSN and time, so batching, conflicts, skipping what was applied and
 *		progress work as for every other transaction; nothing reaches the
 *		target before the source committed.
 *
 *		Subtransactions nest: everything after the first change of a
 *		subtransaction belongs to it or to its children until it ends.  So
 *		STREAM ABORT of a subtransaction cuts the file back to that first
 *		change, and of the top-level transaction drops the file.
 *
 *		The files live as long as the streaming session.  When a session
 *		ends (error, catalog change, end of a run) they are closed, which
 *		deletes them; the next session's walsender streams transactions
 *		still open from their start again (first_segment).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/transam.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/buffile.h"
#include "utils/memutils.h"

#include "pgconn.h"
#include "spool.h"

/* where a subtransaction's first change went */
typedef struct SpoolSub
{
	TransactionId xid;
	int			fileno;
	off_t		offset;
	int64		nmsgs;			/* messages before it */
} SpoolSub;

/* one streamed transaction */
typedef struct SpoolTxn
{
	TransactionId xid;			/* top-level */
	BufFile    *file;
	int64		nmsgs;			/* messages in the file */
	SpoolSub   *subs;			/* in the order of their first change */
	int			nsubs;
	int			maxsubs;
	TransactionId last_sub;		/* the xid the last change had */
} SpoolTxn;

static MemoryContext SpoolCxt = NULL;
static List *SpoolTxns = NIL;
static SpoolTxn *Current = NULL;	/* between STREAM START and STOP */

/* Start a session's spool; files are kept in memory of cxt. */
void
ds_spool_init(MemoryContext cxt)
{
	Assert(SpoolTxns == NIL);
	SpoolCxt = AllocSetContextCreate(cxt, "datasync spool", ALLOCSET_SMALL_SIZES);
	Current = NULL;
}

static SpoolTxn *
spool_find(TransactionId xid)
{
	ListCell   *lc;

	foreach(lc, SpoolTxns)
	{
		SpoolTxn   *t = lfirst(lc);

		if (t->xid == xid)
			return t;
	}
	return NULL;
}

static void
spool_drop(SpoolTxn *t)
{
	if (Current == t)
		Current = NULL;
	SpoolTxns = list_delete_ptr(SpoolTxns, t);
	BufFileClose(t->file);
	if (t->subs)
		pfree(t->subs);
	pfree(t);
}

/*
 * Close (and so delete) every file.  Called when a session ends, also on
 * error, before the session's memory goes.
 */
void
ds_spool_reset(void)
{
	while (SpoolTxns != NIL)
		spool_drop(linitial(SpoolTxns));
	Current = NULL;
}

/* msg may not come between STREAM START and STOP */
static void
spool_outside_stream(const char *msg)
{
	if (Current != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("%s inside the stream of transaction %u", msg, Current->xid)));
}

/* STREAM START: the following changes belong to xid */
void
ds_spool_start(TransactionId xid, bool first_segment)
{
	SpoolTxn   *t;

	spool_outside_stream("STREAM START");
	t = spool_find(xid);
	if (t != NULL && first_segment)
	{
		/* streamed from its start again: what we have is stale */
		spool_drop(t);
		t = NULL;
	}
	if (t == NULL)
	{
		MemoryContext old;

		if (!first_segment)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("streamed transaction %u continues, but its start was not received",
							xid)));
		old = MemoryContextSwitchTo(SpoolCxt);
		t = palloc0(sizeof(SpoolTxn));
		t->xid = xid;
		t->last_sub = xid;
		/* survives the worker's own transactions; deleted when closed */
		t->file = BufFileCreateTemp(true);
		SpoolTxns = lappend(SpoolTxns, t);
		MemoryContextSwitchTo(old);
	}
	Current = t;
}

/* STREAM STOP */
void
ds_spool_stop(void)
{
	if (Current == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("STREAM STOP without STREAM START")));
	Current = NULL;
}

/* remember where the first change of subtransaction xid goes */
static void
spool_note_sub(SpoolTxn *t, TransactionId xid)
{
	int			i;
	SpoolSub   *sub;

	t->last_sub = xid;
	for (i = t->nsubs - 1; i >= 0; i--)
		if (t->subs[i].xid == xid)
			return;
	if (t->nsubs == t->maxsubs)
	{
		t->maxsubs = Max(16, t->maxsubs * 2);
		if (t->subs == NULL)
			t->subs = MemoryContextAlloc(SpoolCxt, sizeof(SpoolSub) * t->maxsubs);
		else
			t->subs = repalloc(t->subs, sizeof(SpoolSub) * t->maxsubs);
	}
	sub = &t->subs[t->nsubs++];
	sub->xid = xid;
	BufFileTell(t->file, &sub->fileno, &sub->offset);
	sub->nmsgs = t->nmsgs;
}

/*
 * A change (or RELATION, TYPE, MESSAGE) inside STREAM START/STOP: append
 * its action and the rest of s (after the xid the caller read).
 */
void
ds_spool_change(TransactionId xid, char action, StringInfo s)
{
	uint32		len = s->len - s->cursor + 1;

	if (Current == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("streamed change outside STREAM START and STREAM STOP")));
	if (xid != Current->last_sub && xid != Current->xid)
		spool_note_sub(Current, xid);
	else
		Current->last_sub = xid;
	BufFileWrite(Current->file, &len, sizeof(len));
	BufFileWrite(Current->file, &action, 1);
	BufFileWrite(Current->file, s->data + s->cursor, len - 1);
	Current->nmsgs++;
	s->cursor = s->len;
}

/*
 * Seek and read in a transaction's file.  Errors on our own files are I/O
 * errors (class 58): the worker retries with
 * a new session, and the walsender streams the transaction again.
 */
static void
spool_seek(SpoolTxn *t, int fileno, off_t offset)
{
	if (BufFileSeek(t->file, fileno, offset, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not seek in the spool file of transaction %u", t->xid)));
}

static void
spool_read(SpoolTxn *t, void *buf, size_t len)
{
	size_t		got = BufFileRead(t->file, buf, len);

	if (got != len)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not read the spool file of transaction %u: read %zu of %zu bytes",
						t->xid, got, len)));
}

/*
 * STREAM ABORT: of the transaction (subxid == xid): drop its file; of a
 * subtransaction: cut the file back to the subtransaction's first change
 * (nothing of it or of its children stays).  One that sent no change has
 * nothing to undo.
 */
void
ds_spool_abort(TransactionId xid, TransactionId subxid)
{
	SpoolTxn   *t = spool_find(xid);
	int			i;

	spool_outside_stream("STREAM ABORT");
	if (t == NULL)
		return;
	if (subxid == xid)
	{
		spool_drop(t);
		return;
	}
	for (i = 0; i < t->nsubs; i++)
		if (t->subs[i].xid == subxid)
			break;
	if (i == t->nsubs)
		return;
	spool_seek(t, t->subs[i].fileno, t->subs[i].offset);
	/* later messages are overwritten; the count says where the file ends */
	t->nmsgs = t->subs[i].nmsgs;
	t->nsubs = i;
	t->last_sub = xid;
}

/*
 * STREAM COMMIT: hand each message of xid's file to fn, in order, in a
 * memory context reset after each, then drop the file.  A transaction
 * without a file (nothing of it was streamed) has nothing to replay.
 */
void
ds_spool_replay(TransactionId xid, DsSpoolReplayFn fn, void *arg)
{
	SpoolTxn   *t = spool_find(xid);
	MemoryContext cxt;
	int64		i;

	spool_outside_stream("STREAM COMMIT");
	if (t == NULL)
		return;
	spool_seek(t, 0, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "datasync spool replay",
								ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < t->nmsgs; i++)
	{
		uint32		len;
		StringInfoData msg;
		MemoryContext old;

		spool_read(t, &len, sizeof(len));
		old = MemoryContextSwitchTo(cxt);
		msg.data = palloc(len + 1);
		spool_read(t, msg.data, len);
		msg.data[len] = '\0';
		msg.len = len;
		msg.maxlen = len + 1;
		msg.cursor = 0;
		fn(&msg, arg);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		if ((i + 1) % 256 == 0)
		{
			CHECK_FOR_INTERRUPTS();
			/* the walsender waits for us meanwhile: keep it from timing out */
			if (ds_pq_wait_hook)
				ds_pq_wait_hook();
		}
	}
	MemoryContextDelete(cxt);
	spool_drop(t);
}
