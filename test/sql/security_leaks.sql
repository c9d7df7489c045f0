--
-- security_leaks: row values reach only roles that may read their table
-- (datasync.conflicts, datasync.status.last_error, datasync.jobs.error,
-- the audit log's row values, resolve_conflict), and the audit log refuses
-- changes under every session_replication_role and can be checked against
-- a kept anchor (issue 14, findings 7 and 8).  NOTIFY payloads: TAP test
-- 130_leaks_audit.pl.
--
-- Every row value below contains "SECRET", so a leak is easy to look for.
-- The attacker, ds_lk_mallory, is an ordinary LOGIN role with
-- datasync_operator (and so datasync_monitor) but no SELECT on the tables.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- the SQLSTATE of a statement, or 'ok'
CREATE FUNCTION ds_state(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- the message, detail and hint of a statement's error, or 'ok'
CREATE FUNCTION ds_error_text(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    detail text;
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN concat_ws(' | ', SQLSTATE, msg, detail, hint);
END
$$;

CREATE ROLE ds_lk_mallory LOGIN IN ROLE datasync_operator;
CREATE ROLE ds_lk_reader LOGIN IN ROLE datasync_operator;
CREATE ROLE ds_lk_colreader LOGIN IN ROLE datasync_monitor;
CREATE ROLE ds_lk_bypass LOGIN BYPASSRLS IN ROLE datasync_monitor;

CREATE TABLE lk_conf (id int PRIMARY KEY, v text);
CREATE TABLE lk_err (id int PRIMARY KEY, v text);
CREATE TABLE lk_other (id int PRIMARY KEY, v text);
INSERT INTO lk_conf VALUES (1, 'SECRET one'), (2, 'SECRET two');
GRANT SELECT ON lk_conf, lk_err TO ds_lk_reader, ds_lk_bypass;
GRANT SELECT (id) ON lk_conf, lk_err TO ds_lk_colreader;

CREATE DATABASE ds_leaks_target;
\c ds_leaks_target
CREATE TABLE lk_conf (id int PRIMARY KEY, v text);
CREATE TABLE lk_err (id int PRIMARY KEY, v text);
-- the target refuses some rows with an error that quotes the row
CREATE FUNCTION lk_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.v LIKE 'refuse%' THEN
        RAISE EXCEPTION 'row (%, %) is refused here', NEW.id, NEW.v USING ERRCODE = '42P17';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER lk_refuse BEFORE INSERT OR UPDATE ON lk_err FOR EACH ROW EXECUTE FUNCTION lk_refuse();
ALTER TABLE lk_err ENABLE ALWAYS TRIGGER lk_refuse;
\c contrib_regression

SELECT format('host=%s port=%s dbname=ds_leaks_target',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS tdsn \gset
SELECT datasync.create_target('lk_tgt', :'tdsn');

--
-- can_read_values: the one rule
--
SET ROLE ds_lk_mallory;
SELECT datasync.can_read_values('lk_conf') AS mallory_conf, datasync.can_read_values('lk_other') AS mallory_other;
SET ROLE ds_lk_reader;
SELECT datasync.can_read_values('lk_conf') AS reader_conf, datasync.can_read_values('lk_other') AS reader_other,
       datasync.can_read_values(NULL) AS null_table, datasync.can_read_values(0) AS no_table;
SET ROLE ds_lk_colreader;
SELECT datasync.can_read_values('lk_conf') AS column_reader_conf;
SET ROLE ds_lk_bypass;
SELECT datasync.can_read_values('lk_conf') AS bypassrls_conf, datasync.can_read_values('lk_other') AS bypassrls_other;
RESET ROLE;
SELECT datasync.can_read_values('lk_conf') AS superuser, datasync.can_read_values(0) AS superuser_no_table;
-- row-level security on the table: only its owner and BYPASSRLS roles
ALTER TABLE lk_conf ENABLE ROW LEVEL SECURITY;
SET ROLE ds_lk_reader;
SELECT datasync.can_read_values('lk_conf') AS reader_under_rls;
SET ROLE ds_lk_bypass;
SELECT datasync.can_read_values('lk_conf') AS bypassrls_under_rls;
RESET ROLE;
ALTER TABLE lk_conf DISABLE ROW LEVEL SECURITY;
-- not for PUBLIC
SELECT has_function_privilege('public', 'datasync.can_read_values(regclass)', 'EXECUTE') AS public_may_call;

--
-- datasync.conflicts: rows only for roles that may read their table
--
SELECT datasync.create_pipeline('lk_conf', 'lk_tgt', ARRAY['lk_conf']::regclass[], conflict_strategy => 'manual',
                                options => '{"replica_identity_full": true}');
SELECT datasync.wait_for_sync('lk_conf', '60 s');
\c ds_leaks_target
UPDATE lk_conf SET v = 'SECRET target' WHERE id = 1;
\c contrib_regression
UPDATE lk_conf SET v = 'SECRET source' WHERE id = 1;
SELECT datasync.wait_for_sync('lk_conf', '60 s');
SELECT id AS cid FROM datasync.conflicts WHERE pipeline = 'lk_conf' AND status = 'open' \gset
SELECT kind, key, source_row->>'v' AS source_v, target_row->>'v' AS target_v
  FROM datasync.conflicts WHERE id = :cid;
SET ROLE ds_lk_mallory;
SELECT count(*) AS mallory_sees FROM datasync.conflicts;
SELECT count(*) AS mallory_sees_by_id FROM datasync.conflicts WHERE id = :cid;
SELECT name, open_conflicts FROM datasync.status WHERE name = 'lk_conf';
-- a leaky function in the query does not get to see hidden rows
CREATE FUNCTION pg_temp.lk_peek(r jsonb) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN
    RAISE NOTICE 'peeked at %', r;
    RETURN true;
END
$$;
SELECT count(*) AS peeked FROM datasync.conflicts WHERE pg_temp.lk_peek(source_row);
-- nor does resolving it
SELECT replace(ds_try(format($$SELECT datasync.resolve_conflict(%s, 'target')$$, :cid)), :'cid', 'N') AS resolve;
SET ROLE ds_lk_colreader;
SELECT count(*) AS column_reader_sees FROM datasync.conflicts;
SET ROLE ds_lk_reader;
SELECT kind, key, source_row->>'v' AS source_v FROM datasync.conflicts WHERE id = :cid;
RESET ROLE;
-- under row-level security of the table, the reader sees no conflict either
ALTER TABLE lk_conf ENABLE ROW LEVEL SECURITY;
SET ROLE ds_lk_reader;
SELECT count(*) AS reader_sees_under_rls FROM datasync.conflicts;
SELECT replace(ds_try(format($$SELECT datasync.resolve_conflict(%s, 'target')$$, :cid)), :'cid', 'N') AS resolve;
RESET ROLE;
ALTER TABLE lk_conf DISABLE ROW LEVEL SECURITY;
-- the reader resolves it
SET ROLE ds_lk_reader;
SELECT r->>'status' AS status, r->'source_row'->>'v' AS source_v
  FROM datasync.resolve_conflict(:cid, 'source') r;
RESET ROLE;

--
-- the audit log: the entry shows no row value; its values are in
-- datasync.audit_row_values, for the roles that may read the table
--
SELECT max(id) AS aid FROM datasync.audit_log WHERE action = 'resolve_conflict' \gset
SELECT actor, object = 'conflict ' || :cid AS object_ok, details - 'table' AS details,
       details::text LIKE '%SECRET%' AS leaks
  FROM datasync.audit_log WHERE id = :aid;
SELECT "table", "values"->'source_row'->>'v' AS source_v FROM datasync.audit_row_values WHERE id = :aid;
SET ROLE ds_lk_mallory;
SELECT count(*) AS leaks FROM datasync.audit_log a WHERE a::text LIKE '%SECRET%';
SELECT count(*) AS mallory_sees_values FROM datasync.audit_row_values;
SELECT count(*) AS peeked FROM datasync.audit_row_values WHERE pg_temp.lk_peek("values");
SET ROLE ds_lk_reader;
SELECT "values"->'key' AS key FROM datasync.audit_row_values WHERE id = :aid;
RESET ROLE;
DROP FUNCTION pg_temp.lk_peek(jsonb);
SELECT (v->>'ok')::boolean AS ok, (v->>'last_id')::bigint = :aid AS anchor_is_last FROM datasync.verify_audit_log() v;

--
-- error texts: a target error that quotes a row
--
SELECT datasync.create_pipeline('lk_err', 'lk_tgt', ARRAY['lk_err']::regclass[], mode => 'manual');
SELECT j->>'status' AS status FROM datasync.sync_now('lk_err') j;
INSERT INTO lk_err VALUES (7, 'refuse SECRET seven');
-- a superuser may read every table of the pipeline: the whole text
SELECT j->>'status' AS status, j->>'error' LIKE '%refuse SECRET seven%' AS whole_text
  FROM datasync.sync_now('lk_err') j;
SELECT ds_wait_for($$EXISTS (SELECT FROM datasync.jobs WHERE pipeline = 'lk_err' AND status = 'failed')
                     AND (SELECT state = 'error' FROM datasync.status WHERE name = 'lk_err')$$) AS failed;
SELECT id AS jid FROM datasync.jobs WHERE pipeline = 'lk_err' AND status = 'failed' \gset
SELECT state, last_error LIKE '%refused here%' AS whole_text, last_error LIKE '%SECRET%' AS has_value
  FROM datasync.status WHERE name = 'lk_err';
SELECT error LIKE '%SECRET%' AS leaks FROM datasync.jobs WHERE id = :jid;
SELECT error LIKE '%row (7, refuse SECRET seven) is refused here' AS whole_text FROM datasync.job_errors WHERE id = :jid;
SELECT datasync.job_status(:jid)::text LIKE '%SECRET%' AS job_status_whole_text;
-- the attacker: no value anywhere
SET ROLE ds_lk_mallory;
SELECT state, last_error LIKE '%SECRET%' AS leaks, last_error FROM datasync.status WHERE name = 'lk_err';
SELECT count(*) AS leaks FROM datasync.status s WHERE s::text LIKE '%SECRET%';
SELECT count(*) AS leaks FROM datasync.jobs j WHERE j::text LIKE '%SECRET%';
SELECT count(*) AS leaks FROM datasync.job_errors j WHERE j::text LIKE '%SECRET%';
SELECT count(*) AS failed_jobs_seen FROM datasync.job_errors WHERE id = :jid;
SELECT datasync.job_status(:jid)::text LIKE '%SECRET%' AS job_status_leaks;
SELECT ds_error_text($$SELECT datasync.sync_now('lk_err')$$) AS sync_now_error;
SELECT ds_error_text($$SELECT datasync.create_job('lk_err')$$) LIKE '%SECRET%' AS create_job_leaks;
-- the private tables stay private
SELECT ds_state($$SELECT * FROM datasync._job_errors$$) AS job_errors_table,
       ds_state($$SELECT * FROM datasync._pipeline_errors$$) AS pipeline_errors_table;
-- and writing them is not a way in either
SELECT ds_state($$UPDATE datasync.jobs SET error = 'x'$$) AS update_jobs;
SET ROLE ds_lk_colreader;
SELECT last_error LIKE '%SECRET%' AS leaks FROM datasync.status WHERE name = 'lk_err';
SET ROLE ds_lk_reader;
SELECT last_error LIKE '%row (7, refuse SECRET seven) is refused here' AS whole_text
  FROM datasync.status WHERE name = 'lk_err';
SELECT error LIKE '%SECRET%' AS whole_text FROM datasync.job_errors WHERE id = :jid;
RESET ROLE;
-- a pipeline's error needs every table of the pipeline
SELECT datasync.add_table('lk_err', 'lk_other');
SET ROLE ds_lk_reader;
SELECT last_error LIKE '%SECRET%' AS leaks FROM datasync.status WHERE name = 'lk_err';
SELECT error LIKE '%SECRET%' AS leaks FROM datasync.job_errors WHERE id = :jid;
RESET ROLE;
-- fixed and resumed: the error and its whole text are gone
\c ds_leaks_target
DROP TRIGGER lk_refuse ON lk_err;
CREATE TABLE lk_other (id int PRIMARY KEY, v text);
\c contrib_regression
SELECT datasync.resume('lk_err');
SELECT j->>'status' AS status FROM datasync.sync_now('lk_err') j;
SELECT ds_wait_for($$(SELECT last_error IS NULL FROM datasync.status WHERE name = 'lk_err')$$) AS no_error;
SELECT count(*) AS kept FROM datasync._pipeline_errors
 WHERE pipeline_id = (SELECT id FROM datasync._pipelines WHERE name = 'lk_err');
-- a job's whole text goes with its row
SELECT count(*) AS kept_before FROM datasync._job_errors WHERE job_id = :jid;
DELETE FROM datasync.jobs WHERE id = :jid;
SELECT count(*) AS kept_after FROM datasync._job_errors WHERE job_id = :jid;

--
-- the audit log refuses changes under every session_replication_role
--
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('datasync.audit_log'::regclass, 'datasync.audit_row_values'::regclass) AND NOT tgisinternal
 ORDER BY 1;
SET session_replication_role = replica;
SELECT ds_state($$UPDATE datasync.audit_log SET actor = 'someone else'$$) AS "update",
       ds_state($$DELETE FROM datasync.audit_log$$) AS "delete",
       ds_state($$TRUNCATE datasync.audit_log$$) AS "truncate",
       ds_state($$UPDATE datasync.audit_row_values SET "values" = '{}'$$) AS update_values,
       ds_state($$DELETE FROM datasync.audit_row_values$$) AS delete_values,
       ds_state($$TRUNCATE datasync.audit_row_values$$) AS truncate_values;
SET session_replication_role = local;
SELECT ds_state($$UPDATE datasync.audit_log SET actor = 'someone else'$$) AS "update",
       ds_state($$DELETE FROM datasync.audit_log$$) AS "delete",
       ds_state($$TRUNCATE datasync.audit_log$$) AS "truncate",
       ds_state($$UPDATE datasync.audit_row_values SET "values" = '{}'$$) AS update_values,
       ds_state($$DELETE FROM datasync.audit_row_values$$) AS delete_values,
       ds_state($$TRUNCATE datasync.audit_row_values$$) AS truncate_values;
RESET session_replication_role;
SELECT ds_state($$UPDATE datasync.audit_log SET actor = 'someone else'$$) AS "update",
       ds_state($$DELETE FROM datasync.audit_log$$) AS "delete",
       ds_state($$TRUNCATE datasync.audit_log$$) AS "truncate",
       ds_state($$UPDATE datasync.audit_row_values SET "values" = '{}'$$) AS update_values,
       ds_state($$DELETE FROM datasync.audit_row_values$$) AS delete_values,
       ds_state($$TRUNCATE datasync.audit_row_values$$) AS truncate_values;
-- a role that was given the table and the parameter fares no better
GRANT UPDATE, DELETE, TRUNCATE ON datasync.audit_log TO ds_lk_mallory;
GRANT SET ON PARAMETER session_replication_role TO ds_lk_mallory;
SET ROLE ds_lk_mallory;
SET session_replication_role = replica;
SELECT ds_state($$UPDATE datasync.audit_log SET actor = 'someone else'$$) AS "update",
       ds_state($$DELETE FROM datasync.audit_log$$) AS "delete",
       ds_state($$TRUNCATE datasync.audit_log$$) AS "truncate";
-- nor can it switch the guard off or around it
SELECT ds_state($$ALTER TABLE datasync.audit_log DISABLE TRIGGER audit_log_append_only$$) AS disable_trigger,
       ds_state($$ALTER TABLE datasync.audit_log ENABLE REPLICA TRIGGER audit_log_append_only$$) AS replica_trigger,
       ds_state($$CREATE RULE lk_no_delete AS ON DELETE TO datasync.audit_log DO INSTEAD NOTHING$$) AS create_rule,
       ds_state($$SELECT datasync._audit('ds_lk_mallory', 'x', NULL, NULL)$$) AS write_entry;
RESET session_replication_role;
RESET ROLE;
REVOKE UPDATE, DELETE, TRUNCATE ON datasync.audit_log FROM ds_lk_mallory;
REVOKE SET ON PARAMETER session_replication_role FROM ds_lk_mallory;
SELECT (v->>'ok')::boolean AS ok FROM datasync.verify_audit_log() v;

--
-- the anchor: verify_audit_log() returns it; verify_audit_log(anchor)
-- finds a truncated tail and a rewritten chain
--
SELECT datasync._audit('ds_lk_test', 'test', 'entry 1', '{"n": 1}') AS e1 \gset
SELECT set_config('lk.e1', :'e1', false) IS NOT NULL AS set;
SELECT datasync.verify_audit_log() AS anchor \gset
SELECT (:'anchor'::jsonb) ?& ARRAY['ok', 'entries', 'last_id', 'last_hash'] AS has_keys,
       (:'anchor'::jsonb ->> 'last_id')::bigint = :e1 AS last_id_ok,
       :'anchor'::jsonb ->> 'last_hash' = (SELECT hash FROM datasync.audit_log WHERE id = :e1) AS last_hash_ok;
SELECT v->'ok' AS ok, v ? 'broken_at' AS broken FROM datasync.verify_audit_log(:'anchor') v;
-- later entries keep the anchor valid
SELECT datasync._audit('ds_lk_test', 'test', 'entry 2', jsonb_build_object('table', 'public.lk_conf', 'key', '{"id": 2}'::jsonb)) AS e2 \gset
SELECT datasync._audit('ds_lk_test', 'test', 'entry|3', '{"n": 3}') AS e3 \gset
SELECT v->'ok' AS ok FROM datasync.verify_audit_log(:'anchor') v;
-- a superuser cuts the tail: the chain alone looks intact, the anchor does not
CREATE TEMP TABLE lk_saved AS SELECT * FROM datasync.audit_log WHERE id >= :e1;
CREATE TEMP TABLE lk_saved_values AS SELECT * FROM datasync.audit_row_values WHERE id >= :e1;
ALTER TABLE datasync.audit_log DISABLE TRIGGER audit_log_append_only;
ALTER TABLE datasync.audit_row_values DISABLE TRIGGER audit_row_values_append_only;
DELETE FROM datasync.audit_row_values WHERE id >= :e1;
DELETE FROM datasync.audit_log WHERE id >= :e1;
SELECT v->'ok' AS ok, (v->>'last_id')::bigint = :e1 - 1 AS shorter FROM datasync.verify_audit_log() v;
SELECT v->'ok' AS ok, v->>'reason' AS reason, (v->>'broken_at')::bigint = :e1 AS broken_at_anchor
  FROM datasync.verify_audit_log(:'anchor') v;
INSERT INTO datasync.audit_log SELECT * FROM lk_saved;
INSERT INTO datasync.audit_row_values SELECT * FROM lk_saved_values;
SELECT v->'ok' AS ok FROM datasync.verify_audit_log(:'anchor') v;
-- ... or rewrites the chain from the anchor on, hashes and all
DO $$
DECLARE
    r record;
    prev text;
    h text;
BEGIN
    SELECT coalesce(max(hash), '') INTO prev FROM datasync.audit_log WHERE id = current_setting('lk.e1')::bigint - 1;
    FOR r IN SELECT a.*, v."values" FROM datasync.audit_log a LEFT JOIN datasync.audit_row_values v USING (id)
              WHERE a.id >= current_setting('lk.e1')::bigint ORDER BY a.id LOOP
        h := datasync._audit_hash_v2(prev, r.id, r.at, 'someone else', r.action, r.object,
                                     coalesce(r.details || r."values", r.details));
        UPDATE datasync.audit_log SET actor = 'someone else', prev_hash = prev, hash = h WHERE id = r.id;
        prev := h;
    END LOOP;
END
$$;
SELECT v->'ok' AS ok, v->>'reason' AS reason FROM datasync.verify_audit_log() v;
SELECT v->'ok' AS ok, v->>'reason' AS reason, (v->>'broken_at')::bigint = :e1 AS broken_at_anchor
  FROM datasync.verify_audit_log(:'anchor') v;
UPDATE datasync.audit_log a SET actor = s.actor, hash = s.hash, prev_hash = s.prev_hash
  FROM lk_saved s WHERE s.id = a.id;
SELECT v->'ok' AS ok FROM datasync.verify_audit_log(:'anchor') v;
-- ... or takes row values away from an entry, or moves them to another one
DELETE FROM datasync.audit_row_values WHERE id = :e2;
SELECT v->'ok' AS ok, v->>'reason' AS reason, (v->>'broken_at')::bigint = :e2 AS broken_at_e2
  FROM datasync.verify_audit_log() v;
INSERT INTO datasync.audit_row_values SELECT * FROM lk_saved_values WHERE id = :e2;
UPDATE datasync.audit_row_values SET id = :e3 WHERE id = :e2;
SELECT v->'ok' AS ok, v->>'reason' AS reason, (v->>'broken_at')::bigint = :e2 AS broken_at_e2
  FROM datasync.verify_audit_log() v;
UPDATE datasync.audit_row_values SET id = :e2 WHERE id = :e3;
-- ... or shifts a "|" from one field to the next (version 1 of the hash joined them with "|")
UPDATE datasync.audit_log SET action = 'test|entry', object = '3' WHERE id = :e3;
SELECT datasync._audit_hash(prev_hash, id, at, actor, action, object, details) =
       datasync._audit_hash(prev_hash, id, at, 'ds_lk_test', 'test', 'entry|3', details) AS same_v1_input
  FROM datasync.audit_log WHERE id = :e3;
SELECT v->'ok' AS ok, v->>'reason' AS reason, (v->>'broken_at')::bigint = :e3 AS broken_at_e3
  FROM datasync.verify_audit_log() v;
UPDATE datasync.audit_log a SET actor = s.actor, action = s.action, object = s.object
  FROM lk_saved s WHERE s.id = a.id AND a.id = :e3;
ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE datasync.audit_row_values ENABLE ALWAYS TRIGGER audit_row_values_append_only;
SELECT v->'ok' AS ok FROM datasync.verify_audit_log(:'anchor') v;
-- the empty anchor (before the first entry) always holds
SELECT v->'ok' AS ok FROM datasync.verify_audit_log('{"last_id": 0, "last_hash": ""}') v;
-- a monitor checks too
SET ROLE ds_lk_mallory;
SELECT v->'ok' AS ok FROM datasync.verify_audit_log(:'anchor') v;
RESET ROLE;
-- bad anchors
SELECT ds_try($$SELECT datasync.verify_audit_log(NULL)$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('[1, 2]')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": "5", "last_hash": ""}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": -1, "last_hash": ""}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": 1.5, "last_hash": ""}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": 99999999999999999999, "last_hash": ""}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": 1}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": 1, "last_hash": "not a hash"}')$$);
SELECT ds_try($$SELECT datasync.verify_audit_log('{"last_id": 0, "last_hash": "abc"}')$$);
-- an anchor beyond the end: entries are missing
SELECT v->'ok' AS ok, v->>'reason' AS reason
  FROM datasync.verify_audit_log(jsonb_build_object('last_id', :e3 + 100, 'last_hash', repeat('0', 64))) v;

--
-- Clean up
--
SELECT datasync.drop_pipeline('lk_conf');
SELECT datasync.drop_pipeline('lk_err');
SELECT datasync.drop_target('lk_tgt');
DELETE FROM datasync.conflicts WHERE pipeline = 'lk_conf';
DELETE FROM datasync.jobs WHERE pipeline = 'lk_err';
DROP DATABASE ds_leaks_target WITH (FORCE);
DROP TABLE lk_conf, lk_err, lk_other;
DROP ROLE ds_lk_mallory, ds_lk_reader, ds_lk_colreader, ds_lk_bypass;
DROP FUNCTION ds_state(text);
DROP FUNCTION ds_error_text(text);
