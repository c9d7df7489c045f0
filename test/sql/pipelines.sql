--
-- pipelines: create_pipeline, alter_pipeline, drop_pipeline, add_table,
-- remove_table, resync_table, pause, resume, wait_for_sync and the views
-- datasync.pipelines and datasync.status (docs/sql-reference.md, "Pipelines").
--
-- Workers are real: the pipeline "users_sync" streams into the database
-- ds_pipe_target of this instance.  Nothing printed depends on the port,
-- the socket directory or a worker's timing.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- what pipelines leave behind: publications, slots, catalog rows
CREATE FUNCTION ds_counts(OUT publications bigint, OUT slots bigint,
                          OUT pipelines bigint, OUT pipeline_tables bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM pg_publication WHERE pubname LIKE 'datasync\_%'),
           (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'datasync\_%'),
           (SELECT count(*) FROM datasync._pipelines),
           (SELECT count(*) FROM datasync._pipeline_tables)
$$;

--
-- Source tables: quoted and non-ASCII names, composite key, key-less ones
--
CREATE TABLE users (id int PRIMARY KEY, name text);
CREATE TABLE "Üsers" (id int PRIMARY KEY, "naïve" text);
CREATE TABLE "we'ird ""name""" (a int, b int, "v'al" text, PRIMARY KEY (a, b));
CREATE TABLE "select" (id int PRIMARY KEY, "from" text);
CREATE TABLE extra (id int PRIMARY KEY, v text);
CREATE TABLE full_ident (x int, y text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE no_key (x int);
CREATE TABLE ident_nothing (x int PRIMARY KEY);
ALTER TABLE ident_nothing REPLICA IDENTITY NOTHING;
CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY);
CREATE VIEW users_v AS SELECT * FROM users;

INSERT INTO users VALUES (1, 'alice'), (2, 'bob');
INSERT INTO "Üsers" VALUES (1, 'Zoë');
INSERT INTO "we'ird ""name""" VALUES (1, 1, 'it''s'), (1, 2, '"quoted"');
INSERT INTO "select" VALUES (1, 'where');
INSERT INTO extra VALUES (1, 'copied when added');

--
-- The target: a second database of this instance, same tables
--
CREATE DATABASE ds_pipe_target;
\c ds_pipe_target
CREATE TABLE users (id int PRIMARY KEY, name text);
CREATE TABLE "Üsers" (id int PRIMARY KEY, "naïve" text);
CREATE TABLE "we'ird ""name""" (a int, b int, "v'al" text, PRIMARY KEY (a, b));
CREATE TABLE "select" (id int PRIMARY KEY, "from" text);
CREATE TABLE extra (id int PRIMARY KEY, v text);
CREATE TABLE full_ident (x int, y text);
\c contrib_regression

SELECT format('host=%s port=%s dbname=ds_pipe_target',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS tdsn \gset
SELECT datasync.create_target('pipe_tgt', :'tdsn');
SELECT datasync.create_target('pipe_tgt2', 'host=db.invalid port=5432 dbname=x');

SELECT * FROM ds_counts();

--
-- Refused tables
--
-- (a temporary table lives in this session: \c above started a new one)
CREATE TEMP TABLE temp_t (id int PRIMARY KEY);

\set VERBOSITY default
-- no key, default replica identity: the hint says what to do
SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['no_key']::regclass[]);
-- unlogged (and temporary) tables are not in the WAL
SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['unlogged_t']::regclass[]);
\set VERBOSITY terse
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['no_key']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['ident_nothing']::regclass[])$$);
-- (the name of a temporary schema varies)
SELECT regexp_replace(ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['temp_t']::regclass[])$$), 'pg_temp_\d+', 'pg_temp_N');
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['unlogged_t']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users_v']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['datasync._pipelines']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['pg_class']::regclass[])$$);
-- a bad table after a good one
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users', 'no_key']::regclass[])$$);

-- the table list itself
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', NULL)$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', '{}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users', NULL]::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users', '"select"', 'users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY[['users'], ['"select"']]::regclass[])$$);

--
-- Refused names, target, mode, schedule, strategy
--
SELECT ds_try($$SELECT datasync.create_pipeline(NULL, 'pipe_tgt', ARRAY['users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('', 'pipe_tgt', ARRAY['users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline(repeat('p', 55), 'pipe_tgt', ARRAY['users']::regclass[])$$);
SELECT replace(ds_try($$SELECT datasync.create_pipeline(E'bad\tname', 'pipe_tgt', ARRAY['users']::regclass[])$$), E'\t', '<TAB>');
SELECT ds_try($$SELECT datasync.create_pipeline('bad', NULL, ARRAY['users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'no_such_target', ARRAY['users']::regclass[])$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => 'sometimes')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => NULL)$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => 'scheduled', schedule => '*/5 * * * *')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => 'scheduled')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => 'scheduled', schedule => '')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], mode => 'scheduled', schedule => E'* * *\n* *')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], schedule => '*/5 * * * *')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], conflict_strategy => 'loudest-wins')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], conflict_strategy => NULL)$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], conflict_strategy => 'target-wins')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], conflict_strategy => 'latest_timestamp')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], conflict_strategy => 'manual')$$);

--
-- Refused options
--
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_sise": 10}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"track_history": true}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"row_filter": {"users": "id > 0"}}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": 0}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": -1}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": 1.5}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": "x"}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": "100"}')$$);
-- out of the bigint range too: the same error as any other bad batch_size
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"batch_size": 1e30}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"retry_base_ms": 1000, "retry_max_ms": 999}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"initial_sync": "yes"}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '{"table_map": ["users"]}')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '[]')$$);
SELECT ds_try($$SELECT datasync.create_pipeline('bad', 'pipe_tgt', ARRAY['users']::regclass[], options => '"batch_size"')$$);

-- nothing of the refused pipelines was left behind
SELECT * FROM ds_counts();

--
-- A real-time pipeline over the odd names; the worker copies and streams
--
SELECT datasync.create_pipeline('users_sync', 'pipe_tgt',
                                ARRAY['users', '"Üsers"', '"we''ird ""name"""', '"select"']::regclass[]);
-- everything committed before the call, i.e. the initial copy, is on the target
SELECT datasync.wait_for_sync('users_sync', '10s');
INSERT INTO users VALUES (3, 'carol');
UPDATE users SET name = 'Bob' WHERE id = 2;
DELETE FROM users WHERE id = 1;
INSERT INTO "Üsers" VALUES (2, 'Ærøskøbing');
UPDATE "we'ird ""name""" SET "v'al" = 'it''s ''new''' WHERE a = 1 AND b = 1;
DELETE FROM "we'ird ""name""" WHERE a = 1 AND b = 2;
INSERT INTO "select" VALUES (2, 'group by');
SELECT datasync.wait_for_sync('users_sync', '30s');

-- same name, or one that maps to the same slot and publication
SELECT ds_try($$SELECT datasync.create_pipeline('users_sync', 'pipe_tgt', ARRAY['extra']::regclass[])$$);
\set VERBOSITY default
SELECT datasync.create_pipeline('users-sync', 'pipe_tgt', ARRAY['extra']::regclass[]);
\set VERBOSITY terse
SELECT ds_try($$SELECT datasync.create_pipeline('Users_Sync', 'pipe_tgt', ARRAY['extra']::regclass[])$$);

-- seed spellings; created paused (in one transaction), so no worker runs
BEGIN;
SELECT datasync.create_pipeline('seed_words', 'pipe_tgt2', ARRAY['full_ident', 'users']::regclass[],
                                mode => 'real-time', conflict_strategy => 'source_wins',
                                options => '{"batch_size": 500, "initial_sync": false}');
SELECT datasync.pause('seed_words');
COMMIT;

SELECT * FROM ds_counts();
SELECT name, target, mode, schedule, conflict_strategy, options, enabled,
       (SELECT string_agg(t::text, ' | ' ORDER BY t::text COLLATE "C") FROM unnest(tables) t) AS tables
  FROM datasync.pipelines ORDER BY name COLLATE "C";
SELECT name, mode, target FROM datasync.status ORDER BY name COLLATE "C";
SELECT p.name, p.slot_name, pub.pubname IS NOT NULL AS has_publication
  FROM datasync._pipelines p LEFT JOIN pg_publication pub ON pub.pubname = p.slot_name
 ORDER BY p.name COLLATE "C";

--
-- add_table, remove_table, resync_table
--
SELECT ds_try($$SELECT datasync.add_table('no_such_pipeline', 'extra')$$);
SELECT ds_try($$SELECT datasync.add_table(NULL, 'extra')$$);
SELECT ds_try($$SELECT datasync.add_table('users_sync', NULL)$$);
SELECT ds_try($$SELECT datasync.add_table('users_sync', 'users')$$);
SELECT ds_try($$SELECT datasync.add_table('users_sync', '"Üsers"')$$);
SELECT ds_try($$SELECT datasync.add_table('users_sync', 'no_key')$$);
SELECT ds_try($$SELECT datasync.add_table('users_sync', 'users_v')$$);
SELECT regexp_replace(ds_try($$SELECT datasync.add_table('users_sync', 'temp_t')$$), 'pg_temp_\d+', 'pg_temp_N');
SELECT ds_try($$SELECT datasync.remove_table('no_such_pipeline', 'users')$$);
SELECT ds_try($$SELECT datasync.remove_table(NULL, 'users')$$);
SELECT ds_try($$SELECT datasync.remove_table('users_sync', NULL)$$);
SELECT ds_try($$SELECT datasync.remove_table('users_sync', 'extra')$$);
SELECT ds_try($$SELECT datasync.resync_table('no_such_pipeline', 'users')$$);
SELECT ds_try($$SELECT datasync.resync_table(NULL, 'users')$$);
SELECT ds_try($$SELECT datasync.resync_table('users_sync', NULL)$$);
SELECT ds_try($$SELECT datasync.resync_table('users_sync', 'extra')$$);

SELECT datasync.add_table('users_sync', 'extra');
SELECT datasync.remove_table('users_sync', '"select"');
SELECT datasync.resync_table('users_sync', '"we''ird ""name"""');
SELECT pubname, schemaname, tablename FROM pg_publication_tables
 WHERE pubname LIKE 'datasync\_%' ORDER BY pubname, schemaname, tablename COLLATE "C";
SELECT name, (SELECT string_agg(t::text, ' | ' ORDER BY t::text COLLATE "C") FROM unnest(tables) t) AS tables
  FROM datasync.pipelines ORDER BY name COLLATE "C";
-- the added table is copied, a removed one no longer streamed
INSERT INTO extra VALUES (2, 'streamed');
INSERT INTO "select" VALUES (3, 'not synced');
SELECT datasync.wait_for_sync('users_sync', '30s');

--
-- pause, resume
--
SELECT ds_try($$SELECT datasync.pause('no_such_pipeline')$$);
SELECT ds_try($$SELECT datasync.resume('no_such_pipeline')$$);
SELECT ds_try($$SELECT datasync.pause(NULL)$$);
SELECT ds_try($$SELECT datasync.resume(NULL)$$);

--
-- alter_pipeline
--
SELECT ds_try($$SELECT datasync.alter_pipeline('no_such_pipeline', '{"batch_size": 10}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline(NULL, '{"batch_size": 10}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', NULL)$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '[]')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"batch_sise": 10}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"track_history": true}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"batch_size": 0}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"retry_max_ms": 1}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"conflict_strategy": "target-wins"}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"conflict_strategy": "loudest-wins"}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"conflict_strategy": 1}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"mode": "scheduled"}')$$);
SELECT ds_try($$SELECT datasync.alter_pipeline('seed_words', '{"schedule": "* * * * *"}')$$);
-- none of the refused changes landed
SELECT options, conflict_strategy, mode FROM datasync.pipelines WHERE name = 'seed_words';
-- merge, and remove a key with null
SELECT datasync.alter_pipeline('seed_words', '{"retry_max_ms": 3000, "retry_base_ms": 100, "batch_size": 1000}');
SELECT options, conflict_strategy, mode FROM datasync.pipelines WHERE name = 'seed_words';
SELECT datasync.alter_pipeline('seed_words', '{"initial_sync": null, "conflict_strategy": "SOURCE_WINS", "mode": "realtime"}');
SELECT options, conflict_strategy, mode FROM datasync.pipelines WHERE name = 'seed_words';

--
-- wait_for_sync
--
SELECT ds_try($$SELECT datasync.wait_for_sync('no_such_pipeline')$$);
SELECT ds_try($$SELECT datasync.wait_for_sync(NULL)$$);
SELECT ds_try($$SELECT datasync.wait_for_sync('users_sync', NULL)$$);
SELECT ds_try($$SELECT datasync.wait_for_sync('users_sync', '-1 second')$$);
-- a paused pipeline: false at once
SELECT datasync.wait_for_sync('seed_words', '30s');
-- a very long timeout is not a negative one (paused: still false at once)
SELECT datasync.wait_for_sync('seed_words', '1000000 years');
SELECT datasync.pause('users_sync');
SELECT datasync.wait_for_sync('users_sync', '30s');
SELECT datasync.resume('users_sync');
INSERT INTO users VALUES (4, 'dave');
SELECT datasync.wait_for_sync('users_sync', '30s');

-- what the worker wrote on the target
\c ds_pipe_target
SELECT * FROM users ORDER BY id;
SELECT * FROM "Üsers" ORDER BY id;
SELECT * FROM "we'ird ""name""" ORDER BY a, b;
SELECT * FROM "select" ORDER BY id;
SELECT * FROM extra ORDER BY id;
\c contrib_regression

--
-- drop_pipeline
--
SELECT ds_try($$SELECT datasync.drop_pipeline('no_such_pipeline')$$);
SELECT ds_try($$SELECT datasync.drop_pipeline(NULL)$$);
SELECT datasync.drop_pipeline('seed_words');
SELECT datasync.drop_pipeline('users_sync');
SELECT ds_wait_for($$NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'datasync\_%')$$);
SELECT * FROM ds_counts();
SELECT count(*) FROM datasync.pipelines;
SELECT count(*) FROM datasync.status;
SELECT ds_try($$SELECT datasync.drop_pipeline('users_sync')$$);
-- the targets are free again
SELECT datasync.drop_target('pipe_tgt');
SELECT datasync.drop_target('pipe_tgt2');

DROP DATABASE ds_pipe_target WITH (FORCE);
DROP VIEW users_v;
DROP TABLE users, "Üsers", "we'ird ""name""", "select", extra, full_ident, no_key,
    ident_nothing, unlogged_t;
DROP FUNCTION ds_counts();
