/* datasync--0.1--0.2.sql -- security and isolation (issue 14)
 *
 * A fresh CREATE EXTENSION installs datasync--0.1.sql and then this file,
 * so a fresh install and an upgraded one are the same by construction;
 * test/t/100_* checks an upgrade of a 0.1 installation that holds data.
 *
 * Sections, one concern each (kept apart so they can change independently):
 *   1. worker trust model
 *   2. databases and incarnations
 *   3. SQL API: calling role, targets, tables
 *   4. leaks to listeners and monitors; audit log
 *   5. batches
 */

\echo Use "ALTER EXTENSION datasync UPDATE TO '0.2'" to load this file. \quit

/* ---------------------------------------------------------------------
 * 1. Worker trust model
 * ---------------------------------------------------------------------
 */

/* END section 1 */



/* ---------------------------------------------------------------------
 * 2. Databases and incarnations
 * ---------------------------------------------------------------------
 */

/* END section 2 */



/* ---------------------------------------------------------------------
 * 3. SQL API: calling role, targets, tables
 * ---------------------------------------------------------------------
 */
/*
 * The C functions of the SQL API run as their caller (SECURITY INVOKER,
 * search_path still pinned): each takes the calling role (current_user when
 * it is entered) for every privilege check and for the owner it records,
 * then does its catalog work as the extension's owner (ds_api_enter in
 * src/apiutil.c).  A SECURITY DEFINER function cannot see its caller: an
 * admin's SECURITY DEFINER wrapper run by a superuser made the superuser
 * the "outer user" that 0.1 checked.  The EXECUTE grants stay as they were.
 */
ALTER FUNCTION datasync.create_target(text, text, jsonb) SECURITY INVOKER;
ALTER FUNCTION datasync.alter_target(text, jsonb) SECURITY INVOKER;
ALTER FUNCTION datasync.drop_target(text) SECURITY INVOKER;
ALTER FUNCTION datasync.test_target(text) SECURITY INVOKER;
ALTER FUNCTION datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb) SECURITY INVOKER;
ALTER FUNCTION datasync.alter_pipeline(text, jsonb) SECURITY INVOKER;
ALTER FUNCTION datasync.drop_pipeline(text) SECURITY INVOKER;
ALTER FUNCTION datasync.add_table(text, regclass) SECURITY INVOKER;
ALTER FUNCTION datasync.remove_table(text, regclass) SECURITY INVOKER;
ALTER FUNCTION datasync.resync_table(text, regclass) SECURITY INVOKER;
ALTER FUNCTION datasync.pause(text) SECURITY INVOKER;
ALTER FUNCTION datasync.resume(text) SECURITY INVOKER;
ALTER FUNCTION datasync.wait_for_sync(text, interval) SECURITY INVOKER;
ALTER FUNCTION datasync.resolve_conflict(bigint, text) SECURITY INVOKER;
ALTER FUNCTION datasync.sync_now(text, interval) SECURITY INVOKER;
ALTER FUNCTION datasync.create_job(text) SECURITY INVOKER;
ALTER FUNCTION datasync.job_status(bigint) SECURITY INVOKER;
ALTER FUNCTION datasync._scheduled_run(bigint) SECURITY INVOKER;

/*
 * Who may use a target: its owner (the role that last set its DSN) and
 * the members of that role, the roles in grantees and their members, and
 * superusers.  Pipelines to a target and test_target need the use; alter,
 * drop, grant and revoke need the ownership.
 */
ALTER TABLE datasync._targets ADD COLUMN grantees oid[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN datasync._targets.owner IS 'role that last set the DSN; it (and superusers) may change, drop, grant and revoke the target';
COMMENT ON COLUMN datasync._targets.grantees IS 'roles that may use the target besides its owner (datasync.grant_target)';

-- who added each table; the worker checks again, as that role, that it may read it in full (NULL: added by 0.1)
ALTER TABLE datasync._pipeline_tables ADD COLUMN added_by oid;
COMMENT ON COLUMN datasync._pipeline_tables.added_by IS 'role that added the table (create_pipeline, add_table); NULL for tables added before 0.2';

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

CREATE OR REPLACE VIEW datasync.targets AS
    SELECT t.name, t.kind, datasync._mask_dsn(t.dsn) AS dsn, t.options, t.created_at,
           t.owner::regrole AS owner, t.grantees::regrole[] AS grantees
      FROM datasync._targets t;
COMMENT ON VIEW datasync.targets IS 'targets, with any password in the DSN shown as ********, their owner and the roles they are granted to';

/*
 * The DSN-equality helper of apply_config answers only the target's owner
 * and superusers (to anyone else it answered password guesses).
 */
CREATE OR REPLACE FUNCTION datasync._config_target_dsn_is(name text, dsn text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'datasync_config_target_dsn_is'
LANGUAGE C STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp;

/*
 * apply_config: datasync._config_apply called as the caller; an error is
 * raised again without its statement in the server log (the document holds
 * passwords), a run is audited.
 */
CREATE OR REPLACE FUNCTION datasync.apply_config(config jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_apply_config'
LANGUAGE C SECURITY INVOKER SET search_path = pg_catalog, pg_temp;

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

REVOKE ALL ON FUNCTION datasync.grant_target(text, regrole), datasync.revoke_target(text, regrole),
    datasync._table_dropped() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.grant_target(text, regrole), datasync.revoke_target(text, regrole)
  TO datasync_admin;

/* END section 3 */



/* ---------------------------------------------------------------------
 * 4. Leaks to listeners and monitors; audit log
 * ---------------------------------------------------------------------
 */

/* END section 4 */



/* ---------------------------------------------------------------------
 * 5. Batches
 * ---------------------------------------------------------------------
 */

/* END section 5 */
