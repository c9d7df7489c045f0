/*-------------------------------------------------------------------------
 *
 * spool.c
 *		Source transactions streamed while in progress, kept in temporary
 *		files until they commit.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/spool.c
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
 *		temporary file of the transaction (through a 64 kB buffer, however
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
 *		still open from their start again (first_segment).  The files are
 *		fd.c temporary files with our own buffer rather than BufFiles: a
 *		BufFile writes its dirty buffer when closed, and closing must not
 *		fail on the error path (temp_file_limit or a full disk would raise
 *		the same error again there and end the worker).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/transam.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "pgconn.h"
#include "worker/spool.h"

/* bytes kept in memory before a write, and read at a time */
#define SPOOL_BUFSIZE	(64 * 1024)

/* where a subtransaction's first change went */
typedef struct SpoolSub
{
	TransactionId xid;
	off_t		offset;
} SpoolSub;

/* one streamed transaction */
typedef struct SpoolTxn
{
	TransactionId xid;			/* top-level */
	File		file;
	off_t		flushed;		/* bytes written to the file */
	StringInfoData buf;			/* bytes after them, not written yet */
	SpoolSub   *subs;			/* in the order of their first change */
	int			nsubs;
	int			maxsubs;
	TransactionId last_sub;		/* the xid the last change had */
} SpoolTxn;

/* reads a transaction's file from its start */
typedef struct SpoolReader
{
	SpoolTxn   *t;
	off_t		pos;			/* of the file, after what buf holds */
	char	   *buf;
	int			len;			/* bytes in buf */
	int			off;			/* bytes of them consumed */
} SpoolReader;

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

/* close (and so delete) a transaction's file: writes nothing, cannot fail */
static void
spool_drop(SpoolTxn *t)
{
	if (Current == t)
		Current = NULL;
	SpoolTxns = list_delete_ptr(SpoolTxns, t);
	FileClose(t->file);
	pfree(t->buf.data);
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

/* between STREAM START and STOP: changes go to the file */
bool
ds_spool_in_stream(void)
{
	return Current != NULL;
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
		File		file;

		if (!first_segment)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("streamed transaction %u continues, but its start was not received",
							xid)));
		/* survives the worker's own transactions; deleted when closed */
		file = OpenTemporaryFile(true);
		old = MemoryContextSwitchTo(SpoolCxt);
		t = palloc0(sizeof(SpoolTxn));
		t->xid = xid;
		t->file = file;
		t->last_sub = xid;
		initStringInfo(&t->buf);
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

/*
 * Write len bytes at the end of what the file holds.  temp_file_limit is
 * checked by fd.c (53400); a full disk is 53100: both are retried, with a
 * new session that streams the transaction again.
 */
static void
spool_pwrite(SpoolTxn *t, char *data, int len)
{
	int			rc = FileWrite(t->file, data, len, t->flushed, WAIT_EVENT_BUFFILE_WRITE);

	if (rc != len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write the spool file of transaction %u: %m", t->xid)));
	t->flushed += len;
}

static void
spool_flush(SpoolTxn *t)
{
	if (t->buf.len == 0)
		return;
	spool_pwrite(t, t->buf.data, t->buf.len);
	resetStringInfo(&t->buf);
}

static void
spool_write(SpoolTxn *t, char *data, int len)
{
	if (t->buf.len + len > SPOOL_BUFSIZE)
		spool_flush(t);
	if (len >= SPOOL_BUFSIZE)
		spool_pwrite(t, data, len);
	else
		appendBinaryStringInfo(&t->buf, data, len);
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
	sub->offset = t->flushed + t->buf.len;
}

/*
 * A change (or RELATION, TYPE, MESSAGE) inside STREAM START/STOP: append
 * its length, its action and the rest of s (after the xid the caller read).
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
	spool_write(Current, (char *) &len, sizeof(len));
	spool_write(Current, &action, 1);
	spool_write(Current, s->data + s->cursor, len - 1);
	s->cursor = s->len;
}

/*
 * STREAM ABORT: of the transaction (subxid == xid): drop its file; of a
 * subtransaction: cut the file back to the subtransaction's first change
 * (nothing of it or of its children stays; later writes overwrite the
 * rest).  One that sent no change has nothing to undo.
 */
void
ds_spool_abort(TransactionId xid, TransactionId subxid)
{
	SpoolTxn   *t = spool_find(xid);
	off_t		cut;
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
	cut = t->subs[i].offset;
	if (cut >= t->flushed)
		t->buf.len = cut - t->flushed;
	else
	{
		resetStringInfo(&t->buf);
		t->flushed = cut;
	}
	t->nsubs = i;
	t->last_sub = xid;
}

/* the next len bytes of the file */
static void
spool_read(SpoolReader *r, char *dst, uint32 len)
{
	while (len > 0)
	{
		int			n;

		if (r->off == r->len)
		{
			off_t		left = r->t->flushed - r->pos;

			/* a large message goes straight to its buffer */
			bool		direct = len >= SPOOL_BUFSIZE;
			int			want = direct ? (int) len : (int) Min(left, (off_t) SPOOL_BUFSIZE);
			int			rc;

			if (left < (off_t) len)
				ereport(ERROR,
						(errcode(ERRCODE_IO_ERROR),
						 errmsg("spool file of transaction %u ends early", r->t->xid)));
			rc = FileRead(r->t->file, direct ? dst : r->buf, want, r->pos,
						  WAIT_EVENT_BUFFILE_READ);
			if (rc < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read the spool file of transaction %u: %m",
								r->t->xid)));
			if (rc != want)
				ereport(ERROR,
						(errcode(ERRCODE_IO_ERROR),
						 errmsg("could not read the spool file of transaction %u: read %d of %d bytes",
								r->t->xid, rc, want)));
			r->pos += want;
			if (direct)
				return;
			r->len = want;
			r->off = 0;
		}
		n = Min((int) len, r->len - r->off);
		memcpy(dst, r->buf + r->off, n);
		r->off += n;
		dst += n;
		len -= n;
	}
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
	SpoolReader r;
	MemoryContext cxt;
	int64		n = 0;

	spool_outside_stream("STREAM COMMIT");
	if (t == NULL)
		return;
	spool_flush(t);
	r.t = t;
	r.pos = 0;
	r.buf = palloc(SPOOL_BUFSIZE);
	r.len = r.off = 0;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "datasync spool replay",
								ALLOCSET_DEFAULT_SIZES);
	while (r.pos - (r.len - r.off) < t->flushed)
	{
		uint32		len;
		StringInfoData msg;
		MemoryContext old;

		spool_read(&r, (char *) &len, sizeof(len));
		old = MemoryContextSwitchTo(cxt);
		msg.data = palloc(len + 1);
		spool_read(&r, msg.data, len);
		msg.data[len] = '\0';
		msg.len = len;
		msg.maxlen = len + 1;
		msg.cursor = 0;
		fn(&msg, arg);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		if (++n % 256 == 0)
		{
			CHECK_FOR_INTERRUPTS();
			/* the walsender waits for us meanwhile: keep it from timing out */
			if (ds_pq_wait_hook)
				ds_pq_wait_hook();
		}
	}
	MemoryContextDelete(cxt);
	pfree(r.buf);
	spool_drop(t);
}
