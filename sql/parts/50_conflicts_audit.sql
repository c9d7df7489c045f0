/* ---------------------------------------------------------------------
 * Conflicts and the audit log
 * ---------------------------------------------------------------------
 */
/*
 * One row a conflict the worker detected (every strategy but source-wins,
 * which records only with the option log_conflicts).  Written by the worker
 * before the target commits the batch, keyed by the source change that
 * caused it (change_lsn, change_seq), so a replay after a crash finds the
 * row instead of adding a second one.  A manual conflict stays 'open' until
 * resolve_conflict; later changes to its key join it (changes, source_row,
 * last_change_*).
 */
CREATE TABLE datasync.conflicts (
    id              bigserial PRIMARY KEY,
    pipeline        text NOT NULL,
    "table"         regclass NOT NULL,
    key             jsonb NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('insert_exists', 'update_missing', 'update_differs',
                                                  'delete_missing', 'delete_differs')),
    source_row      jsonb,              -- the latest source version; NULL: deleted
    target_row      jsonb,              -- the target row when detected; NULL: missing
    strategy        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution      text CHECK (resolution IN ('source', 'target')),
    detected_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz,
    resolved_by     text,               -- NULL: resolved by the strategy
    changes         integer NOT NULL DEFAULT 1,  -- source changes it holds
    pipeline_id     bigint NOT NULL,
    target_table    text NOT NULL,      -- quoted target table name
    key_texts       text[] NOT NULL,    -- the worker's form of its key(s)
    change_lsn      pg_lsn NOT NULL,    -- commit LSN of the change's transaction
    change_seq      integer NOT NULL,   -- the change's place in it
    last_change_lsn pg_lsn NOT NULL,
    last_change_seq integer NOT NULL,
    source_commit_at timestamptz,
    CHECK ((status = 'open') = (resolution IS NULL))
);
CREATE UNIQUE INDEX ON datasync.conflicts (pipeline_id, change_lsn, change_seq);
CREATE INDEX ON datasync.conflicts (pipeline_id) WHERE status = 'open';
COMMENT ON TABLE datasync.conflicts IS 'conflicts the sync met, how each was resolved, and the open ones waiting for resolve_conflict';
REVOKE ALL ON datasync.conflicts FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('datasync.conflicts_id_seq', '');

/*
 * Append-only log of manual actions; each entry carries the SHA-256 of the
 * previous one (hash = sha256(prev_hash | id | at | actor | action | object
 * | details)), so verify_audit_log() finds an edited or removed entry.
 */
CREATE TABLE datasync.audit_log (
    id         bigint PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    object     text,
    details    jsonb,
    prev_hash  text NOT NULL,
    hash       text NOT NULL
);
COMMENT ON TABLE datasync.audit_log IS 'append-only record of manual actions, each entry chained to the previous one by SHA-256';
REVOKE ALL ON datasync.audit_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.audit_log', '');

CREATE FUNCTION datasync._audit_hash(prev text, id bigint, at timestamptz, actor text,
                                     action text, object text, details jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.concat_ws('|', prev, id::text,
                             pg_catalog.to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                             actor, action, coalesce(object, ''), coalesce(details::text, '')),
        'UTF8')), 'hex')
$$;

CREATE FUNCTION datasync._audit_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'datasync.audit_log is append-only'
        USING ERRCODE = '42501', HINT = 'Entries are added by datasync''s functions; none is changed or removed.';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON datasync.audit_log
    FOR EACH ROW EXECUTE FUNCTION datasync._audit_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON datasync.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION datasync._audit_guard();

/* append an entry; one writer at a time (the chain needs the previous hash) */
CREATE FUNCTION datasync._audit(actor text, action text, object text, details jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last record;
    nid bigint;
    ts timestamptz := pg_catalog.clock_timestamp();
    prev text;
BEGIN
    LOCK TABLE datasync.audit_log IN SHARE ROW EXCLUSIVE MODE;
    SELECT a.id, a.hash INTO last FROM datasync.audit_log a ORDER BY a.id DESC LIMIT 1;
    nid := coalesce(last.id, 0) + 1;
    prev := coalesce(last.hash, '');
    INSERT INTO datasync.audit_log (id, at, actor, action, object, details, prev_hash, hash)
    VALUES (nid, ts, actor, action, object, details, prev,
            datasync._audit_hash(prev, nid, ts, actor, action, object, details));
    RETURN nid;
END
$$;

CREATE FUNCTION datasync.verify_audit_log()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    prev text := '';
    expect_id bigint := 1;
    n bigint := 0;
BEGIN
    FOR r IN SELECT * FROM datasync.audit_log ORDER BY id LOOP
        IF r.id <> expect_id THEN
            RETURN jsonb_build_object('ok', false, 'entries', n, 'broken_at', expect_id,
                                      'reason', 'entry missing');
        END IF;
        IF r.prev_hash <> prev THEN
            RETURN jsonb_build_object('ok', false, 'entries', n, 'broken_at', r.id,
                                      'reason', 'previous hash does not match');
        END IF;
        IF r.hash <> datasync._audit_hash(r.prev_hash, r.id, r.at, r.actor, r.action, r.object, r.details) THEN
            RETURN jsonb_build_object('ok', false, 'entries', n, 'broken_at', r.id,
                                      'reason', 'entry was changed');
        END IF;
        prev := r.hash;
        expect_id := r.id + 1;
        n := n + 1;
    END LOOP;
    RETURN jsonb_build_object('ok', true, 'entries', n);
END
$$;
COMMENT ON FUNCTION datasync.verify_audit_log() IS 'check the audit log''s hash chain; reports the first broken link';

CREATE FUNCTION datasync.resolve_conflict(id bigint, resolution text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_resolve_conflict'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.resolve_conflict(bigint, text) IS 'resolve an open conflict: ''source'' applies the latest source version, ''target'' keeps the target row';

CREATE FUNCTION datasync.sync_now(name text, timeout interval DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_sync_now'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.sync_now(text, interval) IS 'run a sync now, wait for it (NULL timeout: until done) and return its outcome';

CREATE FUNCTION datasync.create_job(name text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'datasync_create_job'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.create_job(text) IS 'queue a sync run of a pipeline and return its job id at once';

CREATE FUNCTION datasync.job_status(id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_job_status'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.job_status(bigint) IS 'a job''s status and outcome';

CREATE FUNCTION datasync._scheduled_run(pipeline_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_scheduled_run'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync._scheduled_run(bigint) IS 'what the pg_cron job of a scheduled pipeline runs (internal)';

CREATE VIEW datasync.pipelines AS
    SELECT p.name, t.name AS target, p.mode, p.schedule, p.conflict_strategy, p.options,
           p.enabled, p.created_at,
           ARRAY(SELECT pt.relid::regclass FROM datasync._pipeline_tables pt
                  WHERE pt.pipeline_id = p.id ORDER BY pt.relid::regclass::text) AS tables
      FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id;
COMMENT ON VIEW datasync.pipelines IS 'pipelines and their tables';

