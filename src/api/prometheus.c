/*-------------------------------------------------------------------------
 *
 * prometheus.c
 *		datasync.prometheus(): the figures of datasync.status in the
 *		Prometheus text format, with the latency histogram.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/prometheus.c
 *
 * NOTES
 *		The metrics HTTP worker (monitor/httpd.c) serves what this returns
 *		on GET /metrics; it calls it from its own loop, never from inside a
 *		request.  Names follow Prometheus' conventions: the prefix
 *		datasync_, counters end in _total, a pipeline is a label.  The
 *		commit-to-target latency is a real histogram (buckets cumulative,
 *		in seconds) read from the pipeline's slot in shared memory; the rest
 *		comes from datasync.status, so the view, datasync.metrics and
 *		/metrics show the same counters.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "api/apiutil.h"
#include "catalog.h"
#include "shmem.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(datasync_prometheus);

/* a label value: backslash, double quote and newline escaped */
static void
append_label(StringInfo buf, const char *value)
{
	const char *p;

	for (p = value; *p; p++)
	{
		if (*p == '\\' || *p == '"')
			appendStringInfoChar(buf, '\\');
		if (*p == '\n')
		{
			appendStringInfoString(buf, "\\n");
			continue;
		}
		appendStringInfoChar(buf, *p);
	}
}

typedef struct Family
{
	const char *name;
	const char *type;
	const char *help;
	const char *column;			/* of datasync.status */
	const char *op;				/* label op=..., or NULL */
} Family;

static const Family families[] = {
	{"datasync_rows_applied_total", "counter", "Rows applied to the target from the stream, by operation.", "rows_inserted", "insert"},
	{"datasync_rows_applied_total", NULL, NULL, "rows_updated", "update"},
	{"datasync_rows_applied_total", NULL, NULL, "rows_deleted", "delete"},
	{"datasync_rows_copied_total", "counter", "Rows of initial copies and re-syncs.", "rows_copied", NULL},
	{"datasync_transactions_total", "counter", "Source transactions applied.", "transactions", NULL},
	{"datasync_errors_total", "counter", "Errors the pipeline's workers hit.", "errors", NULL},
	{"datasync_conflicts_total", "counter", "Conflicts found, whatever the strategy.", "conflicts", NULL},
	{"datasync_rejected_total", "counter", "Changes validation rejected.", "rejected", NULL},
	{"datasync_open_conflicts", "gauge", "Conflicts waiting for resolve_conflict.", "open_conflicts", NULL},
	{"datasync_queue_size", "gauge", "Rows waiting in the retry queue.", "queue_size", NULL},
	{"datasync_sync_throughput", "gauge", "Rows applied a second over the last minute.", "throughput_rps", NULL},
	{"datasync_lag_bytes", "gauge", "WAL bytes the pipeline's slot has not confirmed.", "lag_bytes", NULL},
	{"datasync_lag_seconds", "gauge", "Age of the oldest change received and not yet on the target.", "lag_ms / 1000.0", NULL},
	{"datasync_slot_retained_wal_bytes", "gauge", "WAL the pipeline's slot keeps on the source.", "retained_wal_bytes", NULL},
};

/* the histogram of a pipeline's slot, if it has one */
static void
append_histogram(StringInfo buf, const char *pipeline, int64 id, int64 incarnation)
{
	DsPipelineKey key;
	DsPipelineSlot *slot;
	uint64		counts[DS_LAT_BUCKETS];
	uint64		sum_us;
	uint64		cum = 0;
	int			b;

	ds_pipeline_key(&key, id, incarnation);
	slot = ds_slot_find(&key);
	if (slot == NULL)
		return;
	for (b = 0; b < DS_LAT_BUCKETS; b++)
		counts[b] = pg_atomic_read_u64(&slot->latency.all[b]);
	sum_us = pg_atomic_read_u64(&slot->latency.sum_us);
	for (b = 0; b < DS_LAT_BUCKETS; b++)
	{
		cum += counts[b];
		appendStringInfoString(buf, "datasync_commit_to_target_latency_seconds_bucket{pipeline=\"");
		append_label(buf, pipeline);
		if (b < DS_LAT_BUCKETS - 1)
			appendStringInfo(buf, "\",le=\"%g\"} " UINT64_FORMAT "\n", DsLatencyBounds[b] / 1000.0, cum);
		else
			appendStringInfo(buf, "\",le=\"+Inf\"} " UINT64_FORMAT "\n", cum);
	}
	appendStringInfoString(buf, "datasync_commit_to_target_latency_seconds_sum{pipeline=\"");
	append_label(buf, pipeline);
	appendStringInfo(buf, "\"} %.6f\n", sum_us / 1e6);
	appendStringInfoString(buf, "datasync_commit_to_target_latency_seconds_count{pipeline=\"");
	append_label(buf, pipeline);
	appendStringInfo(buf, "\"} " UINT64_FORMAT "\n", cum);
}

/*
 * prometheus(): every pipeline of this database, in the Prometheus text
 * exposition format (version 0.0.4).
 */
Datum
datasync_prometheus(PG_FUNCTION_ARGS)
{
	StringInfoData sql;
	StringInfoData buf;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	size_t		f;
	DsApiCall	call;

	(void) ds_api_enter(fcinfo, &call);
	initStringInfo(&buf);		/* outlives SPI */
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT s.name, p.id, p.incarnation, s.state");
	for (f = 0; f < lengthof(families); f++)
		appendStringInfo(&sql, ", (%s)::pg_catalog.float8", families[f].column);
	appendStringInfoString(&sql, " FROM datasync.status s JOIN datasync._pipelines p ON p.name = s.name ORDER BY s.name");

	SPI_connect();
	ds_spi_read(sql.data, 0, NULL, NULL, NULL);
	tt = SPI_tuptable;
	n = SPI_processed;

	appendStringInfoString(&buf, "# HELP datasync_up 1 for each pipeline of this database, its state as a label.\n"
						   "# TYPE datasync_up gauge\n");
	for (i = 0; i < n; i++)
	{
		appendStringInfoString(&buf, "datasync_up{pipeline=\"");
		append_label(&buf, SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
		appendStringInfoString(&buf, "\",state=\"");
		append_label(&buf, SPI_getvalue(tt->vals[i], tt->tupdesc, 4));
		appendStringInfoString(&buf, "\"} 1\n");
	}
	for (f = 0; f < lengthof(families); f++)
	{
		const Family *fam = &families[f];

		if (fam->type)
			appendStringInfo(&buf, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		v = SPI_getbinval(tt->vals[i], tt->tupdesc, 5 + (int) f, &isnull);

			if (isnull)
				continue;
			appendStringInfo(&buf, "%s{pipeline=\"", fam->name);
			append_label(&buf, SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
			if (fam->op)
				appendStringInfo(&buf, "\",op=\"%s", fam->op);
			appendStringInfo(&buf, "\"} %.17g\n", DatumGetFloat8(v));
		}
	}
	appendStringInfoString(&buf, "# HELP datasync_commit_to_target_latency_seconds From the commit on the source to the commit on the target, per source transaction.\n"
						   "# TYPE datasync_commit_to_target_latency_seconds histogram\n");
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		append_histogram(&buf, SPI_getvalue(tt->vals[i], tt->tupdesc, 1),
						 DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull)),
						 DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull)));
	}
	SPI_finish();
	ds_api_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
