--
-- security_api: the SQL API checks the role that called it; who may use a
-- target; mapped targets in system schemas; row-level security; tables
-- dropped under a pipeline; the audit log of every configuration change
-- (issue 14, findings 3, 4, 5, 6, 8 and 11; docs/security.md, "What runs as
-- whom" and "Roles and who may do what").
--
-- The attackers are ordinary roles (ds_mallory, a datasync_admin), never
-- superusers.  Pipelines are created paused (in one transaction), so no
-- worker runs here.  Every secret contains "SECRET".
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

SELECT format('host=%s port=%s dbname=contrib_regression',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS local_dsn \gset
SELECT coalesce(max(id), 0) AS audit_start FROM datasync.audit_log \gset

CREATE ROLE ds_mallory LOGIN IN ROLE datasync_admin;
CREATE ROLE ds_alice LOGIN IN ROLE datasync_admin;
CREATE ROLE ds_oper LOGIN IN ROLE datasync_operator;
CREATE ROLE ds_bypass LOGIN BYPASSRLS IN ROLE datasync_admin;
CREATE ROLE ds_team;
GRANT ds_team TO ds_alice;

CREATE SCHEMA mal AUTHORIZATION ds_mallory;
CREATE TABLE api_a (id int PRIMARY KEY, v text);
CREATE TABLE api_b (id int PRIMARY KEY, v text);
CREATE TABLE api_c (id int PRIMARY KEY, v text);
GRANT SELECT ON api_a, api_b, api_c TO ds_mallory, ds_alice, ds_bypass;

--
-- No C function of the API is SECURITY DEFINER any more: each one checks
-- its caller, and runs its catalog work as the extension's owner.
--
SELECT p.oid::regprocedure AS secdef
  FROM pg_proc p
 WHERE p.pronamespace = 'datasync'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT count(*) AS c_functions_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'datasync'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
   AND p.proname NOT IN ('_mask_dsn', '_worker_stats')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp');

--
-- Finding 4: the role checked is the caller, not the outer user.  A
-- SECURITY DEFINER wrapper of ds_mallory's, run by a superuser, makes a
-- target owned by ds_mallory: it must authenticate with a password, and it
-- may not name a server environment variable.
--
SET ROLE ds_mallory;
CREATE FUNCTION mal.mallory_wrapper(dsn text) RETURNS void LANGUAGE sql SECURITY DEFINER
AS $$ SELECT datasync.create_target('wrapped', dsn) $$;
CREATE FUNCTION mal.mallory_env_wrapper() RETURNS void LANGUAGE sql SECURITY DEFINER
AS $$ SELECT datasync.create_target('wrapped_env', 'host=db.invalid', '{"password_env": "HOME"}') $$;
CREATE FUNCTION mal.mallory_alter_wrapper(dsn text) RETURNS void LANGUAGE sql SECURITY DEFINER
AS $$ SELECT datasync.alter_target('wrapped', jsonb_build_object('dsn', dsn)) $$;
RESET ROLE;
SELECT mal.mallory_wrapper(:'local_dsn');
SELECT name, owner FROM datasync.targets WHERE name = 'wrapped';
SELECT r->>'ok' AS ok, r->>'error' AS error FROM datasync.test_target('wrapped') r;
SELECT ds_try($$SELECT mal.mallory_env_wrapper()$$);
SELECT mal.mallory_alter_wrapper(:'local_dsn' || ' application_name=x');
SELECT name, owner FROM datasync.targets WHERE name = 'wrapped';
-- the same through SET ROLE: the current role is the caller
SET ROLE ds_mallory;
SELECT datasync.create_target('set_role_tgt', 'host=db.invalid dbname=x password=malSECRET');
RESET ROLE;
SELECT name, owner FROM datasync.targets WHERE name = 'set_role_tgt';

--
-- Finding 3: a superuser's target is not every admin's.  Who may use a
-- target is recorded (owner, grantees) and enforced.
--
SELECT datasync.create_target('su_tgt', :'local_dsn');
SELECT name, owner, grantees FROM datasync.targets WHERE name = 'su_tgt';
BEGIN;
SELECT datasync.create_pipeline('su_pipe', 'su_tgt', ARRAY['api_a']::regclass[]);
SELECT datasync.pause('su_pipe');
COMMIT;
SET ROLE ds_mallory;
SELECT n, ds_try(sql) FROM (VALUES
    (1, $$SELECT datasync.create_pipeline('mal_pipe', 'su_tgt', ARRAY['api_b']::regclass[])$$),
    (2, $$SELECT datasync.test_target('su_tgt')$$),
    (3, $$SELECT datasync.alter_target('su_tgt', '{"description": "mine now"}')$$),
    (4, $$SELECT datasync.alter_target('su_tgt', '{"dsn": "host=db.invalid"}')$$),
    (5, $$SELECT datasync.drop_target('su_tgt')$$),
    (6, $$SELECT datasync.grant_target('su_tgt', 'ds_mallory')$$),
    (7, $$SELECT datasync.revoke_target('su_tgt', 'ds_mallory')$$),
    (8, $$SELECT datasync.alter_pipeline('su_pipe', '{"table_map": {"api_a": "api_a_copy"}}')$$),
    (9, $$SELECT datasync.add_table('su_pipe', 'api_b')$$),
    (10, $$SELECT datasync.remove_table('su_pipe', 'api_a')$$),
    (11, $$SELECT datasync.resync_table('su_pipe', 'api_a')$$),
    (12, $$SELECT datasync.drop_pipeline('su_pipe')$$),
    (13, $$SELECT datasync.apply_config('{"pipelines": [{"name": "mal_pipe", "target": "su_tgt", "tables": ["api_b"]}]}')$$),
    (14, $$SELECT datasync._config_target_dsn_is('su_tgt', 'host=x password=guessSECRET')$$)
  ) v(n, sql) ORDER BY n;
-- what she may see of it: the view, not the DSN's secrets
SELECT name, owner FROM datasync.targets WHERE name = 'su_tgt';
-- an operator runs pipelines but needs the use of a target to test it
SET ROLE ds_oper;
SELECT ds_try($$SELECT datasync.test_target('su_tgt')$$);
SELECT datasync.pause('su_pipe');
RESET ROLE;
SELECT count(*) AS pipelines_of_mallory FROM datasync.pipelines WHERE name = 'mal_pipe';
SELECT count(*) AS su_pipe_tables FROM datasync.pipelines WHERE name = 'su_pipe' AND tables = ARRAY['api_a'::regclass];

-- granted (to a group role): its members may use it, not change it
SELECT datasync.grant_target('su_tgt', 'ds_team');
SELECT datasync.grant_target('su_tgt', 'ds_team');
SELECT name, owner, grantees FROM datasync.targets WHERE name = 'su_tgt';
SET ROLE ds_alice;
BEGIN;
SELECT datasync.create_pipeline('alice_pipe', 'su_tgt', ARRAY['api_b']::regclass[]);
SELECT datasync.pause('alice_pipe');
COMMIT;
SELECT datasync.alter_pipeline('alice_pipe', '{"batch_size": 100}');
SELECT ds_try($$SELECT datasync.alter_target('su_tgt', '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync.grant_target('su_tgt', 'ds_mallory')$$);
RESET ROLE;
SET ROLE ds_mallory;
SELECT ds_try($$SELECT datasync.alter_pipeline('alice_pipe', '{"batch_size": 1}')$$);
RESET ROLE;
-- revoked: no more changes through it
SELECT datasync.revoke_target('su_tgt', 'ds_team');
SELECT datasync.revoke_target('su_tgt', 'ds_team');
SET ROLE ds_alice;
SELECT ds_try($$SELECT datasync.alter_pipeline('alice_pipe', '{"batch_size": 200}')$$);
RESET ROLE;
-- bad arguments
SELECT ds_try($$SELECT datasync.grant_target('su_tgt', NULL)$$);
SELECT ds_try($$SELECT datasync.grant_target(NULL, 'ds_team')$$);
SELECT ds_try($$SELECT datasync.grant_target('no_such_target', 'ds_team')$$);
SELECT ds_try($$SELECT datasync.grant_target('su_tgt', 'no_such_role')$$);
SELECT ds_try($$SELECT datasync.grant_target('su_tgt', 0)$$);
SELECT has_function_privilege('ds_oper', 'datasync.grant_target(text, regrole)', 'EXECUTE') AS operator_may_grant;

-- her own target is hers: she may use, change and lend it; a superuser may too
SET ROLE ds_mallory;
SELECT datasync.alter_target('set_role_tgt', '{"description": "mine"}');
SELECT datasync._config_target_dsn_is('set_role_tgt', 'host=db.invalid dbname=x password=malSECRET') AS same_dsn;
SELECT datasync._config_target_dsn_is('set_role_tgt', 'host=db.invalid dbname=x password=guess') AS same_dsn;
SELECT datasync.grant_target('set_role_tgt', 'ds_alice');
RESET ROLE;
SELECT name, owner, grantees FROM datasync.targets WHERE name = 'set_role_tgt';
SELECT datasync.alter_target('set_role_tgt', '{"description": "seen by a superuser"}');
-- an admin's target is no other admin's either: lent to ds_alice, not to ds_bypass
SET ROLE ds_alice;
SELECT r->>'ok' AS ok FROM datasync.test_target('set_role_tgt') r;
SELECT ds_try($$SELECT datasync.alter_target('set_role_tgt', '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync._config_target_dsn_is('set_role_tgt', 'host=db.invalid dbname=x password=malSECRET')$$);
SET ROLE ds_bypass;
SELECT ds_try($$SELECT datasync.create_pipeline('byp_pipe', 'set_role_tgt', ARRAY['api_c']::regclass[])$$);
SELECT ds_try($$SELECT datasync.test_target('set_role_tgt')$$);
RESET ROLE;

--
-- Finding 3: system catalogs (and other system schemas) of the target,
-- and datasync's progress table there, are never a mapped target: refused
-- when set, by every path that sets them
--
CREATE FUNCTION try_map(opts text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text := ds_try(format($f$SELECT datasync.create_pipeline('map_pipe', 'su_tgt', ARRAY['api_c']::regclass[], options => %L)$f$, opts));
BEGIN
    IF r = 'ok' THEN
        PERFORM datasync.drop_pipeline('map_pipe');
    END IF;
    RETURN r;
END
$$;
SELECT n, try_map(opts)
  FROM (VALUES
    (1, '{"table_map": {"api_c": "pg_catalog.pg_authid"}}'),
    (2, '{"table_map": {"public.api_c": "PG_CATALOG.pg_authid"}}'),
    (3, '{"table_map": {"api_c": "\"pg_catalog\".\"pg_class\""}}'),
    (4, '{"table_map": {"api_c": "information_schema.sql_features"}}'),
    (5, '{"table_map": {"api_c": "pg_toast.pg_toast_1260"}}'),
    (6, '{"table_map": {"api_c": "pg_temp.t"}}'),
    (7, '{"table_map": {"api_c": "pg_temp_3.t"}}'),
    (8, '{"table_map": {"api_c": "pg_toast_temp_3.t"}}'),
    (9, '{"table_map": {"api_c": "public.datasync_progress"}}'),
    (10, '{"target_schema": "pg_catalog"}'),
    (11, '{"target_schema": "information_schema"}'),
    (12, '{"target_schema": "pg_toast"}'),
    (13, '{"table_map": {"api_c": "a.b.c"}}'),
    (14, '{"table_map": {"api_c": "\"unclosed"}}'),
    (15, '{"table_map": {"api_c": "x..y"}}'),
    (16, '{"table_map": {"api_c": "\"\".t"}}'),
    (17, '{"table_map": {"api_c": "\"PG_CATALOG\".pg_authid"}}'),
    (18, '{"table_map": {"api_c": "archive.\"API C\""}}')
  ) v(n, opts) ORDER BY n;
-- through alter_pipeline and apply_config, too
SELECT ds_try($$SELECT datasync.alter_pipeline('su_pipe', '{"table_map": {"api_a": "pg_catalog.pg_authid"}}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('su_pipe', '{"target_schema": "pg_catalog"}')$$);
SELECT ds_try($$SELECT datasync.apply_config('{"pipelines": [{"name": "su_pipe", "target": "su_tgt", "tables": ["api_a"],
                                                              "options": {"table_map": {"api_a": "pg_catalog.pg_auth_members"}}}]}')$$);
SELECT options FROM datasync.pipelines WHERE name = 'su_pipe';
-- a source table whose name falls on the progress table
CREATE TABLE public.datasync_progress (id int PRIMARY KEY);
SELECT ds_try($$SELECT datasync.add_table('su_pipe', 'public.datasync_progress')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('prog_pipe', 'su_tgt', ARRAY['public.datasync_progress']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('prog_pipe', 'su_tgt', ARRAY['public.datasync_progress']::regclass[],
                                                options => '{"target_schema": "archive"}')$$);
SELECT datasync.drop_pipeline('prog_pipe');
DROP TABLE public.datasync_progress;
-- a catalog row written before these checks (as 0.1 could): refused where used
UPDATE datasync._pipelines SET options = '{"table_map": {"api_a": "pg_catalog.pg_authid"}}' WHERE name = 'su_pipe';
SELECT r->>'ok' AS ok, r->>'error' AS error FROM datasync.test_target('su_tgt') r;
UPDATE datasync._pipelines SET options = '{}' WHERE name = 'su_pipe';
-- test_target flags a target whose login role is a superuser
SELECT r->>'ok' AS ok, r->'superuser' AS superuser, r ? 'role' AS has_role FROM datasync.test_target('su_tgt') r;

--
-- Finding 5: row-level security.  SELECT is not enough for a table with
-- RLS: the copy and the stream would send rows the caller cannot see.
--
CREATE TABLE api_rls (id int PRIMARY KEY, owner_name text);
ALTER TABLE api_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON api_rls USING (owner_name = current_user);
GRANT SELECT ON api_rls TO ds_mallory, ds_bypass;
INSERT INTO api_rls VALUES (1, 'ds_mallory'), (2, 'someone else');
SELECT datasync.grant_target('su_tgt', 'ds_mallory');
SELECT datasync.grant_target('su_tgt', 'ds_bypass');
SET ROLE ds_mallory;
SELECT count(*) AS rows_mallory_sees FROM api_rls;
SELECT n, ds_try(sql) FROM (VALUES
    (1, $$SELECT datasync.create_pipeline('rls_pipe', 'su_tgt', ARRAY['api_rls']::regclass[])$$),
    (2, $$SELECT datasync.create_pipeline('rls_pipe', 'su_tgt', ARRAY['api_b', 'api_rls']::regclass[])$$),
    (3, $$SELECT datasync.add_table('su_pipe', 'api_rls')$$),
    (4, $$SELECT datasync.apply_config('{"pipelines": [{"name": "rls_pipe", "target": "su_tgt", "tables": ["api_rls"]}]}')$$),
    (5, $$SELECT datasync.apply_config('{"pipelines": [{"name": "su_pipe", "target": "su_tgt", "tables": ["api_a", "api_rls"]}]}')$$)
  ) v(n, sql) ORDER BY n;
-- her own table with RLS: she sees every row (unless FORCE ROW LEVEL SECURITY)
CREATE TABLE mal.mal_rls (id int PRIMARY KEY, v text);
ALTER TABLE mal.mal_rls ENABLE ROW LEVEL SECURITY;
BEGIN;
SELECT datasync.create_pipeline('mal_rls_pipe', 'su_tgt', ARRAY['mal.mal_rls']::regclass[]);
SELECT datasync.pause('mal_rls_pipe');
COMMIT;
ALTER TABLE mal.mal_rls FORCE ROW LEVEL SECURITY;
SELECT ds_try($$SELECT datasync.remove_table('mal_rls_pipe', 'mal.mal_rls')$$);
SELECT ds_try($$SELECT datasync.add_table('mal_rls_pipe', 'mal.mal_rls')$$);
RESET ROLE;
-- a role with BYPASSRLS, and a superuser, may
SET ROLE ds_bypass;
SELECT datasync.add_table('mal_rls_pipe', 'api_rls');
RESET ROLE;
SELECT datasync.add_table('su_pipe', 'api_rls');
-- who added each table is recorded (the worker checks again as that role)
SELECT p.name, pt.relid::regclass AS "table", pt.added_by::regrole AS added_by
  FROM datasync._pipeline_tables pt JOIN datasync._pipelines p ON p.id = pt.pipeline_id
 WHERE p.name IN ('su_pipe', 'alice_pipe', 'mal_rls_pipe')
 ORDER BY 1, 2::text COLLATE "C";

--
-- Finding 6: a table dropped under a pipeline.  With the event trigger on,
-- the table leaves the pipeline at once, reported and audited.
--
BEGIN;
SELECT datasync.create_pipeline('drop_pipe', 'su_tgt', ARRAY['api_b', 'api_c']::regclass[],
                                conflict_strategy => 'source-wins', options => '{"log_conflicts": false}');
SELECT datasync.pause('drop_pipe');
COMMIT;
CREATE TABLE api_gone (id int PRIMARY KEY);
SELECT datasync.add_table('drop_pipe', 'api_gone');
DROP TABLE api_gone;
SELECT name, tables FROM datasync.pipelines WHERE name = 'drop_pipe';
-- dropped while the trigger is off (or by 0.1): every function copes
ALTER EVENT TRIGGER datasync_table_dropped DISABLE;
CREATE TABLE api_gone (id int PRIMARY KEY, ts timestamptz);
SELECT datasync.add_table('drop_pipe', 'api_gone');
SELECT 'api_gone'::regclass::oid AS gone_oid \gset
DROP TABLE api_gone;
ALTER EVENT TRIGGER datasync_table_dropped ENABLE ALWAYS;
SELECT count(*) AS dangling FROM datasync._pipeline_tables WHERE relid = :gone_oid;
SELECT datasync.alter_pipeline('drop_pipe', jsonb_build_object('table_conflict_strategy', jsonb_build_object('api_b', 'target-wins'),
                                                               'replica_identity_full', true));
SELECT datasync.alter_pipeline('drop_pipe', '{"conflict_strategy": "latest-timestamp", "timestamp_column": {"api_b": "v"}}');
SELECT datasync.alter_pipeline('drop_pipe', '{"conflict_strategy": "source-wins", "timestamp_column": null, "table_conflict_strategy": null}');
SELECT r->>'ok' AS ok, r->'missing' @> jsonb_build_array(jsonb_build_object('kind', 'dropped table', 'name', :'gone_oid')) AS reports_dropped
  FROM datasync.test_target('su_tgt') r;
SELECT ds_try(format($$SELECT datasync.resync_table('drop_pipe', %s)$$, :gone_oid)) = format('42P01: table with OID %s of pipeline "drop_pipe" was dropped', :gone_oid) AS resync_refused;
SELECT ds_try(format($$SELECT datasync.add_table('drop_pipe', %s)$$, :gone_oid)) = format('42P01: relation with OID %s does not exist', :gone_oid) AS add_refused;
SELECT jsonb_pretty(datasync.export_config() -> 'pipelines') LIKE '%api_gone%' AS exported;
-- applying the export removes the dropped table cleanly
SELECT (datasync.apply_config(datasync.export_config()) -> 'actions') @> '[{"action": "remove_table", "pipeline": "drop_pipe"}]' AS removed;
SELECT count(*) AS dangling FROM datasync._pipeline_tables WHERE relid = :gone_oid;
-- and remove_table itself, by OID
ALTER EVENT TRIGGER datasync_table_dropped DISABLE;
CREATE TABLE api_gone (id int PRIMARY KEY);
SELECT datasync.add_table('drop_pipe', 'api_gone');
SELECT 'api_gone'::regclass::oid AS gone_oid \gset
DROP TABLE api_gone;
ALTER EVENT TRIGGER datasync_table_dropped ENABLE ALWAYS;
SELECT datasync.remove_table('drop_pipe', :gone_oid);
SELECT ds_try(format($$SELECT datasync.remove_table('drop_pipe', %s)$$, :gone_oid)) = format('42704: table "%s" is not in pipeline "drop_pipe"', :gone_oid) AS removed_once;
SELECT name, tables FROM datasync.pipelines WHERE name = 'drop_pipe';
SELECT pubname, count(*) FROM pg_publication_tables WHERE pubname = 'datasync_drop_pipe' GROUP BY 1;
-- DROP SCHEMA ... CASCADE takes a table out of its pipeline too
CREATE SCHEMA api_s;
CREATE TABLE api_s.t (id int PRIMARY KEY);
SELECT datasync.add_table('drop_pipe', 'api_s.t');
DROP SCHEMA api_s CASCADE;
SELECT name, tables FROM datasync.pipelines WHERE name = 'drop_pipe';

--
-- Finding 11: table_map values are checked when set, not when the worker
-- meets them (above), and apply_config's errors name no secret
--
SELECT ds_try($$SELECT datasync.apply_config('{"targetSystem": {"name": "cfg-secret", "connectionString": "host=db.invalid",
    "auth": {"credentials": {"password": "pwSECRETpw"}}}, "pipelines": [{"name": "x", "tables": ["no_such_table"]}]}')$$) AS error;

--
-- Finding 8: every configuration change and manual action is audited,
-- with the calling role, secrets masked
--
SELECT id - :audit_start AS n, actor, action, object,
       regexp_replace((details - 'session_user' - 'targets' - 'pipelines' - 'actions' - 'dsn')::text, '"[0-9]+"', '"<oid>"') AS details,
       details ? 'dsn' AS has_dsn, details ? 'session_user' AS via_set_role
  FROM datasync.audit_log WHERE id > :audit_start ORDER BY id;
SELECT count(*) AS audit_leaks FROM datasync.audit_log WHERE id > :audit_start AND details::text LIKE '%SECRET%';

--
-- Clean up
--
SELECT datasync.drop_pipeline(name) FROM datasync.pipelines
 WHERE name IN ('su_pipe', 'alice_pipe', 'mal_rls_pipe', 'drop_pipe') ORDER BY name COLLATE "C";
SELECT datasync.drop_target(name) FROM datasync.targets
 WHERE name IN ('wrapped', 'set_role_tgt', 'su_tgt') ORDER BY name COLLATE "C";
SELECT count(*) FROM datasync.targets;
SELECT count(*) FROM datasync.pipelines;
DROP SCHEMA mal CASCADE;
DROP TABLE api_a, api_b, api_c, api_rls;
DROP FUNCTION try_map(text);
DROP ROLE ds_mallory, ds_alice, ds_oper, ds_bypass, ds_team;
