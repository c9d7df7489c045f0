--
-- conflicts: the options of the strategies, datasync.conflicts,
-- resolve_conflict and the audit log (docs/conflicts.md; docs/sql-reference.md,
-- "Conflicts"), with a manual pipeline end to end on a second database,
-- and the bad inputs of each.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- waits until the pipeline applied everything committed so far
CREATE FUNCTION ds_synced(p text) RETURNS boolean LANGUAGE sql AS
$$ SELECT datasync.wait_for_sync(p, '60 s') $$;

CREATE TABLE "Kön flikt" (id int PRIMARY KEY, "wért" text, ts timestamptz);
CREATE TABLE cf_default (id int PRIMARY KEY, v text);
INSERT INTO "Kön flikt" VALUES (1, 'one', '2020-01-01'), (2, 'two', '2020-01-01'), (3, 'three', '2020-01-01');

CREATE DATABASE ds_conflict_target;
\c ds_conflict_target
CREATE TABLE "Kön flikt" (id int PRIMARY KEY, "wért" text, ts timestamptz);
CREATE TABLE cf_default (id int PRIMARY KEY, v text);
\c contrib_regression

SELECT format('host=%s port=%s dbname=ds_conflict_target',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS tdsn \gset
SELECT datasync.create_target('cf_tgt', :'tdsn');

-- detection needs REPLICA IDENTITY FULL: refused, or set with consent
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => 'manual')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['cf_default']::regclass[], options => '{"log_conflicts": true}')$$);
SELECT relname, relreplident FROM pg_class WHERE relname IN ('Kön flikt', 'cf_default') ORDER BY 1;
SELECT count(*) AS pipelines FROM datasync.pipelines;

-- options: bad shapes and values
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => 'newest-wins')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => NULL)$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"log_conflicts": "yes"}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"replica_identity_full": 1}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"timestamp_column": 5}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"timestamp_column": ""}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"table_conflict_strategy": "manual"}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], options => '{"table_conflict_strategy": {"public.Kön flikt": "oldest-wins"}}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => 'latest-timestamp', options => '{"timestamp_column": "no_such_column", "replica_identity_full": true}')$$);
SELECT relreplident FROM pg_class WHERE relname = 'Kön flikt';

-- consent from a role that does not own the table: refused
CREATE ROLE ds_cf_admin;
GRANT datasync_admin TO ds_cf_admin;
GRANT SELECT ON "Kön flikt" TO ds_cf_admin;
SELECT datasync.grant_target('cf_tgt', 'ds_cf_admin');
SET ROLE ds_cf_admin;
SELECT ds_try($$SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => 'manual', options => '{"replica_identity_full": true}')$$);
RESET ROLE;

-- the owner consents: the pipeline sets REPLICA IDENTITY FULL
SELECT datasync.create_pipeline('cf', 'cf_tgt', ARRAY['"Kön flikt"']::regclass[], conflict_strategy => 'MANUAL',
                                options => '{"replica_identity_full": true}');
SELECT relreplident FROM pg_class WHERE relname = 'Kön flikt';
SELECT name, conflict_strategy FROM datasync.pipelines;
SELECT ds_synced('cf');

-- an added table is checked the same way
SELECT ds_try($$SELECT datasync.add_table('cf', 'cf_default')$$);
-- and a strategy change (then back to manual; JSON null removes an option)
SELECT ds_try($$SELECT datasync.alter_pipeline('cf', '{"conflict_strategy": "source-wins", "log_conflicts": true, "table_conflict_strategy": {"cf_default": "target-wins"}}')$$);
SELECT conflict_strategy, options FROM datasync.pipelines;
SELECT datasync.alter_pipeline('cf', '{"conflict_strategy": "manual", "log_conflicts": null, "table_conflict_strategy": null}');
SELECT conflict_strategy, options FROM datasync.pipelines;
-- the worker starts a new session with it
SELECT ds_synced('cf'), pg_sleep(1);

-- a conflict: the target changed the row, then the source does
\c ds_conflict_target
UPDATE "Kön flikt" SET "wért" = 'target' WHERE id = 1;
\c contrib_regression
UPDATE "Kön flikt" SET "wért" = 'source 1' WHERE id = 1;
UPDATE "Kön flikt" SET "wért" = 'source 2' WHERE id = 1;
INSERT INTO "Kön flikt" VALUES (4, 'four', '2020-01-01');
SELECT ds_synced('cf');
SELECT pipeline, "table", key, kind, source_row->>'wért' AS source_wert, target_row->>'wért' AS target_wert,
       strategy, status, resolution, resolved_by, changes
  FROM datasync.conflicts ORDER BY id;
SELECT name, conflicts, open_conflicts FROM datasync.status;
\c ds_conflict_target
SELECT id, "wért" FROM "Kön flikt" ORDER BY id;
\c contrib_regression

-- resolve: bad inputs first
SELECT id AS cid FROM datasync.conflicts WHERE key = '{"id": 1}' \gset
SELECT ds_try($$SELECT datasync.resolve_conflict(NULL, 'source')$$);
SELECT ds_try(format($$SELECT datasync.resolve_conflict(%s, NULL)$$, :cid));
SELECT ds_try(format($$SELECT datasync.resolve_conflict(%s, 'both')$$, :cid));
SELECT ds_try($$SELECT datasync.resolve_conflict(-1, 'source')$$);
SELECT ds_try($$SELECT datasync.resolve_conflict(9223372036854775807, 'target')$$);

-- a monitor reads the conflicts of the tables it may read, and may not resolve them
CREATE ROLE ds_cf_monitor;
GRANT datasync_monitor TO ds_cf_monitor;
SET ROLE ds_cf_monitor;
SELECT count(*) AS visible FROM datasync.conflicts;
RESET ROLE;
GRANT SELECT ON "Kön flikt" TO ds_cf_monitor;
SET ROLE ds_cf_monitor;
SELECT count(*) AS visible FROM datasync.conflicts;
SELECT ds_try(format($$SELECT datasync.resolve_conflict(%s, 'source')$$, :cid));
RESET ROLE;

-- an operator resolves the conflicts of the tables it may read:
-- 'source' applies the latest source version
CREATE ROLE ds_cf_operator;
GRANT datasync_operator TO ds_cf_operator;
SET ROLE ds_cf_operator;
SELECT ds_try(format($$SELECT datasync.resolve_conflict(%s, 'source')$$, :cid));
RESET ROLE;
GRANT SELECT ON "Kön flikt" TO ds_cf_operator;
SET ROLE ds_cf_operator;
SELECT r->>'status' AS status, r->>'resolution' AS resolution, r->>'resolved_by' AS resolved_by,
       r->'source_row'->>'wért' AS applied
  FROM datasync.resolve_conflict(:cid, 'Source') r;
SELECT ds_try(format($$SELECT datasync.resolve_conflict(%s, 'target')$$, :cid));
RESET ROLE;
\c ds_conflict_target
SELECT id, "wért" FROM "Kön flikt" ORDER BY id;
\c contrib_regression

-- after resolving, the key flows again
UPDATE "Kön flikt" SET "wért" = 'source 3' WHERE id = 1;
SELECT ds_synced('cf');
\c ds_conflict_target
SELECT id, "wért" FROM "Kön flikt" WHERE id = 1;
-- a second conflict, resolved for the target (a delete that met a changed row)
UPDATE "Kön flikt" SET "wért" = 'target 2' WHERE id = 2;
\c contrib_regression
DELETE FROM "Kön flikt" WHERE id = 2;
SELECT ds_synced('cf');
SELECT id AS cid2, kind, source_row IS NULL AS deleted_at_source FROM datasync.conflicts WHERE key = '{"id": 2}' \gset
SELECT :'kind' AS kind, :'deleted_at_source' AS deleted_at_source;
SELECT r->>'resolution' AS resolution FROM datasync.resolve_conflict(:cid2, 'target') r;
\c ds_conflict_target
SELECT id, "wért" FROM "Kön flikt" ORDER BY id;
\c contrib_regression
SELECT status, resolution, count(*) FROM datasync.conflicts GROUP BY 1, 2 ORDER BY 1, 2;
SELECT name, open_conflicts FROM datasync.status;

-- the audit log: one entry per resolution (among those of every
-- configuration change), chained, append-only
SELECT actor, action, object = 'conflict ' || (CASE details->>'resolution' WHEN 'source' THEN :cid ELSE :cid2 END) AS object_ok,
       details->>'resolution' AS resolution, length(hash) AS hash_len
  FROM datasync.audit_log WHERE action = 'resolve_conflict' ORDER BY id;
SELECT v->'ok' AS ok, (v->>'entries')::bigint = (SELECT count(*) FROM datasync.audit_log) AS every_entry,
       (v->>'last_id')::bigint = (SELECT max(id) FROM datasync.audit_log) AS last_id,
       v->>'last_hash' = (SELECT hash FROM datasync.audit_log ORDER BY id DESC LIMIT 1) AS anchor_hash
  FROM datasync.verify_audit_log() v;
SELECT ds_try($$UPDATE datasync.audit_log SET actor = 'someone else'$$);
SELECT ds_try($$DELETE FROM datasync.audit_log$$);
SELECT ds_try($$TRUNCATE datasync.audit_log$$);
SET ROLE ds_cf_operator;
SELECT ds_try($$INSERT INTO datasync.audit_log VALUES (3, now(), 'x', 'x', NULL, NULL, '', '')$$);
RESET ROLE;
-- a superuser who gets round the trigger is found out
SELECT actor AS actor1 FROM datasync.audit_log WHERE id = 1 \gset
ALTER TABLE datasync.audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE datasync.audit_log SET actor = 'someone else' WHERE id = 1;
SELECT v - 'last_hash' AS verify_audit_log FROM datasync.verify_audit_log() v;
-- (and put back, for the tests after this one)
UPDATE datasync.audit_log SET actor = :'actor1' WHERE id = 1;
ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
SELECT v->'ok' AS ok FROM datasync.verify_audit_log() v;

-- clean up: dropping the pipeline keeps its conflicts
SELECT datasync.drop_pipeline('cf');
SELECT datasync.drop_target('cf_tgt');
SELECT count(*) AS conflicts_kept FROM datasync.conflicts;
DELETE FROM datasync.conflicts;
DROP DATABASE ds_conflict_target WITH (FORCE);
DROP TABLE "Kön flikt", cf_default;
DROP ROLE ds_cf_admin;
DROP ROLE ds_cf_monitor;
DROP ROLE ds_cf_operator;
DROP FUNCTION ds_synced(text);
