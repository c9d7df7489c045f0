/*-------------------------------------------------------------------------
 *
 * sendlimit.h
 *		How much one message to a PostgreSQL target may carry, and how a
 *		change that cannot fit is reported.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/sendlimit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_SENDLIMIT_H
#define DATASYNC_SENDLIMIT_H

#include "utils/memutils.h"
#include "replication/logicalproto.h"

#include "target/apply.h"

/*
 * The most a PostgreSQL server accepts in one protocol message (Bind,
 * Query, CopyData): PQ_LARGE_MESSAGE_LIMIT of libpq/libpq.h (a header an
 * extension cannot include without GSSAPI's), counted from the message's
 * length word on.  A larger one makes the server drop the connection.
 */
#define DS_PG_MESSAGE_LIMIT		((Size) (MaxAllocSize - 1))

/*
 * The most one multi-row statement (a run of up to 64 rows) carries; rows
 * that do not fit go in a shorter run, a row over it alone.  Lowered by
 * datasync.statement_max_bytes.
 */
#define DS_RUN_MAX_BYTES		(16 * 1024 * 1024)

/* the most one target transaction (batch) carries: pipeline option default */
#define DS_BATCH_MAX_BYTES_DEFAULT	(64 * 1024 * 1024)

/* statements queued for the target between two flushes, in bytes */
#define DS_FLUSH_AFTER_BYTES	(8 * 1024 * 1024)

/* guc.c: developer option, DS_PG_MESSAGE_LIMIT by default */
extern int	datasync_statement_max_bytes;

extern Size ds_statement_limit(void);
extern Size ds_run_limit(void);
extern Size ds_tuple_bytes(const LogicalRepTupleData *tup);
extern Size ds_bind_bytes(const char *stmt, int nparams, const char *const *values);
extern void ds_statement_too_large(const DsPipelineConfig *cfg, const DsRelation *rel,
								   const DsChange *ch, Size bytes) pg_attribute_noreturn();

#endif							/* DATASYNC_SENDLIMIT_H */
