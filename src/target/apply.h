/*-------------------------------------------------------------------------
 *
 * apply.h
 *		The apply-target interface, and the change and relation structs
 *		that flow from the decoder to a target.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply.h
 *
 * NOTES
 *		Data flows stream (worker/stream.c) -> decode (worker/decode.c)
 *		-> the stages of a change (worker/change.c) -> apply (a target).
 *		A target is a table of function pointers; target/apply_pg.c
 *		implements it over libpq.  Batching (which source transactions
 *		share a target transaction, worker/batch.c) and retries
 *		(worker/worker.c) sit above it.  Conflicts are the target's to
 *		detect: the PostgreSQL target decides each change of a checked
 *		table in one statement and reports what it found (on_conflict);
 *		worker/conflict.c records them.
 *
 *		Every target call may raise an ERROR; the worker then throws the
 *		target away (close) and starts over from the last committed
 *		progress.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_APPLY_H
#define DATASYNC_APPLY_H

#include "access/xlogdefs.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "datatype/timestamp.h"
#include "replication/logicalproto.h"
#include "storage/latch.h"

#include "catalog.h"
#include "rowchange.h"

typedef struct DsApplyTarget DsApplyTarget;

struct DsApplyTarget
{
	/* open the connection; read what was applied: stream LSN, table LSNs */
	void		(*connect) (DsApplyTarget *t);
	/* progress of this pipeline incarnation; InvalidXLogRecPtr if none */
	XLogRecPtr	(*read_progress) (DsApplyTarget *t, Oid relid);
	/* start a target transaction (a batch) */
	void		(*begin) (DsApplyTarget *t);
	void		(*apply) (DsApplyTarget *t, DsChange *change);
	void		(*truncate) (DsApplyTarget *t, List *rels, bool cascade,
							 bool restart_seqs);
	/*
	 * Commit the batch together with its progress (end_lsn, when valid).
	 * batch_no is the caller's number of the batch (worker/batch.c numbers
	 * them, 1, 2, ...; 0 for a commit that is no batch, as a copy's).  With
	 * wait, return once the target confirmed it.  Without, return once it
	 * is sent: numbered batches are confirmed in order, each by a call of
	 * on_committed (from any later call that reads results), and a batch
	 * that failed raises its ERROR there; the target makes sure that no
	 * batch after a failed one commits.  Only a numbered batch with an
	 * end_lsn may go without waiting.  The caller keeps at most
	 * DS_MAX_INFLIGHT of them unconfirmed (wait_confirmed).
	 */
	void		(*commit) (DsApplyTarget *t, uint64 batch_no, XLogRecPtr end_lsn,
						   bool wait);
	/* wait until the oldest batch committed without waiting is confirmed */
	void		(*wait_confirmed) (DsApplyTarget *t);
	/* initial copy of a table: replace its rows with the COPY data */
	void		(*copy_begin) (DsApplyTarget *t, const char *target_qname,
							   List *colnames);
	void		(*copy_data) (DsApplyTarget *t, const char *buf, int len);
	void		(*copy_end) (DsApplyTarget *t, Oid relid, XLogRecPtr lsn);
	/*
	 * The highest source end LSN whose target commit is durable; *all says
	 * whether every commit so far is.  With refresh, ask the target first
	 * (a round trip).  A target that commits synchronously is durable at
	 * commit.
	 */
	XLogRecPtr	(*durable) (DsApplyTarget *t, bool refresh, bool *all);
	/*
	 * Push what the target has been given, read results that arrived,
	 * without waiting; changes it keeps back to send as one statement stay
	 * buffered.
	 */
	void		(*poll) (DsApplyTarget *t);
	/*
	 * Wait for the results of every statement sent (no commit), and for
	 * the confirmation of every batch committed without waiting.
	 */
	void		(*settle) (DsApplyTarget *t);
	/*
	 * The target's part of the worker's wait set (made once a streaming
	 * pass, with room for nwait_events of the target's): add_wait_events
	 * adds them, each with user_data t, so a wake-up by one of them is the
	 * target's; want_results switches them between waking for results
	 * (while batches are in flight and something waits for them) and only
	 * for the connection closing.
	 */
	int			nwait_events;
	void		(*add_wait_events) (DsApplyTarget *t, WaitEventSet *set);
	void		(*want_results) (DsApplyTarget *t, WaitEventSet *set, bool want);
	void		(*close) (DsApplyTarget *t);

	/*
	 * Outside the stream (resolve_conflict; DS_TARGET_CAN_PUT_ROW): in a
	 * target transaction of its own, delete the row of old_key (a JSON
	 * object of the key columns; NULL: none), then write row (a JSON object
	 * of the table's columns; NULL: none) over the row of its key.  keycols
	 * and cols are quoted column names; connects on first use.
	 */
	void		(*put_row) (DsApplyTarget *t, const char *target_qname,
							List *keycols, List *cols, const char *old_key,
							const char *row);

	DsPipelineConfig *cfg;
	uint32		caps;			/* DS_TARGET_CAN_*, set by ds_apply_create */

	/* set by the decider: called for each conflict a result reports */
	void		(*on_conflict) (DsConflictHit *hit, void *arg);
	void	   *on_conflict_arg;
	/* conflicts counted on the fast path (source-wins) */
	uint64		counted_conflicts;

	/* set by worker/batch.c: called as each numbered batch is confirmed */
	void		(*on_committed) (void *arg, uint64 batch_no);
	void	   *on_committed_arg;
};

/* numbered batches the caller keeps unconfirmed at most (see commit) */
#define DS_MAX_INFLIGHT 8

/* what a kind of target can do (DsApplyTarget.caps) */
#define DS_TARGET_CAN_DETECT_CONFLICTS	0x0001	/* conflict-checking strategies */
#define DS_TARGET_CAN_PUT_ROW			0x0002	/* put_row (resolve_conflict) */

extern uint32 ds_apply_kind_caps(const char *kind);
extern DsApplyTarget *ds_apply_create(DsPipelineConfig *cfg);

/* the implementations (apply.c dispatches on the target kind) */
extern DsApplyTarget *ds_apply_pg_create(DsPipelineConfig *cfg);

#endif							/* DATASYNC_APPLY_H */
