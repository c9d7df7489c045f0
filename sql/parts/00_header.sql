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

