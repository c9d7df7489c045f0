/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The sync worker of one pipeline: session set-up, the streaming
 *		loop, feedback, and the error boundary with retries.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/worker.c
 *
 * NOTES
 *		A worker runs sessions until its pipeline is paused, dropped or
 *		stopped by a permanent error.  A session:
 *		  1. reads the pipeline from the catalog;
 *		  2. connects to the target and reads the progress it holds;
 *		  3. opens a replication connection to this server; with no stream
 *			 progress on the target (a new pipeline), creates the slot and
 *			 copies the tables under its snapshot (snapshot.c); tables
 *			 added or marked for resync are copied under a temporary slot;
 *		  4. streams from the target's progress LSN: decode, apply, close a
 *			 batch at a commit boundary when nothing more is pending, then
 *			 confirm to the walsender what the target committed;
 *		  5. ends when the catalog changed (SQL calls bump the slot's
 *			 config generation and set our latch), to start over with it.
 *
 *		A worker serves one pipeline of one database and one incarnation
 *		(the launcher passes all three; shmem.h).  It stops when that
 *		pipeline is gone, as its sessions start and at least once a second
 *		while it streams: a pipeline of the same id created after DROP
 *		and CREATE EXTENSION is not its pipeline.
 *
 *		Errors: a transient one (retry.c) closes both connections, waits a
 *		backoff with full jitter in state "retrying", and starts a new
 *		session from the target's progress, so nothing is lost or applied
 *		twice.  A permanent one is recorded in _pipelines.error and the
 *		worker exits 0: the launcher leaves the pipeline alone until
 *		datasync.resume().
 *
 *		The slot's retry_attempt counts the sessions that failed since the
 *		pipeline last made progress, and sets the backoff.  Until progress
 *		is made the state stays "retrying" with last_error, through the
 *		next attempt too.  Progress is: a batch committed on the target
 *		(worker/batch.c), a table copy committed, the stream caught up with the
 *		source's WAL as it was when the session started (all of it applied
 *		or of no concern), or a session that ended by itself.  Connecting
 *		and starting the stream is not: a session that fails on the same
 *		change every time counts up.
 *
 *		Memory: the worker's lifetime context holds the session context
 *		(connections, relation map, prepared statement names), reset for
 *		every session; a message context is reset after each stream
 *		message, so memory does not grow with transaction size.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_namespace.h"
#include "libpq/pqformat.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "target/apply.h"
#include "catalog.h"
#include "worker/conflict.h"
#include "worker/decode.h"
#include "isolation.h"
#include "worker/jobs.h"
#include "pgconn.h"
#include "worker/relmap.h"
#include "retry.h"
#include "shmem.h"
#include "stats.h"
#include "worker/snapshot.h"
#include "worker/spool.h"
#include "worker/stream.h"
#include "trust.h"
#include "worker/worker.h"

static DsPipelineSlot *MySlot = NULL;
static int64 MyPipelineId = 0;
static DsPipelineKey MyKey;		/* database, MyPipelineId, incarnation */
static TimestampTz LastPipelineCheck = 0;
static DsStream *CurStream = NULL;
static DsDecoder *CurDecoder = NULL;
static DsApplyTarget *CurTarget = NULL;

/* what the main loop does after a session */
typedef enum SessionEnd
{
	SESSION_AGAIN,				/* start another one (catalog changed, run done) */
	SESSION_IDLE,				/* manual/scheduled with no run queued: exit if
								 * still none */
	SESSION_STOP				/* paused, dropped: exit */
} SessionEnd;

/* Has a failure not been followed by progress yet?  (see NOTES) */
static bool
retry_pending(void)
{
	bool		pending;

	SpinLockAcquire(&MySlot->mutex);
	pending = MySlot->retry_attempt > 0;
	SpinLockRelease(&MySlot->mutex);
	return pending;
}

/* What the worker is doing; "retrying" until a failure is followed by progress. */
static void
set_state(DsWorkerState state)
{
	SpinLockAcquire(&MySlot->mutex);
	MySlot->state = MySlot->retry_attempt > 0 ? DS_STATE_RETRYING : state;
	SpinLockRelease(&MySlot->mutex);
}

/* Progress: the failures before it are over; state goes on as state. */
static void
retry_over(DsWorkerState state)
{
	SpinLockAcquire(&MySlot->mutex);
	MySlot->retry_attempt = 0;
	MySlot->last_error[0] = '\0';
	if (MySlot->state == DS_STATE_RETRYING)
		MySlot->state = state;
	SpinLockRelease(&MySlot->mutex);
}

/*
 * What the source may consider flushed: everything before done_lsn once
 * every target commit is durable, else the last durable batch's end.
 */
static XLogRecPtr
feedback_lsn(DsDecoder *d, bool refresh)
{
	bool		all;
	XLogRecPtr	durable = d->target->durable(d->target, refresh, &all);

	if (all && !d->b.open && !d->in_txn)
		return Max(durable, d->b.done_lsn);
	return durable;
}

/* Keep the walsender from timing us out while a target is slow. */
static void
keepalive_hook(void)
{
	if (CurStream && CurStream->streaming && CurDecoder)
		ds_stream_feedback(CurStream, feedback_lsn(CurDecoder, false), false);
}

static void
worker_shmem_exit(int code, Datum arg)
{
	if (MySlot)
	{
		SpinLockAcquire(&MySlot->mutex);
		if (MySlot->pid == MyProcPid)
		{
			MySlot->pid = 0;
			MySlot->latch = NULL;
			MySlot->clean_exit = (code == 0);
			if (MySlot->state != DS_STATE_ERROR)
				MySlot->state = DS_STATE_STOPPED;
		}
		SpinLockRelease(&MySlot->mutex);
	}
}

/* lock tag of a pipeline: worker holds it shared, drop_pipeline exclusive */
void
ds_pipeline_locktag(LOCKTAG *tag, int64 pipeline_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId,
						 (uint32) (pipeline_id >> 32), (uint32) pipeline_id,
						 0x6473);	/* "ds" */
}

/* One CopyData frame of the stream: WAL data ('w') or a keepalive ('k'). */
static void
handle_frame(DsDecoder *d, DsStream *s, StringInfo msg)
{
	char		kind = pq_getmsgbyte(msg);
	XLogRecPtr	start;
	XLogRecPtr	end;

	switch (kind)
	{
		case 'w':
			start = pq_getmsgint64(msg);
			end = pq_getmsgint64(msg);
			(void) pq_getmsgint64(msg); /* send time */
			s->received_lsn = Max(s->received_lsn, Max(start, end));
			ds_decode_message(d, msg);
			break;
		case 'k':
			end = pq_getmsgint64(msg);
			(void) pq_getmsgint64(msg); /* send time */
			s->received_lsn = Max(s->received_lsn, end);
			/* idle and all received: everything up to end is done */
			if (!d->in_txn && !d->b.open)
				ds_batch_set_done(d, end);
			if (pq_getmsgbyte(msg))
				ds_stream_feedback(s, feedback_lsn(d, false), true);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unexpected message type \"%c\" in the replication stream", kind)));
	}
}

/*
 * Runs (jobs.c) end as the stream passes their markers.  A manual or
 * scheduled pipeline's session ends with its last queued run: at its
 * marker, closing the batch there, so nothing after it is applied.
 * Returns false when such a session should end.
 */
static bool
check_jobs(DsDecoder *d, bool job_mode)
{
	bool		more;

	if (job_mode && d->b.open && !d->in_txn)
		ds_batch_close(d);
	if (d->b.open || d->in_txn)
		return true;
	/* a run is done when its marker is: every batch sent must be confirmed */
	ds_batch_settle(d);
	more = ds_jobs_poll(MySlot, MyPipelineId, d->cfg->name);
	return more || !job_mode;
}

/* SIGHUP: read the configuration files again */
static void
reload_config_if_pending(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* how often a streaming worker checks that its pipeline still exists */
#define DS_PIPELINE_CHECK_MS 1000

/*
 * Is our pipeline (this database, id and incarnation) in the catalog?
 * false too when the extension was dropped.
 */
static bool
pipeline_exists(void)
{
	bool		started = ds_xact_start();
	bool		found = ds_pipeline_current(&MyKey);

	ds_xact_commit(started);
	LastPipelineCheck = GetCurrentTimestamp();
	return found;
}

/* A check at most every DS_PIPELINE_CHECK_MS: true when the pipeline is gone. */
static bool
pipeline_gone_now(void)
{
	if (!TimestampDifferenceExceeds(LastPipelineCheck, GetCurrentTimestamp(),
									DS_PIPELINE_CHECK_MS))
		return false;
	return !pipeline_exists();
}

/*
 * What the stream loop waits on: our latch, the stream, and the target's
 * wait events (add_wait_events: a PostgreSQL target's socket), for results
 * while batches are in flight (else only for its connection closing).
 * Made once a streaming pass: a WaitEventSet a wait would cost an epoll
 * instance and its system calls every time.
 */
static WaitEventSet *LoopWaitSet = NULL;

/* results of batches in flight are late: wake when they come (wait_for_input) */
static bool ConfirmOverdue = false;

static void
loop_wait_set_free(void)
{
	if (LoopWaitSet)
		FreeWaitEventSet(LoopWaitSet);
	LoopWaitSet = NULL;
}

static void
loop_wait_set_make(DsDecoder *d, DsStream *s)
{
	loop_wait_set_free();
	LoopWaitSet = CreateWaitEventSet(TopMemoryContext, 3 + d->target->nwait_events);
	AddWaitEventToSet(LoopWaitSet, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(LoopWaitSet, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(LoopWaitSet, WL_SOCKET_READABLE, PQsocket(s->conn), NULL, NULL);
	d->target->add_wait_events(d->target, LoopWaitSet);
}

/*
 * How long the results of batches in flight may wait unread when nothing
 * waits for them (see wait_for_input).
 */
#define DS_CONFIRM_READ_DELAY_MS 10

/*
 * Wait for input: WL_LATCH_SET, WL_SOCKET_READABLE (the stream) or
 * WL_TIMEOUT; *target says whether the target has something.
 *
 * The target's results wake the worker only while something waits for
 * them (ds_batch_awaits_confirmation): under a stream of small
 * transactions that is one wake-up a transaction fewer, as the
 * confirmation of the batch sent before is read when the next transaction
 * arrives.  Otherwise they are read after DS_CONFIRM_READ_DELAY_MS, or
 * when they come if the target is slower than that (ConfirmOverdue), so
 * that counters, the applied LSN and the feedback to the source follow.
 * Data never waits for this: the target committed it already.
 */
static int
wait_for_input(DsDecoder *d, bool *target)
{
	WaitEvent	events[8];
	int			n;
	int			i;
	int			rc = 0;
	bool		wake_on_result;
	bool		read_later;

	if (d->b.inflight == 0)
		ConfirmOverdue = false;
	wake_on_result = ConfirmOverdue || ds_batch_awaits_confirmation(d);
	read_later = d->b.inflight > 0 && !wake_on_result;
	*target = false;
	d->target->want_results(d->target, LoopWaitSet, wake_on_result);
	n = WaitEventSetWait(LoopWaitSet, read_later ? DS_CONFIRM_READ_DELAY_MS : 1000,
						 events, lengthof(events), PG_WAIT_EXTENSION);
	if (n == 0 && read_later)
	{
		*target = true;			/* time to read the results */
		ConfirmOverdue = true;	/* and to wait for those still to come */
		return 0;
	}
	if (n == 0)
		return WL_TIMEOUT;
	for (i = 0; i < n; i++)
	{
		if (events[i].user_data == d->target)
			*target = true;
		else
			rc |= events[i].events & (WL_LATCH_SET | WL_SOCKET_READABLE);
	}
	return rc;
}

/*
 * The transaction skip_transaction asked to skip is behind the target's
 * progress: clear the request (a restart starts after it now).
 */
static void
skip_request_done(DsDecoder *d)
{
	bool		started = ds_xact_start();

	ds_catalog_clear_skip(MyPipelineId, d->skipped_lsn);
	ds_xact_commit(started);
	d->skipped_lsn = InvalidXLogRecPtr;
	d->skip_done = false;
}

/*
 * How often a worker with nothing open or in flight asks the target how far
 * it flushed its WAL (while the last batches' durability is unknown; see
 * docs/exactly-once.md, "Feedback confirms only what the target has made
 * durable").
 *
 * Not only when a wait timed out: on a busy source the walsender sends a
 * keepalive at each WAL flush, so the worker of a pipeline whose tables are
 * idle may never wait a whole second.  Asking only then, it kept confirming
 * the last batch known durable, before its keepalive positions (feedback_lsn
 * takes them only once every target commit is durable), and its slot kept
 * all WAL written since, other tables' included (issue 17).  Asking by the
 * clock instead confirms keepalives within about a second; the feedback
 * still never passes a target commit that is not durable.
 */
#define DS_DURABLE_REFRESH_MS 1000

static TimestampTz LastDurableRefresh = 0;

/* idle: time to learn how far the target flushed (see above)? */
static bool
durable_refresh_due(DsDecoder *d, int rc)
{
	TimestampTz now;

	if (d->b.open || d->in_txn)
		return false;
	now = GetCurrentTimestamp();
	if (!(rc & WL_TIMEOUT) &&
		(d->b.inflight > 0 ||
		 !TimestampDifferenceExceeds(LastDurableRefresh, now, DS_DURABLE_REFRESH_MS)))
		return false;
	LastDurableRefresh = now;
	return true;
}

/*
 * One streaming pass; returns when the catalog changed or, for a manual or
 * scheduled pipeline, when its queued runs are done.
 */
static void
stream_loop(DsDecoder *d, DsStream *s, MemoryContext msgcxt, uint32 generation,
			bool job_mode)
{
	/*
	 * Connected and started is no progress: after a failure the pipeline
	 * stays "retrying" until a batch commits (batch.c) or the stream has
	 * caught up with the WAL written before this point.
	 */
	bool		recovering = retry_pending();
	XLogRecPtr	caught_up_at = GetFlushRecPtr(NULL);

	set_state(DS_STATE_STREAMING);
	pgstat_report_activity(STATE_RUNNING, "streaming");
	loop_wait_set_make(d, s);

	for (;;)
	{
		int			nmsgs = 0;
		int			rc;
		bool		target_ready;

		/* 1. drain what the stream has, without blocking */
		for (;;)
		{
			char	   *buf = NULL;
			int			len = ds_stream_receive(s, &buf);
			StringInfoData msg;
			MemoryContext old;

			if (len == 0)
				break;

			/* copy out of libpq's buffer so that an error cannot leak it */
			old = MemoryContextSwitchTo(msgcxt);
			msg.data = palloc(len + 1);
			memcpy(msg.data, buf, len);
			msg.data[len] = '\0';
			msg.len = len;
			msg.maxlen = len + 1;
			msg.cursor = 0;
			PQfreemem(buf);
			handle_frame(d, s, &msg);
			MemoryContextSwitchTo(old);
			MemoryContextReset(msgcxt);

			if (ds_batch_full(d))
				ds_batch_close(d);
			if (d->marker_seen && !d->in_txn)
			{
				d->marker_seen = false;
				if (ds_jobs_pending(MySlot) && !check_jobs(d, job_mode))
					return;
			}
			if (++nmsgs % 256 == 0)
				CHECK_FOR_INTERRUPTS();
		}

		/*
		 * 2. nothing more pending: close the batch at this boundary.  While
		 * the batch before it is still on its way, the open one grows
		 * instead (its changes are on the target already, and its commit
		 * goes as soon as that one is confirmed), so that a busy target gets
		 * fewer, larger transactions.
		 */
		if (d->b.open)
		{
			/* let the target work meanwhile; learn of confirmations */
			if (d->in_txn || d->b.inflight > 0)
				d->target->poll(d->target);
			if (!d->in_txn && d->b.inflight == 0)
				ds_batch_close(d);
		}
		ds_stream_feedback(s, feedback_lsn(d, false), false);
		if (d->skip_done && !d->in_txn)
			skip_request_done(d);
		if (recovering && !d->in_txn && !d->b.open && d->b.inflight == 0 &&
			d->b.done_lsn >= caught_up_at)
		{
			retry_over(DS_STATE_STREAMING);
			recovering = false;
		}
		if ((job_mode || ds_jobs_pending(MySlot)) && !check_jobs(d, job_mode))
			return;

		/* 3. catalog changed: start a new session with it */
		if (!d->in_txn && !d->b.open &&
			pg_atomic_read_u32(&MySlot->config_generation) != generation)
		{
			ds_batch_settle(d);
			return;
		}
		/* our pipeline is gone: the next session finds so and stops */
		if (pipeline_gone_now())
			return;

		/* 4. wait for more */
		rc = wait_for_input(d, &target_ready);
		{
			TimestampTz now = GetCurrentTimestamp();

			ds_stats_decay(MySlot, now);
			ds_stats_sample(MySlot, now);
		}
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		/* confirmations of batches in flight (or the target went away) */
		if (target_ready)
			d->target->poll(d->target);
		if (durable_refresh_due(d, rc))
		{
			/*
			 * quiet, or idle a second since we last asked (keepalives keep
			 * coming): learn how far the target flushed, tell the source
			 */
			ds_stream_feedback(s, feedback_lsn(d, true), false);
		}
		CHECK_FOR_INTERRUPTS();
		reload_config_if_pending();
		if (PQconsumeInput(s->conn) == 0)
			ds_pq_report(s->conn, NULL, DS_CONN_SOURCE, "receiving the replication stream");
	}
}

/*
 * Tell the source what the target holds durably before a session of a
 * manual or scheduled pipeline ends, so that the slot does not keep WAL
 * that was applied: the target flushes an asynchronous commit within a
 * few wal_writer_delay.
 */
static void
final_feedback(DsDecoder *d, DsStream *s)
{
	int			i;

	for (i = 0; i < 20; i++)
	{
		bool		all;

		(void) d->target->durable(d->target, true, &all);
		if (all)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ds_stream_feedback(s, feedback_lsn(d, false), true);
}

/*
 * One session: set up from the catalog and the target, copy what needs
 * copying, stream until the catalog changes (real-time) or the queued
 * runs are done (manual, scheduled).
 */
static SessionEnd
run_session(MemoryContext sesscxt)
{
	DsPipelineConfig *cfg;
	DsApplyTarget *t;
	DsStream   *s;
	DsDecoder  *d;
	XLogRecPtr	start;
	List	   *to_copy = NIL;
	List	   *all = NIL;
	ListCell   *lc;
	bool		started;
	char		appname[NAMEDATALEN];
	MemoryContext msgcxt;
	bool		job_mode;
	bool		more_runs;
	/* read before the catalog: a change after this restarts the session */
	uint32		generation = pg_atomic_read_u32(&MySlot->config_generation);

	started = ds_xact_start();
	cfg = pipeline_exists() ? ds_catalog_load(MyPipelineId) : NULL;
	ds_xact_commit(started);
	if (cfg == NULL)
	{
		ereport(LOG,
				(errmsg("datasync worker of pipeline " INT64_FORMAT " exits: the pipeline no longer exists",
						MyPipelineId)));
		return SESSION_STOP;
	}
	if (!cfg->enabled || cfg->error != NULL)
		return SESSION_STOP;
	job_mode = !ds_mode_is(cfg->mode, DS_MODE_REALTIME);
	if (job_mode && !ds_jobs_pending(MySlot))
		return SESSION_IDLE;
	{
		char		name[NAMEDATALEN];

		snprintf(name, sizeof(name), "datasync worker %s", cfg->name);
		pgstat_report_appname(name);
	}

	/* who created the pipeline may still use its target (trust.c) */
	started = ds_xact_start();
	ds_recheck_target(cfg);
	ds_xact_commit(started);

	pgstat_report_activity(STATE_RUNNING, "connecting");
	t = CurTarget = ds_apply_create(cfg);
	t->connect(t);

	snprintf(appname, sizeof(appname), "datasync %s", cfg->name);
	s = CurStream = ds_stream_connect(appname);

	foreach(lc, cfg->tables)
	{
		DsPipelineTable *pt = lfirst(lc);

		all = lappend_oid(all, pt->relid);
	}

	/* the copies below belong to the runs this session starts first */
	(void) ds_snapshot_take_rows();
	SpinLockAcquire(&MySlot->mutex);
	MySlot->copy_base = ds_stats_read(MySlot, DS_STAT_ROWS_COPIED);
	MySlot->copy_base_set = true;
	SpinLockRelease(&MySlot->mutex);

	start = t->read_progress(t, InvalidOid);
	if (XLogRecPtrIsInvalid(start) || !ds_stream_slot_exists(s, cfg->slot_name))
	{
		/* a new pipeline (or its slot was lost): slot, then the first copy */
		if (!XLogRecPtrIsInvalid(start))
			ereport(WARNING,
					(errmsg("replication slot \"%s\" of pipeline \"%s\" is missing; copying all tables again",
							cfg->slot_name, cfg->name)));
		else if (ds_stream_slot_exists(s, cfg->slot_name))
			ds_stream_drop_slot(s, cfg->slot_name);
		set_state(DS_STATE_SYNCING);
		pgstat_report_activity(STATE_RUNNING, "initial copy");
		start = ds_snapshot_initial(s, t, cfg, all, cfg->options.initial_sync);
		ds_stats_add(MySlot, DS_STAT_ROWS_COPIED, ds_snapshot_take_rows());
		started = ds_xact_start();
		ds_catalog_set_tables_ready(cfg->id, all);
		ds_xact_commit(started);
		retry_over(DS_STATE_SYNCING);
		foreach(lc, cfg->tables)
			((DsPipelineTable *) lfirst(lc))->sync_state = 'r';
	}

	/* tables added or to be copied again */
	foreach(lc, cfg->tables)
	{
		DsPipelineTable *pt = lfirst(lc);

		if (pt->sync_state != 'r')
			to_copy = lappend_oid(to_copy, pt->relid);
	}
	if (to_copy != NIL)
	{
		set_state(DS_STATE_SYNCING);
		pgstat_report_activity(STATE_RUNNING, "copying tables");
		(void) ds_snapshot_tables(t, cfg, to_copy);
		ds_stats_add(MySlot, DS_STAT_ROWS_COPIED, ds_snapshot_take_rows());
		started = ds_xact_start();
		ds_catalog_set_tables_ready(cfg->id, to_copy);
		ds_xact_commit(started);
		retry_over(DS_STATE_SYNCING);
	}

	/* where each table's copy ended */
	ds_relmap_init(sesscxt, cfg);
	foreach(lc, all)
	{
		XLogRecPtr	lsn = t->read_progress(t, lfirst_oid(lc));

		if (!XLogRecPtrIsInvalid(lsn))
			ds_relmap_set_sync_lsn(lfirst_oid(lc), lsn);
	}

	d = CurDecoder = palloc0(sizeof(DsDecoder));
	d->target = t;
	d->cfg = cfg;
	d->slot = MySlot;
	d->skip_before = start;
	/* a transaction skipped as asked, and a later one applied, before now */
	if (!XLogRecPtrIsInvalid(cfg->skip_lsn) && cfg->skip_lsn < start)
	{
		d->skipped_lsn = cfg->skip_lsn;
		skip_request_done(d);
	}
	ds_batch_start(d);
	ds_batch_set_done(d, start);
	ds_conflict_session_start(d, sesscxt);

	/* runs asked for before the copy's start are done */
	more_runs = !job_mode || ds_jobs_poll(MySlot, MyPipelineId, cfg->name);
	/* a run started later counts its own copies only */
	SpinLockAcquire(&MySlot->mutex);
	MySlot->copy_base_set = false;
	SpinLockRelease(&MySlot->mutex);
	if (more_runs)
	{
		ds_spool_init(sesscxt);
		ds_stream_start(s, cfg->slot_name, cfg->slot_name, start);
		msgcxt = AllocSetContextCreate(sesscxt, "datasync message", ALLOCSET_DEFAULT_SIZES);
		stream_loop(d, s, msgcxt, generation, job_mode);
		loop_wait_set_free();
		if (job_mode)
			final_feedback(d, s);
	}

	/* catalog changed, or the runs are done: clean end of the session */
	retry_over(DS_STATE_STREAMING);
	ds_spool_reset();
	CurDecoder = NULL;
	CurStream = NULL;
	CurTarget = NULL;
	ds_stream_close(s);
	t->close(t);
	return SESSION_AGAIN;
}

static void
close_session_connections(void)
{
	/* libpq connections are malloc'd: close them on error */
	loop_wait_set_free();
	/* streamed transactions not committed yet: come again next session */
	ds_spool_reset();
	if (CurTarget)
		CurTarget->close(CurTarget);
	if (CurStream)
		ds_stream_close(CurStream);
	CurDecoder = NULL;
	CurStream = NULL;
	CurTarget = NULL;
}

void
DatasyncWorkerMain(Datum main_arg)
{
	Oid			dboid;
	int64		incarnation;
	LOCKTAG		tag;
	MemoryContext sesscxt;

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	memcpy(&MyPipelineId, MyBgworkerEntry->bgw_extra + sizeof(Oid), sizeof(int64));
	memcpy(&incarnation, MyBgworkerEntry->bgw_extra + sizeof(Oid) + sizeof(int64), sizeof(int64));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	ds_pipeline_key(&MyKey, MyPipelineId, incarnation);

	/*
	 * Values this session reads from the source itself (change.c completes
	 * updates that left TOASTed values out) must read back on the target
	 * the way the stream's do: the settings the replication connection pins.
	 */
	SetConfigOption("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("lc_monetary", "C", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("timezone", "UTC", PGC_USERSET, PGC_S_SESSION);
	/* nothing a user defines resolves through our names (trust.c) */
	ds_pin_search_path();

	/* one worker a pipeline; drop_pipeline waits for this lock */
	ds_pipeline_locktag(&tag, MyPipelineId);
	(void) LockAcquire(&tag, ShareLock, true, false);

	MySlot = ds_slot_claim(&MyKey);
	before_shmem_exit(worker_shmem_exit, 0);
	ds_pq_wait_hook = keepalive_hook;

	sesscxt = AllocSetContextCreate(TopMemoryContext, "datasync session", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SessionEnd end = SESSION_AGAIN;
		MemoryContext old = MemoryContextSwitchTo(sesscxt);

		/* a new session sees settings reloaded meanwhile (temp_file_limit) */
		reload_config_if_pending();

		PG_TRY();
		{
			end = run_session(sesscxt);
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			DsPipelineConfig *cfg = NULL;
			bool		started;
			long		delay;
			int			attempt;
			int			base_ms = 500;
			int			max_ms = 60000;

			HOLD_INTERRUPTS();
			/* sesscxt is reset below: nothing of this round is kept */
			MemoryContextSwitchTo(sesscxt);
			edata = CopyErrorData();
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			close_session_connections();
			RESUME_INTERRUPTS();

			ds_stats_add(MySlot, DS_STAT_ERRORS, 1);
			ds_slot_set_error(MySlot, edata->message);
			SpinLockAcquire(&MySlot->mutex);
			attempt = MySlot->retry_attempt;
			SpinLockRelease(&MySlot->mutex);

			started = ds_xact_start();
			cfg = pipeline_exists() ? ds_catalog_load(MyPipelineId) : NULL;
			if (cfg)
			{
				base_ms = cfg->options.retry_base_ms;
				max_ms = cfg->options.retry_max_ms;
			}
			if (cfg && !ds_retry_is_transient(edata->sqlerrcode))
			{
				ds_catalog_set_error(MyPipelineId, edata->message);
				ds_xact_commit(started);
				SpinLockAcquire(&MySlot->mutex);
				MySlot->state = DS_STATE_ERROR;
				MySlot->retry_attempt = 0;	/* resume() starts afresh */
				SpinLockRelease(&MySlot->mutex);

				/*
				 * Each failed run commits its row before a waiter hears of
				 * it, and after the pipeline's error: what sync_now returns
				 * can be read back at once.
				 */
				ds_jobs_fail_all(MySlot, MyPipelineId, cfg->name, edata->message);
				ereport(LOG,
						(errmsg("datasync pipeline \"%s\" stopped on a permanent error", cfg->name),
						 errhint("Fix the cause, then run SELECT datasync.resume('%s').", cfg->name)));
				proc_exit(0);
			}
			ds_xact_commit(started);

			/* no progress since the last failure: the attempts add up */
			delay = ds_retry_next_delay(attempt, base_ms, max_ms);
			SpinLockAcquire(&MySlot->mutex);
			MySlot->state = DS_STATE_RETRYING;
			MySlot->retry_attempt = attempt + 1;
			MySlot->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
			SpinLockRelease(&MySlot->mutex);
			pgstat_report_activity(STATE_IDLE, "retrying");

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 delay, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			FreeErrorData(edata);
		}
		PG_END_TRY();

		MemoryContextSwitchTo(old);
		MemoryContextReset(sesscxt);
		CHECK_FOR_INTERRUPTS();
		if (end == SESSION_STOP)
			break;
		/* no run queued: give up the slot, unless one just came */
		if (end == SESSION_IDLE && ds_jobs_worker_exit(MySlot))
			break;
	}
	proc_exit(0);
}
