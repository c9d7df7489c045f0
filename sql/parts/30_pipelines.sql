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
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb) IS 'create a pipeline: a publication now, a slot and the initial copy in its worker';

CREATE FUNCTION datasync.alter_pipeline(name text, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_alter_pipeline'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.alter_pipeline(text, jsonb) IS 'change pipeline options; the worker restarts with them';

CREATE FUNCTION datasync.drop_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_drop_pipeline'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.drop_pipeline(text) IS 'stop a pipeline and drop its slot and publication';

CREATE FUNCTION datasync.add_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_add_table'
LANGUAGE C SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.remove_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_remove_table'
LANGUAGE C SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.resync_table(pipeline text, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_resync_table'
LANGUAGE C SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.pause(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_pause'
LANGUAGE C SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION datasync.resume(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_resume'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.resume(text) IS 'resume a paused pipeline, or restart one stopped by an error';

CREATE FUNCTION datasync.wait_for_sync(name text, timeout interval DEFAULT '60s')
RETURNS boolean
AS 'MODULE_PATHNAME', 'datasync_wait_for_sync'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.wait_for_sync(text, interval) IS 'true once the target has applied everything committed before the call';


/*
 * A synced table that is dropped leaves its pipelines: reported (WARNING),
 * audited, and the pipeline's worker restarts without it.  ALWAYS: also
 * under session_replication_role = replica.
 */
CREATE FUNCTION datasync._table_dropped()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'datasync_table_dropped'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
CREATE EVENT TRIGGER datasync_table_dropped ON sql_drop
    EXECUTE FUNCTION datasync._table_dropped();
ALTER EVENT TRIGGER datasync_table_dropped ENABLE ALWAYS;

/* DROP EXTENSION datasync is refused while pipelines exist (their slots would stay) */
CREATE FUNCTION datasync._extension_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'datasync_extension_drop'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
CREATE EVENT TRIGGER datasync_extension_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION datasync._extension_drop();
ALTER EVENT TRIGGER datasync_extension_drop ENABLE ALWAYS;

CREATE FUNCTION datasync.skip_transaction(pipeline text, commit_lsn pg_lsn)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_skip_transaction'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.skip_transaction(text, pg_lsn) IS 'skip the source transaction that committed at commit_lsn (it can never apply); NULL takes the request back';

CREATE VIEW datasync.pipelines AS
    SELECT p.name, t.name AS target, p.mode, p.schedule, p.conflict_strategy, p.options,
           p.enabled, p.created_at,
           ARRAY(SELECT pt.relid::regclass FROM datasync._pipeline_tables pt
                  WHERE pt.pipeline_id = p.id ORDER BY pt.relid::regclass::text) AS tables,
           p.skip_lsn
      FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id;
COMMENT ON VIEW datasync.pipelines IS 'pipelines and their tables';

REVOKE ALL ON FUNCTION
    datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb),
    datasync.alter_pipeline(text, jsonb),
    datasync.drop_pipeline(text),
    datasync.add_table(text, regclass),
    datasync.remove_table(text, regclass),
    datasync.resync_table(text, regclass),
    datasync.pause(text),
    datasync.resume(text),
    datasync.wait_for_sync(text, interval),
    datasync.skip_transaction(text, pg_lsn),
    datasync._table_dropped(),
    datasync._extension_drop()
  FROM PUBLIC;
REVOKE ALL ON datasync.pipelines FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb),
    datasync.alter_pipeline(text, jsonb),
    datasync.drop_pipeline(text),
    datasync.add_table(text, regclass),
    datasync.remove_table(text, regclass),
    datasync.resync_table(text, regclass),
    datasync.skip_transaction(text, pg_lsn)
  TO datasync_admin;
GRANT EXECUTE ON FUNCTION
    datasync.pause(text),
    datasync.resume(text),
    datasync.wait_for_sync(text, interval)
  TO datasync_operator;
GRANT SELECT ON datasync.pipelines TO datasync_monitor;
