/* ---------------------------------------------------------------------
 * Audit log
 * ---------------------------------------------------------------------
 */
/*
 * Append-only log of configuration changes and manual actions; each entry
 * carries the SHA-256 of the previous one (_audit_hash_v2 below; entries
 * written by 0.1 keep _audit_hash), so verify_audit_log() finds an edited
 * or removed entry.  Row values of an entry's details are kept apart, in
 * datasync.audit_row_values (below).  The guards fire under every
 * session_replication_role, and verify_audit_log() returns an anchor
 * (last_id, last_hash) that verify_audit_log(anchor) checks, so a truncated
 * tail or a rewritten chain is found by whoever kept the anchor.
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

/* version 1 of an entry's hash: the fields joined with "|" (entries written by 0.1) */
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

/* append-only under every session_replication_role */
CREATE FUNCTION datasync._audit_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = '42501', HINT = 'Entries are added by datasync''s functions; none is changed or removed.';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON datasync.audit_log
    FOR EACH ROW EXECUTE FUNCTION datasync._audit_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON datasync.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION datasync._audit_guard();
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

CREATE FUNCTION datasync.verify_audit_log()
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

REVOKE ALL ON FUNCTION
    datasync._audit_hash(text, bigint, timestamptz, text, text, text, jsonb),
    datasync._audit_guard(),
    datasync._audit_split(jsonb),
    datasync._audit_hash_v2(text, bigint, timestamptz, text, text, text, jsonb),
    datasync._audit(text, text, text, jsonb),
    datasync._audit_verify(bigint, text),
    datasync.verify_audit_log(),
    datasync.verify_audit_log(jsonb)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.verify_audit_log(), datasync.verify_audit_log(jsonb) TO datasync_monitor;
GRANT SELECT ON datasync.audit_log, datasync.audit_row_values TO datasync_monitor;
