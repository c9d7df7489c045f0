/*-------------------------------------------------------------------------
 *
 * httpd.c
 *		The metrics worker: GET /metrics, /health and / over HTTP.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/monitor/httpd.c
 *
 * NOTES
 *		One background worker, started with the server when
 *		datasync.http_port is not 0, connected to datasync.database.  It
 *		runs libmicrohttpd in external-epoll mode on this process's only
 *		thread: the worker waits on its latch and libmicrohttpd's epoll
 *		descriptor, then lets libmicrohttpd handle what is ready
 *		(MHD_run).  The request handler runs inside MHD_run and so touches
 *		no PostgreSQL function: it copies one of three bodies that the loop
 *		builds once a second, between MHD_run calls, with SQL in a
 *		transaction of its own (datasync.prometheus(), datasync.health(),
 *		datasync.status).  A failure there (the extension not installed
 *		yet, say) is logged and answered as 503 until the next refresh
 *		succeeds.
 *
 *		libmicrohttpd bounds what a client can hold: at most
 *		DS_HTTP_MAX_CONNECTIONS connections, each closed after
 *		DS_HTTP_TIMEOUT_S seconds of silence and given
 *		DS_HTTP_CONNECTION_MEMORY bytes to read a request into (a longer
 *		request line or header is answered 414 or 431 by libmicrohttpd).
 *		Only GET and HEAD are served (405 otherwise), and only the three
 *		paths (404 otherwise).
 *
 *		A port that cannot be bound (taken by another process) is logged
 *		as a WARNING and tried again every DS_HTTP_RETRY_S seconds; the
 *		server and the pipelines go on.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "trust.h"

#define DS_HTTP_MAX_CONNECTIONS 64
#define DS_HTTP_TIMEOUT_S 5
#define DS_HTTP_CONNECTION_MEMORY (32 * 1024)
#define DS_HTTP_RETRY_S 10
#define DS_HTTP_REFRESH_MS 1000

char	   *datasync_http_listen = NULL;
int			datasync_http_port = 9090;

/* what the handler serves: built by the loop, read by the handler */
typedef struct Body
{
	char	   *data;			/* malloc'd */
	size_t		len;
	unsigned int status;		/* HTTP status */
	const char *type;			/* Content-Type */
} Body;

static Body metrics_body = {NULL, 0, 503, "text/plain; charset=utf-8"};
static Body health_body = {NULL, 0, 503, "application/json"};
static Body page_body = {NULL, 0, 503, "text/html; charset=utf-8"};

static void
body_set(Body *b, const char *data, size_t len, unsigned int status)
{
	char	   *copy = malloc(len + 1);

	if (copy == NULL)
		return;					/* keep the old one */
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(b->data);
	b->data = copy;
	b->len = len;
	b->status = status;
}

/*
 * The request handler: no PostgreSQL function, no ereport, no palloc (it
 * runs inside MHD_run).
 */
static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version, const char *upload_data,
			   size_t *upload_data_size, void **con_cls)
{
	static int	first_call;
	static const char not_found[] = "not found\n";
	static const char starting[] = "not ready yet: the worker has not read the figures\n";
	static const char not_allowed[] = "only GET and HEAD\n";
	struct MHD_Response *resp;
	const Body *b = NULL;
	enum MHD_Result ret;
	unsigned int status;

	/* the first call has the headers only; answer on the second */
	if (*con_cls == NULL)
	{
		*con_cls = &first_call;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
	{
		/* a body is read and dropped; the answer comes after it */
		if (*upload_data_size != 0)
		{
			*upload_data_size = 0;
			return MHD_YES;
		}
		resp = MHD_create_response_from_buffer(sizeof(not_allowed) - 1, (void *) not_allowed,
											   MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	*upload_data_size = 0;
	if (strcmp(url, "/metrics") == 0)
		b = &metrics_body;
	else if (strcmp(url, "/health") == 0)
		b = &health_body;
	else if (strcmp(url, "/") == 0)
		b = &page_body;

	if (b == NULL)
	{
		resp = MHD_create_response_from_buffer(sizeof(not_found) - 1, (void *) not_found,
											   MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	}
	else if (b->data == NULL)
	{
		resp = MHD_create_response_from_buffer(sizeof(starting) - 1, (void *) starting,
											   MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	else
	{
		resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_COPY);
		status = b->status;
	}
	if (resp == NULL)
		return MHD_NO;
	if (b != NULL && b->data != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, b->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* the first value of the one row of a query run in the refresh, or NULL */
static char *
query_value(const char *sql)
{
	ds_spi_read(sql, 0, NULL, NULL, NULL);
	return SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
}

/*
 * Build the three bodies with SQL, in a transaction of our own, outside
 * MHD_run.  On an error the bodies say so (503) until the next refresh.
 */
static bool refresh_failed = false;	/* logged once until it works again */

static void
refresh_bodies(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		char	   *metrics;
		char	   *health;
		char	   *status;
		char	   *page;

		SPI_connect();
		metrics = query_value("SELECT datasync.prometheus()");
		/* the checks once, their document and its worst status */
		health = query_value("SELECT h::text, h->>'status' FROM datasync.health() h");
		status = health ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) : NULL;
		page = query_value("SELECT datasync._status_page()");
		if (metrics)
			body_set(&metrics_body, metrics, strlen(metrics), MHD_HTTP_OK);
		if (health)
			body_set(&health_body, health, strlen(health),
					 status && strcmp(status, "critical") == 0 ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK);
		if (page)
			body_set(&page_body, page, strlen(page), MHD_HTTP_OK);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (refresh_failed)
			ereport(LOG, (errmsg("datasync metrics worker reads the figures again")));
		refresh_failed = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		static const char down[] = "{\"status\": \"critical\", \"error\": \"datasync cannot read its catalog; see the server log\"}";

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (!refresh_failed)
			ereport(LOG,
					(errmsg("datasync metrics worker could not read the figures: %s", edata->message),
					 errhint("It answers 503 until it can; is the extension installed in database \"%s\"?",
							 datasync_database)));
		refresh_failed = true;
		FreeErrorData(edata);
		body_set(&health_body, down, sizeof(down) - 1, MHD_HTTP_SERVICE_UNAVAILABLE);
		metrics_body.status = MHD_HTTP_SERVICE_UNAVAILABLE;
		page_body.status = MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	PG_END_TRY();
	pgstat_report_stat(false);
}

static struct MHD_Daemon *
start_daemon(void)
{
	struct sockaddr_in addr;
	struct MHD_Daemon *d;

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16) datasync_http_port);
	if (inet_pton(AF_INET, datasync_http_listen, &addr.sin_addr) != 1)
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("datasync.http_listen \"%s\" is not an IPv4 address", datasync_http_listen)));
	d = MHD_start_daemon(MHD_USE_EPOLL, (uint16) datasync_http_port, NULL, NULL,
						 handle_request, NULL,
						 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) DS_HTTP_MAX_CONNECTIONS,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) DS_HTTP_TIMEOUT_S,
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) DS_HTTP_CONNECTION_MEMORY,
						 MHD_OPTION_END);
	if (d == NULL)
		ereport(WARNING,
				(errmsg("datasync metrics worker could not listen on %s:%d; trying again in %d s",
						datasync_http_listen, datasync_http_port, DS_HTTP_RETRY_S),
				 errhint("Free the port or set datasync.http_port (0 turns the worker off) and restart the server.")));
	return d;
}

void
DatasyncHttpdMain(Datum main_arg)
{
	struct MHD_Daemon *d = NULL;
	TimestampTz last_refresh = 0;
	TimestampTz last_try = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(datasync_database, NULL, 0);
	ds_pin_search_path();
	pgstat_report_appname("datasync metrics");

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = DS_HTTP_REFRESH_MS;
		int			events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
		pgsocket	fd = PGINVALID_SOCKET;
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		int			rc;

		if (d == NULL && TimestampDifferenceExceeds(last_try, now, DS_HTTP_RETRY_S * 1000))
		{
			last_try = now;
			d = start_daemon();
		}
		if (TimestampDifferenceExceeds(last_refresh, now, DS_HTTP_REFRESH_MS))
		{
			refresh_bodies();
			last_refresh = now;
		}
		if (d != NULL)
		{
			const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);

			if (info)
			{
				fd = info->epoll_fd;
				events |= WL_SOCKET_READABLE;
			}
			if (MHD_get_timeout(d, &mhd_timeout) == MHD_YES && mhd_timeout < (MHD_UNSIGNED_LONG_LONG) timeout)
				timeout = (long) mhd_timeout;
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		rc = WaitLatchOrSocket(MyLatch, events, fd, timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (d != NULL)
			MHD_run(d);
	}
}

/* Register the metrics worker, unless datasync.http_port is 0. */
void
ds_httpd_register(void)
{
	BackgroundWorker bgw;

	if (datasync_http_port == 0)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "datasync");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "DatasyncHttpdMain");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "datasync metrics");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "datasync metrics");
	bgw.bgw_restart_time = 10;
	RegisterBackgroundWorker(&bgw);
}
