/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The launcher: starts and stops one sync worker per pipeline.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/launcher.c
 *
 * NOTES
 *		A static background worker in datasync.database.  Every naptime, or
 *		when a SQL call sets its latch, it reads the pipelines and starts a
 *		dynamic worker (BGW_NEVER_RESTART) for each runnable one that has
 *		none: a real-time pipeline always, a manual or scheduled one while
 *		runs are queued for it (jobs.c); it terminates the workers of
 *		pipelines that were paused or dropped, and fails the runs still
 *		queued for a paused or stopped pipeline.  When it starts, it marks
 *		runs that a server restart interrupted as failed.  A worker that exits soon after it started is
 *		restarted after an exponential backoff with jitter (the postmaster
 *		only knows a fixed restart interval).  Transient errors inside a
 *		session are retried by the worker itself (worker.c).
 *
 *		Workers and slots are known by database, id and incarnation
 *		(shmem.h).  Every round also stops the worker of, and then frees,
 *		any slot of this database whose pipeline the catalog no longer
 *		holds -- even when the extension is gone (DROP EXTENSION does not
 *		call drop_pipeline), and even for workers that an earlier launcher
 *		started.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "utils/lsyscache.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "isolation.h"
#include "worker/jobs.h"
#include "retry.h"
#include "shmem.h"
#include "trust.h"
#include "worker/worker.h"

typedef struct LaunchedWorker
{
	DsPipelineKey key;
	BackgroundWorkerHandle *handle;
	TimestampTz started_at;
	TimestampTz next_start;		/* not before (backoff) */
	int			failures;
	bool		seen;			/* still in the catalog this round */
} LaunchedWorker;

static List *launched = NIL;
static bool wakeup_at_commit = false;
static bool xact_callback_registered = false;
static List *signal_at_commit = NIL;	/* of DsPipelineKey */
static bool orphans_checked = false;

void
ds_launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "datasync");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "DatasyncLauncherMain");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "datasync launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "datasync launcher");
	bgw.bgw_restart_time = 5;
	bgw.bgw_notify_pid = 0;
	bgw.bgw_main_arg = (Datum) 0;
	RegisterBackgroundWorker(&bgw);
}

static void
launcher_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_COMMIT && DsShmem)
	{
		Latch	   *latch = DsShmem->launcher_latch;

		foreach(lc, signal_at_commit)
			ds_signal_pipeline((DsPipelineKey *) lfirst(lc));
		if (wakeup_at_commit && latch != NULL)
			SetLatch(latch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		wakeup_at_commit = false;
		list_free_deep(signal_at_commit);
		signal_at_commit = NIL;
	}
}

static void
register_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(launcher_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/* Wake the launcher when the current transaction commits. */
void
ds_launcher_wakeup_at_commit(void)
{
	register_callback();
	wakeup_at_commit = true;
}

/*
 * Tell a pipeline's worker, when the current transaction commits, that its
 * configuration changed; it then starts a new session with it.
 */
void
ds_signal_at_commit(int64 pipeline_id, int64 incarnation)
{
	MemoryContext old;
	DsPipelineKey *key;

	register_callback();
	old = MemoryContextSwitchTo(TopMemoryContext);
	key = palloc(sizeof(DsPipelineKey));
	ds_pipeline_key(key, pipeline_id, incarnation);
	signal_at_commit = lappend(signal_at_commit, key);
	MemoryContextSwitchTo(old);
	wakeup_at_commit = true;
}

static LaunchedWorker *
find_launched(const DsPipelineKey *key)
{
	ListCell   *lc;

	foreach(lc, launched)
	{
		LaunchedWorker *w = lfirst(lc);

		if (ds_key_equal(&w->key, key))
			return w;
	}
	return NULL;
}

static bool
worker_alive(LaunchedWorker *w)
{
	pid_t		pid;

	if (ds_slot_pid(&w->key) != 0)
		return true;
	if (w->handle == NULL)
		return false;
	return GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED;
}

static void
start_worker(LaunchedWorker *w)
{
	BackgroundWorker bgw;
	LOCKTAG		tag;

	/* drop_pipeline holds this lock while it removes the pipeline */
	ds_pipeline_locktag(&tag, w->key.id);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return;
	LockRelease(&tag, ShareLock, false);

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "datasync");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "DatasyncWorkerMain");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "datasync worker " INT64_FORMAT, w->key.id);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "datasync worker");
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	bgw.bgw_notify_pid = MyProcPid;
	/* the worker's key: database, pipeline id, incarnation */
	memcpy(bgw.bgw_extra, &MyDatabaseId, sizeof(Oid));
	memcpy(bgw.bgw_extra + sizeof(Oid), &w->key.id, sizeof(int64));
	memcpy(bgw.bgw_extra + sizeof(Oid) + sizeof(int64), &w->key.incarnation, sizeof(int64));

	if (w->handle)
		pfree(w->handle);
	w->handle = NULL;
	if (!RegisterDynamicBackgroundWorker(&bgw, &w->handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the datasync worker of pipeline " INT64_FORMAT, w->key.id),
				 errhint("Raise max_worker_processes.")));
		w->handle = NULL;
		w->next_start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
		return;
	}
	w->started_at = GetCurrentTimestamp();
}

static void
stop_worker(LaunchedWorker *w)
{
	pid_t		pid = ds_slot_pid(&w->key);

	if (w->handle)
		TerminateBackgroundWorker(w->handle);
	else if (pid != 0)
		kill(pid, SIGTERM);
}

/*
 * Slots of this database whose pipeline is gone (dropped with the
 * extension, or by a drop_pipeline whose commit hook did not run): stop
 * their workers, free them once none runs.  The keys are taken before the
 * catalog is read, so a slot that a run or a worker took meanwhile for a
 * pipeline just created is never mistaken for one of those.
 */
static void
retire_gone_slots(void)
{
	List	   *slots = ds_slot_keys(MyDatabaseId);
	List	   *current;
	ListCell   *lc;
	bool		started;

	if (slots == NIL)
		return;
	started = ds_xact_start();
	current = ds_catalog_keys();
	ds_xact_commit(started);
	foreach(lc, slots)
	{
		DsPipelineKey *key = lfirst(lc);

		if (!ds_key_list_member(current, key))
			ds_slot_retire(key);
	}
}

/*
 * One round: compare the catalog with the running workers.  Without the
 * extension every worker this launcher knows of is one to stop.
 */
static void
launcher_round(MemoryContext roundcxt, bool installed)
{
	List	   *pipelines = NIL;
	ListCell   *lc;
	bool		started;
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext old;

	old = MemoryContextSwitchTo(roundcxt);
	if (installed)
	{
		started = ds_xact_start();
		pipelines = ds_catalog_list();
		ds_xact_commit(started);
	}
	MemoryContextSwitchTo(old);

	foreach(lc, launched)
		((LaunchedWorker *) lfirst(lc))->seen = false;

	/* once: rows of runs that a server restart interrupted */
	if (installed && !orphans_checked)
	{
		started = ds_xact_start();
		ds_jobs_fail_orphans();
		ds_xact_commit(started);
		orphans_checked = true;
	}

	foreach(lc, pipelines)
	{
		DsPipelineBrief *b = lfirst(lc);
		DsPipelineKey key;
		LaunchedWorker *w;
		DsPipelineSlot *slot;
		bool		pending;
		bool		clean_exit = false;

		ds_pipeline_key(&key, b->id, b->incarnation);
		w = find_launched(&key);
		if (w == NULL)
		{
			w = MemoryContextAllocZero(TopMemoryContext, sizeof(LaunchedWorker));
			w->key = key;
			old = MemoryContextSwitchTo(TopMemoryContext);
			launched = lappend(launched, w);
			MemoryContextSwitchTo(old);
		}
		w->seen = true;

		/* real-time pipelines run all the time, the others for their jobs */
		slot = ds_slot_find(&key);
		pending = slot != NULL && ds_jobs_pending(slot);
		if (!b->active || (!b->realtime && !pending))
		{
			if (!b->active && worker_alive(w))
				stop_worker(w);
			else if (!b->active && pending)
				ds_jobs_fail_all(slot, b->id, b->name,
								 b->enabled ? "the pipeline stopped on an error" : "the pipeline was paused");
			w->failures = 0;
			w->next_start = 0;
			continue;
		}
		if (worker_alive(w))
			continue;

		/* it stopped: a short life counts as a failure, unless it was done */
		if (slot != NULL)
		{
			SpinLockAcquire(&slot->mutex);
			clean_exit = slot->clean_exit;
			SpinLockRelease(&slot->mutex);
		}
		if (w->started_at != 0)
		{
			if (clean_exit || TimestampDifferenceExceeds(w->started_at, now, 60000))
				w->failures = 0;
			else if (w->next_start <= w->started_at)
			{
				w->failures++;
				w->next_start = TimestampTzPlusMilliseconds(now,
															ds_retry_next_delay(w->failures, 1000, 60000));
			}
		}
		if (now < w->next_start)
			continue;
		start_worker(w);
	}

	/* pipelines that are gone: stop their workers, then forget them */
	foreach(lc, launched)
	{
		LaunchedWorker *w = lfirst(lc);

		if (w->seen)
			continue;
		if (worker_alive(w))
			stop_worker(w);
		else
		{
			if (w->handle)
				pfree(w->handle);
			launched = foreach_delete_current(launched, lc);
			pfree(w);
		}
	}

	old = MemoryContextSwitchTo(roundcxt);
	retire_gone_slots();
	MemoryContextSwitchTo(old);
	MemoryContextReset(roundcxt);
}

static void
launcher_shmem_exit(int code, Datum arg)
{
	if (DsShmem && DsShmem->launcher_pid == MyProcPid)
	{
		DsShmem->launcher_pid = 0;
		DsShmem->launcher_latch = NULL;
	}
}

void
DatasyncLauncherMain(Datum main_arg)
{
	MemoryContext roundcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	DsShmem->launcher_pid = MyProcPid;
	DsShmem->launcher_latch = MyLatch;
	before_shmem_exit(launcher_shmem_exit, 0);

	BackgroundWorkerInitializeConnection(datasync_database, NULL, 0);
	pgstat_report_appname("datasync launcher");
	/* nothing a user defines resolves through our names (trust.c) */
	ds_pin_search_path();

	roundcxt = AllocSetContextCreate(TopMemoryContext, "datasync launcher round",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		installed;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* no pipelines until the extension exists in this database */
		{
			bool		started = ds_xact_start();

			installed = OidIsValid(get_namespace_oid(DATASYNC_SCHEMA, true)) &&
				OidIsValid(get_relname_relid("_pipelines", get_namespace_oid(DATASYNC_SCHEMA, true)));
			ds_xact_commit(started);
		}
		launcher_round(roundcxt, installed);

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   datasync_naptime, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}
