/*-------------------------------------------------------------------------
 *
 * pgconn.h
 *		libpq inside a backend: interruptible connect, exec and waits.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/pgconn.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_PGCONN_H
#define DATASYNC_PGCONN_H

#include "libpq-fe.h"

/* what a connection is for; names the peer in error messages */
typedef enum DsConnKind
{
	DS_CONN_TARGET,
	DS_CONN_SOURCE
} DsConnKind;

extern PGconn *ds_pq_connect(const char *conninfo, const char *password,
							 bool replication, const char *appname,
							 DsConnKind kind);
extern void ds_pq_finish(PGconn *conn);
extern PGresult *ds_pq_exec(PGconn *conn, const char *sql, DsConnKind kind);
extern PGresult *ds_pq_exec_params(PGconn *conn, const char *sql, int nparams,
								   const char *const *values, DsConnKind kind);
extern void ds_pq_exec_ok(PGconn *conn, const char *sql, DsConnKind kind);
extern PGresult *ds_pq_get_result(PGconn *conn, DsConnKind kind);
extern void ds_pq_flush(PGconn *conn, DsConnKind kind);
extern void ds_pq_wait(PGconn *conn, int events, long timeout_ms);
extern void ds_pq_report(PGconn *conn, PGresult *res, DsConnKind kind,
						 const char *what) pg_attribute_noreturn();
extern char *ds_mask_conninfo(const char *conninfo);
extern void ds_pq_check_password_used(PGconn *conn, Oid owner, const char *target,
									  const char *dsn);
extern char *ds_source_conninfo(void);

/* called at least once a second while a worker waits on a connection */
extern void (*ds_pq_wait_hook) (void);

#endif							/* DATASYNC_PGCONN_H */
