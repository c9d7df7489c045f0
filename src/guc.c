/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Every configuration parameter of datasync.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/guc.c
 *
 * NOTES
 *		Only what sizes shared memory or picks the launcher's database is
 *		PGC_POSTMASTER; the rest can change on reload.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "utils/guc.h"

#include "sendlimit.h"

char	   *datasync_database = NULL;
int			datasync_max_pipelines = 16;
int			datasync_naptime = 1000;
char	   *datasync_source_conninfo = NULL;

void
ds_guc_init(void)
{
	DefineCustomStringVariable("datasync.database",
							   "Database in which the datasync launcher runs (where the extension is installed).",
							   NULL,
							   &datasync_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("datasync.max_pipelines",
							"Maximum number of pipelines that can run at the same time.",
							"Each running pipeline uses a background worker, a WAL sender and a replication slot.",
							&datasync_max_pipelines,
							16, 1, 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("datasync.naptime",
							"How often the launcher checks pipelines when nothing wakes it.",
							NULL,
							&datasync_naptime,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("datasync.source_conninfo",
							   "Extra libpq connection options sync workers use to reach this server.",
							   "By default workers connect over this server's first Unix socket (or 127.0.0.1) as the bootstrap superuser.",
							   &datasync_source_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("datasync.statement_max_bytes",
							"Largest statement a sync worker sends to a PostgreSQL target (developer option).",
							"Multi-row statements carry at most 16MB or this, whichever is less. A change that needs a larger statement stops its pipeline. Lower it only to test those limits.",
							&datasync_statement_max_bytes,
							(int) DS_PG_MESSAGE_LIMIT, 8192, (int) DS_PG_MESSAGE_LIMIT,
							PGC_SIGHUP,
							GUC_UNIT_BYTE | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("datasync.http_listen",
							   "IPv4 address the metrics worker listens on (GET /metrics, /health, /).",
							   NULL,
							   &datasync_http_listen,
							   "127.0.0.1",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("datasync.http_port",
							"TCP port of the metrics worker; 0 turns it off.",
							NULL,
							&datasync_http_port,
							9090, 0, 65535,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("datasync");
}
