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

