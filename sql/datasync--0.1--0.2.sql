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

/*
 * Shared memory, the workers and the launcher know a pipeline by database,
 * id and incarnation (src/shmem.h); the SQL functions that need the
 * launcher refuse to run in a database other than datasync.database
 * (55000).  The extension may still be created in such a database (a
 * restored dump needs it), with a warning.  current_setting() is NULL when
 * datasync is not preloaded: nothing to compare then.
 */
DO $ds_database$
DECLARE
    launcher_db text := pg_catalog.current_setting('datasync.database', true);
BEGIN
    IF launcher_db IS NOT NULL AND launcher_db <> pg_catalog.current_database() THEN
        RAISE WARNING 'datasync pipelines of database "%" will not run', pg_catalog.current_database()
            USING DETAIL = pg_catalog.format('The datasync launcher runs in database "%s" (datasync.database).', launcher_db),
                  HINT = pg_catalog.format('Create pipelines in database "%s", or set datasync.database = ''%s'' and restart the server.',
                                           launcher_db, pg_catalog.current_database());
    END IF;
END
$ds_database$;

/*
 * datasync.status: _worker_stats() shows only workers of this database's
 * pipelines (same id and incarnation); the slot is this database's too
 * (another database may have one of the same name: a restored dump).
 * Otherwise as in 0.1.
 */
CREATE OR REPLACE VIEW datasync.status AS
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
           coalesce(w.conflicts, 0) AS conflicts,
           (SELECT pg_catalog.count(*) FROM datasync.conflicts c
             WHERE c.pipeline_id = p.id AND c.status = 'open') AS open_conflicts,
           w.retry_attempt,
           w.next_attempt_at,
           coalesce(p.error, w.last_error) AS last_error,
           w.pid AS worker_pid
      FROM datasync._pipelines p
      JOIN datasync._targets t ON t.id = p.target_id
      LEFT JOIN datasync._worker_stats() w ON w.pipeline_id = p.id
      LEFT JOIN pg_catalog.pg_replication_slots s
             ON s.slot_name = p.slot_name AND s.database = pg_catalog.current_database();

/* END section 2 */



/* ---------------------------------------------------------------------
 * 3. SQL API: calling role, targets, tables
 * ---------------------------------------------------------------------
 */

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
