/*-------------------------------------------------------------------------
 *
 * capacity.c
 *		Whether this server can carry one more pipeline: replication slots,
 *		WAL senders and background worker slots.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/capacity.c
 *
 * NOTES
 *		Each pipeline keeps a replication slot for its whole life (and a
 *		second, temporary one while it copies a table added or resynced
 *		later), a WAL sender while its worker streams (always for a
 *		real-time pipeline, during runs for the others) and a background
 *		worker slot; the launcher takes one worker slot more.  A pipeline
 *		the server cannot carry would sit in "retrying" for ever, so
 *		create_pipeline asks first: no replication slot left is an error
 *		(53400); too few WAL senders or worker slots, or no room for the
 *		copy slot, is a warning, since they are shared with what else runs
 *		and may be free by the time they are needed.
 *
 *		A pipeline's slot is created by its worker after create_pipeline
 *		commits, so the slots in use are counted as the slots that belong
 *		to no pipeline plus one per pipeline.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "replication/walsender.h"

#include "api/apiutil.h"
#include "api/capacity.h"

/*
 * A count, read with a snapshot of its own (not read_only): the caller
 * holds the lock that serializes creators and must count what committed
 * before it got it.
 */
static int64
count_of(const char *sql)
{
	bool		isnull;

	ds_spi_exec(sql, 0, NULL, NULL, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Check before pipeline "name" (realtime or not) is created; the caller is
 * connected to SPI and runs as the extension owner.
 */
void
ds_check_capacity(const char *name, bool realtime)
{
	int64		pipelines = count_of("SELECT pg_catalog.count(*) FROM datasync._pipelines");
	int64		streaming = count_of("SELECT pg_catalog.count(*) FROM datasync._pipelines"
									 " WHERE mode = 'realtime' AND enabled AND error IS NULL");
	int64		other_slots = count_of("SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots s"
									   " WHERE NOT s.temporary AND NOT EXISTS"
									   " (SELECT 1 FROM datasync._pipelines p WHERE p.slot_name = s.slot_name)");
	int64		other_senders = count_of("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity"
										 " WHERE backend_type = 'walsender'"
										 " AND application_name NOT LIKE 'datasync %'");
	int64		other_workers = count_of("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity"
										 " WHERE backend_type NOT IN ('client backend', 'autovacuum launcher',"
										 " 'autovacuum worker', 'background writer', 'checkpointer', 'walwriter',"
										 " 'walsender', 'walreceiver', 'startup', 'archiver', 'standalone backend',"
										 " 'datasync launcher', 'datasync worker')");
	int64		slots = other_slots + pipelines + 1;
	int64		senders = other_senders + streaming + (realtime ? 1 : 0);
	int64		workers = other_workers + 1 + pipelines + 1;

	if (slots > max_replication_slots)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot create pipeline \"%s\": no replication slot left", name),
				 errdetail("max_replication_slots is %d; %lld slots belong to other uses and %lld to datasync's pipelines.",
						   max_replication_slots, (long long) other_slots, (long long) pipelines),
				 errhint("Raise max_replication_slots (each pipeline keeps one, and one more while it copies a table added later) and restart the server, or drop a slot that is not used.")));
	if (slots + 1 > max_replication_slots)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("pipeline \"%s\" takes the last replication slot", name),
				 errdetail("add_table and resync_table copy under a temporary slot of their own: with max_replication_slots = %d they will wait in state \"retrying\" until one is free.",
						   max_replication_slots),
				 errhint("Raise max_replication_slots and restart the server.")));
	if (senders > max_wal_senders)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("max_wal_senders (%d) may be too low for pipeline \"%s\"", max_wal_senders, name),
				 errdetail("%lld WAL senders serve other clients and %lld real-time pipelines stream all the time; this pipeline's worker needs one more while it streams, and waits in state \"retrying\" until one is free.",
						   (long long) other_senders, (long long) streaming),
				 errhint("Raise max_wal_senders and restart the server.")));
	if (workers > max_worker_processes)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("max_worker_processes (%d) may be too low for pipeline \"%s\"", max_worker_processes, name),
				 errdetail("%lld background workers run for other uses; datasync needs one for its launcher and one for each of its %lld pipelines when they run at once.",
						   (long long) other_workers, (long long) pipelines + 1),
				 errhint("Raise max_worker_processes and restart the server.")));
}
