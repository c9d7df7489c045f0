# Copyright (c) 2026, datasync developers
#
# 120_api_privileges.pl -- the SQL API's side of issue 14 with real workers.
#
# Topology: node "src" (datasync preloaded, source database "postgres"),
#           node "tgt" (plain PostgreSQL target).  On the target, role "sync"
#           logs in with a password (scram-sha-256); everyone else as the
#           test framework sets it up (trust).  On the source, "mallory" is an
#           ordinary LOGIN role in datasync_admin.
#
# Scenario:
#   (a) a pipeline named with 54 bytes (the longest name): add_table and
#       resync_table copy under a temporary slot whose name is not the
#       pipeline's own slot name (it was cut to it, and the copy failed);
#   (b) test_target says whether the target's login role is a superuser;
#       mallory's own target, logging in as "sync" with a password, streams;
#   (c) a pipeline row mapping a table onto pg_catalog.pg_authid, as 0.1
#       let a catalog row hold: the worker refuses it where it uses it
#       (state error), and a streamed update does not make the target's
#       login role a superuser;
#   (d) apply_config's errors do not write the document (its passwords) to
#       the server log, whatever failed;
#   (e) a synced table dropped under a running pipeline leaves it (WARNING,
#       audit entry), and the pipeline streams on.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src');
my $tgt = target_node('tgt');
my $dsn = target_dsn($tgt);
my $sync_password = 'syncSECRETpw';

# the target: "sync" must give its password, over the socket and TCP
$tgt->safe_psql('postgres', "CREATE ROLE sync LOGIN PASSWORD '$sync_password'");
{
	my $hba = $tgt->data_dir . '/pg_hba.conf';
	my $old = slurp_file($hba);
	open my $fh, '>', $hba or die "could not write $hba: $!";
	print $fh "local all sync scram-sha-256\n"
	  . "host all sync 127.0.0.1/32 scram-sha-256\n"
	  . "host all sync ::1/128 scram-sha-256\n"
	  . $old;
	close $fh;
	$tgt->reload;
}

my $schema = <<'EOSQL';
CREATE TABLE t1 (id int PRIMARY KEY, v text);
CREATE TABLE t2 (id int PRIMARY KEY, v text);
CREATE TABLE m1 (id int PRIMARY KEY, v text);
CREATE TABLE d1 (id int PRIMARY KEY, v text);
CREATE TABLE d2 (id int PRIMARY KEY, v text);
EOSQL
$src->safe_psql('postgres', $schema);
$tgt->safe_psql('postgres', $schema);
$tgt->safe_psql('postgres', 'GRANT ALL ON m1 TO sync; GRANT CREATE ON SCHEMA public TO sync');
$src->safe_psql('postgres', <<'EOSQL');
CREATE ROLE mallory LOGIN IN ROLE datasync_admin;
GRANT SELECT ON m1 TO mallory;
INSERT INTO t1 SELECT g, 't1 ' || g FROM generate_series(1, 50) g;
INSERT INTO t2 SELECT g, 't2 ' || g FROM generate_series(1, 40) g;
INSERT INTO m1 SELECT g, 'm1 ' || g FROM generate_series(1, 30) g;
INSERT INTO d1 SELECT g, 'd1 ' || g FROM generate_series(1, 10) g;
INSERT INTO d2 SELECT g, 'd2 ' || g FROM generate_series(1, 10) g;
EOSQL

sub query { return $src->safe_psql('postgres', $_[0]); }

# as mallory, over her own connection
sub as_mallory
{
	my ($sql) = @_;
	return $src->safe_psql('postgres', $sql,
		connstr => $src->connstr('postgres') . ' user=mallory');
}

sub synced
{
	my ($pipeline, $name) = @_;
	my $ok = eval { wait_for_sync($src, $pipeline, 60); };
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($ok, "wait_for_sync: $name") or diag($@);
	return $ok;
}

query("SELECT datasync.create_target('tsu', '$dsn')");

# ---------------------------------------------------------------------------
# (a) a 54-byte pipeline name
# ---------------------------------------------------------------------------
my $long = 'long_pipeline_name_' . ('x' x 35);
is(length($long), 54, 'the pipeline name has 54 bytes');
query("SELECT datasync.create_pipeline('$long', 'tsu', ARRAY['t1']::regclass[])");
synced($long, 'initial copy of the 54-byte pipeline');
compare_tables($src, $tgt, 't1', 'id');

query("SELECT datasync.add_table('$long', 't2')");
query("INSERT INTO t2 VALUES (41, 'after add_table')");
synced($long, 'add_table on the 54-byte pipeline');
compare_tables($src, $tgt, 't2', 'id');

$tgt->safe_psql('postgres', "UPDATE t1 SET v = 'changed on the target' WHERE id <= 5");
query("SELECT datasync.resync_table('$long', 't1')");
synced($long, 'resync_table on the 54-byte pipeline');
compare_tables($src, $tgt, 't1', 'id');
is(query("SELECT state FROM datasync.status WHERE name = '$long'"), 'streaming',
	'the 54-byte pipeline streams');
query("SELECT datasync.drop_pipeline('$long')");

# ---------------------------------------------------------------------------
# (b) test_target flags a superuser login; a target of mallory's streams
# ---------------------------------------------------------------------------
# (the first pipeline made the progress table: sync needs to write it)
$tgt->safe_psql('postgres', 'GRANT SELECT, INSERT, UPDATE ON datasync_progress TO sync');
is(query("SELECT r->>'ok' || ' ' || (r->>'superuser') FROM datasync.test_target('tsu') r"),
	'true true', 'test_target: the bootstrap login is flagged as a superuser');
as_mallory("SELECT datasync.create_target('tmal', '$dsn user=sync password=$sync_password')");
is(query("SELECT owner::text FROM datasync.targets WHERE name = 'tmal'"),
	'mallory', 'mallory owns her target');
is( as_mallory(
		"SELECT r->>'ok' || ' ' || (r->>'superuser') || ' ' || (r->>'role') FROM datasync.test_target('tmal') r"),
	'true false sync',
	'test_target: a password login that is not a superuser');
my ($rc, $out, $err) = $src->psql('postgres', "SELECT datasync.test_target('tsu')",
	connstr => $src->connstr('postgres') . ' user=mallory');
like($err, qr/permission denied for target "tsu"/, 'mallory may not use the superuser target');
as_mallory("SELECT datasync.create_pipeline('pmal', 'tmal', ARRAY['m1']::regclass[])");
query("INSERT INTO m1 VALUES (31, 'streamed')");
synced('pmal', "mallory's pipeline");
compare_tables($src, $tgt, 'm1', 'id');
as_mallory("SELECT datasync.drop_pipeline('pmal')");

# ---------------------------------------------------------------------------
# (c) a catalog row that maps a table onto pg_catalog.pg_authid
# ---------------------------------------------------------------------------
# The attack of the issue: streamed changes to a table mapped onto
# pg_authid delete a role of the target and change role attributes.
$tgt->safe_psql('postgres', 'CREATE ROLE victim');
my $sync_oid = $tgt->safe_psql('postgres', "SELECT oid FROM pg_authid WHERE rolname = 'sync'");
my $victim_oid = $tgt->safe_psql('postgres', "SELECT oid FROM pg_authid WHERE rolname = 'victim'");
query("CREATE TABLE c2 (oid oid PRIMARY KEY, rolsuper bool);"
	  . " INSERT INTO c2 VALUES ($sync_oid, false), ($victim_oid, false)");
query(<<'EOSQL');
BEGIN;
SELECT datasync.create_pipeline('pcat', 'tsu', ARRAY['c2']::regclass[], options => '{"initial_sync": false}');
SELECT datasync.pause('pcat');
-- what 0.1 let a catalog row hold
UPDATE datasync._pipelines SET options = '{"initial_sync": false, "table_map": {"c2": "pg_catalog.pg_authid"}}'
 WHERE name = 'pcat';
COMMIT;
SELECT datasync.resume('pcat');
EOSQL
# until the worker refused, or streams (its slot exists)
ok( poll_until(
		$src,
		"SELECT coalesce((SELECT state = 'error' FROM datasync.status WHERE name = 'pcat'), false)"
		  . " OR EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'datasync_pcat')"),
	'the worker of pcat started');
query("DELETE FROM c2 WHERE oid = $victim_oid");
query("UPDATE c2 SET rolsuper = true");
my ($state, $super) = ('', '');
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$state = query("SELECT state FROM datasync.status WHERE name = 'pcat'");
	$super = $tgt->safe_psql('postgres', "SELECT rolsuper FROM pg_authid WHERE rolname = 'sync'");
	last if $state eq 'error' || $super eq 't';
	select(undef, undef, undef, 0.1);
}
is($super, 'f', 'the target login role did not become a superuser');
is($tgt->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname = 'victim'"),
	'1', 'no role of the target was deleted');
is($state, 'error', 'the worker refuses a table mapped onto a system catalog');
like(query("SELECT last_error FROM datasync.status WHERE name = 'pcat'"),
	qr/"pg_catalog" is a system schema/, 'last_error names the system schema');
query("SELECT datasync.drop_pipeline('pcat')");

# ---------------------------------------------------------------------------
# (d) apply_config's errors keep the document out of the server log
# ---------------------------------------------------------------------------
my $log_offset = -s $src->logfile;
my @docs = (
	# an error of the document itself
	q({"targetSystem": {"name": "tlog", "connectionString": "host=db.invalid",
	   "auth": {"credentials": {"password": "cfgSECRETlog1"}}},
	  "pipelines": [{"name": "plog", "tables": ["no_such_table"]}]}),
	# an error of a function apply_config calls
	q({"targetSystem": {"name": "tlog", "connectionString": "host=db.invalid",
	   "auth": {"credentials": {"password": "cfgSECRETlog2"}}},
	  "pipelines": [{"name": "plog", "tables": ["t1"], "options": {"batch_size": 0}}]}),
	# an error after the target was created
	q({"targetSystem": {"name": "tlog", "connectionString": "host=db.invalid",
	   "auth": {"credentials": {"password": "cfgSECRETlog3"}}},
	  "pipelines": [{"name": "plog", "tables": ["t1"], "options": {"table_map": {"t1": "pg_catalog.pg_class"}}}]}));
for my $i (0 .. $#docs)
{
	# (the test servers log every statement: not this one, only its error)
	my ($rc, $out, $err) = $src->psql('postgres',
		"SET log_statement = 'none'; SELECT datasync.apply_config('$docs[$i]')");
	isnt($rc, 0, "apply_config document " . ($i + 1) . " fails");
	unlike($err, qr/SECRET/, "its error does not show the password");
}
my $log = slurp_file($src->logfile, $log_offset);
like($log, qr/invalid configuration at/, 'the errors are in the log');
unlike($log, qr/cfgSECRETlog/, 'no password of a document is in the log');

# ---------------------------------------------------------------------------
# (e) a synced table dropped under a running pipeline
# ---------------------------------------------------------------------------
query("SELECT datasync.create_pipeline('pdrop', 'tsu', ARRAY['d1', 'd2']::regclass[])");
synced('pdrop', 'pipeline of d1 and d2');
($rc, $out, $err) = $src->psql('postgres', 'DROP TABLE d2');
is($rc, 0, 'DROP TABLE of a synced table works');
like($err, qr/table "public.d2" was dropped: it is no longer synced by pipeline "pdrop"/,
	'the drop is reported');
is(query("SELECT tables::text FROM datasync.pipelines WHERE name = 'pdrop'"), '{d1}',
	'the table left the pipeline');
is(query("SELECT count(*) FROM datasync.audit_log WHERE action = 'table_dropped' AND object = 'pipeline pdrop'"),
	'1', 'the drop is audited');
query("INSERT INTO d1 VALUES (11, 'after the drop')");
synced('pdrop', 'the pipeline goes on without the dropped table');
compare_tables($src, $tgt, 'd1', 'id');
is(query("SELECT state FROM datasync.status WHERE name = 'pdrop'"), 'streaming', 'pdrop streams');
query("SELECT datasync.drop_pipeline('pdrop')");

done_testing();
