# Copyright (c) 2026, datasync developers
#
# 140_big_rows.pl -- what is sent to the target stays inside the protocol's
# limits; a pipeline that keeps failing says so; partitioned target tables.
#
# Topology: node "src_big" (datasync), node "tgt_big" (plain PostgreSQL,
# track_commit_timestamp on).  On the target, ENABLE ALWAYS triggers log
# what each statement and each target transaction carried, so the test sees
# the statements the target received.
#
#   1. multi-row statements are capped by bytes (the real 16 MB cap): 64
#      rows of 200 kB go as one statement, 100 rows of 300 kB (19 MB a run
#      of 64) in statements of at most 16 MB, all through INSERT;
#   2. batches are capped by bytes (pipeline option batch_max_bytes): ten
#      source transactions of 600 kB, pending while the target is slow, go
#      in target transactions of at most two of them;
#   3. with the developer limit datasync.statement_max_bytes lowered, a
#      change that needs a larger statement (an UPDATE of a table without a
#      key sends the old and the new row; a single large row) stops the
#      pipeline in state "error" naming pipeline, table and LSN, with
#      nothing of its transaction applied; after the limit is raised,
#      resume() applies it;
#   4. a transient error that comes back on every attempt: datasync.status
#      shows "retrying", last_error and a growing retry_attempt all along
#      (not "streaming" with no error between attempts); once the cause is
#      gone and a batch commits, "streaming" with the error cleared; again
#      when the failing table leaves the pipeline and the stream catches up
#      with nothing to apply;
#   5. partitioned target tables under every conflict strategy (source-wins
#      with and without log_conflicts, target-wins, latest-timestamp on a
#      column and on commit times, manual): inserts (single, multi-row,
#      COPY), whole-row updates, updates that move a row to another
#      partition, deletes, insert_exists and update_missing conflicts; a
#      table without a key (rows at the same ctid in two partitions).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DatasyncTest;

my $src = source_node('src_big', max_worker_processes => 30, max_connections => 40);
my $tgt = target_node('tgt_big');
$tgt->append_conf('postgresql.conf', 'track_commit_timestamp = on');
$tgt->restart;

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('tgt', '$dsn')");

# Wait for a pipeline without dying: one failed wait is one failed test.
sub synced
{
	my ($name, $pipeline) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = eval { wait_for_sync($src, $pipeline, 90); };
	ok($ok, "$name: wait_for_sync('$pipeline')") or diag($@);
	return $ok;
}

# Set datasync.statement_max_bytes (undef: reset) and wait until the
# postmaster has it, so that a worker started afterwards has it too.
sub set_statement_limit
{
	my ($value) = @_;
	if (defined $value)
	{
		src_q("ALTER SYSTEM SET datasync.statement_max_bytes = '$value'");
	}
	else
	{
		src_q("ALTER SYSTEM RESET datasync.statement_max_bytes");
		$value = '1073741822B';
	}
	src_q("SELECT pg_reload_conf()");
	ok(poll_until($src, "SHOW datasync.statement_max_bytes", $value),
		"datasync.statement_max_bytes is $value");
	return;
}

# how each statement into a table arrived, and what each target
# transaction held
tgt_q(q{
CREATE TABLE stmt_log (n bigserial PRIMARY KEY, tbl text, xid xid8, how text, nrows int, bytes bigint);
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO stmt_log (tbl, xid, how, nrows, bytes)
		SELECT TG_TABLE_NAME, pg_current_xact_id(), upper(split_part(ltrim(current_query()), ' ', 1)),
			   count(*), coalesce(sum(octet_length(pad)), 0)
		  FROM new_rows;
	RETURN NULL;
END $$;
CREATE TABLE row_log (xid xid8, tbl text, txn int);
CREATE FUNCTION log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO row_log VALUES (pg_current_xact_id(), TG_TABLE_NAME, NEW.txn);
	RETURN NULL;
END $$;
CREATE FUNCTION slow_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.2);
	RETURN NULL;
END $$;
});

# ---------------------------------------------------------------------------
# 1. multi-row statements capped by bytes
# ---------------------------------------------------------------------------
my $ddl = q{
CREATE TABLE wide (id int PRIMARY KEY, txn int, pad text);
CREATE TABLE bat (id int PRIMARY KEY, txn int, pad text);
};
src_q($ddl);
tgt_q($ddl);
tgt_q(q{
CREATE TRIGGER log_stmt AFTER INSERT ON wide REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE wide ENABLE ALWAYS TRIGGER log_stmt;
CREATE TRIGGER log_row AFTER INSERT ON bat FOR EACH ROW EXECUTE FUNCTION log_row();
ALTER TABLE bat ENABLE ALWAYS TRIGGER log_row;
CREATE TRIGGER slow_stmt BEFORE INSERT ON bat FOR EACH STATEMENT EXECUTE FUNCTION slow_stmt();
ALTER TABLE bat ENABLE ALWAYS TRIGGER slow_stmt;
});

src_q(q{
SELECT datasync.create_pipeline('big', 'tgt', ARRAY['wide']::regclass[]);
SELECT datasync.create_pipeline('bat', 'tgt', ARRAY['bat']::regclass[],
	options => '{"batch_max_bytes": 1000000}');
});
synced('set-up', 'big');
synced('set-up', 'bat');

# 64 rows of 200 kB (12.8 MB): one multi-row statement
tgt_q("TRUNCATE stmt_log");		# the initial copy's COPY
src_q(q{INSERT INTO wide SELECT g, 1, repeat(chr(64 + g % 26), 200000) FROM generate_series(1, 64) g});
synced('64 rows of 200 kB', 'big');
is(tgt_q(q{SELECT count(*) || ' ' || max(nrows) || ' ' || string_agg(DISTINCT how, ',') FROM stmt_log WHERE tbl = 'wide'}),
	'1 64 INSERT', '64 rows of 200 kB: one statement of 64 rows');

# 100 rows of 300 kB: a run of 64 would be 19.2 MB
tgt_q("TRUNCATE stmt_log");
src_q(q{INSERT INTO wide SELECT g, 2, repeat(chr(64 + g % 26), 300000) FROM generate_series(101, 200) g});
synced('100 rows of 300 kB', 'big');
is(tgt_q(q{SELECT sum(nrows) || ' ' || string_agg(DISTINCT how, ',') FROM stmt_log WHERE tbl = 'wide'}),
	'100 INSERT', '100 rows of 300 kB: all through INSERT statements');
my ($maxbytes, $maxrows) = split / /,
  tgt_q(q{SELECT max(bytes) || ' ' || max(nrows) FROM stmt_log WHERE tbl = 'wide'});
cmp_ok($maxbytes, '<=', 16 * 1024 * 1024,
	"100 rows of 300 kB: no statement carries more than 16 MB (largest: $maxbytes bytes, $maxrows rows)");
compare_hash($src, $tgt, 'wide');

# ---------------------------------------------------------------------------
# 2. batches capped by bytes: the target is slow (0.2 s a statement), so
#    the ten transactions are pending while the first batch is on its way
# ---------------------------------------------------------------------------
src_q(join('', map { "BEGIN; INSERT INTO bat SELECT g, $_, repeat('b', 300000) FROM generate_series($_ * 10, $_ * 10 + 1) g; COMMIT;\n" } 1 .. 10));
synced('ten transactions of 600 kB', 'bat');
compare_hash($src, $tgt, 'bat');
my ($xacts, $most) = split / /, tgt_q(q{
SELECT count(*) || ' ' || max(n) FROM (SELECT count(DISTINCT txn) AS n FROM row_log WHERE tbl = 'bat' GROUP BY xid) x});
cmp_ok($most, '<=', 2,
	"batch_max_bytes 1000000: no target transaction holds more than two source transactions of 600 kB ($xacts transactions)");
is(src_q(q{SELECT (options->>'batch_max_bytes') FROM datasync.pipelines WHERE name = 'bat'}), '1000000',
	'batch_max_bytes is a pipeline option');
is(src_q(q{SELECT count(*) FROM datasync.status WHERE name IN ('big', 'bat') AND state = 'streaming' AND last_error IS NULL}),
	'2', 'pipelines big and bat streaming without error');

# bad values of the option
for my $bad ('0', '1023', '"1MB"', '1073741824')
{
	my ($ret, $out, $err) = $src->psql('postgres',
		"SELECT datasync.alter_pipeline('bat', '{\"batch_max_bytes\": $bad}')");
	like($err, qr/pipeline option "batch_max_bytes"/, "batch_max_bytes $bad is refused");
}
src_q(q{SELECT datasync.drop_pipeline('big'); SELECT datasync.drop_pipeline('bat')});

# ---------------------------------------------------------------------------
# 3. a change that needs a statement over the limit: a permanent error
# ---------------------------------------------------------------------------
$ddl = q{
CREATE TABLE lim (id int PRIMARY KEY, pad text);
CREATE TABLE limf (a int, pad text);
ALTER TABLE limf REPLICA IDENTITY FULL;
};
src_q($ddl);
tgt_q($ddl);
tgt_q(q{
CREATE TRIGGER log_stmt AFTER INSERT ON lim REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
ALTER TABLE lim ENABLE ALWAYS TRIGGER log_stmt;
});
set_statement_limit('1MB');
src_q(q{SELECT datasync.create_pipeline('lim', 'tgt', ARRAY['lim', 'limf']::regclass[],
	options => '{"retry_base_ms": 50, "retry_max_ms": 200}')});
synced('limit 1MB', 'lim');

# ten rows of 400 kB, a row of 900 kB: each in a statement under 1 MB
src_q(q{INSERT INTO lim SELECT g, repeat('l', CASE WHEN g = 10 THEN 900000 ELSE 400000 END) FROM generate_series(1, 10) g});
synced('rows under the lowered limit', 'lim');
($maxbytes, $maxrows) = split / /,
  tgt_q(q{SELECT max(bytes) || ' ' || max(nrows) FROM stmt_log WHERE tbl = 'lim'});
cmp_ok($maxbytes, '<=', 1024 * 1024, "limit 1MB: no statement over it (largest: $maxbytes bytes, $maxrows rows)");
compare_hash($src, $tgt, 'lim');

# an UPDATE of a table without a key sends its old and new row (2 x 600 kB)
src_q(q{INSERT INTO limf VALUES (1, repeat('f', 600000))});
synced('a 600 kB row of limf', 'lim');
my $before = src_q("SELECT pg_current_wal_insert_lsn()");
src_q(q{UPDATE limf SET pad = repeat('g', 600000) WHERE a = 1});
my $after = src_q("SELECT pg_current_wal_insert_lsn()");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'lim'", 'error'),
	'an UPDATE that needs 1.2 MB under a 1 MB limit: state error');
my $err = src_q("SELECT last_error FROM datasync.status WHERE name = 'lim'");
like($err,
	qr/^change 1 of the transaction committed at ([0-9A-F]+\/[0-9A-F]+) to table "public\.limf" is too large to send to the target of pipeline "lim"$/,
	'the error names the change, its LSN, the table and the pipeline');
my ($lsn) = $err =~ /committed at (\S+) /;
is(src_q("SELECT '$lsn'::pg_lsn BETWEEN '$before' AND '$after'"), 't',
	"the LSN $lsn is that of the UPDATE's commit");
is(tgt_q("SELECT left(pad, 1) FROM limf"), 'f', 'the UPDATE is not on the target');
ok($src->log_contains(qr/datasync pipeline "lim" stopped on a permanent error/),
	'the worker stopped on a permanent error');

set_statement_limit('2MB');
src_q("SELECT datasync.resume('lim')");
synced('resumed under a 2 MB limit', 'lim');
compare_tables($src, $tgt, 'limf', 'a');

# a single row over the limit
$before = src_q("SELECT pg_current_wal_insert_lsn()");
src_q(q{INSERT INTO lim VALUES (100, repeat('x', 3000000))});
$after = src_q("SELECT pg_current_wal_insert_lsn()");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'lim'", 'error'),
	'a row of 3 MB under a 2 MB limit: state error');
$err = src_q("SELECT last_error FROM datasync.status WHERE name = 'lim'");
like($err, qr/^change 1 of the transaction committed at \S+ to table "public\.lim" is too large to send to the target of pipeline "lim"$/,
	'the error names the change, the table and the pipeline');
($lsn) = $err =~ /committed at (\S+) /;
is(src_q("SELECT '$lsn'::pg_lsn BETWEEN '$before' AND '$after'"), 't',
	"the LSN $lsn is that of the INSERT's commit");
is(src_q("SELECT retry_attempt IS NULL FROM datasync.status WHERE name = 'lim'"), 't',
	'no retries after a permanent error');
is(tgt_q("SELECT count(*) FROM lim WHERE id = 100"), '0', 'the row is not on the target');

set_statement_limit(undef);
src_q("SELECT datasync.resume('lim')");
synced('resumed with the default limit', 'lim');
compare_hash($src, $tgt, 'lim');
is(src_q("SELECT state || ' ' || coalesce(last_error, 'none') FROM datasync.status WHERE name = 'lim'"),
	'streaming none', 'lim: streaming, no error after resume');
src_q(q{SELECT datasync.drop_pipeline('lim')});

# ---------------------------------------------------------------------------
# 4. an error that comes back on every attempt
# ---------------------------------------------------------------------------
$ddl = q{CREATE TABLE flaky (id int PRIMARY KEY, v text); CREATE TABLE flaky2 (id int PRIMARY KEY, v text);};
src_q($ddl);
tgt_q($ddl);
tgt_q(q{
CREATE FUNCTION fail_13() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id IN (13, 14) THEN
		RAISE EXCEPTION 'injected failure on row 13' USING ERRCODE = '40001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER fail_13 BEFORE INSERT ON flaky FOR EACH ROW EXECUTE FUNCTION fail_13();
ALTER TABLE flaky ENABLE ALWAYS TRIGGER fail_13;
});
src_q(q{SELECT datasync.create_pipeline('flaky', 'tgt', ARRAY['flaky', 'flaky2']::regclass[],
	options => '{"retry_base_ms": 20, "retry_max_ms": 100}')});
src_q(q{INSERT INTO flaky SELECT g, 'ok' FROM generate_series(1, 5) g});
synced('flaky set-up', 'flaky');

src_q(q{INSERT INTO flaky VALUES (13, 'fails')});
# watch datasync.status: once retrying, it must stay so, with its error
my $seen_retrying = 0;
my @bad;
my $top = 0;
my $deadline = time + 60;
while (time < $deadline && $top < 6)
{
	my ($state, $attempt, $lasterr) = split /\|/,
	  src_q(q{SELECT state || '|' || coalesce(retry_attempt, 0) || '|' || coalesce(last_error, '') FROM datasync.status WHERE name = 'flaky'}), -1;
	$seen_retrying ||= $state eq 'retrying';
	if ($seen_retrying)
	{
		push @bad, "$state/$attempt/'$lasterr'"
		  if $state ne 'retrying' || $lasterr !~ /injected failure on row 13/ || $attempt < $top;
		$top = $attempt if $attempt > $top;
	}
	usleep(20_000);
}
ok($seen_retrying, 'a failing pipeline shows retrying');
cmp_ok($top, '>=', 6, "the retry attempt grows from one session to the next (reached $top)");
is(scalar(@bad), 0, 'between attempts: always retrying, with the last error, attempts never going back')
  or diag(join(', ', @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
is(tgt_q("SELECT count(*) FROM flaky"), '5', 'nothing past the failing change applied');

tgt_q("ALTER TABLE flaky DISABLE TRIGGER fail_13");
synced('the cause is gone', 'flaky');
ok(poll_until($src,
	"SELECT state = 'streaming' AND retry_attempt IS NULL AND last_error IS NULL FROM datasync.status WHERE name = 'flaky'"),
	'after a batch committed: streaming, attempts and error cleared');
compare_tables($src, $tgt, 'flaky', 'id');

# fails again; then the table leaves the pipeline: nothing is left to apply,
# no batch commits, and the stream catching up is the progress
tgt_q("ALTER TABLE flaky ENABLE ALWAYS TRIGGER fail_13");
src_q(q{INSERT INTO flaky VALUES (14, 'fails')});
ok(poll_until($src, "SELECT retry_attempt >= 3 AND state = 'retrying' FROM datasync.status WHERE name = 'flaky'"),
	'failing again: retrying');
src_q(q{SELECT datasync.remove_table('flaky', 'flaky')});
ok(poll_until($src,
	"SELECT state = 'streaming' AND retry_attempt IS NULL AND last_error IS NULL FROM datasync.status WHERE name = 'flaky'"),
	'once the stream caught up with nothing to apply: streaming, attempts and error cleared');
is(tgt_q("SELECT count(*) FROM flaky WHERE id = 14"), '0', 'the change of the removed table was not applied');
src_q(q{INSERT INTO flaky2 VALUES (1, 'after')});
synced('after the removal', 'flaky');
compare_tables($src, $tgt, 'flaky2', 'id');
src_q(q{SELECT datasync.drop_pipeline('flaky')});

# ---------------------------------------------------------------------------
# 5. partitioned target tables
# ---------------------------------------------------------------------------
my @tables = qw(pt_sw pt_swl pt_tw pt_lt pt_ltc pt_man);
for my $t (@tables)
{
	src_q(qq{CREATE TABLE $t (id int PRIMARY KEY, v text, ts timestamptz);
ALTER TABLE $t REPLICA IDENTITY FULL;});
	tgt_q(qq{CREATE TABLE $t (id int PRIMARY KEY, v text, ts timestamptz) PARTITION BY RANGE (id);
CREATE TABLE ${t}_0 PARTITION OF $t FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE ${t}_1 PARTITION OF $t FOR VALUES FROM (1000) TO (2000);
CREATE TABLE ${t}_2 PARTITION OF $t FOR VALUES FROM (2000) TO (MAXVALUE);});
}
# no key: rows at the same ctid in both partitions after the initial copy
src_q(q{CREATE TABLE nk (a int, b text);
ALTER TABLE nk REPLICA IDENTITY FULL;
INSERT INTO nk SELECT g, 'x' FROM generate_series(1, 20) g;
INSERT INTO nk SELECT g, 'x' FROM generate_series(501, 520) g;});
tgt_q(q{CREATE TABLE nk (a int, b text) PARTITION BY RANGE (a);
CREATE TABLE nk_0 PARTITION OF nk FOR VALUES FROM (MINVALUE) TO (500);
CREATE TABLE nk_1 PARTITION OF nk FOR VALUES FROM (500) TO (MAXVALUE);});

src_q(q{
SELECT datasync.create_pipeline('part_sw', 'tgt', ARRAY['pt_sw', 'nk']::regclass[]);
SELECT datasync.create_pipeline('part_swl', 'tgt', ARRAY['pt_swl']::regclass[],
	options => '{"log_conflicts": true}');
SELECT datasync.create_pipeline('part', 'tgt', ARRAY['pt_tw', 'pt_lt', 'pt_ltc', 'pt_man']::regclass[],
	options => '{"table_conflict_strategy": {"pt_tw": "target-wins", "pt_lt": "latest-timestamp",
	                                        "pt_ltc": "latest-timestamp", "pt_man": "manual"},
	             "timestamp_column": {"public.pt_lt": "ts"}}');
});
synced('partitioned', $_) for qw(part_sw part_swl part);
is(tgt_q("SELECT count(*) FROM nk_0") . '/' . tgt_q("SELECT count(*) FROM nk_1")
	  . '/' . tgt_q("SELECT count(*) FROM nk_0 a JOIN nk_1 b ON a.ctid = b.ctid"),
	'20/20/20', 'nk: the copy put rows at the same ctids in both partitions');

my $T20 = "'2020-01-01 00:00:00+00'";
my $T21 = "'2021-01-01 00:00:00+00'";
my $T22 = "'2022-01-01 00:00:00+00'";

# the target has keys 1000 and 1001 already, with other values
tgt_q(join('', map { "INSERT INTO $_ VALUES (1000, 'target', $T20), (1001, 'target', $T20);\n" } @tables));
for my $t (@tables)
{
	# 300 rows in one statement: multi-row statements, then COPY
	src_q("INSERT INTO $t SELECT g, 'a', $T21 FROM generate_series(1, 300) g");
}
synced('partitioned inserts', $_) for qw(part_sw part_swl part);
for my $t (@tables)
{
	# the target loses row 50
	tgt_q("DELETE FROM $t WHERE id = 50");
	src_q(qq{
INSERT INTO $t VALUES (1000, 'a', $T21);
INSERT INTO $t SELECT g, 'b', $T21 FROM generate_series(1001, 1064) g;
UPDATE $t SET v = 'u', ts = $T22 WHERE id <= 100;
UPDATE $t SET id = id + 2000 WHERE id BETWEEN 101 AND 110;
UPDATE $t SET id = id + 1500 WHERE id = 1040;
DELETE FROM $t WHERE id BETWEEN 200 AND 260;
INSERT INTO $t VALUES (5000, 'c', $T21);
DELETE FROM $t WHERE id = 5000;});
}
src_q(q{DELETE FROM nk WHERE a = 3; UPDATE nk SET b = 'u' WHERE a = 7; UPDATE nk SET a = 8 WHERE a = 508;});
synced('partitioned changes', $_) for qw(part_sw part_swl part);

for my $p (qw(part_sw part_swl part))
{
	is(src_q("SELECT state || ' ' || coalesce(last_error, 'none') FROM datasync.status WHERE name = '$p'"),
		'streaming none', "$p: streaming, no error");
}

# the keys of conflicts differ by strategy; every other row is the source's
my $others = "WHERE id NOT IN (50, 1000, 1001)";
for my $t (@tables)
{
	is(tgt_q("SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM $t t $others"),
		src_q("SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM $t t $others"),
		"$t: partitioned target has the source's rows (but the conflicting keys)");
}
is(tgt_q("SELECT count(*) FROM pt_sw_2"), '11', 'rows moved across partitions (ten from _0, one from _1)');

# source-wins: the target ends equal, conflicts counted on the plain path
compare_tables($src, $tgt, 'pt_sw', 'id');
is(src_q("SELECT conflicts FROM datasync.status WHERE name = 'part_sw'"), '3',
	'source-wins on a partitioned table: insert_exists (single and multi-row) and update_missing counted');
compare_tables($src, $tgt, 'nk', 'a, b');

# source-wins with log_conflicts
compare_tables($src, $tgt, 'pt_swl', 'id');
is(src_q("SELECT string_agg(kind || ':' || (key->>'id') || ':' || resolution, ',' ORDER BY (key->>'id')::int)"
	  . " FROM datasync.conflicts WHERE pipeline = 'part_swl'"),
	'update_missing:50:source,insert_exists:1000:source,insert_exists:1001:source',
	'source-wins with log_conflicts: conflicts logged');

# target-wins keeps the target's rows
is(tgt_q("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM pt_tw WHERE id IN (50, 1000, 1001)"),
	'1000:target,1001:target', 'target-wins: the target rows stay, the lost row stays lost');
is(src_q("SELECT string_agg(kind || ':' || (key->>'id') || ':' || resolution, ',' ORDER BY (key->>'id')::int)"
	  . " FROM datasync.conflicts WHERE pipeline = 'part' AND \"table\" = 'pt_tw'::regclass"),
	'update_missing:50:target,insert_exists:1000:target,insert_exists:1001:target',
	'target-wins: conflicts logged');

# latest-timestamp: the source's rows are later (column) / committed later
compare_tables($src, $tgt, 'pt_lt', 'id');
compare_tables($src, $tgt, 'pt_ltc', 'id');

# manual: parked, the target unchanged
is(tgt_q("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM pt_man WHERE id IN (50, 1000, 1001)"),
	'1000:target,1001:target', 'manual: the target rows stay');
is(src_q("SELECT string_agg(kind || ':' || (key->>'id') || ':' || status, ',' ORDER BY (key->>'id')::int)"
	  . " FROM datasync.conflicts WHERE pipeline = 'part' AND \"table\" = 'pt_man'::regclass"),
	'update_missing:50:open,insert_exists:1000:open,insert_exists:1001:open',
	'manual: conflicts parked');
# resolving for the source writes into the partitioned table
src_q("SELECT datasync.resolve_conflict(id, 'source') FROM datasync.conflicts"
	  . " WHERE pipeline = 'part' AND \"table\" = 'pt_man'::regclass AND status = 'open'");
compare_tables($src, $tgt, 'pt_man', 'id');

done_testing();
