# Copyright (c) 2026, datasync developers
#
# 010_streaming.pl -- initial copy and real-time streaming to a PostgreSQL target.
#
# Topology: node "src" (datasync preloaded, the source database "postgres")
#           node "tgt" (plain PostgreSQL, the target), reached over libpq.
#           One pipeline "p1" (mode realtime, source-wins) with every table below.
#
# Scenario:
#   (a) the source tables hold rows and the target holds other rows before
#       create_pipeline: after the first wait_for_sync the target equals the
#       source (the copy replaces the target's contents);
#   (b) every change kind: INSERT, UPDATE, UPDATE of the primary key, DELETE,
#       TRUNCATE, a multi-statement transaction, a rolled-back transaction,
#       savepoints with ROLLBACK TO, an UPDATE that leaves a ~100 kB TOASTed
#       column unchanged (the target keeps the value), NULLs;
#   (c) every common type in one wide table (compared as text), edge values
#       (NaN, +-Infinity, empty arrays, NULL elements, quotes, backslashes);
#   (d) identifiers that need quoting ("Üsers ß"."Naïve Col",
#       "we'ird ""name""", "select"."from"), a composite primary key, a
#       REPLICA IDENTITY FULL table without any key and with duplicate rows;
#   (e) source-wins conflicts: insert of a key the target already has, update
#       of a row missing on the target, delete of a row already gone;
#   finally datasync.status shows state streaming, rows_applied > 0, errors 0.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src');
my $tgt = target_node('tgt');
my $dsn = target_dsn($tgt);

# Wait for the pipeline without dying, so that one failed wait is one failed
# test and the rest of the file still runs.
sub synced
{
	my ($name, $timeout) = @_;
	my $ok = eval { wait_for_sync($src, 'p1', $timeout // 60); };
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($ok, "wait_for_sync: $name") or diag($@);
	return $ok;
}

# Same query on both nodes, same result.
sub same_result
{
	my ($sql, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($tgt->safe_psql('postgres', $sql),
		$src->safe_psql('postgres', $sql), $name);
}

# ---------------------------------------------------------------------------
# Schema: identical on both nodes, created before the pipeline.
# ---------------------------------------------------------------------------
my $schema = <<'EOSQL';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'very ''happy''');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);

CREATE TABLE items (id int PRIMARY KEY, name text, qty int, note text);
CREATE TABLE docs (id int PRIMARY KEY, rev int NOT NULL, body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTENDED;
CREATE TABLE types (
    id        int PRIMARY KEY,
    c_int2    int2,
    c_int4    int4,
    c_int8    int8,
    c_num     numeric,
    c_f4      float4,
    c_f8      float8,
    c_text    text,
    c_vc      varchar(10),
    c_ch      char(5),
    c_bytea   bytea,
    c_bool    bool,
    c_date    date,
    c_time    time,
    c_ts      timestamp,
    c_tstz    timestamptz,
    c_iv      interval,
    c_uuid    uuid,
    c_json    json,
    c_jsonb   jsonb,
    c_intarr  int[],
    c_textarr text[],
    c_enum    mood,
    c_dom     posint,
    c_inet    inet,
    c_cidr    cidr,
    c_money   money
);
CREATE TABLE "Üsers ß" (id int PRIMARY KEY, "Naïve Col" text);
CREATE TABLE "we'ird ""name""" (id int PRIMARY KEY, "va""l" text);
CREATE TABLE "select" ("from" int PRIMARY KEY, "where" text);
CREATE TABLE comp (a int, b text, v int, PRIMARY KEY (a, b));
CREATE TABLE nokey (a int, b text, j json);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE TABLE nokey_toast (a int, body text);
ALTER TABLE nokey_toast REPLICA IDENTITY FULL;
CREATE TABLE conf (id int PRIMARY KEY, v text);
CREATE TABLE conf_toast (id int PRIMARY KEY, rev int, body text);
EOSQL
$src->safe_psql('postgres', $schema);
$tgt->safe_psql('postgres', $schema);

# Rows of the wide table: edge values of every type.  Used for the copy
# (ids 1-3) and for the stream (ids 11-13).
sub types_rows
{
	my ($base) = @_;
	my ($a, $b, $c) = ($base + 1, $base + 2, $base + 3);
	return <<EOSQL;
INSERT INTO types VALUES
 ($a, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'NaN',
  E'quote '' dq " bs \\\\ nl \\n tab \\t', 'abc', 'ab', '\\x00ff10'::bytea, true,
  '2024-02-29', '23:59:59.999999', '2000-01-01 00:00:00.000001',
  '2024-06-30 23:59:59.5+02', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.50, null],  "s" : "x"}',
  '{"b": {"c": [true, false]}, "a": 1.10}', '{1,NULL,-3}', '{"a,b","c\\"d",NULL,"","NULL"}',
  'sad', 1, '192.168.0.1/24', '10.0.0.0/8', '-12.34'),
 ($b, 32767, 2147483647, 9223372036854775807, '-12345678901234567890.123456789012', 'Infinity', 'Infinity',
  'Ünïcödé ß € 😀', '', '     ', ''::bytea, false,
  'infinity', '00:00:00', '-infinity', 'infinity', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}',
  'very ''happy''', 2147483647, '::1', '2001:db8::/32', '92233720368547758.07'),
 ($c, 0, 0, 0, '0.000000000000000000001', '-Infinity', '-Infinity',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO types (id, c_f4, c_f8, c_num, c_iv, c_tstz, c_textarr, c_intarr)
  VALUES ($base + 4, 1.17549435e-38, 2.2250738585072014e-308, '1e-100', '-1 days +02:03:00',
          '1970-01-01 00:00:00+00', '{{a,b},{c,d}}', '[0:1]={7,8}'),
         ($base + 5, 0.1, 0.1, '-0', '0', 'epoch', ARRAY[]::text[], '{}');
EOSQL
}

# ---------------------------------------------------------------------------
# (a) initial snapshot
# ---------------------------------------------------------------------------
my $big = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3200))";

$src->safe_psql('postgres', <<EOSQL);
INSERT INTO items SELECT g, 'item ' || g, g * 10, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END
  FROM generate_series(1, 100) g;
INSERT INTO docs VALUES (1, 1, $big), (2, 1, 'short');
@{[ types_rows(0) ]}
INSERT INTO "Üsers ß" VALUES (1, 'Zoë'), (2, NULL);
INSERT INTO "we'ird ""name""" VALUES (1, 'it''s');
INSERT INTO "select" VALUES (1, 'from where');
INSERT INTO comp VALUES (1, 'a', 1), (1, 'b', 2), (2, 'a', 3);
INSERT INTO nokey VALUES (1, 'x', '{"a":1}'), (1, 'x', '{"a":1}'), (2, NULL, NULL);
INSERT INTO conf VALUES (100, 'copied');
EOSQL

# rows that only the target has: the copy must remove them
$tgt->safe_psql('postgres', <<'EOSQL');
INSERT INTO items VALUES (1, 'stale', -1, 'target only'), (1000, 'target only', 0, NULL);
INSERT INTO docs VALUES (99, 0, 'target only');
INSERT INTO types (id, c_text) VALUES (99, 'target only');
INSERT INTO "Üsers ß" VALUES (99, 'target only');
INSERT INTO nokey VALUES (99, 'target only', NULL);
INSERT INTO conf VALUES (999, 'target only');
EOSQL

my @tables = ('items', 'docs', 'types', '"Üsers ß"', q{"we'ird ""name"""},
	'"select"', 'comp', 'nokey', 'nokey_toast', 'conf', 'conf_toast');
my $regclasses = join(', ',
	map { my $t = $_; $t =~ s/'/''/g; "'$t'::regclass" } @tables);

$src->safe_psql('postgres', "SELECT datasync.create_target('t1', '$dsn')");

# A script that creates a pipeline and waits for it at once (same session):
# everything committed before the call (the rows above) must be on the
# target when wait_for_sync returns, and it must return true.
my $first = $src->safe_psql('postgres',
	"SELECT datasync.create_pipeline('p1', 't1', ARRAY[$regclasses]);\n"
	  . "SELECT datasync.wait_for_sync('p1', '30 s');",
	timeout => 120);
$first = (split /\n/, $first)[-1];
is($first, 't', 'wait_for_sync right after create_pipeline (same session) returns true')
  or diag($src->safe_psql('postgres', 'SELECT * FROM datasync.status'));
# with a fresh marker, so that the rest of the file stays meaningful
synced('second call after create_pipeline', 60) unless $first eq 't';

compare_tables($src, $tgt, 'items', 'id');
is($tgt->safe_psql('postgres', "SELECT count(*) FROM items WHERE id = 1000 OR note = 'target only'"),
	'0', 'copy removed the rows only the target had');
same_result('SELECT id, rev, md5(body), length(body) FROM docs ORDER BY id',
	'docs copied, TOASTed body intact');
compare_tables($src, $tgt, 'types', 'id');
compare_tables($src, $tgt, '"Üsers ß"', 'id');
compare_tables($src, $tgt, q{"we'ird ""name"""}, 'id');
compare_tables($src, $tgt, '"select"', '"from"');
compare_tables($src, $tgt, 'comp', 'a, b');
compare_tables($src, $tgt, 'nokey', 'a, b, j::text');
compare_tables($src, $tgt, 'conf', 'id');

# ---------------------------------------------------------------------------
# (b) every change kind
# ---------------------------------------------------------------------------
$src->safe_psql('postgres', <<'EOSQL');
INSERT INTO items VALUES (101, 'new', 1, NULL), (102, NULL, NULL, NULL);
UPDATE items SET qty = qty + 1, note = 'updated' WHERE id BETWEEN 10 AND 19;
UPDATE items SET note = NULL WHERE id = 20;
UPDATE items SET name = 'was null' WHERE id = 102;
UPDATE items SET id = 201 WHERE id = 21;
UPDATE items SET id = id + 1000 WHERE id BETWEEN 30 AND 34;
DELETE FROM items WHERE id BETWEEN 40 AND 49;
EOSQL
synced('simple changes');
compare_tables($src, $tgt, 'items', 'id');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id = 21 OR id BETWEEN 30 AND 34'),
	'0', 'UPDATE of the primary key: no row left under the old key');

# a multi-statement transaction, including an update of a row inserted in it
# and a primary key moved twice
$src->safe_psql('postgres', <<'EOSQL');
BEGIN;
INSERT INTO items VALUES (300, 'txn', 1, 'a');
UPDATE items SET qty = 2 WHERE id = 300;
UPDATE items SET id = 301 WHERE id = 300;
UPDATE items SET id = 302, name = 'moved twice' WHERE id = 301;
DELETE FROM items WHERE id = 50;
INSERT INTO items VALUES (50, 'reinserted', 5, NULL);
UPDATE "Üsers ß" SET "Naïve Col" = 'Ærøskøbing' WHERE id = 2;
COMMIT;
EOSQL

# a rolled-back transaction: nothing of it
$src->safe_psql('postgres', <<'EOSQL');
BEGIN;
INSERT INTO items VALUES (400, 'rolled back', 1, NULL);
UPDATE items SET name = 'rolled back' WHERE id = 1;
DELETE FROM items WHERE id = 2;
ROLLBACK;
EOSQL

# savepoints: only the kept parts
$src->safe_psql('postgres', <<'EOSQL');
BEGIN;
INSERT INTO items VALUES (500, 'kept', 1, NULL);
SAVEPOINT s1;
INSERT INTO items VALUES (501, 'rolled back to s1', 1, NULL);
UPDATE items SET name = 'rolled back to s1' WHERE id = 500;
DELETE FROM items WHERE id = 3;
SAVEPOINT s2;
INSERT INTO items VALUES (502, 'rolled back with s1', 1, NULL);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO items VALUES (503, 'kept after rollback to', 1, NULL);
SAVEPOINT s3;
UPDATE items SET note = 'kept, s3 released' WHERE id = 500;
RELEASE SAVEPOINT s3;
COMMIT;
EOSQL
synced('transactions');
compare_tables($src, $tgt, 'items', 'id');
is($tgt->safe_psql('postgres',
		"SELECT string_agg(id::text || ':' || name, ',' ORDER BY id) FROM items WHERE id IN (1, 2, 3, 300, 301, 302, 400, 500, 501, 502, 503)"),
	'1:item 1,2:item 2,3:item 3,302:moved twice,500:kept,503:kept after rollback to',
	'rolled-back transaction and rolled-back savepoints left no trace');

# TOAST: change another column, leave the big one unchanged
$src->safe_psql('postgres', "INSERT INTO docs VALUES (3, 1, $big)");
synced('TOASTed insert');
$src->safe_psql('postgres', <<'EOSQL');
UPDATE docs SET rev = rev + 1 WHERE id IN (1, 3);
UPDATE docs SET rev = 10, id = 4 WHERE id = 3;
UPDATE docs SET body = NULL WHERE id = 2;
EOSQL
synced('UPDATE leaving the TOASTed column unchanged');
my $toast_check = 'SELECT id, rev, md5(body), length(body) FROM docs ORDER BY id';
same_result($toast_check, 'docs: TOASTed value kept on the target across UPDATEs of other columns');
like($tgt->safe_psql('postgres', 'SELECT length(body) FROM docs WHERE id = 1'),
	qr/^1024\d\d$/, 'docs 1: the target still has the 100 kB body');
compare_hash($src, $tgt, 'docs');

# NULLs everywhere, then back
$src->safe_psql('postgres', <<'EOSQL');
UPDATE items SET name = NULL, qty = NULL, note = NULL WHERE id = 60;
INSERT INTO items VALUES (600, NULL, NULL, NULL);
UPDATE items SET name = 'not null again' WHERE id = 61 AND name IS NOT NULL;
EOSQL
synced('NULLs');
compare_tables($src, $tgt, 'items', 'id');

# TRUNCATE, then rows again, one of them in the same transaction
$src->safe_psql('postgres', <<'EOSQL');
TRUNCATE comp;
BEGIN;
TRUNCATE conf;
INSERT INTO conf VALUES (1, 'after truncate');
COMMIT;
INSERT INTO comp VALUES (5, 'x', 5);
EOSQL
synced('TRUNCATE');
compare_tables($src, $tgt, 'comp', 'a, b');
compare_tables($src, $tgt, 'conf', 'id');

# ---------------------------------------------------------------------------
# (c) every common type, through the stream
# ---------------------------------------------------------------------------
$src->safe_psql('postgres', types_rows(10));
$src->safe_psql('postgres', <<'EOSQL');
UPDATE types SET c_text = c_text || ' (updated)', c_intarr = c_intarr || 42,
       c_jsonb = jsonb_set(coalesce(c_jsonb, '{}'), '{z}', '"zz"'),
       c_money = coalesce(c_money, 0::money) + 1::money, c_dom = coalesce(c_dom, 7)
 WHERE id IN (1, 11, 13);
UPDATE types SET id = 20 WHERE id = 12;
DELETE FROM types WHERE id = 2;
EOSQL
synced('wide table');
compare_tables($src, $tgt, 'types', 'id');
# psql shows floats with extra_float_digits 1 (shortest exact): also check
# the bits of the float columns
same_result(
	"SELECT id, float4send(c_f4), float8send(c_f8), numeric_send(c_num) FROM types ORDER BY id",
	'types: float and numeric values identical to the bit');

# ---------------------------------------------------------------------------
# (d) identifiers, composite keys, tables without a key
# ---------------------------------------------------------------------------
$src->safe_psql('postgres', <<'EOSQL');
INSERT INTO "Üsers ß" VALUES (3, 'Ŋåmé with "quotes" and ''apostrophes''');
UPDATE "Üsers ß" SET "Naïve Col" = 'changed' WHERE id = 1;
UPDATE "Üsers ß" SET id = 30 WHERE id = 3;
DELETE FROM "Üsers ß" WHERE id = 2;
INSERT INTO "we'ird ""name""" VALUES (2, 'two'), (3, 'three');
UPDATE "we'ird ""name""" SET "va""l" = 'one' WHERE id = 1;
UPDATE "we'ird ""name""" SET id = 20 WHERE id = 2;
DELETE FROM "we'ird ""name""" WHERE id = 3;
INSERT INTO "select" VALUES (2, 'group by'), (3, 'order');
UPDATE "select" SET "where" = 'having' WHERE "from" = 1;
UPDATE "select" SET "from" = 20 WHERE "from" = 2;
DELETE FROM "select" WHERE "from" = 3;
INSERT INTO comp VALUES (1, 'a', 10), (1, 'b', 20), (2, 'a', 30), (3, 'c', 40);
UPDATE comp SET v = 11 WHERE a = 1 AND b = 'a';
UPDATE comp SET b = 'bb' WHERE a = 1 AND b = 'b';
UPDATE comp SET a = 9 WHERE a = 2 AND b = 'a';
DELETE FROM comp WHERE a = 3 AND b = 'c';
EOSQL
synced('identifiers and composite key');
compare_tables($src, $tgt, '"Üsers ß"', 'id');
compare_tables($src, $tgt, q{"we'ird ""name"""}, 'id');
compare_tables($src, $tgt, '"select"', '"from"');
compare_tables($src, $tgt, 'comp', 'a, b');

# runs: inserts and whole-row updates go out as multi-row upserts (a key
# seen again in the run starts a new one), deletes by key as one DELETE
# per run; mixed in one transaction with a composite key
$src->safe_psql('postgres', <<'EOSQL');
BEGIN;
INSERT INTO comp SELECT 100 + g, 'r', g FROM generate_series(1, 300) g;
UPDATE comp SET v = v + 1000 WHERE a > 100 AND b = 'r';
UPDATE comp SET v = v + 1 WHERE a = 101 AND b = 'r';
UPDATE comp SET v = v + 1 WHERE a = 101 AND b = 'r';
UPDATE comp SET v = v + 1 WHERE a = 101 AND b = 'r';
DELETE FROM comp WHERE a > 150 AND b = 'r';
INSERT INTO comp VALUES (151, 'r', -1);
UPDATE comp SET v = -2 WHERE a = 151 AND b = 'r';
DELETE FROM comp WHERE a = 102 AND b = 'r';
DELETE FROM comp WHERE a = 102 AND b = 'r';
COMMIT;
EOSQL
synced('runs of upserts and deletes');
compare_tables($src, $tgt, 'comp', 'a, b');

# REPLICA IDENTITY FULL without a key: duplicates are distinct rows
$src->safe_psql('postgres', <<'EOSQL');
INSERT INTO nokey VALUES (5, 'dup', '[1, 2]'), (5, 'dup', '[1, 2]'), (6, 'dup2', NULL), (6, 'dup2', NULL);
EOSQL
synced('keyless inserts');
compare_tables($src, $tgt, 'nokey', 'a, b, j::text');
$src->safe_psql('postgres', <<'EOSQL');
DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 5);
UPDATE nokey SET b = 'one of two' WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 6);
UPDATE nokey SET a = 3 WHERE a = 2;
EOSQL
synced('keyless delete and update of one of two identical rows');
is($tgt->safe_psql('postgres', "SELECT count(*) FROM nokey WHERE a = 5"),
	'1', 'nokey: deleting one of two identical rows leaves one on the target');
compare_tables($src, $tgt, 'nokey', 'a, b, j::text');

# REPLICA IDENTITY FULL without a key, UPDATE leaving a TOASTed column as is
$src->safe_psql('postgres', "INSERT INTO nokey_toast VALUES (1, $big), (2, $big), (2, 'short')");
synced('keyless TOASTed inserts');
$src->safe_psql('postgres', <<'EOSQL');
UPDATE nokey_toast SET a = 10 WHERE a = 1;
UPDATE nokey_toast SET a = 20 WHERE a = 2 AND body <> 'short';
DELETE FROM nokey_toast WHERE a = 2;
EOSQL
synced('keyless TOASTed update and delete');
same_result('SELECT a, md5(body), length(body) FROM nokey_toast ORDER BY 1, 2',
	'nokey_toast: TOASTed values kept, rows matched by their full old row');

# ---------------------------------------------------------------------------
# (e) source-wins conflicts
# ---------------------------------------------------------------------------
# insert_exists: the target has the key with other values
$tgt->safe_psql('postgres', "INSERT INTO conf VALUES (10, 'target version')");
$src->safe_psql('postgres', "INSERT INTO conf VALUES (10, 'source version')");
# update_missing and delete_missing: rows the target lost
$src->safe_psql('postgres', "INSERT INTO conf VALUES (20, 'a'), (30, 'b')");
$src->safe_psql('postgres', "INSERT INTO conf_toast VALUES (5, 1, $big)");
synced('conflict set-up');
$tgt->safe_psql('postgres', 'DELETE FROM conf WHERE id IN (20, 30)');
$tgt->safe_psql('postgres', 'DELETE FROM conf_toast WHERE id = 5');
$src->safe_psql('postgres', <<'EOSQL');
UPDATE conf SET v = 'updated on source' WHERE id = 20;
UPDATE conf_toast SET rev = 2 WHERE id = 5;
DELETE FROM conf WHERE id = 30;
INSERT INTO conf VALUES (40, 'after the conflicts');
EOSQL
synced('conflicts');
compare_tables($src, $tgt, 'conf', 'id');
is($tgt->safe_psql('postgres', 'SELECT v FROM conf WHERE id = 20'),
	'updated on source', 'update_missing: the target has the full new row');
is($tgt->safe_psql('postgres', 'SELECT v FROM conf WHERE id = 10'),
	'source version', 'insert_exists: the source wins');
# the stream does not carry the unchanged TOASTed body, but the target must
# still end with the whole row
same_result('SELECT id, rev, md5(body), length(body) FROM conf_toast ORDER BY id',
	'update_missing with an unchanged TOASTed column: the target has the whole row');
is($tgt->safe_psql('postgres', 'SELECT v FROM conf WHERE id = 40'),
	'after the conflicts', 'delete_missing: the stream went on');

# ---------------------------------------------------------------------------
# every table, one last time, and the pipeline's status
# ---------------------------------------------------------------------------
compare_tables($src, $tgt, 'items', 'id');
compare_tables($src, $tgt, 'types', 'id');
compare_hash($src, $tgt, 'docs');

my $status = $src->safe_psql('postgres',
	"SELECT state, rows_applied > 0, errors, last_error IS NULL FROM datasync.status WHERE name = 'p1'");
is($status, 'streaming|t|0|t', 'status: streaming, rows applied, no errors')
  or diag($src->safe_psql('postgres', "SELECT * FROM datasync.status"));

done_testing();
