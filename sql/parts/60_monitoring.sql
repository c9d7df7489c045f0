/* ---------------------------------------------------------------------
 * Monitoring
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION datasync._worker_stats(
    OUT pipeline_id bigint, OUT pid integer, OUT state text,
    OUT applied_lsn pg_lsn, OUT last_sync_at timestamptz,
    OUT rows_inserted bigint, OUT rows_updated bigint, OUT rows_deleted bigint,
    OUT transactions bigint, OUT errors bigint, OUT retry_attempt integer,
    OUT next_attempt_at timestamptz, OUT last_error text, OUT conflicts bigint,
    OUT rows_copied bigint, OUT rejected bigint, OUT queue_size bigint,
    OUT lag_ms double precision, OUT throughput_rps double precision,
    OUT latency_p50_ms double precision, OUT latency_p99_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'datasync_worker_stats'
LANGUAGE C STRICT VOLATILE;

/*
 * One row a pipeline.  _worker_stats() shows only workers of this
 * database's pipelines (same id and incarnation), and the slot joined is
 * this database's (another database may have one of the same name: a
 * restored dump).  last_error is withheld from roles that may not read
 * every table of the pipeline (35_row_values).
 */
CREATE VIEW datasync.status AS
    SELECT p.name,
           p.mode,
           CASE WHEN NOT p.enabled THEN 'paused'
                WHEN p.error IS NOT NULL THEN 'error'
                ELSE coalesce(w.state, 'idle') END AS state,
           t.name AS target,
           CASE WHEN s.confirmed_flush_lsn IS NOT NULL
                THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint END AS lag_bytes,
           w.lag_ms,
           w.applied_lsn AS last_applied_lsn,
           w.last_sync_at,
           coalesce(w.rows_inserted + w.rows_updated + w.rows_deleted, 0) AS rows_applied,
           coalesce(w.rows_inserted, 0) AS rows_inserted,
           coalesce(w.rows_updated, 0) AS rows_updated,
           coalesce(w.rows_deleted, 0) AS rows_deleted,
           coalesce(w.rows_copied, 0) AS rows_copied,
           coalesce(w.transactions, 0) AS transactions,
           w.throughput_rps,
           w.latency_p50_ms,
           w.latency_p99_ms,
           coalesce(w.errors, 0) AS errors,
           coalesce(w.conflicts, 0) AS conflicts,
           (SELECT pg_catalog.count(*) FROM datasync.conflicts c
             WHERE c.pipeline_id = p.id AND c.status = 'open') AS open_conflicts,
           coalesce(w.rejected, 0) AS rejected,
           coalesce(w.queue_size, 0) AS queue_size,
           CASE WHEN s.restart_lsn IS NOT NULL
                THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint END AS retained_wal_bytes,
           s.wal_status,
           w.retry_attempt,
           w.next_attempt_at,
           datasync._error_for_reader(p.id, CASE WHEN p.error IS NOT NULL THEN coalesce(pe.error, p.error)
                                                 ELSE w.last_error END) AS last_error,
           w.pid AS worker_pid
      FROM datasync._pipelines p
      JOIN datasync._targets t ON t.id = p.target_id
      LEFT JOIN datasync._pipeline_errors pe ON pe.pipeline_id = p.id
      LEFT JOIN datasync._worker_stats() w ON w.pipeline_id = p.id
      LEFT JOIN pg_catalog.pg_replication_slots s
             ON s.slot_name = p.slot_name AND s.database = pg_catalog.current_database();
COMMENT ON VIEW datasync.status IS 'one row a pipeline: state, lag, progress, counters, latency, the slot''s WAL, last error';


REVOKE ALL ON FUNCTION datasync._worker_stats() FROM PUBLIC;
REVOKE ALL ON datasync.status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync._worker_stats() TO datasync_monitor;
GRANT SELECT ON datasync.status TO datasync_monitor;

/*
 * The same figures as datasync.status, a row a metric: the seed's names
 * (sync_throughput, sync_latency, sync_errors, sync_conflicts, queue_size)
 * and lag, the slot's retained WAL and the per-operation counters.
 */
CREATE VIEW datasync.metrics AS
    SELECT m.metric, s.name AS pipeline, m.labels, m.value
      FROM datasync.status s
     CROSS JOIN LATERAL (VALUES
           ('sync_throughput', '{}'::jsonb, s.throughput_rps),
           ('sync_latency', '{"quantile": "0.5"}', s.latency_p50_ms),
           ('sync_latency', '{"quantile": "0.99"}', s.latency_p99_ms),
           ('sync_errors', '{}', s.errors::double precision),
           ('sync_conflicts', '{}', s.conflicts::double precision),
           ('queue_size', '{}', s.queue_size::double precision),
           ('lag_bytes', '{}', s.lag_bytes::double precision),
           ('lag_ms', '{}', s.lag_ms),
           ('slot_retained_wal_bytes', '{}', s.retained_wal_bytes::double precision),
           ('rows_applied', '{"op": "insert"}', s.rows_inserted::double precision),
           ('rows_applied', '{"op": "update"}', s.rows_updated::double precision),
           ('rows_applied', '{"op": "delete"}', s.rows_deleted::double precision),
           ('rows_copied', '{}', s.rows_copied::double precision),
           ('transactions', '{}', s.transactions::double precision),
           ('rejected', '{}', s.rejected::double precision),
           ('open_conflicts', '{}', s.open_conflicts::double precision)
         ) m(metric, labels, value)
     WHERE m.value IS NOT NULL;
COMMENT ON VIEW datasync.metrics IS 'datasync.status as metrics: (metric, pipeline, labels, value)';

CREATE FUNCTION datasync.reset_stats(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_reset_stats'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.reset_stats(text) IS 'start a pipeline''s counters, latency and throughput from zero';

REVOKE ALL ON datasync.metrics FROM PUBLIC;
REVOKE ALL ON FUNCTION datasync.reset_stats(text) FROM PUBLIC;
GRANT SELECT ON datasync.metrics TO datasync_monitor;
GRANT EXECUTE ON FUNCTION datasync.reset_stats(text) TO datasync_operator;

/*
 * Health checks, a row a pipeline and check: ok, warning or critical.
 * The thresholds are the seed's (failure rate 0.1, conflict rate 0.05,
 * latency 5000 ms) and, for the WAL a slot keeps, half and four fifths of
 * max_slot_wal_keep_size (1 GB and 10 GB when it is unlimited).
 */
CREATE VIEW datasync.health AS
    WITH s AS (
        SELECT st.*, p.enabled,
               pg_catalog.current_setting('max_slot_wal_keep_size') AS keep_setting,
               CASE WHEN pg_catalog.current_setting('max_slot_wal_keep_size') = '-1' THEN NULL
                    ELSE pg_catalog.pg_size_bytes(pg_catalog.current_setting('max_slot_wal_keep_size')) END AS keep_bytes
          FROM datasync.status st JOIN datasync._pipelines p ON p.name = st.name
    )
    SELECT s.name AS pipeline, c.check_name AS "check", c.status, c.value, c.message
      FROM s
     CROSS JOIN LATERAL (VALUES
           ('worker',
            CASE WHEN s.state IN ('error') THEN 'critical'
                 WHEN s.mode = 'realtime' AND s.enabled AND s.state <> 'error' AND s.worker_pid IS NULL THEN 'warning'
                 ELSE 'ok' END,
            s.worker_pid::double precision,
            CASE WHEN s.state = 'error' THEN 'stopped on an error: no worker until resume()'
                 WHEN s.mode = 'realtime' AND s.enabled AND s.worker_pid IS NULL
                 THEN 'a real-time pipeline without a worker' ELSE 'a worker runs when it should' END),
           ('state',
            CASE s.state WHEN 'error' THEN 'critical' WHEN 'retrying' THEN 'warning'
                         WHEN 'paused' THEN 'warning' ELSE 'ok' END,
            NULL::double precision,
            'state ' || s.state),
           ('lag',
            CASE WHEN s.lag_ms >= 60000 THEN 'critical' WHEN s.lag_ms >= 5000 THEN 'warning' ELSE 'ok' END,
            s.lag_ms,
            'oldest change not on the target: ' || coalesce(round(s.lag_ms)::text || ' ms', 'no worker')),
           ('failure_rate',
            CASE WHEN s.errors::double precision / GREATEST(s.transactions + s.errors, 1) > 0.1
                 THEN 'warning' ELSE 'ok' END,
            s.errors::double precision / GREATEST(s.transactions + s.errors, 1),
            'errors: ' || s.errors || ', transactions: ' || s.transactions),
           ('conflict_rate',
            CASE WHEN s.conflicts::double precision / GREATEST(s.rows_applied + s.conflicts, 1) > 0.05
                 THEN 'warning' ELSE 'ok' END,
            s.conflicts::double precision / GREATEST(s.rows_applied + s.conflicts, 1),
            'conflicts: ' || s.conflicts || ', rows applied: ' || s.rows_applied),
           ('retained_wal',
            CASE WHEN s.wal_status IN ('unreserved', 'lost') THEN 'critical'
                 WHEN s.retained_wal_bytes >= coalesce(s.keep_bytes * 0.8, 10737418240) THEN 'critical'
                 WHEN s.retained_wal_bytes >= coalesce(s.keep_bytes * 0.5, 1073741824) THEN 'warning'
                 ELSE 'ok' END,
            s.retained_wal_bytes::double precision,
            'the slot keeps ' || coalesce(pg_catalog.pg_size_pretty(s.retained_wal_bytes), 'no') || ' of WAL'
            || coalesce(' (wal_status ' || s.wal_status || ')', '')
            || CASE WHEN s.keep_bytes IS NULL THEN '; max_slot_wal_keep_size is unlimited'
                    ELSE '; max_slot_wal_keep_size ' || s.keep_setting END)
         ) c(check_name, status, value, message);
COMMENT ON VIEW datasync.health IS 'health checks, a row a pipeline and check: ok, warning or critical';

/* the checks as one document: {"status": the worst, "checks": [...]} */
CREATE FUNCTION datasync.health()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object(
               'status', CASE max(CASE h.status WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END)
                             WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' ELSE 'ok' END,
               'checks', coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'pipeline', h.pipeline, 'check', h."check", 'status', h.status,
                   'value', h.value, 'message', h.message) ORDER BY h.pipeline, h."check"), '[]'))
      FROM datasync.health h
$$;
COMMENT ON FUNCTION datasync.health() IS 'the health checks as one document, with the worst status';

REVOKE ALL ON datasync.health FROM PUBLIC;
REVOKE ALL ON FUNCTION datasync.health() FROM PUBLIC;
GRANT SELECT ON datasync.health TO datasync_monitor;
GRANT EXECUTE ON FUNCTION datasync.health() TO datasync_monitor;

CREATE FUNCTION datasync.prometheus()
RETURNS text
AS 'MODULE_PATHNAME', 'datasync_prometheus'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.prometheus() IS 'every pipeline''s figures in the Prometheus text format (the metrics worker serves it on GET /metrics)';
REVOKE ALL ON FUNCTION datasync.prometheus() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.prometheus() TO datasync_monitor;

/* the last hour of each pipeline's samples (every 10 s while its worker runs) */
CREATE FUNCTION datasync._samples(
    OUT pipeline_id bigint, OUT at timestamptz, OUT rows_applied bigint, OUT lag_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'datasync_samples'
LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;

/* a small line chart: xs in seconds of the last hour, ys scaled to their maximum */
CREATE FUNCTION datasync._svg(xs double precision[], ys double precision[], color text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="60" viewBox="0 0 300 60">'
           || '<rect width="300" height="60" fill="#f4f4f4"/>'
           || '<polyline fill="none" stroke="' || color || '" stroke-width="1.5" points="'
           || coalesce(string_agg(round((u.x / 3600 * 300)::numeric, 1) || ','
                                  || round((58 - 54 * u.y / GREATEST(mm.m, 1e-9))::numeric, 1), ' ' ORDER BY u.i), '')
           || '"/><text x="3" y="11" font-size="10" fill="#555">max ' || round(coalesce(mm.m, 0)::numeric, 1)
           || '</text></svg>'
      FROM unnest(xs, ys) WITH ORDINALITY AS u(x, y, i),
           (SELECT max(v) AS m FROM unnest(ys) AS v) AS mm
     GROUP BY mm.m
$$;

/*
 * The status page of the metrics worker (GET /): one row a pipeline, with
 * charts of throughput and lag over the last hour; no external assets,
 * refreshing itself.
 */
CREATE FUNCTION datasync._status_page()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH smp AS (
        SELECT x.pipeline_id, x.at, x.lag_ms,
               (x.rows_applied - lag(x.rows_applied) OVER w)
               / NULLIF(extract(epoch FROM x.at - lag(x.at) OVER w), 0)::double precision AS rps
          FROM datasync._samples() x
        WINDOW w AS (PARTITION BY x.pipeline_id ORDER BY x.at)
    ), charts AS (
        SELECT pipeline_id,
               datasync._svg(array_agg(extract(epoch FROM at - (now() - interval '1 hour'))::double precision ORDER BY at),
                             array_agg(rps ORDER BY at), '#2962a8') AS rps_chart,
               datasync._svg(array_agg(extract(epoch FROM at - (now() - interval '1 hour'))::double precision ORDER BY at),
                             array_agg(lag_ms ORDER BY at), '#b35c00') AS lag_chart
          FROM smp
         WHERE rps IS NOT NULL AND at > now() - interval '1 hour'
         GROUP BY pipeline_id
    )
    SELECT '<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
           || '<title>datasync</title><style>'
           || 'body{font-family:system-ui,sans-serif;margin:2em;color:#222}'
           || 'table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:middle}'
           || 'td:first-child,th:first-child{text-align:left}.error{color:#b00;font-weight:bold}.retrying,.paused{color:#a60}'
           || '.streaming{color:#070}</style></head><body><h1>datasync</h1>'
           || '<p>' || count(s.name) || ' pipeline(s), ' || to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ')
           || '. Charts: the last hour, rows applied a second and lag (ms).</p>'
           || '<table><tr><th>pipeline</th><th>mode</th><th>state</th><th>lag</th><th>rows applied</th>'
           || '<th>rows/s</th><th>p50 / p99 (ms)</th><th>errors</th><th>conflicts</th><th>retained WAL</th>'
           || '<th>throughput</th><th>lag (ms)</th></tr>'
           || coalesce(string_agg(format(
                  '<tr><td>%s</td><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td><td>%s</td>'
                  || '<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                  replace(replace(replace(replace(s.name, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
                  s.mode, s.state, s.state,
                  coalesce(pg_size_pretty(s.lag_bytes), '') || coalesce(' / ' || round(s.lag_ms) || ' ms', ''),
                  s.rows_applied,
                  coalesce(round(s.throughput_rps::numeric, 1)::text, ''),
                  coalesce(round(s.latency_p50_ms::numeric, 1) || ' / ' || round(s.latency_p99_ms::numeric, 1), ''),
                  s.errors, s.conflicts,
                  coalesce(pg_size_pretty(s.retained_wal_bytes), ''),
                  coalesce(c.rps_chart, ''), coalesce(c.lag_chart, '')), '' ORDER BY s.name), '')
           || '</table></body></html>'
      FROM datasync.status s
      JOIN datasync._pipelines p ON p.name = s.name
      LEFT JOIN charts c ON c.pipeline_id = p.id
$$;

REVOKE ALL ON FUNCTION datasync._samples(), datasync._svg(double precision[], double precision[], text),
    datasync._status_page() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync._samples(), datasync._svg(double precision[], double precision[], text),
    datasync._status_page() TO datasync_monitor;
