/* ---------------------------------------------------------------------
 * Targets
 * ---------------------------------------------------------------------
 */
/*
 * The C functions of the SQL API run as their caller (SECURITY INVOKER,
 * search_path pinned): each takes the calling role (current_user when it
 * is entered) for every privilege check and for the owner it records, then
 * does its catalog work as the extension's owner (ds_api_enter in
 * src/api/apiutil.c).  A SECURITY DEFINER function cannot see its caller.
 */
CREATE FUNCTION datasync.create_target(name text, dsn text, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_create_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_target(text, text, jsonb) IS 'create a PostgreSQL target from a libpq conninfo or URI';

CREATE FUNCTION datasync.alter_target(name text, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_alter_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.alter_target(text, jsonb) IS 'change a target: {"dsn": ...} replaces the DSN, other keys merge into its options';

CREATE FUNCTION datasync.drop_target(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_drop_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.drop_target(text) IS 'drop a target that no pipeline uses';

CREATE FUNCTION datasync.test_target(name text, tables regclass[] DEFAULT NULL, options jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_test_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.test_target(text, regclass[], jsonb) IS 'connect to a target; report version, latency and what its pipelines (or the tables given, with these pipeline options) miss there';

CREATE FUNCTION datasync._mask_dsn(dsn text)
RETURNS text
AS 'MODULE_PATHNAME', 'datasync_mask_dsn'
LANGUAGE C STRICT IMMUTABLE;

/* who may use a target: see datasync._targets.grantees */
CREATE FUNCTION datasync.grant_target(target text, grantee regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_grant_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.grant_target(text, regrole) IS 'let a role (and its members) use a target: pipelines to it, test_target; for its owner and superusers';

CREATE FUNCTION datasync.revoke_target(target text, grantee regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_revoke_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.revoke_target(text, regrole) IS 'take back grant_target; pipelines made meanwhile stay';

CREATE VIEW datasync.targets AS
    SELECT t.name, t.kind, datasync._mask_dsn(t.dsn) AS dsn, t.options, t.created_at,
           t.owner::regrole AS owner, t.grantees::regrole[] AS grantees
      FROM datasync._targets t;
COMMENT ON VIEW datasync.targets IS 'targets, with any password in the DSN shown as ********, their owner and the roles they are granted to';


-- admin configures, operator runs, monitor reads
REVOKE ALL ON FUNCTION
    datasync.create_target(text, text, jsonb),
    datasync.alter_target(text, jsonb),
    datasync.drop_target(text),
    datasync.test_target(text, regclass[], jsonb),
    datasync._mask_dsn(text),
    datasync.grant_target(text, regrole),
    datasync.revoke_target(text, regrole)
  FROM PUBLIC;
REVOKE ALL ON datasync.targets FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    datasync.create_target(text, text, jsonb),
    datasync.alter_target(text, jsonb),
    datasync.drop_target(text),
    datasync.grant_target(text, regrole),
    datasync.revoke_target(text, regrole)
  TO datasync_admin;
GRANT EXECUTE ON FUNCTION datasync.test_target(text, regclass[], jsonb) TO datasync_operator;
GRANT EXECUTE ON FUNCTION datasync._mask_dsn(text) TO datasync_monitor;
GRANT SELECT ON datasync.targets TO datasync_monitor;
