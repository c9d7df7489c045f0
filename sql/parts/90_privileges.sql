/* ---------------------------------------------------------------------
 * Privileges: nothing for PUBLIC; admin configures, operator runs,
 * monitor reads.
 * ---------------------------------------------------------------------
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA datasync FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA datasync FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    datasync.create_target(text, text, jsonb),
    datasync.alter_target(text, jsonb),
    datasync.drop_target(text),
    datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb),
    datasync.alter_pipeline(text, jsonb),
    datasync.drop_pipeline(text),
    datasync.add_table(text, regclass),
    datasync.remove_table(text, regclass),
    datasync.resync_table(text, regclass)
  TO datasync_admin;

GRANT EXECUTE ON FUNCTION
    datasync.test_target(text),
    datasync.pause(text),
    datasync.resume(text),
    datasync.wait_for_sync(text, interval),
    datasync.sync_now(text, interval),
    datasync.create_job(text),
    datasync.job_status(bigint),
    datasync.resolve_conflict(bigint, text)
  TO datasync_operator;

GRANT EXECUTE ON FUNCTION
    datasync._mask_dsn(text),
    datasync._worker_stats()
  TO datasync_monitor;

GRANT SELECT ON datasync.targets, datasync.pipelines, datasync.status, datasync.jobs,
    datasync.conflicts, datasync.audit_log TO datasync_monitor;
GRANT EXECUTE ON FUNCTION datasync.verify_audit_log() TO datasync_monitor;
