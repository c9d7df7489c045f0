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
 *		Data flows stream -> decode -> decide -> apply.  A target is a
 *		table of function pointers; apply_pg.c implements it over libpq.
 *		Batching (which source transactions share a target transaction)
 *		and retries sit above it in worker.c, conflict decisions in
 *		decide.c, so an HTTP target only has to implement this table.
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

#include "catalog.h"

/* conflict strategies (catalog.c names them) */
typedef enum DsStrategy
{
	DS_SOURCE_WINS,
	DS_TARGET_WINS,
	DS_LATEST_TIMESTAMP,
	DS_MANUAL
} DsStrategy;

/*
 * A source relation as the stream described it, plus where it goes.
 * Built from each RELATION message (relmap.c); lives in the worker's
 * long-lived context.
 */
typedef struct DsRelation
{
	LogicalRepRelId remoteid;	/* source relation oid (hash key) */
	char	   *nspname;
	char	   *relname;
	int			natts;
	char	  **attnames;
	Oid		   *atttyps;
	bool	   *attcast;		/* compare as text: the type has no equality */
	int			nkeys;			/* key columns: primary key / replica identity */
	int		   *keyatts;		/* their positions in attnames */
	bool		full_identity;	/* REPLICA IDENTITY FULL without a key */
	bool		old_full;		/* REPLICA IDENTITY FULL: old rows are whole */
	DsStrategy	strategy;		/* this table's conflict strategy */
	bool		detect;			/* changes take the conflict-checking path */
	int			ts_att;			/* latest-timestamp column, -1: commit time */
	char	   *target_qname;	/* quoted, schema-qualified target table */
	bool		in_pipeline;	/* false: changes are skipped */
	XLogRecPtr	sync_lsn;		/* skip transactions committed before this
								 * (they are in the table's copy) */
	uint32		version;		/* bumped on every RELATION message */
	void	   *target_private; /* the target's per-relation state */
} DsRelation;

typedef enum DsChangeKind
{
	DS_CHANGE_INSERT,
	DS_CHANGE_UPDATE,
	DS_CHANGE_DELETE
} DsChangeKind;

/* one row change, as decoded from the stream */
typedef struct DsChange
{
	DsChangeKind kind;
	DsRelation *rel;
	LogicalRepTupleData *oldtup;	/* key or full old row; NULL if none sent */
	LogicalRepTupleData *newtup;	/* INSERT and UPDATE */
	XLogRecPtr	change_lsn;		/* commit LSN of its source transaction */
	int			change_seq;		/* its place in that transaction */
	TimestampTz commit_time;	/* of its source transaction */
} DsChange;

/*
 * A conflict the target met on the checking path (see apply_pg.c), as
 * handed to the decider (conflict.c).  One palloc'd chunk: strings point
 * into it.
 */
typedef struct DsConflictHit
{
	DsRelation *rel;
	DsChangeKind change;
	const char *kind;			/* insert_exists, update_missing, ... */
	bool		applied;		/* the source version was applied */
	char	   *target_row;		/* to_jsonb of the target row; NULL: none */
	XLogRecPtr	change_lsn;
	int			change_seq;
	TimestampTz commit_time;
	char	  **newvals;		/* natts values, NULL: SQL NULL */
	bool	   *newsent;		/* false: not sent (unchanged TOAST) */
	bool		has_new;		/* false for deletes */
	char	  **keyvals;		/* nkeys values of the key it was found by */
	char	  **newkeyvals;		/* nkeys values of the new key (updates) */
} DsConflictHit;

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
	 * Commit the batch together with its progress.  With wait, return once
	 * the target confirmed it.  Without, return once it is sent: batches
	 * are confirmed in order, each by a call of on_committed (from any
	 * later call that reads results), and a batch that failed raises its
	 * ERROR there; the target makes sure that no batch after a failed one
	 * commits.  Only a batch with an end_lsn may go without waiting, and
	 * commit() returns with at most DS_MAX_INFLIGHT of them unconfirmed.
	 */
	void		(*commit) (DsApplyTarget *t, XLogRecPtr end_lsn, bool wait);
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
	/* the connection's socket, to wait on while batches are in flight */
	pgsocket	(*socket) (DsApplyTarget *t);
	void		(*close) (DsApplyTarget *t);

	DsPipelineConfig *cfg;

	/* set by the decider: called for each conflict a result reports */
	void		(*on_conflict) (DsConflictHit *hit, void *arg);
	void	   *on_conflict_arg;
	/* conflicts counted on the fast path (source-wins) */
	uint64		counted_conflicts;

	/* set by the decoder: called as each batch's commit is confirmed */
	void		(*on_committed) (void *arg, XLogRecPtr end_lsn);
	void	   *on_committed_arg;
};

/* batches a target may have unconfirmed when commit() returns */
#define DS_MAX_INFLIGHT 8

extern DsApplyTarget *ds_apply_pg_create(DsPipelineConfig *cfg);

#endif							/* DATASYNC_APPLY_H */
