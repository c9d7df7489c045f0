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

