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
                       (pg_catalog.date_part('epoch', finished_at - started_at) * 1000) STORED
);
CREATE INDEX ON datasync.jobs (pipeline_id, id);
COMMENT ON TABLE datasync.jobs IS 'every run of a pipeline (sync_now, create_job, pg_cron) and its outcome';
REVOKE ALL ON datasync.jobs FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.jobs', '');

