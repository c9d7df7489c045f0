/* datasync--0.1.sql -- catalog, SQL API and views of datasync */

\echo Use "CREATE EXTENSION datasync" to load this file. \quit

/*
 * Roles.  They are cluster-wide, so they may already exist from another
 * database; they outlive DROP EXTENSION.  datasync_admin configures,
 * datasync_operator runs and pauses syncs, datasync_monitor reads views.
 */
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'datasync_monitor') THEN
        CREATE ROLE datasync_monitor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'datasync_operator') THEN
        CREATE ROLE datasync_operator NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'datasync_admin') THEN
        CREATE ROLE datasync_admin NOLOGIN;
    END IF;
END
$roles$;
GRANT datasync_monitor TO datasync_operator;
GRANT datasync_operator TO datasync_admin;

REVOKE ALL ON SCHEMA datasync FROM PUBLIC;
GRANT USAGE ON SCHEMA datasync TO datasync_monitor;

/* ---------------------------------------------------------------------
 * Catalog.  Only the extension owner reads these tables directly: the
 * target DSN may hold a password.  Users see them through views.
 * ---------------------------------------------------------------------
 */
CREATE TABLE datasync._targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL DEFAULT 'postgresql' CHECK (kind IN ('postgresql', 'http')),
    dsn         text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',
    owner       oid NOT NULL,   -- role that set the DSN; unless a superuser, the target must ask for a password
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE datasync._targets IS 'datasync targets (internal; read datasync.targets)';

CREATE TABLE datasync._pipelines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name <> ''),
    slot_name         text NOT NULL UNIQUE, -- name of the slot and the publication
    target_id         bigint NOT NULL REFERENCES datasync._targets (id),
    mode              text NOT NULL DEFAULT 'realtime',
    schedule          text,
    conflict_strategy text NOT NULL DEFAULT 'source-wins',
    options           jsonb NOT NULL DEFAULT '{}',
    enabled           boolean NOT NULL DEFAULT true,
    error             text,             -- set when the pipeline stopped on a permanent error
    incarnation       bigint NOT NULL,  -- random; tells this pipeline's progress rows on the target from an older one of the same name
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE datasync._pipelines IS 'datasync pipelines (internal; read datasync.pipelines and datasync.status)';

CREATE TABLE datasync._pipeline_tables (
    pipeline_id  bigint NOT NULL REFERENCES datasync._pipelines (id) ON DELETE CASCADE,
    relid        oid NOT NULL,
    sync_state   "char" NOT NULL DEFAULT 'i' CHECK (sync_state IN ('i', 's', 'r')), -- init, resync requested, ready
    added_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (pipeline_id, relid)
);
COMMENT ON TABLE datasync._pipeline_tables IS 'tables of each pipeline (internal)';

REVOKE ALL ON datasync._targets, datasync._pipelines, datasync._pipeline_tables FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('datasync._targets', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipeline_tables', '');

/* ---------------------------------------------------------------------
 * Targets
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION datasync.create_target(name text, dsn text, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_create_target'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_target(text, text, jsonb) IS 'create a PostgreSQL target from a libpq conninfo or URI';

CREATE FUNCTION datasync.alter_target(name text, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_alter_target'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.alter_target(text, jsonb) IS 'change a target: {"dsn": ...} replaces the DSN, other keys merge into its options';

CREATE FUNCTION datasync.drop_target(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_drop_target'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.drop_target(text) IS 'drop a target that no pipeline uses';

CREATE FUNCTION datasync.test_target(name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_test_target'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.test_target(text) IS 'connect to a target; report version, latency and what its pipelines miss there';

CREATE FUNCTION datasync._mask_dsn(dsn text)
RETURNS text
AS 'MODULE_PATHNAME', 'datasync_mask_dsn'
LANGUAGE C STRICT IMMUTABLE;

CREATE VIEW datasync.targets AS
    SELECT t.name, t.kind, datasync._mask_dsn(t.dsn) AS dsn, t.options, t.created_at
      FROM datasync._targets t;
COMMENT ON VIEW datasync.targets IS 'targets, with any password in the DSN shown as ********';

/* ---------------------------------------------------------------------
 * Pipelines
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION datasync.create_pipeline(name text, target text, tables regclass[],
                                         mode text DEFAULT 'realtime',
                                         schedule text DEFAULT NULL,
                                         conflict_strategy text DEFAULT 'source-wins',
                                         options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_create_pipeline'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb) IS 'create a pipeline: a publication now, a slot and the initial copy in its worker';

CREATE FUNCTION datasync.alter_pipeline(name text, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_alter_pipeline'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.alter_pipeline(text, jsonb) IS 'change pipeline options; the worker restarts with them';

CREATE FUNCTION datasync.drop_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_drop_pipeline'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.drop_pipeline(text) IS 'stop a pipeline and drop its slot and publication';

CREATE FUNCTION datasync.add_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_add_table'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.remove_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_remove_table'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.resync_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_resync_table'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.pause(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_pause'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.resume(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_resume'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.resume(text) IS 'resume a paused pipeline, or restart one stopped by an error';

CREATE FUNCTION datasync.wait_for_sync(name text, timeout interval DEFAULT '60s')
RETURNS boolean
AS 'MODULE_PATHNAME', 'datasync_wait_for_sync'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.wait_for_sync(text, interval) IS 'true once the target has applied everything committed before the call';

CREATE VIEW datasync.pipelines AS
    SELECT p.name, t.name AS target, p.mode, p.schedule, p.conflict_strategy, p.options,
           p.enabled, p.created_at,
           ARRAY(SELECT pt.relid::regclass FROM datasync._pipeline_tables pt
                  WHERE pt.pipeline_id = p.id ORDER BY pt.relid::regclass::text) AS tables
      FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id;
COMMENT ON VIEW datasync.pipelines IS 'pipelines and their tables';

/* ---------------------------------------------------------------------
 * Monitoring
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION datasync._worker_stats(
    OUT pipeline_id bigint, OUT pid integer, OUT state text,
    OUT applied_lsn pg_lsn, OUT last_sync_at timestamptz,
    OUT rows_inserted bigint, OUT rows_updated bigint, OUT rows_deleted bigint,
    OUT transactions bigint, OUT errors bigint, OUT retry_attempt integer,
    OUT next_attempt_at timestamptz, OUT last_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'datasync_worker_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW datasync.status AS
    SELECT p.name,
           p.mode,
           CASE WHEN NOT p.enabled THEN 'paused'
                WHEN p.error IS NOT NULL THEN 'error'
                ELSE coalesce(w.state, 'idle') END AS state,
           t.name AS target,
           CASE WHEN s.confirmed_flush_lsn IS NOT NULL
                THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint END AS lag_bytes,
           w.applied_lsn AS last_applied_lsn,
           w.last_sync_at,
           coalesce(w.rows_inserted + w.rows_updated + w.rows_deleted, 0) AS rows_applied,
           coalesce(w.rows_inserted, 0) AS rows_inserted,
           coalesce(w.rows_updated, 0) AS rows_updated,
           coalesce(w.rows_deleted, 0) AS rows_deleted,
           coalesce(w.transactions, 0) AS transactions,
           coalesce(w.errors, 0) AS errors,
           w.retry_attempt,
           w.next_attempt_at,
           coalesce(p.error, w.last_error) AS last_error,
           w.pid AS worker_pid
      FROM datasync._pipelines p
      JOIN datasync._targets t ON t.id = p.target_id
      LEFT JOIN datasync._worker_stats() w ON w.pipeline_id = p.id
      LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = p.slot_name;
COMMENT ON VIEW datasync.status IS 'one row a pipeline: state, lag, progress, counters, last error';

/* ---------------------------------------------------------------------
 * Declarative configuration: apply_config / export_config
 * ---------------------------------------------------------------------
 */
/* BEGIN config section */
/* END config section */

/* ---------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; admin configures, operator runs,
 * monitor reads.
 * ---------------------------------------------------------------------
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA datasync FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA datasync FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    datasync.create_target(text, text, jsonb),
    datasync.alter_target(text, jsonb),
    datasync.drop_target(text),
    datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb),
    datasync.alter_pipeline(text, jsonb),
    datasync.drop_pipeline(text),
    datasync.add_table(text, regclass),
    datasync.remove_table(text, regclass),
    datasync.resync_table(text, regclass)
  TO datasync_admin;

GRANT EXECUTE ON FUNCTION
    datasync.test_target(text),
    datasync.pause(text),
    datasync.resume(text),
    datasync.wait_for_sync(text, interval)
  TO datasync_operator;

GRANT EXECUTE ON FUNCTION
    datasync._mask_dsn(text),
    datasync._worker_stats()
  TO datasync_monitor;

GRANT SELECT ON datasync.targets, datasync.pipelines, datasync.status TO datasync_monitor;
