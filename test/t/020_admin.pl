# Copyright (c) 2026, datasync developers
#
# 020_admin.pl -- managing a running pipeline.
#
# Topology: node "src" (datasync preloaded, source database "postgres"),
#           node "tgt" (plain PostgreSQL target).  One target "t1" whose DSN
#           holds a password (password=s3cr3tpw; the target trusts local
#           connections, so libpq never sends it) and one pipeline "p1".
#
# Scenario:
#   (a) pause: state 'paused', no worker, a change made after pause() does not
#       reach the target for 3 s; resume: it arrives;
#   (b) add_table on the running pipeline copies the table's rows, then streams
#       its changes; remove_table stops them while other tables go on;
#   (c) resync_table repairs a target table changed by hand, while changes to
#       that table (before, during and after the call) keep streaming;
#   (d) a permanent error (a column dropped on the target): state 'error',
#       last_error names table and column, no worker and no restart loop,
#       nothing after the failing change applied; once the column is back,
#       resume() applies the failing change and all after it, exactly once;
#   (e) drop_pipeline removes slot(s), publication, catalog row and worker; a
#       new pipeline of the same name copies everything again;
#   (f) the password never shows in either server's log, in datasync.targets
#       or in datasync.status.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DatasyncTest;

my $secret = 's3cr3tpw';
my $src = source_node('src');
my $tgt = target_node('tgt');
my $dsn = target_dsn($tgt) . " password=$secret";

my $schema = <<'EOSQL';
CREATE TABLE acct (id int PRIMARY KEY, v text, bonus int);
CREATE TABLE log (n int, v text);
ALTER TABLE log REPLICA IDENTITY FULL;
CREATE TABLE other (id int PRIMARY KEY, v text);
CREATE TABLE added (id int PRIMARY KEY, v text);
CREATE TABLE rs (id int PRIMARY KEY, v text, k int);
EOSQL
$src->safe_psql('postgres', $schema);
$tgt->safe_psql('postgres', $schema);

$src->safe_psql('postgres', <<'EOSQL');
-- bonus stays NULL in the existing rows: (d) drops and re-adds it on the target
INSERT INTO acct SELECT g, 'a' || g, NULL FROM generate_series(1, 20) g;
INSERT INTO log SELECT g, 'initial' FROM generate_series(1, 5) g;
INSERT INTO other SELECT g, 'o' || g FROM generate_series(1, 10) g;
INSERT INTO added SELECT g, 'before add_table' FROM generate_series(1, 30) g;
INSERT INTO rs SELECT g, 'r' || g, g % 7 FROM generate_series(1, 200) g;
EOSQL

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
sub query { return $src->safe_psql('postgres', $_[0]); }

# wait_for_sync without dying: a failed wait is one failed test
sub synced
{
	my ($name) = @_;
	my $ok = eval { wait_for_sync($src, 'p1', 60); };
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($ok, "wait_for_sync: $name") or diag($@);
	return $ok;
}

# Check for about $secs seconds that $sql on $node keeps returning $expected;
# returns at the first other result (bounded negative check).
sub stays
{
	my ($node, $sql, $expected, $secs, $name) = @_;
	my $got;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		$got = $node->safe_psql('postgres', $sql);
		last if $got ne $expected;
		usleep(100_000);
	}
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($got, $expected, $name);
}

sub worker_count
{
	return query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'datasync worker'");
}

sub wait_streaming
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($src->poll_query_until('postgres',
			"SELECT state = 'streaming' FROM datasync.status WHERE name = 'p1'"),
		"status: streaming ($name)")
	  or diag(query('SELECT * FROM datasync.status'));
}

# ---------------------------------------------------------------------------
# set-up: target with a password in its DSN, pipeline p1
# ---------------------------------------------------------------------------
# Our own statement carries the secret: keep the server from logging it, so
# that any occurrence in the log later is datasync's doing.
$src->safe_psql('postgres',
	"SET log_statement = 'none';\nSELECT datasync.create_target('t1', '$dsn');");
$src->safe_psql('postgres',
	"SELECT datasync.create_pipeline('p1', 't1', ARRAY['acct', 'log', 'other', 'rs']::regclass[])");
wait_streaming('after create_pipeline');
synced('initial copy');
compare_tables($src, $tgt, $_->[0], $_->[1])
  for (['acct', 'id'], ['log', 'n, v'], ['other', 'id'], ['rs', 'id']);

# ---------------------------------------------------------------------------
# (a) pause / resume
# ---------------------------------------------------------------------------
query("SELECT datasync.pause('p1')");
query("INSERT INTO acct VALUES (100, 'during pause', NULL)");
query("UPDATE other SET v = 'during pause' WHERE id = 1");
is(query("SELECT state FROM datasync.status WHERE name = 'p1'"), 'paused', 'pause: state paused');
ok($src->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'datasync worker'"),
	'pause: the worker is gone');
is(query("SELECT datasync.wait_for_sync('p1', '2 s')"), 'f',
	'pause: wait_for_sync does not claim the paused pipeline is in sync');
stays($tgt, "SELECT count(*) FROM acct WHERE id = 100", '0', 3,
	'pause: a change made after pause() does not reach the target');
is($tgt->safe_psql('postgres', 'SELECT v FROM other WHERE id = 1'), 'o1',
	'pause: an update made after pause() does not reach the target');

query("SELECT datasync.resume('p1')");
synced('after resume');
compare_tables($src, $tgt, 'acct', 'id');
compare_tables($src, $tgt, 'other', 'id');
is(query("SELECT state FROM datasync.status WHERE name = 'p1'"), 'streaming', 'resume: streaming again');

# ---------------------------------------------------------------------------
# (b) add_table / remove_table on the running pipeline
# ---------------------------------------------------------------------------
$tgt->safe_psql('postgres', "INSERT INTO added VALUES (1, 'stale'), (999, 'target only')");
query("SELECT datasync.add_table('p1', 'added')");
query("INSERT INTO added VALUES (31, 'right after add_table')");
query("UPDATE added SET v = 'updated right after add_table' WHERE id = 2");
synced('after add_table');
compare_tables($src, $tgt, 'added', 'id');
is(query("SELECT array_to_string(tables, ',') FROM datasync.pipelines WHERE name = 'p1'"),
	'acct,added,log,other,rs', 'add_table: datasync.pipelines lists the table');

query(<<'EOSQL');
INSERT INTO added VALUES (32, 'streamed');
UPDATE added SET v = 'streamed update' WHERE id BETWEEN 3 AND 5;
UPDATE added SET id = 300 WHERE id = 6;
DELETE FROM added WHERE id BETWEEN 7 AND 9;
EOSQL
synced('changes to the added table');
compare_tables($src, $tgt, 'added', 'id');

query("SELECT datasync.remove_table('p1', 'added')");
my $added_before = $tgt->safe_psql('postgres', 'SELECT * FROM added ORDER BY id');
query(<<'EOSQL');
INSERT INTO added VALUES (33, 'after remove_table');
UPDATE added SET v = 'after remove_table' WHERE id = 1;
DELETE FROM added WHERE id = 10;
INSERT INTO other VALUES (11, 'after remove_table');
EOSQL
synced('after remove_table');
compare_tables($src, $tgt, 'other', 'id');
is($tgt->safe_psql('postgres', 'SELECT * FROM added ORDER BY id'), $added_before,
	'remove_table: later changes to the removed table do not reach the target');
is(query("SELECT array_to_string(tables, ',') FROM datasync.pipelines WHERE name = 'p1'"),
	'acct,log,other,rs', 'remove_table: datasync.pipelines no longer lists the table');

# ---------------------------------------------------------------------------
# (c) resync_table while the table keeps changing
# ---------------------------------------------------------------------------
$tgt->safe_psql('postgres', <<'EOSQL');
DELETE FROM rs WHERE id % 10 = 0;
UPDATE rs SET v = 'changed by hand', k = -1 WHERE id % 10 = 1;
INSERT INTO rs VALUES (10000, 'target only', 0);
EOSQL
query("INSERT INTO rs VALUES (201, 'before resync', 1)");
query("UPDATE rs SET v = 'updated before resync' WHERE id = 2");

# a transaction open across the call: it commits while the copy is set up
my $bg = $src->background_psql('postgres');
$bg->query_safe("BEGIN; INSERT INTO rs VALUES (202, 'open across resync', 2);");

query("SELECT datasync.resync_table('p1', 'rs')");
query("INSERT INTO rs VALUES (203, 'right after resync', 3)");
query("UPDATE rs SET v = 'updated after resync' WHERE id = 3");
$bg->query_safe("UPDATE rs SET k = 42 WHERE id = 4; COMMIT;");
$bg->quit;
query("DELETE FROM rs WHERE id = 5");
query("INSERT INTO rs SELECT g, 'after resync', g FROM generate_series(204, 220) g");
query("UPDATE rs SET id = 2000 WHERE id = 11");
synced('after resync_table');
compare_tables($src, $tgt, 'rs', 'id');
query("UPDATE rs SET v = 'streams on' WHERE id = 21");
synced('after resync_table, later change');
compare_tables($src, $tgt, 'rs', 'id');
compare_tables($src, $tgt, 'acct', 'id');

# ---------------------------------------------------------------------------
# (d) permanent error, then resume
# ---------------------------------------------------------------------------
synced('before the permanent error');
my $log_off = -s $src->logfile;
$tgt->safe_psql('postgres', 'ALTER TABLE acct DROP COLUMN bonus');
my $tgt_acct  = $tgt->safe_psql('postgres', 'SELECT * FROM acct ORDER BY id');
my $tgt_log   = $tgt->safe_psql('postgres', 'SELECT * FROM log ORDER BY n, v');
my $tgt_other = $tgt->safe_psql('postgres', 'SELECT * FROM other ORDER BY id');

# changes before the failing one in its transaction, the failing one, and
# transactions after it (log has no key: a change applied twice would show)
query(<<'EOSQL');
BEGIN;
INSERT INTO log VALUES (100, 'same transaction, before the failing change');
INSERT INTO acct VALUES (500, 'fails', 5);
INSERT INTO log VALUES (101, 'same transaction, after the failing change');
COMMIT;
EOSQL
query("INSERT INTO log VALUES (102, 'next transaction')");
query("INSERT INTO other VALUES (500, 'after the failing change')");
query("UPDATE acct SET v = 'after the failing change', bonus = 1 WHERE id = 1");

ok($src->poll_query_until('postgres',
		"SELECT state = 'error' FROM datasync.status WHERE name = 'p1'"),
	'permanent error: state error')
  or diag(query('SELECT * FROM datasync.status'));
my $err = query("SELECT last_error FROM datasync.status WHERE name = 'p1'");
like($err, qr/acct/, 'last_error names the table');
like($err, qr/bonus/, 'last_error names the column');

stays($src,
	"SELECT state || ',' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'datasync worker')"
	  . " FROM datasync.status WHERE name = 'p1'",
	'error,0', 4, 'permanent error: state stays error, no worker runs');
is(query("SELECT datasync.wait_for_sync('p1', '1 s')"), 'f',
	'permanent error: wait_for_sync returns false');
my $elog = slurp_file($src->logfile, $log_off);
my $n_term = () = $elog =~ /terminated by signal/g;
is($n_term, 0, 'permanent error: no process terminated by a signal');
my $n_stop = () = $elog =~ /pipeline "p1" stopped on a permanent error/g;
is($n_stop, 1, 'permanent error: the worker stopped once, not in a loop');

is($tgt->safe_psql('postgres', 'SELECT * FROM acct ORDER BY id'), $tgt_acct,
	'permanent error: acct unchanged on the target');
is($tgt->safe_psql('postgres', 'SELECT * FROM log ORDER BY n, v'), $tgt_log,
	'permanent error: nothing of the failing transaction applied');
is($tgt->safe_psql('postgres', 'SELECT * FROM other ORDER BY id'), $tgt_other,
	'permanent error: nothing after the failing change applied');

$tgt->safe_psql('postgres', 'ALTER TABLE acct ADD COLUMN bonus int');
query("SELECT datasync.resume('p1')");
synced('after fixing the target and resume');
compare_tables($src, $tgt, 'acct', 'id');
compare_tables($src, $tgt, 'log', 'n, v');
compare_tables($src, $tgt, 'other', 'id');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM log WHERE n >= 100'), '3',
	'resume: the failing transaction and the next one applied exactly once');
is(query("SELECT state, last_error IS NULL FROM datasync.status WHERE name = 'p1'"),
	'streaming|t', 'resume: streaming, no error');

# ---------------------------------------------------------------------------
# (e) drop_pipeline, then a new pipeline with the same name
# ---------------------------------------------------------------------------
query("SELECT datasync.drop_pipeline('p1')");
is(query("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'datasync\\_p1%'"),
	'0', 'drop_pipeline: no replication slot left');
is(query("SELECT count(*) FROM pg_publication WHERE pubname = 'datasync_p1'"),
	'0', 'drop_pipeline: publication dropped');
is(query("SELECT (SELECT count(*) FROM datasync.pipelines) + (SELECT count(*) FROM datasync._pipelines)"
		  . " + (SELECT count(*) FROM datasync._pipeline_tables) + (SELECT count(*) FROM datasync.status)"),
	'0', 'drop_pipeline: catalog rows gone');
ok($src->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'datasync worker'"),
	'drop_pipeline: worker gone');
ok($src->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_replication"),
	'drop_pipeline: no walsender left');

# changes while no pipeline exists, and a target that drifted
query("INSERT INTO acct VALUES (600, 'between pipelines', 6)");
query("DELETE FROM log WHERE n = 1");
$tgt->safe_psql('postgres', "DELETE FROM other; INSERT INTO acct VALUES (9999, 'target only', 0)");
stays($tgt, 'SELECT count(*) FROM acct WHERE id = 600', '0', 1,
	'drop_pipeline: nothing streams any more');

query("SELECT datasync.create_pipeline('p1', 't1', ARRAY['acct', 'log', 'other']::regclass[])");
wait_streaming('new pipeline of the same name');
synced('new pipeline of the same name');
compare_tables($src, $tgt, 'acct', 'id');
compare_tables($src, $tgt, 'log', 'n, v');
compare_tables($src, $tgt, 'other', 'id');
query("INSERT INTO other VALUES (700, 'new pipeline streams')");
synced('new pipeline streams');
compare_tables($src, $tgt, 'other', 'id');

# ---------------------------------------------------------------------------
# (f) the password is never shown
# ---------------------------------------------------------------------------
# a call that fails with the password in its arguments: the error report
# must not carry the statement (log_statement is off for our own text)
my ($rc, $out, $stderr) = $src->psql('postgres',
	"SET log_statement = 'none';\nSELECT datasync.create_target('t1', '$dsn');");
like($stderr, qr/already exists/, 'create_target of an existing name fails');
unlike($stderr, qr/\Q$secret\E/, 'the error does not show the password');
like(query("SELECT dsn FROM datasync.targets WHERE name = 't1'"), qr/password=\*{8}/,
	'datasync.targets masks the password');
unlike(query("SELECT t::text FROM datasync.targets t"), qr/\Q$secret\E/,
	'datasync.targets does not show the password');
unlike(query("SELECT s::text FROM datasync.status s"), qr/\Q$secret\E/,
	'datasync.status does not show the password');

$src->stop;
$tgt->stop;
unlike(slurp_file($src->logfile), qr/\Q$secret\E/, 'the source log never shows the password');
unlike(slurp_file($tgt->logfile), qr/\Q$secret\E/, 'the target log never shows the password');

done_testing();
