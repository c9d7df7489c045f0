/* ---------------------------------------------------------------------
 * Row values and error texts
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
 *     Writes are rewritten by triggers on _pipelines (below) and jobs
 *     (40_jobs), so the C code that writes and reads them (worker,
 *     job_status, sync_now) needs no change and cannot leak the text.
 *   - the audit log (55_audit): row values of an entry's details (its
 *     "key", "source_row", ... members) go to datasync.audit_row_values,
 *     under the same policy as conflicts; the entry keeps "(withheld)" in
 *     their place.  The hash covers the whole entry, values included.
 *   - NOTIFY datasync_events (src/worker/jobs.c) carries ids, states and
 *     counts.
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

-- the policies and views evaluate these as the reading role
REVOKE ALL ON FUNCTION
    datasync.can_read_values(regclass),
    datasync._can_read_all_values(regclass[]),
    datasync._pipeline_relids(bigint),
    datasync._error_summary(text),
    datasync._error_for_reader(bigint, text),
    datasync._pipeline_error_keep()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    datasync.can_read_values(regclass),
    datasync._can_read_all_values(regclass[]),
    datasync._pipeline_relids(bigint),
    datasync._error_summary(text),
    datasync._error_for_reader(bigint, text)
  TO datasync_monitor;
