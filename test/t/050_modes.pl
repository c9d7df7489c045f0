# Copyright (c) 2026, datasync developers
#
# Sync modes and jobs: manual (sync_now), scheduled (pg_cron), real-time,
# create_job / job_status / datasync.jobs / NOTIFY datasync_events, pause
# and resume in every mode, and mode switches under a running workload
# that must neither lose nor repeat a change.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DatasyncTest;

my $src = source_node(
	'src_modes',
	shared_preload_libraries => 'datasync,pg_cron',
	'cron.database_name' => 'postgres',
	'cron.use_background_workers' => 'on',
	max_worker_processes => 40,
	max_connections => 40,
	restart_after_crash => 'on');
$src->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $tgt = target_node('tgt_modes');

my $tables = q{
CREATE TABLE man (id int PRIMARY KEY, v text);
CREATE TABLE sch (id int PRIMARY KEY, v text);
CREATE TABLE sw (id bigserial PRIMARY KEY, v int NOT NULL);
CREATE TABLE big (id int PRIMARY KEY, pad text);
};
$src->safe_psql('postgres', $tables . q{
INSERT INTO man SELECT g, 'pre' || g FROM generate_series(1, 10) g;
});
$tgt->safe_psql('postgres', $tables);
change_logs($src, $tgt, 'sw');

my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', "SELECT datasync.create_target('tgt', '$dsn')");

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------------
# manual: nothing until sync_now; sync_now applies what was committed
# ---------------------------------------------------------------------
src_q("SELECT datasync.create_pipeline('man', 'tgt', ARRAY['man']::regclass[], mode => 'manual')");
# The control pipeline ctl (real-time) is created after man committed.  The
# launcher reads all pipelines in one round, in id order, and starts a
# worker for a new real-time one at once: the round that started ctl's
# worker (control_pipeline waits until ctl is copied and streams) listed
# man, before ctl.  Had that round started a worker for man, it would have
# had all of ctl's start, slot creation and copy to create man's slot and
# copy man: no slot and nothing on the target now mean no worker of man did.
control_pipeline($src, $tgt, 'tgt', 'ctl');
is(tgt_q('SELECT count(*) FROM man'), '0', 'manual: nothing applied before the first sync_now');
is(src_q("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'datasync_man'"), '0',
	'manual: no slot before the first run');
is(src_q("SELECT state FROM datasync.status WHERE name = 'man'"), 'idle', 'manual: state idle');

my $out = src_q("SELECT datasync.sync_now('man')");
like($out, qr/"status": "succeeded"/, 'first sync_now succeeded');
like($out, qr/"kind": "manual"/, 'first sync_now is a manual job');
is(tgt_q('SELECT count(*) FROM man'), '10', 'first run copied the table');

src_q(q{
INSERT INTO man SELECT g, 'new' || g FROM generate_series(11, 15) g;
UPDATE man SET v = 'upd' WHERE id IN (1, 2);
DELETE FROM man WHERE id = 3;
});
# A marker committed after these changes reached the target through ctl: a
# real-time worker on this source and target decoded past them and applied
# a later commit.  A worker of man that streamed (one left from the run, or
# started without a run) had as long as that to apply them, however loaded
# the machine.  (That the run below counts all 8 changes shows, in man's own
# order, that none was applied before it.)
control_marker($src, $tgt, 'ctl', 'after the held changes of man');
is(tgt_q('SELECT count(*) FROM man'), '10', 'manual: changes held until sync_now');
$out = src_q("SELECT datasync.sync_now('man')");
like($out, qr/"rows_inserted": 5\b/, 'outcome counts 5 inserts');
like($out, qr/"rows_updated": 2\b/, 'outcome counts 2 updates');
like($out, qr/"rows_deleted": 1\b/, 'outcome counts 1 delete');
like($out, qr/"rows_applied": 8\b/, 'outcome counts 8 rows');
like($out, qr/"duration_ms": [0-9.]+/, 'outcome has a duration');
compare_tables($src, $tgt, 'man', 'id');

# a run with nothing to apply succeeds with zero rows
$out = src_q("SELECT datasync.sync_now('man')");
like($out, qr/"status": "succeeded".*|"rows_applied": 0\b/, 'an empty run succeeds');
like($out, qr/"rows_applied": 0\b/, 'an empty run applies nothing');

# the worker of a manual pipeline exits after its runs
ok( $src->poll_query_until('postgres',
		"SELECT worker_pid IS NULL AND state = 'idle' FROM datasync.status WHERE name = 'man'"),
	'manual: worker gone and state idle after the run');
# confirmed up to the run's marker (upto_lsn is the end of the marker record);
# the walsender handles the worker's last feedback after the worker is gone,
# so wait for it
ok(poll_until($src, "SELECT pg_wal_lsn_diff((SELECT upto_lsn FROM datasync.jobs WHERE pipeline = 'man' ORDER BY id DESC LIMIT 1), confirmed_flush_lsn) < 200 FROM pg_replication_slots WHERE slot_name = 'datasync_man'"),
	'manual: slot confirmed up to the run after the run');

# ---------------------------------------------------------------------
# create_job, job_status, datasync.jobs, NOTIFY datasync_events
# ---------------------------------------------------------------------
src_q("INSERT INTO man VALUES (100, 'job')");
# A listening session asks for the run, then waits for the notification
# itself: the worker sends it in the statement that records the run's end.
# psql prints a notification after the next statement it runs, so each
# round trip shows what has arrived.
my $listener = $src->background_psql('postgres');
$listener->query_safe('LISTEN datasync_events');
my $events = $listener->query_safe("SELECT datasync.create_job('man')");
my ($jid) = $events =~ /^(\d+)$/m;
ok($jid, "create_job returned an id ($jid)");
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
until ($events =~ /payload "\{(?=[^\n]*"event": "job(?:Completed|Failed)")(?=[^\n]*"id": $jid\b)/
	  || time > $deadline)
{
	select(undef, undef, undef, 0.1);
	$events .= $listener->query_safe('SELECT 1');
}
$listener->quit;
like($events, qr/Asynchronous notification "datasync_events" with payload "\{(?=[^\n]*"event": "jobCompleted")(?=[^\n]*"id": $jid\b)/,
	'NOTIFY datasync_events jobCompleted with the job id');
like(src_q("SELECT datasync.job_status($jid)"), qr/"status": "succeeded"/, 'job_status: succeeded');
is(tgt_q('SELECT v FROM man WHERE id = 100'), 'job', 'the job applied the row');
is(src_q("SELECT kind || ' ' || status || ' ' || rows_inserted FROM datasync.jobs WHERE id = $jid"),
	'api succeeded 1', 'datasync.jobs row of the job');

# two runs of one pipeline never overlap: the second waits for the first
src_q("INSERT INTO man SELECT g, 'x' FROM generate_series(200, 2200) g");
my $j1 = src_q("SELECT datasync.create_job('man')");
my $j2 = src_q("SELECT datasync.create_job('man')");
like(src_q("SELECT datasync.job_status($j2)"), qr/"status": "(queued|running|succeeded)"/, 'second job queued');
ok( $src->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM datasync.jobs WHERE id IN ($j1, $j2) AND status = 'succeeded'"),
	'both jobs succeed');
is(src_q("SELECT (SELECT finished_at FROM datasync.jobs WHERE id = $j1) <= (SELECT started_at FROM datasync.jobs WHERE id = $j2)"),
	't', 'the second run started after the first ended');
compare_tables($src, $tgt, 'man', 'id');

# sync_now with a timeout returns before the run ends; the run goes on
src_q("INSERT INTO man VALUES (2500, 'timeout')");
my $tj = src_q("SELECT datasync.sync_now('man', '0 s')");
like($tj, qr/"status": "queued"/, 'sync_now with a zero timeout returns the queued run');
my ($tjid) = $tj =~ /"id": (\d+)/;
ok($src->poll_query_until('postgres', "SELECT status = 'succeeded' FROM datasync.jobs WHERE id = $tjid"),
	'and the run still ends');

# bad inputs
my ($rc, $o, $e) = $src->psql('postgres', "SELECT datasync.job_status(999999)");
like($e, qr/job 999999 does not exist/, 'job_status of an unknown id');
($rc, $o, $e) = $src->psql('postgres', "SELECT datasync.sync_now('nope')");
like($e, qr/pipeline "nope" does not exist/, 'sync_now of an unknown pipeline');

# ---------------------------------------------------------------------
# pause / resume in manual mode
# ---------------------------------------------------------------------
src_q("SELECT datasync.pause('man')");
is(src_q("SELECT state FROM datasync.status WHERE name = 'man'"), 'paused', 'manual: paused');
($rc, $o, $e) = $src->psql('postgres', "SELECT datasync.sync_now('man')");
like($e, qr/pipeline "man" is paused/, 'sync_now on a paused pipeline is refused');
src_q("SELECT datasync.resume('man')");
src_q("INSERT INTO man VALUES (3000, 'after resume')");
like(src_q("SELECT datasync.sync_now('man')"), qr/"rows_inserted": 1\b/, 'sync_now after resume');

# ---------------------------------------------------------------------
# a failing run: jobFailed, the job row says why
# ---------------------------------------------------------------------
tgt_q('ALTER TABLE man DROP COLUMN v');
src_q("INSERT INTO man VALUES (4000, 'boom')");
$out = src_q("SELECT datasync.sync_now('man')");
like($out, qr/"status": "failed"/, 'a run that hits a permanent error fails');
my ($failed_job) = $out =~ /"id": (\d+)/;
like($out, qr/"error": ".*\bv\b/, 'its error names the column (the caller may read every table)');
like(src_q("SELECT error FROM datasync.jobs WHERE id = $failed_job"), qr/^error text withheld: /,
	'datasync.jobs withholds the error text (it may quote row values)');
ok($src->poll_query_until('postgres',
		"SELECT error ~ '\\mv\\M' FROM datasync.job_errors WHERE id = $failed_job"),
	'datasync.job_errors names the column');
is(src_q("SELECT state FROM datasync.status WHERE name = 'man'"), 'error', 'pipeline in error');
tgt_q('ALTER TABLE man ADD COLUMN v text');
tgt_q("UPDATE man t SET v = s.v FROM (VALUES (1,'upd'),(2,'upd')) s(id, v) WHERE t.id = s.id");
src_q("SELECT datasync.resume('man')");
like(src_q("SELECT datasync.sync_now('man')"), qr/"status": "succeeded"/, 'after the fix a run succeeds');
is(tgt_q("SELECT v FROM man WHERE id = 4000"), 'boom', 'the failed change applied once fixed');

# ---------------------------------------------------------------------
# sync_now on a real-time pipeline: returns once caught up
# ---------------------------------------------------------------------
src_q("SELECT datasync.create_pipeline('sw', 'tgt', ARRAY['sw']::regclass[])");
ok(wait_for_sync($src, 'sw'), 'real-time pipeline streaming');
src_q("INSERT INTO sw (v) SELECT g FROM generate_series(1, 100) g");
like(src_q("SELECT datasync.sync_now('sw')"), qr/"status": "succeeded"/, 'sync_now on a real-time pipeline');
is(tgt_q('SELECT count(*) FROM sw'), '100', 'real-time: caught up when sync_now returned');

# ---------------------------------------------------------------------
# scheduled: pg_cron job, runs with no manual call, follows alter/drop
# ---------------------------------------------------------------------
($rc, $o, $e) = $src->psql('postgres',
	"SELECT datasync.create_pipeline('bad', 'tgt', ARRAY['sch']::regclass[], mode => 'scheduled', schedule => 'every day')");
like($e, qr/invalid schedule/, 'a bad cron expression is refused');
is(src_q("SELECT (SELECT count(*) FROM datasync.pipelines WHERE name = 'bad') + (SELECT count(*) FROM pg_publication WHERE pubname = 'datasync_bad') + (SELECT count(*) FROM cron.job WHERE jobname = 'datasync_bad')"),
	'0', 'and leaves nothing behind');
($rc, $o, $e) = $src->psql('postgres',
	"SELECT datasync.create_pipeline('bad', 'tgt', ARRAY['sch']::regclass[], mode => 'scheduled')");
like($e, qr/needs a schedule/, 'scheduled without a schedule is refused');

src_q("SELECT datasync.create_pipeline('sch', 'tgt', ARRAY['sch']::regclass[], mode => 'scheduled', schedule => '* * * * *')");
is(src_q("SELECT schedule || ' ' || command FROM cron.job WHERE jobname = 'datasync_sch'"),
	'* * * * * SELECT datasync._scheduled_run(' . src_q("SELECT id FROM datasync._pipelines WHERE name = 'sch'") . ')',
	'a pg_cron job named after the pipeline');
src_q("INSERT INTO sch SELECT g, 's' FROM generate_series(1, 50) g");
my $t0 = time;
ok( $tgt->poll_query_until('postgres', 'SELECT count(*) = 50 FROM sch'),
	'scheduled: caught up with no manual call');
note('scheduled run after ' . (time - $t0) . ' s');
ok(time - $t0 <= 130, 'within about a cron minute');
is(src_q("SELECT count(*) > 0 FROM datasync.jobs WHERE pipeline = 'sch' AND kind = 'scheduled' AND status = 'succeeded'"),
	't', 'a scheduled job in datasync.jobs');
like(src_q("SELECT datasync.sync_now('sch')"), qr/"status": "succeeded"/, 'sync_now on a scheduled pipeline');

src_q(q{SELECT datasync.alter_pipeline('sch', '{"schedule": "*/5 * * * *"}')});
is(src_q("SELECT schedule FROM cron.job WHERE jobname = 'datasync_sch'"), '*/5 * * * *', 'alter_pipeline changes the cron job');
is(src_q("SELECT schedule FROM datasync.pipelines WHERE name = 'sch'"), '*/5 * * * *', 'and the pipeline');
($rc, $o, $e) = $src->psql('postgres', q{SELECT datasync.alter_pipeline('sch', '{"schedule": "61 * * * *"}')});
like($e, qr/invalid schedule/, 'alter to a bad expression is refused');
is(src_q("SELECT schedule FROM cron.job WHERE jobname = 'datasync_sch'"), '*/5 * * * *', 'and changes nothing');

# a paused scheduled pipeline skips its runs: what pg_cron calls returns NULL
src_q("SELECT datasync.pause('sch')");
my $sch_id = src_q("SELECT id FROM datasync._pipelines WHERE name = 'sch'");
my $njobs = src_q("SELECT count(*) FROM datasync.jobs WHERE pipeline = 'sch'");
is(src_q("SELECT datasync._scheduled_run($sch_id) IS NULL"), 't', 'paused: a scheduled run is skipped');
is(src_q("SELECT count(*) FROM datasync.jobs WHERE pipeline = 'sch'"), $njobs, 'and records no job');
src_q("SELECT datasync.resume('sch')");
like(src_q("SELECT datasync._scheduled_run($sch_id)"), qr/"kind": "scheduled"/, 'resumed: a scheduled run runs');

src_q("SELECT datasync.drop_pipeline('sch')");
is(src_q("SELECT count(*) FROM cron.job WHERE jobname = 'datasync_sch'"), '0', 'drop_pipeline removes the cron job');

# ---------------------------------------------------------------------
# mode switches under a running workload: nothing lost, nothing twice
# ---------------------------------------------------------------------
my $stopfile = "$PostgreSQL::Test::Utils::tmp_check/modes_stop";
my $wl_sql = "$PostgreSQL::Test::Utils::tmp_check/modes_workload.sql";
open(my $fh, '>', $wl_sql) or die $!;
print $fh <<'EOS' x 10;
BEGIN;
INSERT INTO sw (v) VALUES ((random() * 1000)::int);
UPDATE sw SET v = v + 1 WHERE id = (SELECT max(id) FROM sw) - (random() * 20)::int;
DELETE FROM sw WHERE id = (SELECT max(id) FROM sw) - 30 - (random() * 10)::int;
COMMIT;
EOS
close($fh);
my $connstr = $src->connstr('postgres');
my $workload = IPC::Run::start(
	[ 'bash', '-c',
		"while [ ! -e '$stopfile' ]; do psql -X -q -d \"\$1\" -f '$wl_sql' >/dev/null 2>&1; sleep 0.05; done",
		'workload', $connstr ]);

# Each mode gets a share of the workload: a count of changes it commits, not
# a time, which a loaded machine may fill with next to none.  In real-time
# phases also until the target applied some: the session streams when the
# mode switches under it.
sub workload_moves
{
	my ($n, $streams) = @_;
	my $c0 = src_q('SELECT count(*) FROM change_log');
	my $a0 = tgt_q('SELECT count(*) FROM applied_log');
	$src->poll_query_until('postgres', "SELECT count(*) >= $c0 + $n FROM change_log")
	  or die "the workload does not make changes";
	!$streams
	  or $tgt->poll_query_until('postgres', "SELECT count(*) > $a0 FROM applied_log")
	  or die "the real-time pipeline does not apply the workload";
	return;
}

workload_moves(100, 1);
src_q(q{SELECT datasync.alter_pipeline('sw', '{"mode": "manual"}')});
ok($src->poll_query_until('postgres', "SELECT worker_pid IS NULL FROM datasync.status WHERE name = 'sw'"),
	'realtime -> manual: the worker stops');
workload_moves(100);
like(src_q("SELECT datasync.sync_now('sw')"), qr/"status": "succeeded"/, 'manual run during the workload');
workload_moves(50);
src_q(q{SELECT datasync.alter_pipeline('sw', '{"mode": "scheduled", "schedule": "* * * * *"}')});
is(src_q("SELECT count(*) FROM cron.job WHERE jobname = 'datasync_sw'"), '1', 'manual -> scheduled: cron job created');
like(src_q("SELECT datasync.sync_now('sw')"), qr/"status": "succeeded"/, 'extra run of a scheduled pipeline');
workload_moves(50);
src_q(q{SELECT datasync.alter_pipeline('sw', '{"mode": "realtime"}')});
is(src_q("SELECT count(*) FROM cron.job WHERE jobname = 'datasync_sw'"), '0', 'scheduled -> realtime: cron job removed');
is(src_q("SELECT schedule IS NULL FROM datasync.pipelines WHERE name = 'sw'"), 't', 'and the schedule cleared');
workload_moves(100, 1);
src_q(q{SELECT datasync.alter_pipeline('sw', '{"mode": "manual"}')});
workload_moves(50);
src_q(q{SELECT datasync.alter_pipeline('sw', '{"mode": "real-time"}')});
workload_moves(100, 1);

open($fh, '>', $stopfile) or die $!;
close($fh);
$workload->finish;
ok(wait_for_sync($src, 'sw', 60), 'caught up after the switches');
compare_tables($src, $tgt, 'sw', 'id');
my $srclog = src_q('SELECT id, v, count(*) FROM change_log GROUP BY 1, 2 ORDER BY 1, 2');
my $tgtlog = tgt_q('SELECT id, v, count(*) FROM applied_log GROUP BY 1, 2 ORDER BY 1, 2');
my $nchanges = src_q('SELECT count(*) FROM change_log');
ok($nchanges > 500, "workload made $nchanges changes");
ok($srclog eq $tgtlog, 'every change applied exactly once across the mode switches');
is(src_q("SELECT count(*) FROM datasync.jobs WHERE status = 'running'"), '0', 'no job left running');

# bad mode switches
($rc, $o, $e) = $src->psql('postgres', q{SELECT datasync.alter_pipeline('sw', '{"mode": "scheduled"}')});
like($e, qr/needs a schedule/, 'switch to scheduled without a schedule is refused');
($rc, $o, $e) = $src->psql('postgres', q{SELECT datasync.alter_pipeline('sw', '{"schedule": "* * * * *"}')});
like($e, qr/only valid for mode "scheduled"/, 'a schedule for a real-time pipeline is refused');
($rc, $o, $e) = $src->psql('postgres', q{SELECT datasync.alter_pipeline('sw', '{"mode": "sometimes"}')});
like($e, qr/invalid mode "sometimes"/, 'an unknown mode is refused');

# ---------------------------------------------------------------------
# a run whose worker is terminated goes on (the queue survives); a run
# whose worker is killed -9 (the source restarts) is marked failed, and
# the next run applies everything once
# ---------------------------------------------------------------------
src_q("SELECT datasync.create_pipeline('bigp', 'tgt', ARRAY['big']::regclass[], mode => 'manual')");
like(src_q("SELECT datasync.sync_now('bigp')"), qr/"status": "succeeded"/, 'bigp: first run');
src_q("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 300000) g");
my $bj = src_q("SELECT datasync.create_job('bigp')");
ok($src->poll_query_until('postgres', "SELECT status = 'running' FROM datasync.jobs WHERE id = $bj"),
	'bigp: the run is going on');
src_q("SELECT pg_terminate_backend(worker_pid) FROM datasync.status WHERE name = 'bigp'");
ok($src->poll_query_until('postgres', "SELECT status = 'succeeded' FROM datasync.jobs WHERE id = $bj"),
	'a run whose worker was terminated still succeeds');
is(tgt_q('SELECT count(*) FROM big'), '300000', 'and applied everything');

src_q("INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(300001, 600000) g");
$bj = src_q("SELECT datasync.create_job('bigp')");
ok($src->poll_query_until('postgres', "SELECT status = 'running' FROM datasync.jobs WHERE id = $bj"),
	'bigp: second run going on');
my $wpid = src_q("SELECT worker_pid FROM datasync.status WHERE name = 'bigp'");
ok($wpid =~ /^\d+$/, "worker pid $wpid");
kill 'KILL', $wpid;
ok(poll_until($src, "SELECT status = 'failed' FROM datasync.jobs WHERE id = $bj"),
	'a run interrupted by a crash restart is marked failed');
like(src_q("SELECT error FROM datasync.jobs WHERE id = $bj"), qr/interrupted/, 'with the reason');
like(src_q("SELECT datasync.sync_now('bigp')"), qr/"status": "succeeded"/, 'the next run succeeds');
compare_hash($src, $tgt, 'big');
is(src_q("SELECT count(*) FROM datasync.jobs WHERE status = 'running'"), '0', 'no job left running');

# ---------------------------------------------------------------------
# the configuration document from a YAML file (scripts/apply-config):
# pipelines of each mode, applied twice (no-op), an invalid one (nothing)
# ---------------------------------------------------------------------
my $tgt_host = $tgt->host;
my $tgt_port = $tgt->port;
my $yaml = "$PostgreSQL::Test::Utils::tmp_check/shop.yaml";
open($fh, '>', $yaml) or die $!;
print $fh <<"EOY";
sourceSystem:
  database: postgres
targetSystem:
  name: cfg-target
  type: postgresql
  connectionString: "host=$tgt_host port=$tgt_port dbname=postgres"
syncMode: manual
schedule:
  cron: "0 */5 * * * *"
conflictResolution: source-wins
pipelines:
  - name: cfg-man
    tables: [man]
  - name: cfg-sch
    tables: [sch]
    syncMode: scheduled
EOY
close($fh);
my $tool = "$ENV{TESTDIR}/scripts/apply-config";
my ($cout, $cerr);
IPC::Run::run([ $tool, $yaml, '-d', $src->connstr('postgres') ], '>', \$cout, '2>', \$cerr);
is($?, 0, 'apply-config with a YAML file succeeds') or diag($cerr);
like($cout, qr/"created"/, 'it reports what it created');
is(src_q("SELECT string_agg(name || ':' || mode || ':' || coalesce(schedule, '-'), ' ' ORDER BY name) FROM datasync.pipelines WHERE name LIKE 'cfg-%'"),
	'cfg-man:manual:- cfg-sch:scheduled:*/5 * * * *', 'pipelines of the document, with their modes');
is(src_q("SELECT schedule FROM cron.job WHERE jobname = 'datasync_cfg-sch'"), '*/5 * * * *',
	'the scheduled one has its pg_cron job');
my $before = src_q("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM datasync._pipelines")
  . src_q("SELECT string_agg(xmin::text, ',' ORDER BY jobid) FROM cron.job");
IPC::Run::run([ $tool, $yaml, '-d', $src->connstr('postgres') ], '>', \$cout, '2>', \$cerr);
is($?, 0, 'applied a second time');
unlike($cout, qr/"(created|altered)": \[\s*"/, 'the second run changes nothing');
is(src_q("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM datasync._pipelines")
	  . src_q("SELECT string_agg(xmin::text, ',' ORDER BY jobid) FROM cron.job"),
	$before, 'no catalog or cron row was rewritten');

open($fh, '>', $yaml) or die $!;
print $fh <<"EOY";
targetSystem:
  name: cfg-target
  connectionString: "host=$tgt_host port=$tgt_port dbname=postgres"
pipelines:
  - name: cfg-man
    tables: [man, sch]
  - name: cfg-sch
    tables: [sch]
    syncMode: sometimes
EOY
close($fh);
IPC::Run::run([ $tool, $yaml, '-d', $src->connstr('postgres') ], '>', \$cout, '2>', \$cerr);
isnt($?, 0, 'an invalid document is refused');
like($cerr, qr/pipelines\[1\]\.syncMode/, 'the error points at the offending path');
is(src_q("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM datasync._pipelines")
	  . src_q("SELECT string_agg(xmin::text, ',' ORDER BY jobid) FROM cron.job"),
	$before, 'and nothing changed');
like(src_q("SELECT datasync.sync_now('cfg-man')"), qr/"status": "succeeded"/, 'the manual pipeline of the document runs');

done_testing();
