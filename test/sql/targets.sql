--
-- targets: create_target, alter_target, drop_target, test_target and the
-- view datasync.targets (docs/sql-reference.md, "Targets").
--
-- Targets whose DSN is printed use constant hosts (db.invalid, never
-- connected to) so that the output does not depend on the port or the
-- socket directory; the one that test_target reaches points at the
-- database ds_target of this instance and its DSN is never printed.
-- Every secret below contains "SECRET", so a leak is easy to look for.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never

--
-- Good targets: key/value DSNs and URIs, with and without a password
--
SELECT datasync.create_target('kv', 'host=db.invalid port=5432 dbname=x password=kvSECRET user=u');
SELECT datasync.create_target('kv_nopw', 'host=db.invalid port=5432 dbname=x user=u');
SELECT datasync.create_target('uri', 'postgresql://u:uriSECRET@db.invalid:5432/x?sslmode=disable');
SELECT datasync.create_target('uri_nopw', 'postgres://u@db.invalid/x');
SELECT datasync.create_target('uri_query_pw', 'postgresql://db.invalid/x?user=u&password=querySECRET');
SELECT datasync.create_target('uri_pct', 'postgresql://u:pct%40SECRET@db.invalid/x');
SELECT datasync.create_target('quoted', $$host=db.invalid dbname='my db' password='a SECRET with \'quotes\' and spaces'$$);
SELECT datasync.create_target('env_pw', 'host=db.invalid port=5432 dbname=x user=u',
                              '{"password_env": "DS_TARGET_PASSWORD"}');
SELECT datasync.create_target('described', 'host=db.invalid dbname=x',
                              '{"description": "the reporting replica"}');
SELECT datasync.create_target('null_options', 'host=db.invalid dbname=x', NULL);
-- sslpassword is a secret too (the key's passphrase)
SELECT datasync.create_target('ssl_pw', 'host=db.invalid dbname=x sslpassword=keySECRET');
-- longest name: 54 bytes (slot names are datasync_ + the name, at most 63)
SELECT datasync.create_target(repeat('n', 54), 'host=db.invalid');

-- the view shows every DSN with its password masked
SELECT name, kind, dsn, options FROM datasync.targets ORDER BY name COLLATE "C";
SELECT count(*) AS leaks FROM datasync.targets WHERE dsn LIKE '%SECRET%' OR options::text LIKE '%SECRET%';

--
-- Refused names
--
SELECT ds_try($$SELECT datasync.create_target('kv', 'host=db.invalid')$$);
SELECT ds_try($$SELECT datasync.create_target(NULL, 'host=db.invalid')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', NULL)$$);
SELECT ds_try($$SELECT datasync.create_target('', 'host=db.invalid')$$);
SELECT ds_try($$SELECT datasync.create_target(repeat('n', 55), 'host=db.invalid')$$);
SELECT replace(ds_try($$SELECT datasync.create_target(E'bad\tname', 'host=db.invalid')$$), E'\t', '<TAB>');
SELECT replace(ds_try($$SELECT datasync.create_target(E'bad\nname', 'host=db.invalid')$$), E'\n', '<NL>');

--
-- Refused DSNs: the message names the target; libpq's reason is shown
-- unless the DSN holds a password
--
\set VERBOSITY default
SELECT datasync.create_target('bad', 'host=db.invalid nonsense');
SELECT datasync.create_target('bad', 'host=db.invalid password=badSECRET nonsense');
\set VERBOSITY terse
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid nonsense')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid no_such_keyword=1')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'postgresql://db.invalid/x?no_such_keyword=1')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', '')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid password=badSECRET nonsense')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'postgresql://u:badSECRET@db.invalid/x?no_such_keyword=1')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', $q$host=db.invalid password='badSECRET$q$)$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid sslpassword=badSECRET nonsense')$$);

--
-- Refused options
--
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '{"passwd_env": "X"}')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '{"password": "badSECRET"}')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '{"password_env": ""}')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '{"password_env": 1}')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '[]')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', '"password_env"')$$);
SELECT ds_try($$SELECT datasync.create_target('bad', 'host=db.invalid', 'null')$$);

-- nothing of the refused targets landed
SELECT count(*) FROM datasync.targets WHERE name = 'bad' OR name LIKE E'bad\\_%' OR name = '';
SELECT count(*) FROM datasync.targets;

--
-- alter_target
--
-- a new DSN
SELECT datasync.alter_target('kv', '{"dsn": "postgresql://u2:newSECRET@db2.invalid:6543/y"}');
-- options merge; a JSON null removes one
SELECT datasync.alter_target('env_pw', '{"description": "primary"}');
SELECT name, dsn, options FROM datasync.targets WHERE name IN ('kv', 'env_pw') ORDER BY name COLLATE "C";
SELECT datasync.alter_target('env_pw', '{"password_env": null, "description": "password from a passfile"}');
-- the DSN and an option at once
SELECT datasync.alter_target('described', '{"dsn": "host=db3.invalid dbname=z password=thirdSECRET", "description": null}');
SELECT name, dsn, options FROM datasync.targets WHERE name IN ('kv', 'env_pw', 'described') ORDER BY name COLLATE "C";

SELECT ds_try($$SELECT datasync.alter_target('no_such_target', '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync.alter_target(NULL, '{"description": "x"}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', NULL)$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '[]')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"passwd_env": "X"}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"password_env": ""}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"dsn": 1}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"dsn": ""}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"dsn": "host=db.invalid nonsense"}')$$);
SELECT ds_try($$SELECT datasync.alter_target('kv', '{"dsn": "host=db.invalid password=badSECRET nonsense"}')$$);
-- a refused change changes nothing
SELECT name, dsn, options FROM datasync.targets WHERE name = 'kv';

--
-- drop_target
--
SELECT ds_try($$SELECT datasync.drop_target('no_such_target')$$);
SELECT ds_try($$SELECT datasync.drop_target(NULL)$$);
SELECT datasync.drop_target('kv_nopw');
SELECT ds_try($$SELECT datasync.drop_target('kv_nopw')$$);
SELECT count(*) FROM datasync.targets WHERE name = 'kv_nopw';

--
-- test_target
--
SELECT ds_try($$SELECT datasync.test_target('no_such_target')$$);
SELECT ds_try($$SELECT datasync.test_target(NULL)$$);

-- unreachable: reported, not raised, and without the password
SELECT datasync.create_target('down', 'host=127.0.0.1 port=1 dbname=x user=u password=downSECRET');
SELECT r->'ok' AS ok, r->>'target' AS target, r->>'dsn' AS dsn, r->'missing' AS missing,
       r->>'error' LIKE 'could not connect to the target: %' AS connect_error,
       r::text LIKE '%SECRET%' AS leaks
  FROM datasync.test_target('down') r;
-- password_env names a variable the server does not have
SELECT datasync.alter_target('down', '{"password_env": "DS_NO_SUCH_VARIABLE"}');
SELECT r->'ok' AS ok, r->>'error' AS error, r->'missing' AS missing
  FROM datasync.test_target('down') r;

-- a target that is up: the database ds_target of this instance
CREATE DATABASE ds_target;
SELECT format('host=%s port=%s dbname=ds_target',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS tdsn \gset
SELECT datasync.create_target('live', :'tdsn');
SELECT datasync.create_target('live_unused', :'tdsn');

-- source tables of a pipeline to "live"
CREATE TABLE tt_present (id int PRIMARY KEY, a text, "B col" text);
CREATE TABLE "tt absent" (id int PRIMARY KEY);
-- created paused (in one transaction): no worker runs
BEGIN;
SELECT datasync.create_pipeline('live_pipe', 'live', ARRAY['tt_present', '"tt absent"']::regclass[]);
SELECT datasync.pause('live_pipe');
COMMIT;

-- a target in use cannot be dropped
\set VERBOSITY default
SELECT datasync.drop_target('live');
\set VERBOSITY terse
SELECT ds_try($$SELECT datasync.drop_target('live')$$);
SELECT count(*) FROM datasync.targets WHERE name = 'live';

-- no pipeline uses it: nothing can be missing
SELECT r->'ok' AS ok, r->>'target' AS target, r ? 'error' AS has_error, r->'missing' AS missing,
       r ?& ARRAY['version', 'latency_ms'] AS has_version_and_latency
  FROM datasync.test_target('live_unused') r;

-- neither table exists on the target yet
SELECT r->'ok' AS ok, r ? 'error' AS has_error,
       (SELECT jsonb_agg(m ORDER BY m->>'kind', m->>'name') FROM jsonb_array_elements(r->'missing') m) AS missing
  FROM datasync.test_target('live') r;

-- one table there, without one of its columns
\c ds_target
CREATE TABLE tt_present (id int PRIMARY KEY, a text);
\c contrib_regression
SELECT r->'ok' AS ok, r ? 'error' AS has_error,
       (SELECT jsonb_agg(m ORDER BY m->>'kind', m->>'name') FROM jsonb_array_elements(r->'missing') m) AS missing
  FROM datasync.test_target('live') r;

-- both tables, all columns: ok
\c ds_target
ALTER TABLE tt_present ADD COLUMN "B col" text;
CREATE TABLE "tt absent" (id int PRIMARY KEY);
\c contrib_regression
SELECT r->'ok' AS ok, r ? 'error' AS has_error, r->'missing' AS missing
  FROM datasync.test_target('live') r;

-- a table list, before any pipeline: checked as one pipeline with these
-- options would send them (live_unused has no pipeline)
SELECT r->'ok' AS ok, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY['tt_present']::regclass[]) r;
SELECT r->'ok' AS ok, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY['tt_present', '"tt absent"']::regclass[],
                            '{"table_map": {"tt_present": "public.elsewhere"}}') r;
-- latest-timestamp on commit times needs track_commit_timestamp there (off
-- on this instance); on a timestamp column it does not
SELECT r->'ok' AS ok, r->'track_commit_timestamp' AS track_commit_timestamp, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY['tt_present']::regclass[],
                            '{"conflict_strategy": "latest-timestamp"}') r;
SELECT r->'ok' AS ok, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY['tt_present']::regclass[],
                            '{"conflict_strategy": "latest_timestamp", "timestamp_column": "a"}') r;
SELECT r->'ok' AS ok, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY['tt_present']::regclass[],
                            '{"table_conflict_strategy": {"tt_present": "latest-timestamp"}}') r;
-- bad lists and options
SELECT ds_try($$SELECT datasync.test_target('live_unused', ARRAY[NULL]::regclass[])$$);
SELECT ds_try($$SELECT datasync.test_target('live_unused', ARRAY['tt_present']::regclass[], '[1]')$$);
SELECT ds_try($$SELECT datasync.test_target('live_unused', ARRAY['tt_present']::regclass[], '{"conflict_strategy": "newest"}')$$);
SELECT ds_try($$SELECT datasync.test_target('live_unused', ARRAY['tt_present']::regclass[], '{"batch_sise": 5}')$$);
-- an empty list checks nothing but the target itself
SELECT r->'ok' AS ok, r->'missing' AS missing
  FROM datasync.test_target('live_unused', ARRAY[]::regclass[]) r;

--
-- Clean up
--
SELECT datasync.drop_pipeline('live_pipe');
SELECT datasync.drop_target(name) FROM datasync.targets ORDER BY name COLLATE "C";
SELECT count(*) FROM datasync.targets;
DROP DATABASE ds_target WITH (FORCE);
DROP TABLE tt_present, "tt absent";
