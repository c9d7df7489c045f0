/*-------------------------------------------------------------------------
 *
 * rowchange.h
 *		A row change as it flows from the decoder through the stages of
 *		change.c to a target, the source relation it belongs to, and a
 *		conflict a target met.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/rowchange.h
 *
 * NOTES
 *		Shared by the worker (worker/) and the targets (target/): a stage
 *		needs these types without the target interface, a target without
 *		the worker's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_ROWCHANGE_H
#define DATASYNC_ROWCHANGE_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "replication/logicalproto.h"

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
 * A conflict the target met on the checking path (see target/apply_pg_check.c), as
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

#endif							/* DATASYNC_ROWCHANGE_H */
