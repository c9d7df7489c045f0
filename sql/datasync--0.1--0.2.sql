/* datasync--0.1--0.2.sql -- security and isolation (issue 14)
 *
 * A fresh CREATE EXTENSION runs datasync--0.2.sql, built from sql/parts/,
 * which holds everything this file does to the SQL surface;
 * test/t/150_upgrade.pl checks that 0.1 updated by this file has the catalog
 * of a fresh install; test/t/110_isolation.pl and 130_leaks_audit.pl update
 * 0.1 installations that hold data.  A change of the SQL surface goes into
 * both.
 *
 * Sections, one concern each (kept apart so they can change independently):
 *   1. worker trust model
 *   2. databases and incarnations
 *   3. SQL API: calling role, targets, tables
 *   4. leaks to listeners and monitors; audit log
 *   5. batches
 *   6. what a newcomer read wrong (issue 16)
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
 * pipelines (same id and incarnation), and the slot joined is this
 * database's (another database may have one of the same name: a restored
 * dump).  The view is defined once, in section 4, with that join.
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

/*
 * The role that created a pipeline: the worker checks at every session
 * that it may still use the pipeline's target (NULL for pipelines created
 * before 0.2, which are not checked).
 */
ALTER TABLE datasync._pipelines ADD COLUMN created_by oid;
COMMENT ON COLUMN datasync._pipelines.created_by IS 'role that created the pipeline; its right to use the target is checked by the worker';

/* END section 3 */



/* ---------------------------------------------------------------------
 * 4. Leaks to listeners and monitors; audit log
 * ---------------------------------------------------------------------
 *
 * Row values reach only roles that may read their table.  One rule says
 * who may: datasync.can_read_values(tbl), evaluated as the role that reads
 * (a superuser; or a role with SELECT on the table that the table's
 * row-level security does not apply to).  Where datasync keeps row values:
 *
 *   - datasync.conflicts: row-level security, a row is visible to the roles
 *     that may read its table (the worker, a superuser, and the extension's
 *     SECURITY DEFINER functions, as the table's owner, see every row; so
 *     must any code that runs catalog work).  Tables added later that hold
 *     row values (rejections, parked rows, history) take the same policy.
 *   - error texts of the target and the worker (datasync.status.last_error,
 *     datasync.jobs.error, the detail of "is stopped by an error"): they may
 *     quote row values, and a pipeline's error may concern any of its
 *     tables.  The whole text is kept in private tables and shown, through
 *     datasync.status and datasync.job_errors, to the roles that may read
 *     every table of the pipeline; every other place gets a fixed text.
 *     Writes are rewritten by triggers on _pipelines and jobs, so the C
 *     code that writes and reads them (worker, job_status, sync_now) needs
 *     no change and cannot leak the text.
 *   - the audit log: row values of an entry's details (its "key",
 *     "source_row", ... members) go to datasync.audit_row_values, under the
 *     same policy as conflicts; the entry keeps "(withheld)" in their place.
 *     The hash covers the whole entry, values included.
 *   - NOTIFY datasync_events (src/jobs.c) carries ids, states and counts.
 *
 * The audit log's guards fire under every session_replication_role, and
 * verify_audit_log() returns an anchor (last_id, last_hash) that
 * verify_audit_log(anchor) checks, so a truncated tail or a rewritten chain
 * is found by whoever kept the anchor.
 */

/* who may read a table's row values: the calling role (SECURITY INVOKER) */
CREATE FUNCTION datasync.can_read_values(tbl regclass)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER), false)
        OR coalesce(pg_catalog.has_table_privilege(tbl, 'SELECT')
                    AND NOT pg_catalog.row_security_active(tbl), false)
$$;
COMMENT ON FUNCTION datasync.can_read_values(regclass) IS
    'whether the current role may see row values of a table: a superuser, or SELECT on it without row-level security applying';

/* ... of every table of a list (false for an empty list, but for a superuser) */
CREATE FUNCTION datasync._can_read_all_values(tbls regclass[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER), false)
        OR coalesce(pg_catalog.cardinality(tbls) > 0
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(tbls) t
                                     WHERE NOT datasync.can_read_values(t)), false)
$$;
COMMENT ON FUNCTION datasync._can_read_all_values(regclass[]) IS
    'whether the current role may see row values of every table of the list';

/* the tables of a pipeline (the view datasync.pipelines shows them too) */
CREATE FUNCTION datasync._pipeline_relids(pipeline_id bigint)
RETURNS regclass[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT pt.relid::regclass FROM datasync._pipeline_tables pt
                  WHERE pt.pipeline_id = _pipeline_relids.pipeline_id ORDER BY pt.relid)
$$;

/* ---- error texts ---------------------------------------------------- */

/*
 * What a place that every reader sees holds instead of an error text: the
 * text itself when it is one of datasync's own (they name no value), else
 * a fixed text.
 */
CREATE FUNCTION datasync._error_summary(msg text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
             WHEN msg IS NULL THEN NULL
             WHEN msg IN ('the pipeline stopped on an error',
                          'the pipeline was paused',
                          'the pipeline was dropped',
                          'interrupted: the server restarted while the job ran',
                          w.text) THEN msg
             ELSE w.text
           END
      FROM (SELECT 'error text withheld: it may quote row values; roles that may read every table '
                   'of the pipeline see it in datasync.status and datasync.job_errors'::text) w(text)
$$;

/* a pipeline's or job's error text as the current role may see it */
CREATE FUNCTION datasync._error_for_reader(pipeline_id bigint, msg text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
             WHEN msg IS NULL THEN NULL
             WHEN datasync._can_read_all_values(datasync._pipeline_relids(pipeline_id)) THEN msg
             ELSE datasync._error_summary(msg)
           END
$$;

/* the whole text of a pipeline's error (_pipelines.error holds the summary) */
CREATE TABLE datasync._pipeline_errors (
    pipeline_id bigint PRIMARY KEY REFERENCES datasync._pipelines (id) ON DELETE CASCADE,
    error       text NOT NULL
);
COMMENT ON TABLE datasync._pipeline_errors IS 'the whole text of a stopped pipeline''s error (internal; read datasync.status)';
REVOKE ALL ON datasync._pipeline_errors FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync._pipeline_errors', '');

CREATE FUNCTION datasync._pipeline_error_keep()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.error IS NULL THEN
        DELETE FROM datasync._pipeline_errors e WHERE e.pipeline_id = NEW.id;
    ELSIF NEW.error IS DISTINCT FROM datasync._error_summary(NEW.error) THEN
        INSERT INTO datasync._pipeline_errors AS e (pipeline_id, error) VALUES (NEW.id, NEW.error)
            ON CONFLICT (pipeline_id) DO UPDATE SET error = excluded.error;
        NEW.error := datasync._error_summary(NEW.error);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER pipeline_error_withheld BEFORE UPDATE OF error ON datasync._pipelines
    FOR EACH ROW EXECUTE FUNCTION datasync._pipeline_error_keep();
ALTER TABLE datasync._pipelines ENABLE ALWAYS TRIGGER pipeline_error_withheld;
-- an installation being upgraded may hold a stopped pipeline
UPDATE datasync._pipelines SET error = error WHERE error IS NOT NULL;

/*
 * The whole text of a failed job's error (jobs.error holds the summary).
 * Written by the BEFORE trigger of the insert or update that sets it; the
 * worker's "INSERT ... ON CONFLICT DO UPDATE ... WHERE status = 'running'"
 * of a job finished before a restart keeps the text first recorded.
 */
CREATE TABLE datasync._job_errors (
    job_id  bigint PRIMARY KEY,
    error   text NOT NULL
);
COMMENT ON TABLE datasync._job_errors IS 'the whole text of a failed job''s error (internal; read datasync.job_errors)';
REVOKE ALL ON datasync._job_errors FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync._job_errors', '');

CREATE FUNCTION datasync._job_error_keep()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM datasync._job_errors e WHERE e.job_id = OLD.id;
        RETURN OLD;
    END IF;
    IF NEW.error IS NOT NULL AND NEW.error IS DISTINCT FROM datasync._error_summary(NEW.error) THEN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO datasync._job_errors (job_id, error) VALUES (NEW.id, NEW.error)
                ON CONFLICT (job_id) DO NOTHING;
        ELSE
            INSERT INTO datasync._job_errors AS e (job_id, error) VALUES (NEW.id, NEW.error)
                ON CONFLICT (job_id) DO UPDATE SET error = excluded.error;
        END IF;
        NEW.error := datasync._error_summary(NEW.error);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER job_error_withheld BEFORE INSERT OR UPDATE OF error ON datasync.jobs
    FOR EACH ROW EXECUTE FUNCTION datasync._job_error_keep();
CREATE TRIGGER job_error_dropped AFTER DELETE ON datasync.jobs
    FOR EACH ROW EXECUTE FUNCTION datasync._job_error_keep();
ALTER TABLE datasync.jobs ENABLE ALWAYS TRIGGER job_error_withheld;
ALTER TABLE datasync.jobs ENABLE ALWAYS TRIGGER job_error_dropped;
UPDATE datasync.jobs SET error = error WHERE error IS NOT NULL;

CREATE VIEW datasync.job_errors AS
    SELECT j.id, j.pipeline, j.finished_at,
           datasync._error_for_reader(j.pipeline_id, coalesce(e.error, j.error)) AS error
      FROM datasync.jobs j
      LEFT JOIN datasync._job_errors e ON e.job_id = j.id
     WHERE j.error IS NOT NULL;
COMMENT ON VIEW datasync.job_errors IS
    'why each failed job failed; the text only for roles that may read every table of its pipeline';

/* datasync.status as in 0.1, but for last_error and the slot of this database only (section 2) */
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
           datasync._error_for_reader(p.id, CASE WHEN p.error IS NOT NULL THEN coalesce(pe.error, p.error)
                                                 ELSE w.last_error END) AS last_error,
           w.pid AS worker_pid
      FROM datasync._pipelines p
      JOIN datasync._targets t ON t.id = p.target_id
      LEFT JOIN datasync._pipeline_errors pe ON pe.pipeline_id = p.id
      LEFT JOIN datasync._worker_stats() w ON w.pipeline_id = p.id
      LEFT JOIN pg_catalog.pg_replication_slots s
             ON s.slot_name = p.slot_name AND s.database = pg_catalog.current_database();

/* ---- conflicts ------------------------------------------------------ */

ALTER TABLE datasync.conflicts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conflicts_of_readable_tables ON datasync.conflicts FOR SELECT
    USING (datasync.can_read_values("table"));

/* ---- audit log ------------------------------------------------------ */

/* append-only under every session_replication_role */
CREATE OR REPLACE FUNCTION datasync._audit_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = '42501', HINT = 'Entries are added by datasync''s functions; none is changed or removed.';
END
$$;
ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

/*
 * Row values of audit entries, one row an entry that has any; readable
 * under the policy of datasync.conflicts.  "values" holds the members that
 * the entry's details show as "(withheld)".
 */
CREATE TABLE datasync.audit_row_values (
    id        bigint PRIMARY KEY,   -- the entry of datasync.audit_log
    "table"   regclass,             -- whose values; NULL: not known (superusers only)
    "values"  jsonb NOT NULL
);
COMMENT ON TABLE datasync.audit_row_values IS
    'row values of audit log entries, for the roles that may read their table';
REVOKE ALL ON datasync.audit_row_values FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.audit_row_values', '');
ALTER TABLE datasync.audit_row_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_row_values_of_readable_tables ON datasync.audit_row_values FOR SELECT
    USING (datasync.can_read_values("table"));
CREATE TRIGGER audit_row_values_append_only BEFORE UPDATE OR DELETE ON datasync.audit_row_values
    FOR EACH ROW EXECUTE FUNCTION datasync._audit_guard();
CREATE TRIGGER audit_row_values_no_truncate BEFORE TRUNCATE ON datasync.audit_row_values
    FOR EACH STATEMENT EXECUTE FUNCTION datasync._audit_guard();
ALTER TABLE datasync.audit_row_values ENABLE ALWAYS TRIGGER audit_row_values_append_only;
ALTER TABLE datasync.audit_row_values ENABLE ALWAYS TRIGGER audit_row_values_no_truncate;

/*
 * Split an entry's details into what everyone sees and its row values:
 * the top-level members named below hold row values; the table is the one
 * named by "relid" (an oid) or "table" (a name, as regclass prints it).
 */
CREATE FUNCTION datasync._audit_split(details jsonb, OUT shown jsonb, OUT row_values jsonb, OUT tbl regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    shown := details;
    IF pg_catalog.jsonb_typeof(details) IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;
    SELECT pg_catalog.jsonb_object_agg(e.key, e.value),
           pg_catalog.jsonb_object_agg(e.key, '(withheld)'::text)
      INTO row_values, shown
      FROM pg_catalog.jsonb_each(details) e
     WHERE e.key IN ('row_values', 'key', 'source_row', 'target_row', 'row', 'rows', 'old_row', 'new_row');
    IF row_values IS NULL THEN
        shown := details;
        RETURN;
    END IF;
    shown := details || shown;
    BEGIN
        IF pg_catalog.jsonb_typeof(details -> 'relid') = 'number' THEN
            SELECT c.oid INTO tbl FROM pg_catalog.pg_class c WHERE c.oid = (details ->> 'relid')::oid;
        ELSIF pg_catalog.jsonb_typeof(details -> 'table') = 'string' THEN
            tbl := pg_catalog.to_regclass(details ->> 'table');
        END IF;
    EXCEPTION WHEN OTHERS THEN
        tbl := NULL;        -- not a table name: superusers only
    END;
END
$$;

/*
 * Version 2 of an entry's hash: SHA-256 of the JSON array of its fields, so
 * that no two different entries hash the same input (version 1 joined them
 * with "|", which they may contain).  Entries written by 0.1 keep version 1.
 */
CREATE FUNCTION datasync._audit_hash_v2(prev text, id bigint, at timestamptz, actor text,
                                        action text, object text, details jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.jsonb_build_array(prev, id,
                                     pg_catalog.to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                                     actor, action, object, details)::text,
        'UTF8')), 'hex')
$$;

/* append an entry; one writer at a time (the chain needs the previous hash) */
CREATE OR REPLACE FUNCTION datasync._audit(actor text, action text, object text, details jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last record;
    nid bigint;
    ts timestamptz := pg_catalog.clock_timestamp();
    prev text;
    split record;
BEGIN
    LOCK TABLE datasync.audit_log IN SHARE ROW EXCLUSIVE MODE;
    SELECT a.id, a.hash INTO last FROM datasync.audit_log a ORDER BY a.id DESC LIMIT 1;
    nid := coalesce(last.id, 0) + 1;
    prev := coalesce(last.hash, '');
    SELECT * INTO split FROM datasync._audit_split(details);
    INSERT INTO datasync.audit_log (id, at, actor, action, object, details, prev_hash, hash)
    VALUES (nid, ts, actor, action, object, split.shown, prev,
            datasync._audit_hash_v2(prev, nid, ts, actor, action, object, details));
    IF split.row_values IS NOT NULL THEN
        INSERT INTO datasync.audit_row_values (id, "table", "values") VALUES (nid, split.tbl, split.row_values);
    END IF;
    RETURN nid;
END
$$;

/* entries written by 0.1 keep their row values in details: move them */
DO $move$
DECLARE
    r record;
    split record;
BEGIN
    ALTER TABLE datasync.audit_log DISABLE TRIGGER audit_log_append_only;
    FOR r IN SELECT a.id, a.details FROM datasync.audit_log a ORDER BY a.id LOOP
        SELECT * INTO split FROM datasync._audit_split(r.details);
        IF split.row_values IS NOT NULL THEN
            INSERT INTO datasync.audit_row_values (id, "table", "values") VALUES (r.id, split.tbl, split.row_values);
            UPDATE datasync.audit_log a SET details = split.shown WHERE a.id = r.id;
        END IF;
    END LOOP;
    ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
END
$move$;

/*
 * Check the chain (and, given an anchor {"last_id", "last_hash"} kept from
 * an earlier result, that the anchor's entry is still there unchanged).
 * The result: ok, entries, last_id and last_hash (of the last intact entry:
 * the anchor to keep), and for a broken chain broken_at and reason.
 */
CREATE FUNCTION datasync._audit_verify(anchor_id bigint, anchor_hash text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    prev text := '';
    expect_id bigint := 1;
    n bigint := 0;
    full_details jsonb;
    broken jsonb;
    anchor_seen boolean := coalesce(anchor_id, 0) = 0;
BEGIN
    FOR r IN SELECT a.*, v."values" AS row_values
               FROM datasync.audit_log a LEFT JOIN datasync.audit_row_values v ON v.id = a.id
              ORDER BY a.id LOOP
        full_details := CASE WHEN r.row_values IS NULL THEN r.details ELSE r.details || r.row_values END;
        IF r.id <> expect_id THEN
            broken := pg_catalog.jsonb_build_object('broken_at', expect_id, 'reason', 'entry missing');
        ELSIF r.prev_hash <> prev THEN
            broken := pg_catalog.jsonb_build_object('broken_at', r.id, 'reason', 'previous hash does not match');
        ELSIF r.hash <> datasync._audit_hash_v2(r.prev_hash, r.id, r.at, r.actor, r.action, r.object, full_details)
          AND r.hash <> datasync._audit_hash(r.prev_hash, r.id, r.at, r.actor, r.action, r.object, full_details) THEN
            broken := pg_catalog.jsonb_build_object('broken_at', r.id, 'reason', 'entry was changed');
        ELSIF r.id = anchor_id AND r.hash <> anchor_hash THEN
            broken := pg_catalog.jsonb_build_object('broken_at', r.id, 'reason', 'entry differs from the anchor');
        END IF;
        EXIT WHEN broken IS NOT NULL;
        anchor_seen := anchor_seen OR r.id = anchor_id;
        prev := r.hash;
        expect_id := r.id + 1;
        n := n + 1;
    END LOOP;
    IF broken IS NULL AND NOT anchor_seen THEN
        broken := pg_catalog.jsonb_build_object('broken_at', expect_id,
                                                'reason', 'entries missing up to the anchor');
    END IF;
    IF broken IS NULL AND EXISTS (SELECT 1 FROM datasync.audit_row_values v WHERE v.id >= expect_id) THEN
        broken := pg_catalog.jsonb_build_object('broken_at', expect_id, 'reason', 'row values without their entry');
    END IF;
    RETURN pg_catalog.jsonb_build_object('ok', broken IS NULL, 'entries', n,
                                         'last_id', expect_id - 1, 'last_hash', prev)
           || coalesce(broken, '{}');
END
$$;

CREATE OR REPLACE FUNCTION datasync.verify_audit_log()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT datasync._audit_verify(NULL, NULL)
$$;
COMMENT ON FUNCTION datasync.verify_audit_log() IS
    'check the audit log''s hash chain; reports the first broken link and the anchor (last_id, last_hash) to keep';

CREATE FUNCTION datasync.verify_audit_log(anchor jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hint constant text := 'Pass the result of an earlier verify_audit_log(), or {"last_id": <bigint>, "last_hash": "<hex>"}.';
    a_id bigint;
BEGIN
    IF anchor IS NULL THEN
        RAISE EXCEPTION 'argument "anchor" must not be null' USING ERRCODE = '22004', HINT = hint;
    END IF;
    IF pg_catalog.jsonb_typeof(anchor) <> 'object' THEN
        RAISE EXCEPTION 'invalid audit log anchor: % is not a JSON object', anchor USING ERRCODE = '22023', HINT = hint;
    END IF;
    IF pg_catalog.jsonb_typeof(anchor -> 'last_id') IS DISTINCT FROM 'number'
       OR (anchor ->> 'last_id') !~ '^[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'invalid audit log anchor: "last_id" must be an entry id (an integer of 0 or more), not %',
            coalesce((anchor -> 'last_id')::text, 'missing') USING ERRCODE = '22023', HINT = hint;
    END IF;
    a_id := (anchor ->> 'last_id')::bigint;
    IF pg_catalog.jsonb_typeof(anchor -> 'last_hash') IS DISTINCT FROM 'string'
       OR (a_id = 0 AND anchor ->> 'last_hash' <> '')
       OR (a_id > 0 AND anchor ->> 'last_hash' !~ '^[0-9a-f]{64}$') THEN
        RAISE EXCEPTION 'invalid audit log anchor: "last_hash" must be the hash of entry % (64 hex digits; '''' for entry 0), not %',
            a_id, coalesce((anchor -> 'last_hash')::text, 'missing') USING ERRCODE = '22023', HINT = hint;
    END IF;
    RETURN datasync._audit_verify(a_id, anchor ->> 'last_hash');
END
$$;
COMMENT ON FUNCTION datasync.verify_audit_log(jsonb) IS
    'check the audit log''s hash chain and that it still holds the anchor kept from an earlier verify_audit_log()';

/* ---- privileges ----------------------------------------------------- */

REVOKE ALL ON FUNCTION
    datasync.can_read_values(regclass),
    datasync._can_read_all_values(regclass[]),
    datasync._pipeline_relids(bigint),
    datasync._error_summary(text),
    datasync._error_for_reader(bigint, text),
    datasync._pipeline_error_keep(),
    datasync._job_error_keep(),
    datasync._audit_guard(),
    datasync._audit_split(jsonb),
    datasync._audit_hash_v2(text, bigint, timestamptz, text, text, text, jsonb),
    datasync._audit(text, text, text, jsonb),
    datasync._audit_verify(bigint, text),
    datasync.verify_audit_log(),
    datasync.verify_audit_log(jsonb)
  FROM PUBLIC;
REVOKE ALL ON datasync.job_errors FROM PUBLIC;

-- the policies and views evaluate these as the reading role
GRANT EXECUTE ON FUNCTION
    datasync.can_read_values(regclass),
    datasync._can_read_all_values(regclass[]),
    datasync._pipeline_relids(bigint),
    datasync._error_summary(text),
    datasync._error_for_reader(bigint, text),
    datasync.verify_audit_log(),
    datasync.verify_audit_log(jsonb)
  TO datasync_monitor;
GRANT SELECT ON datasync.job_errors, datasync.audit_row_values TO datasync_monitor;

/* END section 4 */



/* ---------------------------------------------------------------------
 * 5. Batches
 * ---------------------------------------------------------------------
 */

/* END section 5 */



/* ---------------------------------------------------------------------
 * 6. What a newcomer read wrong (issue 16)
 * ---------------------------------------------------------------------
 */

/* a time zone in a schedule: pg_cron 1.4 has no cron.timezone; it runs in GMT */
CREATE OR REPLACE FUNCTION datasync._config_schedule(val jsonb, path text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expr text;
    expr_path text := path;
    tz text;
    f text[];
    result text;
BEGIN
    IF pg_catalog.jsonb_typeof(val) = 'object' THEN
        PERFORM datasync._config_check_keys(val, path, ARRAY['cron', 'timezone']);
        expr := datasync._config_string(val, 'cron', path, true);
        expr_path := path || '.cron';
        tz := datasync._config_string(val, 'timezone', path);
        IF tz IS NOT NULL AND pg_catalog.upper(tz) NOT IN ('UTC', 'ETC/UTC') THEN
            PERFORM datasync._config_error(path || '.timezone', '0A000',
                pg_catalog.format('time zone "%s" is not supported', tz),
                'pg_cron 1.4 runs every schedule in GMT and has no time-zone setting.',
                'Write the cron expression in GMT and leave "timezone" out, or set it to "UTC".');
        END IF;
    ELSIF pg_catalog.jsonb_typeof(val) = 'string' THEN
        expr := val #>> '{}';
    ELSE
        PERFORM datasync._config_error(path, '22023',
            pg_catalog.format('must be a string or an object, not %s',
                              CASE pg_catalog.jsonb_typeof(val) WHEN 'array' THEN 'an array'
                                   ELSE 'a ' || pg_catalog.jsonb_typeof(val) END));
    END IF;

    result := datasync._config_cron(expr);
    IF result IS NULL THEN
        f := pg_catalog.regexp_split_to_array(pg_catalog.btrim(expr, E' \t\n\r'), E'[ \t\n\r]+');
        IF pg_catalog.cardinality(f) = 6 AND f[1] <> '0' THEN
            PERFORM datasync._config_error(expr_path, '22023',
                pg_catalog.format('cron expression "%s" has a seconds field other than 0', expr), NULL,
                'pg_cron runs a schedule at most once a minute: write five fields (minute hour day month weekday), or six with seconds 0.');
        END IF;
        PERFORM datasync._config_error(expr_path, '22023',
            pg_catalog.format('invalid cron expression "%s"', expr), NULL,
            'Write five fields (minute hour day month weekday), for example "*/5 * * * *", or six with seconds 0.');
    END IF;
    RETURN result;
END
$$;

/* END section 6 */

/* ---------------------------------------------------------------------
 * 7. test_target checks a table list before a pipeline exists (issue 16)
 * ---------------------------------------------------------------------
 */
DROP FUNCTION datasync.test_target(text);
CREATE FUNCTION datasync.test_target(name text, tables regclass[] DEFAULT NULL, options jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_test_target'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.test_target(text, regclass[], jsonb) IS 'connect to a target; report version, latency and what its pipelines (or the tables given, with these pipeline options) miss there';
REVOKE ALL ON FUNCTION datasync.test_target(text, regclass[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.test_target(text, regclass[], jsonb) TO datasync_operator;

/* END section 7 */

/* ---------------------------------------------------------------------
 * 8. skip_transaction: pass one source transaction that can never apply
 *    (issue 16)
 * ---------------------------------------------------------------------
 */
ALTER TABLE datasync._pipelines ADD COLUMN skip_lsn pg_lsn;
COMMENT ON COLUMN datasync._pipelines.skip_lsn IS 'commit LSN of a source transaction the worker skips (skip_transaction); cleared once a later one is on the target';

CREATE FUNCTION datasync.skip_transaction(pipeline text, commit_lsn pg_lsn)
RETURNS void
AS 'MODULE_PATHNAME', 'datasync_skip_transaction'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.skip_transaction(text, pg_lsn) IS 'skip the source transaction that committed at commit_lsn (it can never apply); NULL takes the request back';
REVOKE ALL ON FUNCTION datasync.skip_transaction(text, pg_lsn) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.skip_transaction(text, pg_lsn) TO datasync_admin;

CREATE OR REPLACE VIEW datasync.pipelines AS
    SELECT p.name, t.name AS target, p.mode, p.schedule, p.conflict_strategy, p.options,
           p.enabled, p.created_at,
           ARRAY(SELECT pt.relid::regclass FROM datasync._pipeline_tables pt
                  WHERE pt.pipeline_id = p.id ORDER BY pt.relid::regclass::text) AS tables,
           p.skip_lsn
      FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id;

/* END section 8 */

/* ---------------------------------------------------------------------
 * 9. DROP EXTENSION datasync is refused while pipelines exist (issue 16)
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION datasync._extension_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'datasync_extension_drop'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
CREATE EVENT TRIGGER datasync_extension_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION datasync._extension_drop();
ALTER EVENT TRIGGER datasync_extension_drop ENABLE ALWAYS;
REVOKE ALL ON FUNCTION datasync._extension_drop() FROM PUBLIC;

/* END section 9 */

/* ---------------------------------------------------------------------
 * 10. Monitoring (issue 17): rows copied, rejected, the retry queue's
 *     size, lag in time, throughput, commit-to-target latency and the
 *     slot's retained WAL in datasync.status; rows_copied in jobs
 * ---------------------------------------------------------------------
 */
ALTER TABLE datasync.jobs ADD COLUMN rows_copied bigint NOT NULL DEFAULT 0;
DROP VIEW datasync.status;
DROP FUNCTION datasync._worker_stats();
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

/* END section 10 */
