--
-- security: privileges of the datasync roles, SECURITY DEFINER hygiene,
-- and secrets (docs/security.md; docs/sql-reference.md, "Roles and privileges").
--
-- Every secret below contains "SECRET", so a leak is easy to look for.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

--
-- The roles
--
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
  FROM pg_roles WHERE rolname LIKE 'datasync\_%' ORDER BY rolname COLLATE "C";
SELECT r.rolname AS role, m.rolname AS member_of
  FROM pg_auth_members am
  JOIN pg_roles r ON r.oid = am.member
  JOIN pg_roles m ON m.oid = am.roleid
 WHERE r.rolname LIKE 'datasync\_%' ORDER BY r.rolname COLLATE "C", m.rolname COLLATE "C";

CREATE ROLE ds_nobody;
CREATE ROLE ds_mon IN ROLE datasync_monitor;
CREATE ROLE ds_op IN ROLE datasync_operator;
CREATE ROLE ds_adm IN ROLE datasync_admin;

--
-- No datasync function is executable by PUBLIC
--
SELECT count(*) > 0 AS has_functions FROM pg_proc WHERE pronamespace = 'datasync'::regnamespace;
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace = 'datasync'::regnamespace
   AND (has_function_privilege('ds_nobody', p.oid, 'EXECUTE')
        OR p.proacl IS NULL
        OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
 ORDER BY p.oid::regprocedure::text COLLATE "C";
-- nor is any table or view readable by PUBLIC
SELECT c.oid::regclass AS readable_by_public
  FROM pg_class c
 WHERE c.relnamespace = 'datasync'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND has_table_privilege('ds_nobody', c.oid, 'SELECT')
 ORDER BY c.oid::regclass::text COLLATE "C";

-- the SQL API, role by role
SELECT f AS function,
       has_function_privilege('ds_mon', f, 'EXECUTE') AS monitor,
       has_function_privilege('ds_op', f, 'EXECUTE') AS operator,
       has_function_privilege('ds_adm', f, 'EXECUTE') AS admin
  FROM unnest(ARRAY[
         'datasync.create_target(text, text, jsonb)',
         'datasync.alter_target(text, jsonb)',
         'datasync.drop_target(text)',
         'datasync.test_target(text, regclass[], jsonb)',
         'datasync.create_pipeline(text, text, regclass[], text, text, text, jsonb)',
         'datasync.alter_pipeline(text, jsonb)',
         'datasync.drop_pipeline(text)',
         'datasync.add_table(text, regclass)',
         'datasync.remove_table(text, regclass)',
         'datasync.resync_table(text, regclass)',
         'datasync.pause(text)',
         'datasync.resume(text)',
         'datasync.wait_for_sync(text, interval)'
       ]::regprocedure[]) f
 ORDER BY f::text COLLATE "C";

-- the catalog, where DSNs (and their passwords) live, is the owner's only
SELECT t AS "table",
       has_table_privilege('ds_mon', t, 'SELECT') AS monitor,
       has_table_privilege('ds_op', t, 'SELECT') AS operator,
       has_table_privilege('ds_adm', t, 'SELECT') AS admin,
       has_any_column_privilege('ds_adm', t, 'SELECT') AS admin_any_column
  FROM unnest(ARRAY['datasync._targets', 'datasync._pipelines', 'datasync._pipeline_tables']::regclass[]) t
 ORDER BY t::text COLLATE "C";
SELECT v AS "view",
       has_table_privilege('ds_mon', v, 'SELECT') AS monitor,
       has_table_privilege('ds_op', v, 'SELECT') AS operator,
       has_table_privilege('ds_adm', v, 'SELECT') AS admin
  FROM unnest(ARRAY['datasync.targets', 'datasync.pipelines', 'datasync.status']::regclass[]) v
 ORDER BY v::text COLLATE "C";

--
-- SECURITY DEFINER functions pin search_path
--
SELECT p.oid::regprocedure AS secdef_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'datasync'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT DISTINCT c AS secdef_setting
  FROM pg_proc p, unnest(p.proconfig) c
 WHERE p.pronamespace = 'datasync'::regnamespace AND p.prosecdef
 ORDER BY 1;
SELECT count(*) > 0 AS has_secdef_functions
  FROM pg_proc WHERE pronamespace = 'datasync'::regnamespace AND prosecdef;

--
-- Set-up as superuser: a target with a password, unreachable, and a
-- pipeline to it, created paused
--
CREATE TABLE sec_users (id int PRIMARY KEY, name text);
CREATE TABLE sec_private (id int PRIMARY KEY);
SELECT datasync.create_target('sec_tgt', 'host=127.0.0.1 port=1 dbname=x user=u password=pwSECRETpw');
-- (lent to the operator for test_target)
SELECT datasync.grant_target('sec_tgt', 'ds_op');
BEGIN;
SELECT datasync.create_pipeline('sec_pipe', 'sec_tgt', ARRAY['sec_users']::regclass[]);
SELECT datasync.pause('sec_pipe');
COMMIT;

--
-- PUBLIC (no datasync role): not even the schema
--
SET ROLE ds_nobody;
SELECT ds_try($$SELECT * FROM datasync.targets$$);
SELECT ds_try($$SELECT * FROM datasync.status$$);
SELECT ds_try($$SELECT datasync.pause('sec_pipe')$$);
SELECT ds_try($$SELECT datasync.create_target('x', 'host=db.invalid')$$);
RESET ROLE;

--
-- datasync_monitor: reads the views, nothing else
--
SET ROLE ds_mon;
SELECT name, kind, dsn, options FROM datasync.targets ORDER BY name COLLATE "C";
SELECT name, mode, state, target FROM datasync.status ORDER BY name COLLATE "C";
SELECT name, target, enabled FROM datasync.pipelines ORDER BY name COLLATE "C";
SELECT ds_try($$SELECT * FROM datasync._targets$$);
SELECT ds_try($$SELECT dsn FROM datasync._targets$$);
SELECT ds_try($$SELECT * FROM datasync._pipelines$$);
SELECT ds_try($$SELECT datasync.create_target('mon_tgt', 'host=db.invalid')$$);
SELECT ds_try($$SELECT datasync.alter_target('sec_tgt', '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync.drop_target('sec_tgt')$$);
SELECT ds_try($$SELECT datasync.test_target('sec_tgt')$$);
SELECT ds_try($$SELECT datasync.pause('sec_pipe')$$);
SELECT ds_try($$SELECT datasync.resume('sec_pipe')$$);
SELECT ds_try($$SELECT datasync.wait_for_sync('sec_pipe', '1s')$$);
SELECT ds_try($$SELECT datasync.drop_pipeline('sec_pipe')$$);
RESET ROLE;

--
-- datasync_operator: runs, pauses and resumes; does not configure
--
SET ROLE ds_op;
SELECT datasync.pause('sec_pipe');
SELECT datasync.wait_for_sync('sec_pipe', '1s');
SELECT r->'ok' AS ok, r->>'dsn' AS dsn, r::text LIKE '%SECRET%' AS leaks
  FROM datasync.test_target('sec_tgt') r;
SELECT ds_try($$SELECT * FROM datasync._targets$$);
SELECT ds_try($$SELECT datasync.create_target('op_tgt', 'host=db.invalid')$$);
SELECT ds_try($$SELECT datasync.alter_target('sec_tgt', '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync.drop_target('sec_tgt')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('op_pipe', 'sec_tgt', ARRAY['sec_users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('sec_pipe', '{"batch_size": 10}')$$);
SELECT ds_try($$SELECT datasync.add_table('sec_pipe', 'sec_private')$$);
SELECT ds_try($$SELECT datasync.drop_pipeline('sec_pipe')$$);
-- the worker starts: it cannot reach the target
SELECT datasync.resume('sec_pipe');
RESET ROLE;
SELECT ds_wait_for($$(SELECT last_error IS NOT NULL FROM datasync.status WHERE name = 'sec_pipe')$$);

--
-- datasync_admin: configures; still needs SELECT on a table to sync it
--
SET ROLE ds_adm;
SELECT datasync.create_target('adm_tgt', 'host=db.invalid dbname=x password=admSECRET');
SELECT datasync.alter_target('adm_tgt', '{"description": "made by an admin"}');
SELECT ds_try($$SELECT * FROM datasync._targets$$);
SELECT ds_try($$SELECT datasync.create_pipeline('adm_pipe', 'adm_tgt', ARRAY['sec_private']::regclass[])$$);
RESET ROLE;
GRANT SELECT ON sec_private TO ds_adm;
SET ROLE ds_adm;
BEGIN;
SELECT datasync.create_pipeline('adm_pipe', 'adm_tgt', ARRAY['sec_private']::regclass[]);
SELECT datasync.pause('adm_pipe');
COMMIT;
SELECT datasync.alter_pipeline('adm_pipe', '{"batch_size": 10}');
SELECT datasync.drop_pipeline('adm_pipe');
SELECT datasync.drop_target('adm_tgt');
RESET ROLE;

--
-- Secrets: never in a view, never in an error
--
SELECT count(*) AS target_leaks FROM datasync.targets t WHERE t::text LIKE '%SECRET%';
SELECT count(*) AS pipeline_leaks FROM datasync.pipelines p WHERE p::text LIKE '%SECRET%';
SELECT count(*) AS status_leaks FROM datasync.status s WHERE s::text LIKE '%SECRET%';
SELECT last_error LIKE 'could not connect to the target: %' AS connect_error
  FROM datasync.status WHERE name = 'sec_pipe';
SELECT msg, msg LIKE '%SECRET%' AS leaks
  FROM (VALUES
    (1, ds_try($$SELECT datasync.create_target('sec_tgt', 'host=127.0.0.1 port=1 password=pwSECRETpw')$$)),
    (2, ds_try($$SELECT datasync.create_target('sec_bad', 'host=db.invalid password=pwSECRETpw nonsense')$$)),
    (3, ds_try($$SELECT datasync.create_target('sec_bad', 'postgresql://u:pwSECRETpw@db.invalid/x?nonsense=1')$$)),
    (4, ds_try($$SELECT datasync.create_target('sec_bad', 'host=db.invalid password=''pwSECRETpw')$$)),
    (5, ds_try($$SELECT datasync.create_target('sec_bad', 'host=db.invalid', '{"password": "pwSECRETpw"}')$$)),
    (6, ds_try($$SELECT datasync.alter_target('sec_tgt', '{"dsn": "host=db.invalid password=pwSECRETpw nonsense"}')$$)),
    (7, ds_try($$SELECT datasync.alter_target('sec_tgt', '{"password": "pwSECRETpw"}')$$)),
    (8, ds_try($$SELECT datasync.drop_target('sec_tgt')$$))
  ) v(n, msg)
 ORDER BY n;

--
-- A target set up by a role that is not a superuser must use a password:
-- this instance trusts local connections, so the connection is refused
-- after it is made (the server's own credentials are not lent out).
--
SELECT format('host=%s port=%s dbname=contrib_regression',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS local_dsn \gset
SET ROLE ds_adm;
SELECT datasync.create_target('adm_local', :'local_dsn');
SELECT r->>'ok' AS ok, r->>'error' AS error FROM datasync.test_target('adm_local') r;
-- a password the server does not ask for does not count either
SELECT datasync.alter_target('adm_local', jsonb_build_object('dsn', :'local_dsn' || ' password=unused'));
SELECT r->>'ok' AS ok, r->>'error' AS error FROM datasync.test_target('adm_local') r;
-- only a superuser may name an environment variable of the server
SELECT ds_try($$SELECT datasync.create_target('adm_env', 'host=db.invalid', '{"password_env": "HOME"}')$$);
SELECT ds_try($$SELECT datasync.alter_target('adm_local', '{"password_env": "HOME"}')$$);
RESET ROLE;
-- the same DSN set up by a superuser connects
SELECT datasync.alter_target('adm_local', jsonb_build_object('dsn', :'local_dsn'));
SELECT r->>'ok' AS ok, r->>'error' AS error FROM datasync.test_target('adm_local') r;
SELECT datasync.drop_target('adm_local');

--
-- Clean up
--
SELECT datasync.drop_pipeline('sec_pipe');
SELECT datasync.drop_target('sec_tgt');
SELECT count(*) FROM datasync.targets;
SELECT count(*) FROM datasync.pipelines;
DROP TABLE sec_users, sec_private;
DROP ROLE ds_nobody, ds_mon, ds_op, ds_adm;
