# Copyright (c) 2026, datasync developers
#
# Long runs of inserts go to the target as COPY, in chunks under a
# savepoint; a chunk the target refuses is applied again as upserts.
#
# Topology: source (datasync) -> target.  On the target an ENABLE ALWAYS
# statement trigger logs how each batch of rows arrived (the first word of
# current_query(): COPY or INSERT), so the test can tell the two paths
# apart.  Cases:
#   1. a long run with awkward values (tab, newline, CR, backslash, the
#      text '\N', NULL, non-ASCII, a 2 MB value, bytea, jsonb): COPY, and
#      the target equals the source; a short run stays on INSERT;
#   2. a quoted, non-ASCII table and column name;
#   3. keys the target already holds inside a COPY chunk: the chunk is
#      rolled back and applied as upserts (source wins, differing rows
#      counted as conflicts);
#   4. an error that does not come back (a target trigger fails once with
#      40001): applied as upserts, no pipeline error;
#   5. an error that does come back (a CHECK on the target): the pipeline
#      stops with the target's SQLSTATE and none of the transaction's rows
#      on the target; after the fix, resume brings them all;
#   6. a target that is a view (COPY refused): rows arrive through INSERT;
#   7. the target's session is terminated in the middle of a COPY: the
#      worker retries and the target ends equal to the source.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_copy');
my $tgt = target_node('tgt_copy');

my $ddl = q{
CREATE TABLE runs (id int PRIMARY KEY, t text, n numeric, b bytea, j jsonb, ts timestamptz);
CREATE TABLE "Tä b""le" ("ïd" int PRIMARY KEY, "Kö""lumn" text);
CREATE TABLE once (id int PRIMARY KEY, v text);
CREATE TABLE slow (id int PRIMARY KEY, v text);
};
$src->safe_psql('postgres', $ddl);
$tgt->safe_psql('postgres', $ddl);
$src->safe_psql('postgres', 'CREATE TABLE chk (id int PRIMARY KEY, v int)');
$tgt->safe_psql('postgres', 'CREATE TABLE chk (id int PRIMARY KEY, v int CHECK (v <> 31337))');
$src->safe_psql('postgres', 'CREATE TABLE nokey (a int, b text); ALTER TABLE nokey REPLICA IDENTITY FULL');
$tgt->safe_psql('postgres', q{
CREATE TABLE nokey_base (a int, b text);
CREATE VIEW nokey AS SELECT a, b FROM nokey_base;
});

# how rows arrived, per statement
$tgt->safe_psql('postgres', q{
CREATE TABLE stmt_log (n bigserial PRIMARY KEY, tbl text, how text);
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO stmt_log (tbl, how)
		VALUES (TG_TABLE_NAME, upper(split_part(ltrim(current_query()), ' ', 1)));
	RETURN NULL;
END $$;
CREATE TRIGGER log_stmt AFTER INSERT ON runs FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE runs ENABLE ALWAYS TRIGGER log_stmt;
CREATE TRIGGER log_stmt AFTER INSERT ON "Tä b""le" FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE "Tä b""le" ENABLE ALWAYS TRIGGER log_stmt;
CREATE TRIGGER log_stmt AFTER INSERT ON once FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE once ENABLE ALWAYS TRIGGER log_stmt;
CREATE TRIGGER log_stmt AFTER INSERT ON chk FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE chk ENABLE ALWAYS TRIGGER log_stmt;

-- fails the first time row 700 arrives (a sequence does not roll back)
CREATE SEQUENCE fail_once;
CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 700 AND nextval('fail_once') = 1 THEN
		RAISE EXCEPTION 'injected failure' USING ERRCODE = '40001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fail_once BEFORE INSERT ON once FOR EACH ROW EXECUTE FUNCTION fail_once();
ALTER TABLE once ENABLE ALWAYS TRIGGER fail_once;

-- a slow COPY: 10 ms every 100 rows
CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id % 100 = 0 THEN
		PERFORM pg_sleep(0.01);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow_down BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION slow_down();
ALTER TABLE slow ENABLE ALWAYS TRIGGER slow_down;
});

my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
SELECT datasync.create_target('tgt', '$dsn');
SELECT datasync.create_pipeline('runs', 'tgt',
	ARRAY['runs', '"Tä b""le"', 'once', 'slow']::regclass[],
	options => '{"retry_base_ms": 100, "retry_max_ms": 500}');
SELECT datasync.create_pipeline('chk', 'tgt', ARRAY['chk']::regclass[],
	options => '{"retry_base_ms": 100, "retry_max_ms": 500}');
});
ok(wait_for_sync($src, 'runs'), 'pipeline runs is streaming');
ok(wait_for_sync($src, 'chk'), 'pipeline chk is streaming');
# the initial copy cannot fill a view: none
$src->safe_psql('postgres', q{
SELECT datasync.create_pipeline('view', 'tgt', ARRAY['nokey']::regclass[],
	options => '{"initial_sync": false}');
});
ok(wait_for_sync($src, 'view'), 'pipeline view is streaming');

sub how
{
	my ($tbl) = @_;
	return $tgt->safe_psql('postgres',
		"SELECT coalesce(string_agg(DISTINCT how, ',' ORDER BY how), '') FROM stmt_log WHERE tbl = '$tbl'");
}

sub status
{
	my ($pipeline, $cols) = @_;
	return $src->safe_psql('postgres', "SELECT $cols FROM datasync.status WHERE name = '$pipeline'");
}

# 1. awkward values in a long run; a short run
my $values = <<'EOS';
SELECT g,
	CASE g % 8
		WHEN 0 THEN E'tab\there'
		WHEN 1 THEN E'line\nbreak\r\n'
		WHEN 2 THEN E'back\\slash \\N \\. end\\'
		WHEN 3 THEN '\N'
		WHEN 4 THEN NULL
		WHEN 5 THEN 'ünïcødé ✓ 日本'
		WHEN 6 THEN ''
		ELSE md5(g::text)
	END,
	CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.5 END,
	CASE WHEN g % 3 = 0 THEN E'\\x00095c0a0d'::bytea ELSE decode(md5(g::text), 'hex') END,
	CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('k', E'v\t\n\\', 'n', g) END,
	'2026-12-03 10:00:00+00'::timestamptz + g * interval '1 second'
EOS
$src->safe_psql('postgres', qq{
BEGIN;
INSERT INTO runs $values FROM generate_series(1, 5000) g;
INSERT INTO runs VALUES (5001, repeat('x', 2 * 1024 * 1024), 1, NULL, NULL, NULL);
INSERT INTO runs $values FROM generate_series(5002, 8000) g;
COMMIT;
});
ok(wait_for_sync($src, 'runs'), 'long run arrived');
compare_hash($src, $tgt, 'runs');
is(how('runs'), 'COPY,INSERT', 'the long run went as COPY after its first rows');

$tgt->safe_psql('postgres', "DELETE FROM stmt_log");
$src->safe_psql('postgres', "INSERT INTO runs $values FROM generate_series(8001, 8100) g");
ok(wait_for_sync($src, 'runs'), 'short run arrived');
compare_hash($src, $tgt, 'runs');
is(how('runs'), 'INSERT', 'a short run stays on INSERT');

# 2. quoted, non-ASCII names
$src->safe_psql('postgres', q{
INSERT INTO "Tä b""le" SELECT g, 'wért ' || g FROM generate_series(1, 3000) g;
});
ok(wait_for_sync($src, 'runs'), 'quoted table arrived');
compare_hash($src, $tgt, '"Tä b""le"');
is(how('Tä b"le'), 'COPY,INSERT', 'quoted, non-ASCII names: COPY');

# 3. keys the target holds inside a chunk: source wins
$tgt->safe_psql('postgres', q{
DELETE FROM stmt_log;
INSERT INTO runs (id, t) SELECT g, 'target only' FROM generate_series(12001, 12010) g;
});
my $conflicts0 = status('runs', 'conflicts');
$src->safe_psql('postgres', "INSERT INTO runs $values FROM generate_series(10001, 14000) g");
ok(wait_for_sync($src, 'runs'), 'run over existing keys arrived');
compare_hash($src, $tgt, 'runs');
is(status('runs', 'conflicts') - $conflicts0, 10, 'the ten differing rows count as conflicts');
is(how('runs'), 'INSERT', 'the chunk went again as upserts, the rest of the batch too');
is(status('runs', 'errors'), '0', 'no pipeline error');

# the next batch copies again
$tgt->safe_psql('postgres', "DELETE FROM stmt_log");
$src->safe_psql('postgres', "INSERT INTO runs $values FROM generate_series(20001, 21000) g");
ok(wait_for_sync($src, 'runs'), 'next batch arrived');
compare_hash($src, $tgt, 'runs');
is(how('runs'), 'COPY,INSERT', 'the next batch uses COPY again');

# 4. an error that does not come back
$src->safe_psql('postgres', "INSERT INTO once SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
ok(wait_for_sync($src, 'runs'), 'rows of once arrived');
compare_hash($src, $tgt, 'once');
is($tgt->safe_psql('postgres', "SELECT last_value FROM fail_once"), '2',
	'the injected failure happened (and the row went again)');
is(how('once'), 'INSERT', 'the failed chunk went as upserts');
is(status('runs', 'errors'), '0', 'no pipeline error');

# 5. an error that comes back: nothing of the transaction on the target
$src->safe_psql('postgres', q{
INSERT INTO chk SELECT g, CASE WHEN g = 900 THEN 31337 ELSE g END FROM generate_series(1, 2000) g;
});
$src->poll_query_until('postgres',
	"SELECT state = 'error' FROM datasync.status WHERE name = 'chk'")
  or die 'pipeline chk did not stop';
like(status('chk', 'last_error'), qr/check constraint/, 'the CHECK violation stops the pipeline');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM chk'), '0',
	'none of the transaction is on the target');
$tgt->safe_psql('postgres', 'ALTER TABLE chk DROP CONSTRAINT chk_v_check');
$src->safe_psql('postgres', "SELECT datasync.resume('chk')");
ok(wait_for_sync($src, 'chk'), 'resumed pipeline caught up');
compare_hash($src, $tgt, 'chk');

# 6. a view as the target (COPY refused there)
$src->safe_psql('postgres', "INSERT INTO nokey SELECT g, md5(g::text) FROM generate_series(1, 1500) g");
ok(wait_for_sync($src, 'view'), 'rows for the view arrived');
is(status('view', 'errors'), '0', 'COPY refused by the view: no pipeline error');
compare_hash($src, $tgt, [ 'nokey', 'nokey_base' ]);

# 7. the target session terminated during a COPY
my $errors0 = status('runs', 'errors');
$src->safe_psql('postgres', "INSERT INTO slow SELECT g, md5(g::text) FROM generate_series(1, 30000) g");
ok($tgt->poll_query_until('postgres', q{
SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity
WHERE query LIKE 'COPY%slow%' AND pid <> pg_backend_pid()}),
	'terminated the target session during a COPY');
ok(wait_for_sync($src, 'runs', 300), 'rows of slow arrived after the retry');
compare_hash($src, $tgt, 'slow');
cmp_ok(status('runs', 'errors'), '>', $errors0, 'the lost connection counted as an error');

done_testing();
