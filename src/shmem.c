/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory of datasync: launcher latch and one slot a pipeline.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/shmem.c
 *
 * NOTES
 *		The area is sized from datasync.max_pipelines.  This file alone
 *		installs the shmem request and startup hooks.  A slot belongs to a
 *		pipeline, named by database, id and incarnation (DsPipelineKey),
 *		from the first start of its worker until drop_pipeline, or until
 *		the launcher finds the pipeline gone; counters survive worker
 *		restarts but not a server restart.  Every look-up goes by the whole
 *		key, so a call in one database, or for one incarnation of the
 *		extension, never finds the slot or the worker of another.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "stats.h"

DsShared   *DsShmem = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
ds_shmem_size(void)
{
	return add_size(offsetof(DsShared, slots),
					mul_size(datasync_max_pipelines, sizeof(DsPipelineSlot)));
}

static void
ds_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(ds_shmem_size());
	RequestNamedLWLockTranche("datasync", 1);
}

static void
ds_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	DsShmem = ShmemInitStruct("datasync", ds_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(DsShmem, 0, ds_shmem_size());
		DsShmem->lock = &(GetNamedLWLockTranche("datasync"))->lock;
		DsShmem->nslots = datasync_max_pipelines;
		/*
		 * Marker tickets must grow across server restarts too: the stream
		 * may still carry markers written before one, and a waiter compares
		 * tickets.  Starting from the clock (microseconds) does that unless
		 * more than one ticket a microsecond was handed out before.
		 */
		pg_atomic_init_u64(&DsShmem->marker_seq, (uint64) GetCurrentTimestamp());
		pg_atomic_init_u64(&DsShmem->last_job_id, 0);
		ConditionVariableInit(&DsShmem->progress_cv);
		for (i = 0; i < DsShmem->nslots; i++)
		{
			DsPipelineSlot *slot = &DsShmem->slots[i];

			SpinLockInit(&slot->mutex);
			pg_atomic_init_u64(&slot->marker_seq, 0);
			ds_stats_reset(slot, true);
			pg_atomic_init_u32(&slot->config_generation, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
ds_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ds_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ds_shmem_startup;
}

/* true when datasync was preloaded, so its workers can run */
bool
ds_shmem_available(void)
{
	return DsShmem != NULL;
}

/* the key of pipeline id / incarnation of the current database */
void
ds_pipeline_key(DsPipelineKey *key, int64 id, int64 incarnation)
{
	key->dboid = MyDatabaseId;
	key->id = id;
	key->incarnation = incarnation;
}

bool
ds_key_equal(const DsPipelineKey *a, const DsPipelineKey *b)
{
	return a->dboid == b->dboid && a->id == b->id &&
		a->incarnation == b->incarnation;
}

/*
 * The slot of a pipeline, or NULL.  The caller only reads fields that are
 * atomics or takes the slot's spinlock (and checks the key again there, as
 * the slot may have been freed meanwhile).
 */
DsPipelineSlot *
ds_slot_find(const DsPipelineKey *key)
{
	int			i;

	if (DsShmem == NULL || key->id == 0)
		return NULL;
	LWLockAcquire(DsShmem->lock, LW_SHARED);
	for (i = 0; i < DsShmem->nslots; i++)
	{
		if (ds_key_equal(&DsShmem->slots[i].key, key))
		{
			LWLockRelease(DsShmem->lock);
			return &DsShmem->slots[i];
		}
	}
	LWLockRelease(DsShmem->lock);
	return NULL;
}

/* the slot of a pipeline, allocated if it has none; DsShmem->lock held */
static DsPipelineSlot *
slot_get(const DsPipelineKey *key)
{
	DsPipelineSlot *found = NULL;
	DsPipelineSlot *free_slot = NULL;
	int			i;

	Assert(key->id != 0);
	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];

		if (ds_key_equal(&slot->key, key))
			return slot;
		if (slot->key.id == 0 && free_slot == NULL)
			free_slot = slot;
	}
	if (free_slot == NULL)
	{
		LWLockRelease(DsShmem->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("all %d datasync pipeline slots are in use", DsShmem->nslots),
				 errhint("Raise datasync.max_pipelines and restart the server.")));
	}
	found = free_slot;
	SpinLockAcquire(&found->mutex);
	found->key = *key;
	found->pid = 0;
	found->latch = NULL;
	found->state = DS_STATE_STOPPED;
	found->applied_lsn = InvalidXLogRecPtr;
	found->done_lsn = InvalidXLogRecPtr;
	found->last_sync_at = 0;
	found->retry_attempt = 0;
	found->next_attempt_at = 0;
	found->last_error[0] = '\0';
	found->clean_exit = false;
	found->copy_base_set = false;
	found->njobs = 0;
	found->next_result = 0;
	memset(found->results, 0, sizeof(found->results));
	SpinLockRelease(&found->mutex);
	pg_atomic_write_u64(&found->marker_seq, 0);
	ds_stats_reset(found, false);
	return found;
}

/*
 * Claim the slot of a pipeline for the calling worker: its old slot if it
 * has one, else a free one.  Errors out when all are taken.
 */
DsPipelineSlot *
ds_slot_claim(const DsPipelineKey *key)
{
	DsPipelineSlot *found;

	LWLockAcquire(DsShmem->lock, LW_EXCLUSIVE);
	found = slot_get(key);
	SpinLockAcquire(&found->mutex);
	found->pid = MyProcPid;
	found->latch = MyLatch;
	found->state = DS_STATE_STARTING;
	found->clean_exit = false;
	found->copy_base_set = false;
	SpinLockRelease(&found->mutex);
	LWLockRelease(DsShmem->lock);
	return found;
}

/*
 * The slot of a pipeline for a backend that queues a run: allocated when
 * the pipeline has none yet (a manual pipeline that never ran).
 */
DsPipelineSlot *
ds_slot_attach(const DsPipelineKey *key)
{
	DsPipelineSlot *found;

	LWLockAcquire(DsShmem->lock, LW_EXCLUSIVE);
	found = slot_get(key);
	LWLockRelease(DsShmem->lock);
	return found;
}

/* free a slot; DsShmem->lock held exclusively */
static void
slot_free(DsPipelineSlot *slot)
{
	SpinLockAcquire(&slot->mutex);
	memset(&slot->key, 0, sizeof(slot->key));
	slot->pid = 0;
	slot->latch = NULL;
	slot->njobs = 0;
	SpinLockRelease(&slot->mutex);
}

/* Forget a pipeline's slot (drop_pipeline). */
void
ds_slot_release(const DsPipelineKey *key)
{
	int			i;

	if (DsShmem == NULL || key->id == 0)
		return;
	LWLockAcquire(DsShmem->lock, LW_EXCLUSIVE);
	for (i = 0; i < DsShmem->nslots; i++)
	{
		if (ds_key_equal(&DsShmem->slots[i].key, key))
			slot_free(&DsShmem->slots[i]);
	}
	LWLockRelease(DsShmem->lock);
}

/* The keys of the slots in use by pipelines of database dboid (palloc'd). */
List *
ds_slot_keys(Oid dboid)
{
	List	   *result = NIL;
	int			i;

	if (DsShmem == NULL)
		return NIL;
	LWLockAcquire(DsShmem->lock, LW_SHARED);
	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];

		if (slot->key.id != 0 && slot->key.dboid == dboid)
		{
			DsPipelineKey *k = palloc(sizeof(DsPipelineKey));

			*k = slot->key;
			result = lappend(result, k);
		}
	}
	LWLockRelease(DsShmem->lock);
	return result;
}

/*
 * The pipeline of a slot no longer exists (the launcher found it neither
 * in the catalog nor with the extension): stop its worker, or free the
 * slot once none runs.  The caller read the catalog after it took the key
 * from ds_slot_keys, so the slot cannot belong to a pipeline created since.
 */
void
ds_slot_retire(const DsPipelineKey *key)
{
	int			i;

	LWLockAcquire(DsShmem->lock, LW_EXCLUSIVE);
	for (i = 0; i < DsShmem->nslots; i++)
	{
		DsPipelineSlot *slot = &DsShmem->slots[i];
		pid_t		pid;

		if (!ds_key_equal(&slot->key, key))
			continue;
		SpinLockAcquire(&slot->mutex);
		pid = slot->pid;
		SpinLockRelease(&slot->mutex);
		if (pid != 0)
			(void) kill(pid, SIGTERM);
		else
			slot_free(slot);
	}
	LWLockRelease(DsShmem->lock);
}

void
ds_slot_set_state(DsPipelineSlot *slot, DsWorkerState state)
{
	SpinLockAcquire(&slot->mutex);
	slot->state = state;
	SpinLockRelease(&slot->mutex);
}

void
ds_slot_set_error(DsPipelineSlot *slot, const char *msg)
{
	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->last_error, msg ? msg : "", DS_LAST_ERROR_LEN);
	SpinLockRelease(&slot->mutex);
}

const char *
ds_state_name(DsWorkerState state)
{
	switch (state)
	{
		case DS_STATE_STARTING:
			return "starting";
		case DS_STATE_SYNCING:
			return "syncing";
		case DS_STATE_STREAMING:
			return "streaming";
		case DS_STATE_RETRYING:
			return "retrying";
		case DS_STATE_ERROR:
			return "error";
		case DS_STATE_STOPPED:
			return "idle";
	}
	return "unknown";
}

/* pid of a pipeline's running worker, or 0 */
pid_t
ds_slot_pid(const DsPipelineKey *key)
{
	DsPipelineSlot *slot = ds_slot_find(key);
	pid_t		pid = 0;

	if (slot)
	{
		SpinLockAcquire(&slot->mutex);
		if (ds_key_equal(&slot->key, key))
			pid = slot->pid;
		SpinLockRelease(&slot->mutex);
	}
	return pid;
}

/*
 * Tell a pipeline's worker that its catalog rows changed: bump the
 * generation and set its latch.  Called at commit (see pipeline.c).
 */
void
ds_signal_pipeline(const DsPipelineKey *key)
{
	DsPipelineSlot *slot = ds_slot_find(key);

	if (slot == NULL)
		return;
	pg_atomic_fetch_add_u32(&slot->config_generation, 1);
	SpinLockAcquire(&slot->mutex);
	if (ds_key_equal(&slot->key, key) && slot->latch)
		SetLatch(slot->latch);
	SpinLockRelease(&slot->mutex);
}
