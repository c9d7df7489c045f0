--
-- jobs: sync_now, create_job, job_status, datasync.jobs on a manual
-- pipeline (docs/modes-and-jobs.md, "Jobs"; docs/sql-reference.md,
-- "sync_now, create_job, job_status"), and their bad inputs.
-- pg_cron is not loaded in this instance: scheduled pipelines are refused.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

CREATE TABLE job_items (id int PRIMARY KEY, "wért" text);
INSERT INTO job_items VALUES (1, 'copied'), (2, 'copied');

CREATE DATABASE ds_jobs_target;
\c ds_jobs_target
CREATE TABLE job_items (id int PRIMARY KEY, "wért" text);
\c contrib_regression

SELECT format('host=%s port=%s dbname=ds_jobs_target',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS tdsn \gset
SELECT datasync.create_target('jobs_tgt', :'tdsn');
SELECT datasync.create_pipeline('Jöbs "manual"', 'jobs_tgt', ARRAY['job_items']::regclass[], mode => 'manual');

-- nothing runs before the first call
SELECT pg_sleep(1);
SELECT name, mode, state, worker_pid IS NULL AS no_worker FROM datasync.status WHERE name = 'Jöbs "manual"';
SELECT count(*) FROM datasync.jobs;

-- the first run copies, later ones apply what was committed before them
SELECT j->>'status' AS status, j->>'kind' AS kind, j->>'pipeline' AS pipeline,
       (j->>'rows_applied')::int AS rows, j->>'error' AS error,
       (j->>'duration_ms')::float8 >= 0 AS has_duration
  FROM datasync.sync_now('Jöbs "manual"') j;
INSERT INTO job_items VALUES (3, 'streamed');
UPDATE job_items SET "wért" = 'updated' WHERE id = 1;
DELETE FROM job_items WHERE id = 2;
SELECT j->>'status' AS status, j->'rows_inserted' AS ins, j->'rows_updated' AS upd,
       j->'rows_deleted' AS del, j->'rows_applied' AS rows, j->'transactions' AS txns
  FROM datasync.sync_now('Jöbs "manual"', '5 min') j;
\c ds_jobs_target
SELECT * FROM job_items ORDER BY id;
\c contrib_regression

-- create_job: an id at once; job_status follows it to the end
SELECT datasync.create_job('Jöbs "manual"') AS jid \gset
SELECT datasync.job_status(:jid)->>'status' IN ('queued', 'running', 'succeeded') AS known;
DO $$
BEGIN
  FOR i IN 1 .. 600 LOOP
    EXIT WHEN (SELECT status FROM datasync.jobs ORDER BY id DESC LIMIT 1) = 'succeeded'
          AND (SELECT count(*) FROM datasync.jobs) = 3;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT datasync.job_status(:jid)->>'status' AS status, datasync.job_status(:jid)->>'kind' AS kind;
SELECT id = :jid AS is_last, kind, status, rows_applied, requested_by = current_user AS by_me,
       finished_at >= started_at AS ordered
  FROM datasync.jobs ORDER BY id DESC LIMIT 1;
SELECT kind, status, count(*) FROM datasync.jobs GROUP BY 1, 2 ORDER BY 1, 2;

-- bad inputs
SELECT ds_try($$SELECT datasync.sync_now(NULL)$$);
SELECT ds_try($$SELECT datasync.sync_now('no such pipeline')$$);
SELECT ds_try($$SELECT datasync.sync_now('Jöbs "manual"', '-1 s')$$);
SELECT ds_try($$SELECT datasync.create_job(NULL)$$);
SELECT ds_try($$SELECT datasync.create_job('')$$);
SELECT ds_try($$SELECT datasync.create_job('no such pipeline')$$);
SELECT ds_try($$SELECT datasync.job_status(NULL)$$);
SELECT ds_try($$SELECT datasync.job_status(-1)$$);
SELECT ds_try($$SELECT datasync.job_status(9223372036854775807)$$);

-- a pipeline changed in this transaction: the worker could not see it
BEGIN;
SELECT datasync.alter_pipeline('Jöbs "manual"', '{"batch_size": 100}');
SELECT ds_try($$SELECT datasync.sync_now('Jöbs "manual"')$$);
ROLLBACK;

-- paused: refused, with a hint
SELECT datasync.pause('Jöbs "manual"');
SELECT ds_try($$SELECT datasync.sync_now('Jöbs "manual"')$$);
SELECT ds_try($$SELECT datasync.create_job('Jöbs "manual"')$$);
SELECT state FROM datasync.status WHERE name = 'Jöbs "manual"';
SELECT datasync.resume('Jöbs "manual"');

-- scheduled needs pg_cron in this database (not loaded here)
SELECT ds_try($$SELECT datasync.alter_pipeline('Jöbs "manual"', '{"mode": "scheduled", "schedule": "* * * * *"}')$$);
SELECT mode, schedule FROM datasync.pipelines WHERE name = 'Jöbs "manual"';

-- privileges: operators run jobs, monitors read datasync.jobs only
CREATE ROLE ds_jobs_monitor;
GRANT datasync_monitor TO ds_jobs_monitor;
SET ROLE ds_jobs_monitor;
SELECT count(*) > 0 AS can_read FROM datasync.jobs;
SELECT ds_try($$SELECT datasync.create_job('Jöbs "manual"')$$);
SELECT ds_try($$SELECT datasync.job_status(1)$$);
SELECT ds_try($$DELETE FROM datasync.jobs$$);
RESET ROLE;
DROP ROLE ds_jobs_monitor;

-- clean up: dropping the pipeline leaves its job history
SELECT datasync.drop_pipeline('Jöbs "manual"');
SELECT datasync.drop_target('jobs_tgt');
SELECT count(*) AS jobs_kept FROM datasync.jobs;
DELETE FROM datasync.jobs;
DROP DATABASE ds_jobs_target WITH (FORCE);
DROP TABLE job_items;
