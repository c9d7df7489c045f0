/*-------------------------------------------------------------------------
 *
 * apply_pg_int.h
 *		Private declarations of the PostgreSQL target, shared by apply_pg.c
 *		and the apply_pg_*.c files beside it.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply_pg_int.h
 *
 * NOTES
 *		Not part of the target interface (target/apply.h): nothing but
 *		src/target/apply_pg*.c includes this.  The target is one PgTarget,
 *		a DsApplyTarget followed by the state of its connection, of the
 *		commands and batches in flight, of the run being buffered and of
 *		the COPY being sent; every file of the target works on it.
 *
 *		The functions declared here are hidden from the rest of the server
 *		process: calls to them, between the files and within one, are then
 *		plain calls, not calls through the shared library's PLT that may be
 *		interposed.  Several sit on the path of every statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_APPLY_PG_INT_H
#define DATASYNC_APPLY_PG_INT_H

#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "replication/logicalproto.h"
#include "utils/palloc.h"

#include "target/apply.h"

/* how the result of a pending command is read (see ds_pg_drain) */
typedef enum PgResultUse
{
	USE_NONE,
	USE_WAL_POS,				/* WAL insert and flush positions */
	USE_XMAX_SET,				/* rows whose xmax is set: insert_exists */
	USE_XMAX_ZERO,				/* rows newly inserted: update_missing */
	USE_MISSED,					/* expected - rows affected: *_missing */
	USE_CHECK,					/* one row: kind, applied, target row */
	USE_CHECK_RUN,				/* a row per conflict: n, kind, applied, target row */
	USE_RELKIND					/* the target table's relkind (PgRel.relkind) */
} PgResultUse;

/*
 * The source changes a command carries, named by their commit LSN and
 * place in the transaction as datasync.conflicts names them: for the
 * CONTEXT line of an error (see ds_pg_drain).  first_lsn invalid: none.
 */
typedef struct PgIdent
{
	XLogRecPtr	first_lsn;
	int			first_seq;
	XLogRecPtr	last_lsn;
	int			last_seq;
} PgIdent;

/* a command sent whose result has not been read (apply_pg_pipe.c) */
typedef struct PgPending
{
	const char *what;
	PgIdent		ident;			/* the changes it carries */
	PgResultUse use;
	int			expected;		/* USE_MISSED */
	DsConflictHit *hit;			/* USE_CHECK */
	DsConflictHit **hits;		/* USE_CHECK_RUN: expected of them */
	uint64		bound;			/* USE_WAL_POS: the commits sent before it */
	struct PgRel *rel;			/* USE_RELKIND */
} PgPending;

/*
 * per-relation statements (apply_pg_stmt.c, apply_pg_check.c); reset when
 * the relation's version changes
 */
typedef struct PgRel
{
	uint32		version;
	int			conn_gen;
	bool		have_upsert;
	bool		have_delete;
	char		upsert_name[NAMEDATALEN];
	char		delete_name[NAMEDATALEN];
	bool		have_multi;
	char		multi_name[NAMEDATALEN];	/* multi-row INSERT of a full run */
	bool		have_multi_delete;
	char		multi_delete_name[NAMEDATALEN]; /* DELETE of a full run of keys */
	List	   *updates;		/* of PgUpdateVariant */
	bool		have_upsert_u;	/* the upserts of whole-row updates */
	char		upsert_u_name[NAMEDATALEN];
	bool		have_multi_u;
	char		multi_u_name[NAMEDATALEN];
	List	   *checks;			/* of PgCheckStmt */
	bool		have_check_run;
	char		check_run_name[NAMEDATALEN];	/* inserts of a full check run */
	char		relkind;		/* of the target table; '\0': not asked yet */
	bool		copy_off;		/* COPY failed here, not on a key: never again */
	uint64		copy_skip_batch;	/* a key stopped a COPY in this batch */
	char	   *what;			/* "applying changes to table ..." */
} PgRel;

/* the PostgreSQL target: the interface's table, then the target's state */
typedef struct PgTarget
{
	DsApplyTarget base;
	PGconn	   *conn;
	int			conn_gen;		/* bumped on every connect */
	bool		in_pipeline;
	bool		in_xact;
	bool		explicit_xact;	/* BEGIN was sent (copies); else implicit */
	bool		in_copy;
	bool		have_progress_stmt;
	int			wait_pos;		/* in the worker's wait set; -1: none */
	int			pending;		/* commands whose result has not come */
	int			syncs;			/* Syncs whose result has not come */
	int			unflushed;		/* commands queued since the last flush */
	Size		unflushed_bytes;	/* and their bytes */
	DsChange   *cur_change;		/* the change being applied, for errors */
	PgIdent    *sending;		/* the changes of the commands being sent */
	/* each pending command, oldest first: what for errors, how to read it */
	PgPending  *what;
	int			what_cap;
	int			what_head;
	MemoryContext cxt;
	char		incarnation[32];
	char	   *source;			/* this source database (progress.c) */

	/*
	 * Consecutive changes of one kind to one table, sent as one statement
	 * (apply_pg_stmt.c): inserts ('i') and whole-row updates ('u') as a
	 * multi-row upsert, inserts of the checking path ('c') as its run
	 * statement (run_n rows of natts values), deletes by key as one DELETE
	 * ('d': run_n rows of nkeys values).
	 */
	DsRelation *run_rel;
	char		run_kind;
	uint32		run_version;
	int			run_n;
	Size		run_bytes;		/* of its Bind message so far */
	bool		run_full;		/* ended by its bytes (see sendlimit.c) */
	int			run_cap;
	char	  **run_vals;		/* in runcxt */
	DsConflictHit **run_hits;	/* check runs ('c'): a record per row */
	PgIdent		run_ident;		/* the changes of the run */
	MemoryContext runcxt;

	/*
	 * A long run of inserts goes on as COPY (apply_pg_copy.c): copy_rel is
	 * the table whose COPY is open, copy_buf the rows of its open chunk in
	 * COPY text (kept until the target confirmed them), copy_sent how much
	 * of it libpq has.  streak_rows counts the rows of the current run of
	 * inserts into streak_rel sent so far; batch_no numbers the batches.
	 */
	DsRelation *copy_rel;
	StringInfoData copy_buf;
	int			copy_sent;
	StringInfoData table_copy;	/* rows of a table copy not yet sent */
	int			copy_rows;
	MemoryContext copycxt;
	DsRelation *streak_rel;
	int64		streak_rows;
	uint64		batch_no;
	MemoryContext hitcxt;		/* DsConflictHits of the checking path */

	/*
	 * With synchronous_commit off (the default, as for native
	 * subscriptions) a commit returns before the target flushed it.  Each
	 * batch's source end LSN waits here with the target's WAL position
	 * after its commit until the target's flush position passes it; only
	 * then may the source slot be told (durable()).
	 */
	bool		async_commit;
	bool		sync_this_xact; /* a copy: committed synchronously */
	XLogRecPtr *wait_src;		/* ring of source end LSNs */
	XLogRecPtr *wait_tgt;		/* and the target WAL position after each */
	int			wait_cap;
	int			wait_head;
	int			wait_count;
	uint64		wait_pushed;	/* commits pushed, and released, so far */
	uint64		wait_popped;
	XLogRecPtr	durable_src;	/* highest source end LSN durable on target */

	/*
	 * Commits whose Sync has not come back (pg_commit, apply_pg.c), oldest
	 * first: the number of the Sync that ends each, the caller's number of
	 * the batch (worker/batch.c; 0: no batch) and its source end LSN.  The
	 * caller keeps at most DS_MAX_INFLIGHT batches unconfirmed, and returns
	 * to that limit only after sending one more; a copy's commit waits.
	 * Syncs are numbered as they are sent (syncs_sent) and as their results
	 * are read (syncs_read).  last_lsn is the end LSN of the newest batch
	 * sent: the next batch checks that it committed.
	 */
	uint64		syncs_sent;
	uint64		syncs_read;
	struct
	{
		uint64		sync;
		uint64		batch_no;
		XLogRecPtr	lsn;
	}			fly[DS_MAX_INFLIGHT + 2];
	int			fly_head;
	int			fly_count;
	XLogRecPtr	last_lsn;
	bool		have_guarded_stmt;
} PgTarget;

/*
 * COPY runs (apply_pg_copy.c).  Which inserts go into a COPY and the
 * appending of a row are per row, so they sit beside ds_pg_add_to_run in
 * apply_pg_stmt.c.
 */
#define DS_COPY_AFTER_ROWS		256
#define DS_COPY_CHUNK_BYTES		(8 * 1024 * 1024)
#define DS_COPY_SEND_BYTES		(64 * 1024)
#define DS_COPY_MAX_ROW_BYTES	(1024 * 1024)

/* a column's value as text; NULL for SQL NULL */
static inline const char *
ds_pg_colval(LogicalRepTupleData *tup, int i)
{
	if (tup->colstatus[i] == LOGICALREP_COLUMN_NULL)
		return NULL;
	return tup->colvalues[i].data;
}

/* two values as ds_pg_colval gives them, NULLs equal */
static inline bool
ds_pg_same_value(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* apply_pg.c: the function table, connection, progress and batches */
extern void ds_pg_send_progress(PgTarget *pt, Oid relid, XLogRecPtr lsn);

/* apply_pg_pipe.c: commands and batches in flight, their results */
extern void ds_pg_enter_pipeline(PgTarget *pt);
extern void ds_pg_leave_pipeline(PgTarget *pt);
extern void ds_pg_sent_use(PgTarget *pt, int ok, const char *what,
						   PgResultUse use, int expected,
						   DsConflictHit *hit, DsConflictHit **hits);
extern void ds_pg_send_sql(PgTarget *pt, const char *sql, const char *what);
extern void ds_pg_send_sql_use(PgTarget *pt, const char *sql,
							   const char *what, PgResultUse use);
extern void ds_pg_send_prepare(PgTarget *pt, const char *name,
							   const char *sql, const char *what);
extern void ds_pg_send_prepared(PgTarget *pt, DsRelation *rel,
								const char *name, int n,
								const char *const *values, const char *what,
								PgResultUse use, int expected,
								DsConflictHit *hit, DsConflictHit **hits);
extern void ds_pg_send_exec(PgTarget *pt, DsRelation *rel, const char *name,
							int n, const char *const *values,
							const char *what);
extern void ds_pg_send_exec_use(PgTarget *pt, DsRelation *rel,
								const char *name, int n,
								const char *const *values, const char *what,
								PgResultUse use, int expected,
								DsConflictHit *hit);
extern void ds_pg_send_sync(PgTarget *pt);
extern void ds_pg_drain(PgTarget *pt);
extern void ds_pg_flush_and_drain(PgTarget *pt);
extern void ds_pg_wait_all(PgTarget *pt);
extern void ds_pg_wait_push(PgTarget *pt, XLogRecPtr src);
extern void ds_pg_fly_push(PgTarget *pt, uint64 batch_no, XLogRecPtr lsn);
extern bool ds_pg_target_returns_xmax(PgTarget *pt, DsRelation *rel,
									  PgRel *pr);

/* apply_pg.c: the session */
extern void ds_pg_open_session(PgTarget *pt, const char *appname);

/* apply_pg_row.c: one row outside the stream */
extern void ds_pg_put_row(DsApplyTarget *t, const char *target_qname,
						  List *keycols, List *cols, const char *old_key,
						  const char *row);

/* apply_pg_stmt.c: changes, the plain path's statements, runs */
extern void ds_pg_apply(DsApplyTarget *t, DsChange *ch);
extern void ds_pg_truncate(DsApplyTarget *t, List *rels, bool cascade,
						   bool restart_seqs);
extern PgRel *ds_pg_rel(PgTarget *pt, DsRelation *rel);
extern void ds_pg_flush_run(PgTarget *pt);
extern void ds_pg_add_to_run(PgTarget *pt, DsRelation *rel,
							 LogicalRepTupleData *tup, char kind,
							 DsConflictHit *hit);
extern int	ds_pg_run_rows(DsRelation *rel, char kind);
extern void ds_pg_key_values(DsRelation *rel, LogicalRepTupleData *tup,
							 const char **out);
extern bool ds_pg_is_key_att(DsRelation *rel, int att);
extern void ds_pg_append_columns(StringInfo sql, DsRelation *rel,
								 bool keys_only);
extern void ds_pg_append_insert_rows(StringInfo sql, DsRelation *rel,
									 int nrows);
extern bool ds_pg_append_on_conflict_update(StringInfo sql, DsRelation *rel,
											StringInfo differs);

/* apply_pg_copy.c: COPY runs and table copies */
extern void ds_pg_streak_add(PgTarget *pt, DsRelation *rel, int64 n);
extern bool ds_pg_copy_open(PgTarget *pt, DsRelation *rel);
extern void ds_pg_copy_push(PgTarget *pt);
extern void ds_pg_copy_end(PgTarget *pt);
extern void ds_pg_table_copy_begin(DsApplyTarget *t, const char *target_qname,
								   List *colnames);
extern void ds_pg_table_copy_data(DsApplyTarget *t, const char *buf, int len);
extern void ds_pg_table_copy_end(DsApplyTarget *t, Oid relid, XLogRecPtr lsn);

/* apply_pg_check.c: the conflict-checking path */
extern void ds_pg_apply_checked(PgTarget *pt, DsRelation *rel, PgRel *pr,
								DsChange *ch);
extern DsConflictHit *ds_pg_make_hit(PgTarget *pt, DsRelation *rel,
									 DsChange *ch, const char **keyvals,
									 const char **newkeyvals);
extern void ds_pg_flush_check_run(PgTarget *pt, DsRelation *rel, PgRel *pr);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif							/* DATASYNC_APPLY_PG_INT_H */
