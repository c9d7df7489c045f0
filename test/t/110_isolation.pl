# Copyright (c) 2026, datasync developers
#
# 110_isolation.pl -- databases, extension incarnations and sources never mix
# (issue 14, finding 10).
#
# Topology: node "src" (datasync, launcher in database "postgres"), node "src2"
#           and node "src3" (datasync), node "tgt" (plain target; databases
#           "postgres" and "up").
#
# Scenario:
#   1. Two databases with the extension on one server.  A dump of "postgres"
#      is restored into database "mdb" (owned by mallory, an ordinary LOGIN
#      role with datasync_admin): mdb then has pipeline "v1" with the same id,
#      name, slot name and incarnation as the running one in "postgres".
#      CREATE EXTENSION outside datasync.database warns; in mdb, status shows
#      no worker and no slot of "postgres"; every call that needs the launcher
#      (create_pipeline, sync_now, create_job, wait_for_sync, resume,
#      add_table, resync_table) fails with 55000; drop_pipeline in mdb drops
#      mdb's pipeline only: the worker and slot of "postgres" live on.
#   2. DROP EXTENSION is refused while a pipeline exists (2BP01, naming
#      it); with the guard disabled, a worker running: the worker exits; after CREATE
#      EXTENSION a new pipeline (with the same id) gets a worker of its own,
#      and wait_for_sync is true only once its rows are on the target.
#   3. Two source servers with a pipeline of the same name on one target:
#      two progress rows, no error, nothing applied twice across restarts.
#   4. Upgrade: a pipeline created under 0.1 whose progress row is in 0.1's
#      layout; ALTER EXTENSION UPDATE TO '0.2' and a restart: the row is
#      adopted, no row is copied again or lost.
use strict;
use warnings FATAL => 'all';

use File::Temp qw(tempfile);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DatasyncTest;

my $src = source_node('src');
my $tgt = target_node('tgt');
my $dsn = target_dsn($tgt);

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# Run $sql in $db on $node as $user; returns (exit code, stdout, stderr),
# errors with their SQLSTATE ("ERROR:  55000: ...").
sub psql_as
{
	my ($node, $db, $user, $sql) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql($db, $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		extra_params => [ '-U', $user, '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $stdout, $stderr);
}

# $sql as mallory in mdb must fail with 55000, naming the launcher's database
sub refused
{
	my ($sql, $name) = @_;
	my ($ret, $out, $err) = psql_as($src, 'mdb', 'mallory', $sql);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($ret != 0, "$name: fails in a database without the launcher");
	like($err, qr/ERROR:  55000: datasync pipelines run only in database "postgres"/,
		"$name: 55000, names the launcher's database");
}

# Check for about $secs seconds that $sql keeps returning $expected.
sub stays
{
	my ($node, $db, $sql, $expected, $secs, $name) = @_;
	my $got;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		$got = $node->safe_psql($db, $sql);
		last if $got ne $expected;
		usleep(100_000);
	}
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($got, $expected, $name);
}

sub worker_pid
{
	my ($node, $pipeline) = @_;
	ok($node->poll_query_until('postgres',
			"SELECT worker_pid IS NOT NULL FROM datasync.status WHERE name = '$pipeline'"),
		"$pipeline has a worker")
	  or diag($node->safe_psql('postgres', 'SELECT * FROM datasync.status'));
	return $node->safe_psql('postgres',
		"SELECT worker_pid FROM datasync.status WHERE name = '$pipeline'");
}

# ENABLE ALWAYS trigger on $table of $db on the target logging every applied
# change to $log (id, v; a delete logs v = -1)
sub target_log
{
	my ($db, $table, $log) = @_;
	$tgt->safe_psql($db, qq{
CREATE TABLE $log (n bigserial PRIMARY KEY, id int, v int);
CREATE FUNCTION ${log}_fn() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO $log (id, v) VALUES (OLD.id, -1);
  ELSE
    INSERT INTO $log (id, v) VALUES (NEW.id, NEW.v);
  END IF;
  RETURN NULL;
END \$\$;
CREATE TRIGGER ${log}_trg AFTER INSERT OR UPDATE OR DELETE ON $table
  FOR EACH ROW EXECUTE FUNCTION ${log}_fn();
ALTER TABLE $table ENABLE ALWAYS TRIGGER ${log}_trg;
});
	return;
}

# the (id, v) pairs a log holds more than once
sub applied_twice
{
	my ($db, $log) = @_;
	return $tgt->safe_psql($db,
		"SELECT string_agg(id || ':' || v, ',' ORDER BY id, v) FROM"
		  . " (SELECT id, v FROM $log GROUP BY id, v HAVING count(*) > 1) d");
}

# ---------------------------------------------------------------------------
# 1. two databases with the extension on one server
# ---------------------------------------------------------------------------
my $schema = 'CREATE TABLE v_items (id int PRIMARY KEY, v int);'
  . 'CREATE TABLE d_items (id int PRIMARY KEY, v int);'
  . 'CREATE TABLE a_items (id int PRIMARY KEY, v int);';
$src->safe_psql('postgres', $schema);
$tgt->safe_psql('postgres', $schema . 'CREATE TABLE b_items (id int PRIMARY KEY, v int);');

$src->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
GRANT datasync_admin TO mallory;
INSERT INTO v_items SELECT g, g FROM generate_series(1, 20) g;
});
$src->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn')");
$src->safe_psql('postgres', "SELECT datasync.create_pipeline('v1', 't', ARRAY['v_items']::regclass[])");
wait_for_sync($src, 'v1', 60);
compare_tables($src, $tgt, 'v_items', 'id');
my $victim_pid = worker_pid($src, 'v1');

# CREATE EXTENSION outside datasync.database: allowed (a restored dump needs
# it), with a warning
$src->safe_psql('postgres', 'CREATE DATABASE other');
{
	my ($ret, $out, $err) = psql_as($src, 'other', $src->safe_psql('postgres', 'SELECT current_user'),
		'CREATE EXTENSION datasync');
	is($ret, 0, 'CREATE EXTENSION in a database other than datasync.database succeeds');
	like($err, qr/WARNING:  01000: datasync pipelines of database "other" will not run/,
		'CREATE EXTENSION there warns that its pipelines will not run');
}

# a dump of "postgres" restored into mdb: pipeline v1 with the same id, name,
# slot name and incarnation
$src->safe_psql('postgres', 'CREATE DATABASE mdb OWNER mallory');
my ($fh, $dumpfile) = tempfile(DIR => PostgreSQL::Test::Utils::tempdir());
close $fh;
$src->command_ok([ 'pg_dump', '-f', $dumpfile, '-d', $src->connstr('postgres') ],
	'pg_dump of the source database');
$src->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dumpfile, '-d', $src->connstr('mdb') ],
	'the dump restores into database mdb');
is($src->safe_psql('mdb', 'SELECT id, incarnation FROM datasync._pipelines'),
	$src->safe_psql('postgres', 'SELECT id, incarnation FROM datasync._pipelines'),
	'mdb holds pipeline v1 with the same id and incarnation');

{
	my ($ret, $out, $err) = psql_as($src, 'mdb', 'mallory',
		"SELECT state, worker_pid IS NULL, lag_bytes IS NULL, last_applied_lsn IS NULL"
		  . " FROM datasync.status WHERE name = 'v1'");
	is($out, 'idle|t|t|t',
		"status in mdb: v1 idle, no worker, no slot and no progress of database postgres");
}

refused("SELECT datasync.sync_now('v1', '20 s')", 'sync_now');
refused("SELECT datasync.create_job('v1')", 'create_job');
refused("SELECT datasync.wait_for_sync('v1', '5 s')", 'wait_for_sync');
refused("SELECT datasync.resume('v1')", 'resume');
refused("SELECT datasync.resync_table('v1', 'v_items')", 'resync_table');
$src->safe_psql('mdb', 'CREATE TABLE x_items (id int PRIMARY KEY); ALTER TABLE x_items OWNER TO mallory');
refused("SELECT datasync.add_table('v1', 'x_items')", 'add_table');
refused("SELECT datasync.create_pipeline('m2', 't', ARRAY['x_items']::regclass[])", 'create_pipeline');
is($src->safe_psql('mdb', "SELECT count(*) FROM datasync.jobs"), '0', 'no job was recorded in mdb');
is($src->safe_psql('postgres', "SELECT count(*) FROM datasync.jobs"), '0',
	'no job was recorded in postgres either');

# drop_pipeline in mdb: mdb's pipeline goes, the worker and slot of postgres stay
# (mallory may use mdb's target t once its owner granted it: 120_api_privileges)
$src->safe_psql('mdb', "SELECT datasync.grant_target('t', 'mallory')");
{
	my ($ret, $out, $err) = psql_as($src, 'mdb', 'mallory', "SELECT datasync.drop_pipeline('v1')");
	is($ret, 0, 'drop_pipeline in mdb drops mdb\'s pipeline') or diag($err);
}
is($src->safe_psql('mdb', 'SELECT count(*) FROM datasync._pipelines'), '0', 'mdb has no pipeline left');
stays($src, 'postgres',
	"SELECT worker_pid FROM datasync.status WHERE name = 'v1'", $victim_pid, 3,
	'drop_pipeline in mdb left the worker of postgres running');
is($src->safe_psql('postgres',
		"SELECT database || ':' || active FROM pg_replication_slots WHERE slot_name = 'datasync_v1'"),
	'postgres:true', "drop_pipeline in mdb left the slot of postgres's v1 in place");
$src->safe_psql('postgres', 'INSERT INTO v_items SELECT g, g FROM generate_series(21, 30) g');
wait_for_sync($src, 'v1', 60);
compare_tables($src, $tgt, 'v_items', 'id');
is($src->safe_psql('postgres', "SELECT errors FROM datasync.status WHERE name = 'v1'"), '0',
	'v1 in postgres streams on without an error');

# ---------------------------------------------------------------------------
# 2. DROP EXTENSION with a worker running, then CREATE EXTENSION
# ---------------------------------------------------------------------------
my $v1_id = $src->safe_psql('postgres', "SELECT id FROM datasync._pipelines WHERE name = 'v1'");
my $old_pid = worker_pid($src, 'v1');
# refused while pipelines exist: their slots would stay (docs/installation.md)
{
	my ($out, $err) = ('', '');
	$src->psql('postgres', 'DROP EXTENSION datasync CASCADE', stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/2BP01: cannot drop extension datasync while it has a pipeline/,
		'DROP EXTENSION is refused while a pipeline exists');
	like($err, qr/Pipelines: 'v1'\./, '... naming it');
	is($src->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'datasync'"), '1',
		'... and the extension stays');
}
# a superuser can go around the guard: the workers stop all the same
$src->safe_psql('postgres', 'ALTER EVENT TRIGGER datasync_extension_drop DISABLE; DROP EXTENSION datasync');
ok($src->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $old_pid"),
	'DROP EXTENSION: the running worker exits');
ok($src->poll_query_until('postgres',
		"SELECT NOT active FROM pg_replication_slots WHERE slot_name = 'datasync_v1'"),
	'DROP EXTENSION: nothing streams from the slot any more');

$src->safe_psql('postgres', 'CREATE EXTENSION datasync');
$src->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn')");
$src->safe_psql('postgres', 'INSERT INTO d_items SELECT g, g FROM generate_series(1, 25) g');
$src->safe_psql('postgres', "SELECT datasync.create_pipeline('d2', 't', ARRAY['d_items']::regclass[])");
is($src->safe_psql('postgres', "SELECT id FROM datasync._pipelines WHERE name = 'd2'"), $v1_id,
	'the new pipeline has the id of the old one');
$src->safe_psql('postgres', 'INSERT INTO d_items SELECT g, g FROM generate_series(26, 40) g');
$src->safe_psql('postgres', 'INSERT INTO v_items VALUES (1000, 1000)');
wait_for_sync($src, 'd2', 60);
compare_tables($src, $tgt, 'd_items', 'id');
isnt(worker_pid($src, 'd2'), $old_pid, 'the new pipeline has a worker of its own');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM v_items WHERE id = 1000'), '0',
	'changes to the old pipeline\'s table no longer reach the target');
# what DROP EXTENSION leaves behind (docs/installation.md)
$src->safe_psql('postgres', "SELECT pg_drop_replication_slot('datasync_v1'); DROP PUBLICATION datasync_v1");

# ---------------------------------------------------------------------------
# 3. two source servers, one pipeline name, one target
# ---------------------------------------------------------------------------
my $src2 = source_node('src2');
$src2->safe_psql('postgres', 'CREATE TABLE b_items (id int PRIMARY KEY, v int)');
target_log('postgres', 'a_items', 'a_log');
target_log('postgres', 'b_items', 'b_log');
$src->safe_psql('postgres', 'INSERT INTO a_items SELECT g, g FROM generate_series(1, 30) g');
$src2->safe_psql('postgres', 'INSERT INTO b_items SELECT g, g FROM generate_series(1, 30) g');
$src2->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn')");
$src->safe_psql('postgres', "SELECT datasync.create_pipeline('same', 't', ARRAY['a_items']::regclass[])");
wait_for_sync($src, 'same', 60);
$src2->safe_psql('postgres', "SELECT datasync.create_pipeline('same', 't', ARRAY['b_items']::regclass[])");
wait_for_sync($src2, 'same', 60);
for my $round (1 .. 3)
{
	$src->safe_psql('postgres', "UPDATE a_items SET v = v + 100 WHERE id % 3 = $round % 3");
	$src2->safe_psql('postgres', "UPDATE b_items SET v = v + 100 WHERE id % 3 = $round % 3");
	wait_for_sync($src, 'same', 60);
	wait_for_sync($src2, 'same', 60);
	if ($round == 2)
	{
		# each worker reads its progress again
		$src->restart;
		$src2->restart;
	}
}
compare_tables($src, $tgt, 'a_items', 'id');
compare_tables($src2, $tgt, 'b_items', 'id');
is($src->safe_psql('postgres', "SELECT errors FROM datasync.status WHERE name = 'same'")
	  . '/' . $src2->safe_psql('postgres', "SELECT errors FROM datasync.status WHERE name = 'same'"),
	'0/0', 'neither pipeline had an error');
is(applied_twice('postgres', 'a_log'), '', 'no change of source 1 was applied twice');
is(applied_twice('postgres', 'b_log'), '', 'no change of source 2 was applied twice');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM a_log') . '/'
	  . $tgt->safe_psql('postgres', 'SELECT count(*) FROM b_log'),
	'60/60', 'each source change was applied once (30 copied rows, 3 x 10 updates)');
is($tgt->safe_psql('postgres',
		"SELECT count(*) FROM datasync_progress WHERE pipeline = 'same' AND relid = 0"),
	'2', 'the target keeps one stream progress row per source');

# ---------------------------------------------------------------------------
# 4. upgrade from 0.1: the progress row of 0.1 is adopted
# ---------------------------------------------------------------------------
my $src3 = source_node('src3');
$src3->safe_psql('postgres',
	"DROP EXTENSION datasync; CREATE EXTENSION datasync VERSION '0.1'");
is($src3->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.1', 'extension installed at version 0.1');
$tgt->safe_psql('postgres', 'CREATE DATABASE up');
$tgt->safe_psql('up', 'CREATE TABLE u_items (id int PRIMARY KEY, v int)');
target_log('up', 'u_items', 'u_log');
$src3->safe_psql('postgres', q{
CREATE TABLE u_items (id int PRIMARY KEY, v int);
INSERT INTO u_items SELECT g, g FROM generate_series(1, 40) g;
});
my $dsn_up = $dsn =~ s/dbname=postgres/dbname=up/r;
$src3->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn_up')");
$src3->safe_psql('postgres', "SELECT datasync.create_pipeline('up', 't', ARRAY['u_items']::regclass[])");
wait_for_sync($src3, 'up', 60);
$src3->safe_psql('postgres', 'UPDATE u_items SET v = v + 1000 WHERE id <= 10');
wait_for_sync($src3, 'up', 60);
$src3->safe_psql('postgres', "SELECT datasync.pause('up')");
ok($src3->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'datasync worker'"),
	'paused: the worker is gone');

# the target's progress table as 0.1 left it: no source column, keyed by name
$tgt->safe_psql('up', q{
ALTER TABLE datasync_progress DROP CONSTRAINT datasync_progress_pkey;
ALTER TABLE datasync_progress DROP COLUMN source;
ALTER TABLE datasync_progress ADD PRIMARY KEY (pipeline, relid);
});
my $lsn01 = $tgt->safe_psql('up', "SELECT lsn FROM datasync_progress WHERE pipeline = 'up' AND relid = 0");

$src3->safe_psql('postgres', "ALTER EXTENSION datasync UPDATE TO '0.2'");
is($src3->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.2', 'extension updated to 0.2');
$src3->safe_psql('postgres', q{
INSERT INTO u_items SELECT g, g FROM generate_series(41, 50) g;
UPDATE u_items SET v = v + 1000 WHERE id BETWEEN 11 AND 15;
DELETE FROM u_items WHERE id = 40;
});
$src3->restart;
$src3->safe_psql('postgres', "SELECT datasync.resume('up')");
wait_for_sync($src3, 'up', 60);
is($tgt->safe_psql('up', 'SELECT * FROM u_items ORDER BY id'),
	$src3->safe_psql('postgres', 'SELECT * FROM u_items ORDER BY id'),
	'upgrade: the target has the rows of the source');
is(applied_twice('up', 'u_log'), '', 'upgrade: no change was applied twice');
is($tgt->safe_psql('up', 'SELECT count(*) FROM u_log'), '66',
	'upgrade: each change applied once (40 copied, 10 updated, 10 inserted, 5 updated, 1 deleted)');
my $source3 = $src3->safe_psql('postgres',
	"SELECT system_identifier || ':' || (SELECT oid FROM pg_database WHERE datname = 'postgres')"
	  . ' FROM pg_control_system()');
is($tgt->safe_psql('up',
		"SELECT string_agg(source, ',') FROM datasync_progress WHERE pipeline = 'up' AND relid = 0"),
	$source3, "upgrade: 0.1's progress row was adopted by its source");
ok($tgt->safe_psql('up',
		"SELECT lsn > '$lsn01' FROM datasync_progress WHERE pipeline = 'up' AND relid = 0") eq 't',
	'upgrade: the adopted row moved on from where 0.1 left it');

done_testing();
