/* datasync--0.2.sql -- catalog, SQL API and views of datasync
 *
 * Built by the Makefile from sql/parts/NN_topic.sql, concatenated in the
 * order of their names (this is 00_header.sql): edit the parts, never the
 * built file.  The parts are the current version; a fresh CREATE EXTENSION
 * runs this script alone.  Released install scripts stay as they were
 * (sql/datasync--0.1.sql is what 0.1 installations ran).
 *
 * Rule: a change of the SQL surface (an object added, changed or dropped, a
 * column, a GRANT, a COMMENT) goes into the parts AND into the upgrade
 * script to the version being made (sql/datasync--0.1--0.2.sql); a column
 * an upgrade adds comes last in its table here too.  A step that only moves
 * existing data belongs to the upgrade script alone.  test/t/150_upgrade.pl
 * proves that a fresh install and an upgraded one have the same catalog.
 * At a release: commit the built script as sql/datasync--<version>.sql
 * (out of .gitignore), raise default_version in datasync.control (the
 * Makefile builds the script of that version) and start the next upgrade
 * script.
 */

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

/*
 * Databases and incarnations: shared memory, the workers and the launcher
 * know a pipeline by database, id and incarnation (src/shmem.h); the SQL
 * functions that need the launcher refuse to run in a database other than
 * datasync.database (55000).  The extension may still be created in such a
 * database (a restored dump needs it), with a warning.  current_setting()
 * is NULL when datasync is not preloaded: nothing to compare then.
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

