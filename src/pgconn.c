/*-------------------------------------------------------------------------
 *
 * pgconn.c
 *		libpq inside a backend: interruptible connect, exec and waits.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/pgconn.c
 *
 * NOTES
 *		Every wait here is on the process latch and the connection's socket,
 *		so SIGTERM, query cancel and postmaster death are honoured while a
 *		remote server is slow.  Connections are put in non-blocking mode
 *		after connecting; ds_pq_flush drives the output buffer out.
 *
 *		Errors from a remote server keep its SQLSTATE (so retry.c can tell
 *		transient from permanent ones); a connection that breaks without
 *		one is reported as ERRCODE_CONNECTION_FAILURE.  No message built
 *		here contains a password: DSNs are shown through ds_mask_conninfo.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "pgconn.h"

#if PG_VERSION_NUM < 150013
#error "datasync needs the PostgreSQL 15.13 or later server headers (libpq-be-fe-helpers.h)"
#endif

void		(*ds_pq_wait_hook) (void) = NULL;

static const char *
peer_name(DsConnKind kind)
{
	return kind == DS_CONN_TARGET ? "target" : "source";
}

/*
 * Connect without blocking the process.  conninfo is a libpq conninfo
 * string or URI; password, when not NULL, overrides any in it.  For the
 * replication connection the session is pinned the way the native apply
 * worker pins it, so the text values pgoutput sends read back the same.
 */
PGconn *
ds_pq_connect(const char *conninfo, const char *password, bool replication,
			  const char *appname, DsConnKind kind)
{
	const char *keys[10];
	const char *vals[10];
	int			n = 0;
	PGconn	   *conn;

	/* defaults the DSN may override (it is expanded after them) */
	keys[n] = "connect_timeout";
	vals[n++] = "30";
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "dbname";
	vals[n++] = conninfo;
	if (password)
	{
		keys[n] = "password";
		vals[n++] = password;
	}
	if (replication)
	{
		keys[n] = "replication";
		vals[n++] = "database";
	}
	/* what the text format of values depends on: ours, always */
	keys[n] = "fallback_application_name";
	vals[n++] = appname;
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = "options";
	/*
	 * The replication connection logs in to this server as a superuser:
	 * pin its search_path over any the database owner set (trust.c).
	 */
	vals[n++] = replication ?
		"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c lc_monetary=C -c timezone=UTC -c bytea_output=hex -c search_path=pg_catalog,pg_temp" :
		"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c lc_monetary=C -c timezone=UTC -c bytea_output=hex";
	keys[n] = NULL;
	vals[n] = NULL;

	conn = libpqsrv_connect_params(keys, vals, true, PG_WAIT_EXTENSION);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = pchomp(conn ? PQerrorMessage(conn) : "out of memory");

		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the %s: %s", peer_name(kind), msg)));
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		libpqsrv_disconnect(conn);
		elog(ERROR, "could not put the %s connection in non-blocking mode", peer_name(kind));
	}
	return conn;
}

void
ds_pq_finish(PGconn *conn)
{
	if (conn)
		libpqsrv_disconnect(conn);
}

/*
 * Wait until the socket is ready for "events" (WL_SOCKET_*), the latch is
 * set, or timeout_ms passes (-1: no timeout).  Interrupts are processed.
 * The wait hook runs at least once a second, so a worker keeps its
 * replication connection alive while a target is slow.
 */
void
ds_pq_wait(PGconn *conn, int events, long timeout_ms)
{
	long		step = 1000;
	int			rc;

	if (timeout_ms >= 0 && timeout_ms < step)
		step = timeout_ms;
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | events,
						   PQsocket(conn), step, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ds_pq_wait_hook)
		ds_pq_wait_hook();
}

/* Raise the error of a failed command or a broken connection. */
void
ds_pq_report(PGconn *conn, PGresult *res, DsConnKind kind, const char *what)
{
	char	   *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char	   *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char	   *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char	   *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;

	/* copy out of libpq memory before it is freed */
	primary = pstrdup(primary ? primary : pchomp(PQerrorMessage(conn)));
	detail = detail ? pstrdup(detail) : NULL;
	hint = hint ? pstrdup(hint) : NULL;
	if (sqlstate && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
							 sqlstate[3], sqlstate[4]);
	if (primary[0] == '\0')
		primary = pstrdup("connection lost");
	if (res)
		PQclear(res);

	ereport(ERROR,
			(errcode(code),
			 errmsg("%s on the %s failed: %s", what, peer_name(kind), primary),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/* Push the output buffer out, waiting as needed (consuming input meanwhile). */
void
ds_pq_flush(PGconn *conn, DsConnKind kind)
{
	for (;;)
	{
		int			rc = PQflush(conn);

		if (rc == 0)
			return;
		if (rc < 0)
			ds_pq_report(conn, NULL, kind, "sending");
		ds_pq_wait(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, -1);
		if (PQconsumeInput(conn) == 0)
			ds_pq_report(conn, NULL, kind, "receiving");
	}
}

/* Next result of the command in progress (NULL when it is complete). */
PGresult *
ds_pq_get_result(PGconn *conn, DsConnKind kind)
{
	while (PQisBusy(conn))
	{
		ds_pq_wait(conn, WL_SOCKET_READABLE, -1);
		if (PQconsumeInput(conn) == 0)
			ds_pq_report(conn, NULL, kind, "receiving");
	}
	return PQgetResult(conn);
}

/*
 * Run one command (simple protocol; works on replication connections) and
 * return its last result.  Errors are raised.  The caller PQclears.
 */
PGresult *
ds_pq_exec(PGconn *conn, const char *sql, DsConnKind kind)
{
	PGresult   *last = NULL;
	PGresult   *res;

	if (!PQsendQuery(conn, sql))
		ds_pq_report(conn, NULL, kind, "sending a command");
	ds_pq_flush(conn, kind);
	while ((res = ds_pq_get_result(conn, kind)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (last)
			PQclear(last);
		last = res;
		if (st == PGRES_COPY_BOTH || st == PGRES_COPY_IN || st == PGRES_COPY_OUT)
			break;
	}
	if (last == NULL)
		ds_pq_report(conn, NULL, kind, "a command");
	switch (PQresultStatus(last))
	{
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_COPY_BOTH:
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
			return last;
		default:
			ds_pq_report(conn, last, kind, "a command");
	}
}

/* Like ds_pq_exec, with text parameters (extended protocol). */
PGresult *
ds_pq_exec_params(PGconn *conn, const char *sql, int nparams,
				  const char *const *values, DsConnKind kind)
{
	PGresult   *last = NULL;
	PGresult   *res;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0))
		ds_pq_report(conn, NULL, kind, "sending a command");
	ds_pq_flush(conn, kind);
	while ((res = ds_pq_get_result(conn, kind)) != NULL)
	{
		if (last)
			PQclear(last);
		last = res;
	}
	if (last == NULL)
		ds_pq_report(conn, NULL, kind, "a command");
	if (PQresultStatus(last) != PGRES_COMMAND_OK &&
		PQresultStatus(last) != PGRES_TUPLES_OK)
		ds_pq_report(conn, last, kind, "a command");
	return last;
}

void
ds_pq_exec_ok(PGconn *conn, const char *sql, DsConnKind kind)
{
	PQclear(ds_pq_exec(conn, sql, kind));
}

/* does the conninfo string itself hold a password? */
static bool
conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	PQconninfoOption *o;
	bool		result = false;

	if (opts == NULL)
		return false;
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			result = true;
	PQconninfoFree(opts);
	return result;
}

/*
 * A target set up by a role that is not a superuser must authenticate
 * with the password written in its DSN, as dblink requires: otherwise the
 * server's own credentials (trust, peer, its passfile) would let that role
 * reach what it could not reach itself.  Closes the connection and raises
 * when that is not so.
 */
void
ds_pq_check_password_used(PGconn *conn, Oid owner, const char *target,
						  const char *dsn)
{
	if (superuser_arg(owner) ||
		(PQconnectionUsedPassword(conn) && conninfo_has_password(dsn)))
		return;
	libpqsrv_disconnect(conn);
	ereport(ERROR,
			(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
			 errmsg("password is required to connect to target \"%s\"", target),
			 errdetail("The target was set up by a role that is not a superuser; such a target must authenticate with the password in its DSN."),
			 errhint("Put the password in the DSN and require password authentication on the target, or have a superuser set up the target.")));
}

/* Append a conninfo value, quoted the way libpq reads it back. */
static void
append_conn_value(StringInfo buf, const char *val)
{
	const char *p;

	if (val[0] != '\0' && strpbrk(val, " \t\n\r\\'") == NULL)
	{
		appendStringInfoString(buf, val);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (p = val; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * A conninfo string or URI as it may be shown: keyword=value pairs with
 * any password replaced by ********.  A string libpq cannot parse is
 * shown as ******** whole, since we cannot tell where a secret sits.
 */
char *
ds_mask_conninfo(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	StringInfoData buf;
	char	   *err = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return pstrdup("********");
	}
	initStringInfo(&buf);
	for (o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		appendStringInfo(&buf, "%s=", o->keyword);
		if (strstr(o->keyword, "password") != NULL)	/* also sslpassword */
		{
			appendStringInfoString(&buf, "********");
			continue;
		}
		append_conn_value(&buf, o->val);
	}
	PQconninfoFree(opts);
	return buf.data;
}

/*
 * How a sync worker reaches its own server: the first Unix socket
 * directory (or 127.0.0.1) and this server's port, this database, the
 * bootstrap superuser; datasync.source_conninfo is appended and wins.
 */
char *
ds_source_conninfo(void)
{
	StringInfoData buf;
	char	   *host = NULL;
	bool		started = ds_xact_start();
	char	   *user = GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);
	char	   *dbname = get_database_name(MyDatabaseId);

	ds_xact_commit(started);

	if (Unix_socket_directories && Unix_socket_directories[0] != '\0')
	{
		char	   *dirs = pstrdup(Unix_socket_directories);
		char	   *comma = strchr(dirs, ',');

		if (comma)
			*comma = '\0';
		host = pstrdup(dirs);
		/* trim blanks */
		while (*host == ' ')
			host++;
		while (strlen(host) > 0 && host[strlen(host) - 1] == ' ')
			host[strlen(host) - 1] = '\0';
	}
	if (host == NULL || host[0] == '\0')
		host = "127.0.0.1";

	initStringInfo(&buf);
	appendStringInfoString(&buf, "host=");
	append_conn_value(&buf, host);
	appendStringInfo(&buf, " port=%d dbname=", PostPortNumber);
	append_conn_value(&buf, dbname);
	appendStringInfoString(&buf, " user=");
	append_conn_value(&buf, user);
	if (datasync_source_conninfo && datasync_source_conninfo[0] != '\0')
		appendStringInfo(&buf, " %s", datasync_source_conninfo);
	return buf.data;
}
