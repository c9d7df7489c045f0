/* ---------------------------------------------------------------------
 * Runs (jobs): sync_now, create_job, and pg_cron's scheduled runs.  The
 * worker writes a run's row when it starts it and when it ends; a run
 * still queued is known only to shared memory (job_status reports it).
 * ---------------------------------------------------------------------
 */
CREATE TABLE datasync.jobs (
    id             bigint PRIMARY KEY,  -- handed out by create_job/sync_now, in order
    pipeline_id    bigint NOT NULL,
    pipeline       text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('manual', 'api', 'scheduled')),
    status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    requested_by   text,
    requested_at   timestamptz NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    upto_lsn       pg_lsn NOT NULL,     -- the run applies everything committed before it
    rows_applied   bigint GENERATED ALWAYS AS (rows_inserted + rows_updated + rows_deleted) STORED,
    rows_inserted  bigint NOT NULL DEFAULT 0,
    rows_updated   bigint NOT NULL DEFAULT 0,
    rows_deleted   bigint NOT NULL DEFAULT 0,
    transactions   bigint NOT NULL DEFAULT 0,
    conflicts      bigint NOT NULL DEFAULT 0,
    rejected       bigint NOT NULL DEFAULT 0,
    errors         bigint NOT NULL DEFAULT 0,  -- transient errors retried during the run
    error          text,                       -- why it failed
    duration_ms    double precision GENERATED ALWAYS AS
                       (pg_catalog.date_part('epoch', finished_at - started_at) * 1000) STORED,
    rows_copied    bigint NOT NULL DEFAULT 0   -- 0.2; rows of the copies the run made
);
CREATE INDEX ON datasync.jobs (pipeline_id, id);
COMMENT ON TABLE datasync.jobs IS 'every run of a pipeline (sync_now, create_job, pg_cron) and its outcome';
REVOKE ALL ON datasync.jobs FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.jobs', '');

CREATE FUNCTION datasync.sync_now(name text, timeout interval DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_sync_now'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.sync_now(text, interval) IS 'run a sync now, wait for it (NULL timeout: until done) and return its outcome';

CREATE FUNCTION datasync.create_job(name text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'datasync_create_job'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_job(text) IS 'queue a sync run of a pipeline and return its job id at once';

CREATE FUNCTION datasync.job_status(id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_job_status'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.job_status(bigint) IS 'a job''s status and outcome';

CREATE FUNCTION datasync._scheduled_run(pipeline_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_scheduled_run'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync._scheduled_run(bigint) IS 'what the pg_cron job of a scheduled pipeline runs (internal)';

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

CREATE VIEW datasync.job_errors AS
    SELECT j.id, j.pipeline, j.finished_at,
           datasync._error_for_reader(j.pipeline_id, coalesce(e.error, j.error)) AS error
      FROM datasync.jobs j
      LEFT JOIN datasync._job_errors e ON e.job_id = j.id
     WHERE j.error IS NOT NULL;
COMMENT ON VIEW datasync.job_errors IS
    'why each failed job failed; the text only for roles that may read every table of its pipeline';

REVOKE ALL ON FUNCTION
    datasync.sync_now(text, interval),
    datasync.create_job(text),
    datasync.job_status(bigint),
    datasync._scheduled_run(bigint),
    datasync._job_error_keep()
  FROM PUBLIC;
REVOKE ALL ON datasync.job_errors FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    datasync.sync_now(text, interval),
    datasync.create_job(text),
    datasync.job_status(bigint)
  TO datasync_operator;
GRANT SELECT ON datasync.jobs, datasync.job_errors TO datasync_monitor;
