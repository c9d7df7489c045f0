--
-- config: apply_config and export_config, the declarative set-up in the
-- shape of the seed's YAML configuration (docs/config-document.md).
--
-- Targets point at db.invalid and are never connected to; every pipeline
-- is paused in the transaction that creates it, so no worker starts and
-- nothing printed depends on timing.  Every secret contains "SECRET".
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- everything apply_config may change, with the xmin of every catalog row
CREATE FUNCTION cfg_snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(E'\n',
        (SELECT string_agg(format('target %s|%s|%s|%s|%s', t.name, t.dsn, t.options, t.owner, t.xmin), E'\n' ORDER BY t.name)
           FROM datasync._targets t),
        (SELECT string_agg(format('pipeline %s|%s|%s|%s|%s|%s|%s|%s', p.name, p.target_id, p.mode, p.schedule,
                                  p.conflict_strategy, p.options, p.enabled, p.xmin), E'\n' ORDER BY p.name)
           FROM datasync._pipelines p),
        (SELECT string_agg(format('table %s|%s|%s', pt.pipeline_id, pt.relid::regclass, pt.xmin), E'\n'
                           ORDER BY pt.pipeline_id, pt.relid)
           FROM datasync._pipeline_tables pt),
        (SELECT string_agg(format('publication %s|%s.%s', pubname, schemaname, tablename), E'\n' ORDER BY 1)
           FROM pg_publication_tables WHERE pubname LIKE 'datasync\_%'))
$$;

-- apply a document; 'ok' or the error, and whether the catalog is as before
CREATE FUNCTION cfg_try(doc jsonb, OUT result text, OUT catalog_unchanged boolean) LANGUAGE plpgsql AS $$
DECLARE
    before text := cfg_snapshot();
BEGIN
    BEGIN
        PERFORM datasync.apply_config(doc);
        result := 'ok';
    EXCEPTION WHEN OTHERS THEN
        result := SQLSTATE || ': ' || SQLERRM;
    END;
    catalog_unchanged := cfg_snapshot() = before;
END
$$;

-- pause the pipelines of a summary that apply_config created (no worker starts)
CREATE FUNCTION cfg_pause_created(summary jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT jsonb_array_elements_text(summary -> 'pipelines' -> 'created') LOOP
        PERFORM datasync.pause(p);
    END LOOP;
    RETURN summary;
END
$$;

--
-- Source tables: the seed's users, orders and inventory, and odd names
--
CREATE TABLE cfg_users (id int PRIMARY KEY, email text);
CREATE TABLE cfg_orders (id int PRIMARY KEY, user_id int);
CREATE TABLE cfg_order_items (order_id int, line int, sku text, PRIMARY KEY (order_id, line));
CREATE TABLE cfg_inventory (sku text PRIMARY KEY, qty int);
CREATE TABLE cfg_coupons (code text PRIMARY KEY);
CREATE TABLE cfg_nokey (x int);
CREATE SCHEMA "cfg Schema";
CREATE TABLE "cfg Schema"."we'ird ""name""" (id int PRIMARY KEY);
CREATE TABLE "cfg_Ünïcode" (id int PRIMARY KEY);

-- the seed's example as a document (docs/config-document.md)
CREATE FUNCTION cfg_seed() RETURNS jsonb LANGUAGE sql AS $doc$
SELECT '{
  "sourceSystem": {"database": "contrib_regression"},
  "targetSystem": {
    "name": "cfg-warehouse",
    "type": "postgresql",
    "connectionString": "host=db.invalid port=5433 dbname=warehouse",
    "auth": {"credentials": {"username": "sync", "password": "pwSECRETpw"}},
    "options": {"description": "reporting copy"}
  },
  "syncMode": "real-time",
  "conflictResolution": "source-wins",
  "validationRules": [],
  "monitoring": {},
  "pipelines": [
    {"name": "cfg-users-sync", "tables": ["cfg_users"]},
    {"name": "cfg-orders-sync", "tables": ["public.cfg_orders", "public.cfg_order_items"],
     "options": {"batch_size": 5000}},
    {"name": "cfg-inventory-sync", "target": "cfg-warehouse", "tables": ["cfg_inventory"],
     "syncMode": "realtime", "conflictResolution": "source_wins",
     "options": {"target_schema": "stock", "batch_timeout_ms": 200}}
  ]
}'::jsonb
$doc$;

--
-- A full document, applied
--
BEGIN;
SELECT jsonb_pretty(cfg_pause_created(datasync.apply_config(cfg_seed())));
COMMIT;
SELECT name, kind, dsn, options FROM datasync.targets WHERE name LIKE 'cfg%' ORDER BY name;
SELECT name, target, mode, schedule, conflict_strategy, options, enabled, tables
  FROM datasync.pipelines ORDER BY name COLLATE "C";
-- the password is stored as given
SELECT dsn = 'dbname=warehouse host=db.invalid port=5433 user=sync password=pwSECRETpw' AS stored_dsn
  FROM datasync._targets WHERE name = 'cfg-warehouse';

--
-- Applied again: nothing to do, no catalog row touched (xmin unchanged)
--
SELECT cfg_snapshot() AS snap \gset
SELECT datasync.apply_config(cfg_seed());
SELECT cfg_snapshot() = :'snap' AS catalog_unchanged;

--
-- export_config: the password masked; applied, it changes nothing and the
-- stored password stays
--
SELECT jsonb_pretty(datasync.export_config());
SELECT datasync.export_config()::text LIKE '%SECRET%' AS export_shows_secret;
SELECT datasync.apply_config(datasync.export_config());
SELECT cfg_snapshot() = :'snap' AS catalog_unchanged;
SELECT dsn LIKE '%password=pwSECRETpw%' AS password_kept FROM datasync._targets WHERE name = 'cfg-warehouse';
-- a summary never shows a DSN
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '"pwSECRET2pw"'))::text
       LIKE '%SECRET%' AS summary_shows_secret;
SELECT dsn LIKE '%password=pwSECRET2pw%' AS password_changed FROM datasync._targets WHERE name = 'cfg-warehouse';
-- "********" keeps it while the rest of the connection stays
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '"********"'));
SELECT dsn LIKE '%password=pwSECRET2pw%' AS password_kept FROM datasync._targets WHERE name = 'cfg-warehouse';
SELECT datasync.apply_config(cfg_seed());
SELECT cfg_snapshot() AS snap \gset

--
-- Changes: the document is the desired state of what it names
--
-- the table set of a pipeline: add what is missing, remove the rest
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{pipelines,1,tables}', '["cfg_orders", "cfg_coupons"]'));
SELECT name, tables FROM datasync.pipelines WHERE name = 'cfg-orders-sync';
SELECT pubname, schemaname, tablename FROM pg_publication_tables
 WHERE pubname = 'datasync_cfg_orders_sync' ORDER BY tablename;
-- pipeline options: changed keys set, missing keys removed; target options too
SELECT datasync.apply_config(jsonb_set(jsonb_set(cfg_seed(),
           '{pipelines,2,options}', '{"target_schema": "stock2"}'),
           '{targetSystem,options}', '{}'));
SELECT name, options FROM datasync.pipelines WHERE name = 'cfg-inventory-sync';
SELECT name, options FROM datasync.targets WHERE name = 'cfg-warehouse';
-- the connection (no password now: the DSN drops it), then back
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{targetSystem}',
           '{"name": "cfg-warehouse", "connectionString": "postgresql://sync@db2.invalid/warehouse?sslmode=require"}'));
SELECT name, dsn FROM datasync.targets WHERE name = 'cfg-warehouse';
-- a document that names only some objects leaves the others alone
SELECT datasync.apply_config('{"pipelines": [{"name": "cfg-users-sync", "target": "cfg-warehouse", "tables": ["cfg_users"]}]}');
SELECT count(*) AS pipelines FROM datasync.pipelines WHERE name LIKE 'cfg-%';
SELECT datasync.apply_config(cfg_seed());
SELECT datasync.apply_config(cfg_seed());

-- modes: manual, and back; scheduled needs pg_cron, which this instance lacks
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{pipelines,2,syncMode}', '"manual"'));
SELECT name, mode, schedule FROM datasync.pipelines WHERE name = 'cfg-inventory-sync';
SELECT p ->> 'name' AS name, p -> 'syncMode' AS "syncMode"
  FROM jsonb_array_elements(datasync.export_config() -> 'pipelines') p ORDER BY 1;
SELECT datasync.apply_config(datasync.export_config()) -> 'pipelines' AS pipelines;
SELECT * FROM cfg_try(jsonb_set(cfg_seed(), '{pipelines,0}',
           '{"name": "cfg-users-sync", "tables": ["cfg_users"], "syncMode": "scheduled", "schedule": "0 */5 * * * *"}'));
SELECT * FROM cfg_try(jsonb_set(jsonb_set(cfg_seed(), '{syncMode}', '"scheduled"'), '{schedule}', '{"cron": "0 */5 * * * *"}'));
SELECT datasync.apply_config(cfg_seed()) -> 'actions' AS actions;
SELECT name, mode, schedule FROM datasync.pipelines WHERE name = 'cfg-inventory-sync';
SELECT cfg_snapshot() AS snap \gset

--
-- Bad documents: every error names the path, keeps its SQLSTATE and
-- changes nothing
--
SELECT datasync.create_target('cfg-other', 'host=db.invalid dbname=other');
SELECT cfg_snapshot() AS snap \gset
SELECT n, r.result, r.catalog_unchanged
  FROM (VALUES
    -- the document
    (1, NULL::jsonb),
    (2, '[]'),
    (3, '"seed"'),
    (4, cfg_seed() || '{"pipelinez": []}'),
    (5, jsonb_set(cfg_seed(), '{pipelines,0,tabels}', '["cfg_users"]')),
    (6, jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,pasword}', '"x"')),
    -- types
    (10, jsonb_set(cfg_seed(), '{pipelines,0,name}', '42')),
    (11, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '"cfg_users"')),
    (12, jsonb_set(cfg_seed(), '{pipelines,1,tables,1}', '7')),
    (13, jsonb_set(cfg_seed(), '{pipelines,0,options}', '[]')),
    (14, jsonb_set(cfg_seed(), '{targetSystem}', '"cfg-warehouse"')),
    (15, jsonb_set(cfg_seed(), '{pipelines}', '{}')),
    (16, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '[]')),
    (17, cfg_seed() #- '{targetSystem,name}'),
    (18, jsonb_set(cfg_seed(), '{syncMode}', 'true')),
    -- words
    (20, jsonb_set(cfg_seed(), '{pipelines,1,syncMode}', '"sometimes"')),
    (21, jsonb_set(cfg_seed(), '{conflictResolution}', '"loudest-wins"')),
    (22, jsonb_set(cfg_seed(), '{pipelines,2,conflictResolution}', '"target-wins"')),
    -- schedules
    (30, jsonb_set(cfg_seed(), '{pipelines,0}', '{"name": "cfg-users-sync", "tables": ["cfg_users"], "syncMode": "scheduled", "schedule": "*/5 * *"}')),
    (31, jsonb_set(cfg_seed(), '{pipelines,0}', '{"name": "cfg-users-sync", "tables": ["cfg_users"], "syncMode": "scheduled", "schedule": "30 */5 * * * *"}')),
    (32, jsonb_set(cfg_seed(), '{schedule}', '{"cron": "0 */5 * * * *", "timezone": "Europe/Berlin"}')),
    (33, jsonb_set(cfg_seed(), '{schedule}', '{"cron": "*/5 * * * *", "zone": "UTC"}')),
    (34, jsonb_set(cfg_seed(), '{pipelines,0,schedule}', '"*/5 * * * *"')),
    (35, jsonb_set(cfg_seed(), '{pipelines,0,syncMode}', '"scheduled"')),
    (36, jsonb_set(cfg_seed(), '{schedule}', '42')),
    -- not there yet
    (40, jsonb_set(cfg_seed(), '{validationRules}', '[{"field": "id", "type": "required"}]')),
    (41, jsonb_set(cfg_seed(), '{validationRules}', '"none"')),
    (42, jsonb_set(cfg_seed(), '{monitoring}', '{"enabled": true, "metricsPort": 9090}')),
    (43, jsonb_set(cfg_seed(), '{targetSystem,type}', '"http"')),
    -- tables
    (50, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_nosuch"]')),
    (51, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_users", "public.CFG_USERS"]')),
    (52, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["a.b.c"]')),
    (53, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_users\""]')),
    (54, jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_users", "cfg_nokey"]')),
    -- names and targets
    (60, jsonb_set(cfg_seed(), '{pipelines,1,name}', '"cfg-users-sync"')),
    (61, jsonb_set(cfg_seed(), '{pipelines,0,target}', '"cfg-nowhere"')),
    (62, jsonb_set(cfg_seed(), '{pipelines,0,target}', '"cfg-other"')),
    (63, cfg_seed() #- '{targetSystem}'),
    (64, jsonb_insert(cfg_seed(), '{pipelines,3}', '{"name": "", "tables": ["cfg_coupons"]}')),
    (65, jsonb_insert(cfg_seed(), '{pipelines,3}', '{"name": "cfg-Users_sync", "tables": ["cfg_coupons"]}')),
    (66, jsonb_set(cfg_seed(), '{sourceSystem,database}', '"shop"')),
    (67, jsonb_set(cfg_seed(), '{pipelines,0,options}', '{"mode": "manual"}')),
    -- the target's connection
    (70, jsonb_set(cfg_seed(), '{targetSystem,connectionString}', '"host=db.invalid dbname=warehouse password=pwSECRETpw"')),
    (71, jsonb_set(cfg_seed(), '{targetSystem,connectionString}', '"host=db.invalid dbname=warehouse pwSECRETpw"')),
    (72, jsonb_set(cfg_seed(), '{targetSystem,connectionString}', '"postgresql://u:pwSECRETpw@db.invalid/warehouse"')),
    (73, jsonb_set(cfg_seed(), '{targetSystem,type}', '"ftp"')),
    (74, jsonb_set(cfg_seed(), '{targetSystem,connectionString}', '"host=db.invalid user=other dbname=warehouse"')),
    (75, jsonb_set(cfg_seed(), '{targetSystem,options}', '{"dsn": "host=elsewhere.invalid"}')),
    (76, jsonb_set(cfg_seed(), '{targetSystem,options}', '{"colour": "blue"}')),
    (77, jsonb_set(jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '"********"'),
                   '{targetSystem,connectionString}', '"host=db3.invalid port=5433 dbname=warehouse"')),
    (78, jsonb_set(jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '"********"'),
                   '{targetSystem,name}', '"cfg-new"')),
    (79, jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '""')),
    -- a valid change to the first pipeline, a bad option in the second: nothing changes
    (80, jsonb_set(jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_users", "cfg_coupons"]'),
                   '{pipelines,1,options}', '{"batch_size": 0}')),
    (81, jsonb_set(jsonb_set(cfg_seed(), '{pipelines,0,tables}', '["cfg_users", "cfg_coupons"]'),
                   '{pipelines,1,options}', '{"track_history": true}'))
  ) v(n, doc), LATERAL cfg_try(doc) r
 ORDER BY n;
SELECT cfg_snapshot() = :'snap' AS catalog_unchanged;

-- hints say what to do
\set VERBOSITY default
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{pipelines,0,target}', '"cfg-other"'));
SELECT datasync.apply_config(cfg_seed() || '{"pipelinez": []}');
SELECT datasync.apply_config(jsonb_set(cfg_seed(), '{monitoring}', '{"enabled": true}'));
\set VERBOSITY terse

--
-- Quoted and non-ASCII names, several targets
--
BEGIN;
SELECT cfg_pause_created(datasync.apply_config($doc$
{
  "targetSystems": [
    {"name": "cfg \"quoted\" tgt", "connectionString": "host=db.invalid dbname='we\\'ird db' application_name='a b'",
     "auth": {"credentials": {"username": "sync user", "password": "pw SECRET 'pw'"}}},
    {"name": "cfg-other", "connectionString": "host=db.invalid dbname=other"}
  ],
  "pipelines": [
    {"name": "cfg-ünïcødé \"pipe\"", "target": "cfg \"quoted\" tgt", "syncMode": "manual",
     "tables": ["\"cfg Schema\".\"we'ird \"\"name\"\"\"", "cfg_Ünïcode"],
     "options": {"table_map": {"cfg_Ünïcode": "ünïcode"}}}
  ]
}
$doc$));
COMMIT;
SELECT name, dsn FROM datasync.targets WHERE name LIKE 'cfg%' ORDER BY name COLLATE "C";
SELECT name, target, mode, options, tables FROM datasync.pipelines WHERE name LIKE 'cfg-ü%';
-- the password went into the DSN quoted, as libpq reads it back
SELECT value = 'pw SECRET ''pw''' AS password_stored
  FROM datasync._targets t, datasync._config_dsn_pairs(t.dsn) p
 WHERE t.name = 'cfg "quoted" tgt' AND p.keyword = 'password';
SELECT jsonb_pretty(datasync.export_config() -> 'targetSystems');
SELECT jsonb_pretty(datasync.export_config() -> 'pipelines' -> 0);
SELECT datasync.apply_config(datasync.export_config());
SELECT datasync.apply_config(datasync.export_config());
SELECT cfg_snapshot() AS snap \gset

--
-- Privileges: datasync_admin applies and exports; the other roles do not
--
CREATE ROLE cfg_adm IN ROLE datasync_admin;
CREATE ROLE cfg_op IN ROLE datasync_operator;
-- (the superuser's target, lent to cfg_adm)
SELECT datasync.grant_target('cfg-warehouse', 'cfg_adm');
SELECT cfg_snapshot() AS snap \gset
SET ROLE cfg_adm;
SELECT datasync.apply_config(datasync.export_config());
SELECT datasync.export_config()::text LIKE '%SECRET%' AS export_shows_secret;
-- with the caller's rights: SELECT on the tables, passwordEnv for superusers only
SELECT ds_try(format('SELECT datasync.apply_config(%L)',
       jsonb_insert(jsonb_set(cfg_seed(), '{targetSystem,auth,credentials,password}', '"********"'),
                    '{pipelines,3}', '{"name": "cfg-coupons-sync", "tables": ["cfg_coupons"]}')));
SELECT ds_try($$SELECT datasync.apply_config('{"targetSystems": [{"name": "cfg-adm-tgt", "connectionString": "host=db.invalid",
                                                                  "auth": {"credentials": {"passwordEnv": "HOME"}}}]}')$$);
SET ROLE cfg_op;
SELECT ds_try($$SELECT datasync.export_config()$$);
SELECT ds_try($$SELECT datasync.apply_config('{}')$$);
RESET ROLE;
SELECT cfg_snapshot() = :'snap' AS catalog_unchanged;
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'datasync'::regnamespace AND p.proname IN ('apply_config', 'export_config', '_config_target_dsn_is')
 ORDER BY p.oid::regprocedure::text COLLATE "C";

--
-- An empty document does nothing
--
SELECT datasync.apply_config('{}');

--
-- Cron expressions as pg_cron takes them: the seed's six fields (seconds 0)
-- lose the seconds, blanks are collapsed
--
SELECT e AS expression, datasync._config_cron(e) AS cron
  FROM unnest(ARRAY['0 */5 * * * *', ' */5  *  * * * ', '0 0 2 * * 1-5', '@Daily', '5 */5 * * * *',
                    '*/5 * * *', '*/5 * * * * * *', '* * * * ;', '']) e;

--
-- Clean up
--
SELECT datasync.drop_pipeline(name) FROM datasync.pipelines WHERE name LIKE 'cfg-%' ORDER BY name COLLATE "C";
SELECT datasync.drop_target(name) FROM datasync.targets WHERE name LIKE 'cfg%' ORDER BY name COLLATE "C";
SELECT count(*) FROM datasync.targets;
SELECT count(*) FROM datasync.pipelines;
DROP ROLE cfg_adm, cfg_op;
DROP TABLE cfg_users, cfg_orders, cfg_order_items, cfg_inventory, cfg_coupons, cfg_nokey,
    "cfg Schema"."we'ird ""name""", "cfg_Ünïcode";
DROP SCHEMA "cfg Schema";
DROP FUNCTION cfg_snapshot();
DROP FUNCTION cfg_try(jsonb);
DROP FUNCTION cfg_pause_created(jsonb);
DROP FUNCTION cfg_seed();
