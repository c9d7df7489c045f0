# Copyright (c) 2026, datasync developers
#
# Faults under a continuous workload: exactly once, nothing lost.
#
# Topology: source (datasync) -> target (plain PostgreSQL).
# A workload keeps committing inserts, updates and deletes on the source
# while we
#   1. kill -9 the sync worker (the postmaster restarts the whole source),
#   2. restart the source with pg_ctl -m immediate,
#   3. crash the target (pg_ctl -m immediate: commits it had not flushed are
#      lost; datasync commits with synchronous_commit off, as native
#      subscriptions do) and keep it down for a minute (the pipeline must
#      show "retrying" with the last error, then recover by itself).
# At the end the target table must equal the source table, and every change
# must have been applied exactly once: an AFTER trigger on the source logs
# each change, an ENABLE ALWAYS trigger on the target logs each applied
# change, and the two logs must be the same multiset.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use DatasyncTest;

my $src = source_node('src_faults', max_connections => 40, restart_after_crash => 'on');
my $tgt = target_node('tgt_faults');

my $table_sql = q{
CREATE TABLE acct (id bigserial PRIMARY KEY, v int NOT NULL, note text);
};
$src->safe_psql('postgres', $table_sql);
$tgt->safe_psql('postgres', $table_sql);
change_logs($src, $tgt, 'acct');

my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
SELECT datasync.create_target('tgt', '$dsn');
SELECT datasync.create_pipeline('acct-sync', 'tgt', ARRAY['acct']::regclass[],
                                options => '{"retry_base_ms": 200, "retry_max_ms": 3000}');
});
ok(wait_for_sync($src, 'acct-sync'), 'pipeline is streaming');

# The workload: a shell loop of psql runs, each a few transactions; a run
# that fails (server restarting) is simply retried.  It stops when the
# stop file appears.
my $stopfile = "$PostgreSQL::Test::Utils::tmp_check/faults_stop";
my $wl_sql = "$PostgreSQL::Test::Utils::tmp_check/faults_workload.sql";
open(my $fh, '>', $wl_sql) or die $!;
print $fh <<'EOS' x 10;
BEGIN;
INSERT INTO acct (v, note) VALUES (0, repeat('x', (random() * 50)::int));
UPDATE acct SET v = v + 1 WHERE id = (SELECT max(id) FROM acct) - (random() * 20)::int;
COMMIT;
BEGIN;
INSERT INTO acct (v) SELECT 0 FROM generate_series(1, 3);
DELETE FROM acct WHERE id = (SELECT min(id) FROM acct) AND random() < 0.3;
COMMIT;
EOS
close($fh);
my $psql = join(' ', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
	'-h', $src->host, '-p', $src->port, '-d', 'postgres', '-f', $wl_sql);
my $workload = IPC::Run::start(
	[ 'bash', '-c',
	  "while [ ! -e '$stopfile' ]; do $psql >/dev/null 2>&1 || sleep 0.2; done" ]);

sub rows_on
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM $table");
}

# let some changes flow
$src->poll_query_until('postgres', 'SELECT count(*) > 200 FROM change_log')
  or die 'workload does not run';

# 1. kill -9 the sync worker
my $wpid = $src->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'datasync worker'");
ok($wpid =~ /^\d+$/, "found the sync worker ($wpid)");
kill 'KILL', $wpid;
poll_until($src,
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'datasync worker' AND pid <> $wpid")
  or die 'worker did not come back after kill -9';
my $n0 = rows_on($src, 'change_log');
poll_until($src, "SELECT count(*) > $n0 + 100 FROM change_log")
  or die 'workload stopped after kill -9';
pass('worker restarted after kill -9, workload goes on');

# 2. immediate restart of the source
$src->stop('immediate');
{
	# While the source is down, poll_until() fails without dying: the query
	# (larger than a pipe's buffer here) is not written to a psql that has
	# already exited, as poll_query_until() would ("Broken pipe").
	local $PostgreSQL::Test::Utils::timeout_default = 1;
	my $r = eval { poll_until($src, 'SELECT true /* ' . ('x' x 100_000) . ' */') };
	ok(defined $r && !$r, 'poll_until: false, not a death, while the server is down')
	  or diag $@;
}
$src->start;
$n0 = rows_on($src, 'change_log');
$src->poll_query_until('postgres', "SELECT count(*) > $n0 + 100 FROM change_log")
  or die 'workload stopped after the source restart';
$src->poll_query_until('postgres',
	"SELECT state = 'streaming' FROM datasync.status WHERE name = 'acct-sync'")
  or die 'pipeline not streaming after the source restart';
pass('source restarted with -m immediate, pipeline streaming again');

# 3. the target crashes and stays away for a minute
$tgt->stop('immediate');
$src->poll_query_until('postgres',
	"SELECT state = 'retrying' AND last_error IS NOT NULL FROM datasync.status WHERE name = 'acct-sync'")
  or die 'pipeline did not report retrying while the target was down';
my $status = $src->safe_psql('postgres',
	"SELECT state, last_error FROM datasync.status WHERE name = 'acct-sync'");
like($status, qr/^retrying\|.*(connect|server)/s, "retrying with the connection error shown: $status");
sleep 60;    # the scenario is "target down for a minute", not a wait for a condition
$status = $src->safe_psql('postgres',
	"SELECT state, retry_attempt > 0, next_attempt_at IS NOT NULL FROM datasync.status WHERE name = 'acct-sync'");
is($status, 'retrying|t|t', 'still retrying with backoff after a minute');
$tgt->start;
$src->poll_query_until('postgres',
	"SELECT state = 'streaming' FROM datasync.status WHERE name = 'acct-sync'")
  or die 'pipeline did not recover after the target came back';
pass('pipeline recovered by itself when the target came back');

# stop the workload, let everything arrive
open(my $sf, '>', $stopfile) or die $!;
close($sf);
$workload->finish;
ok(wait_for_sync($src, 'acct-sync'), 'caught up');

compare_hash($src, $tgt, 'acct');
my $srcn = rows_on($src, 'change_log');
my $tgtn = rows_on($tgt, 'applied_log');
is($tgtn, $srcn, "every change applied exactly once ($srcn changes)");
my $q = "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id, v, n)) FROM %s";
is($tgt->safe_psql('postgres', sprintf($q, 'applied_log')),
	$src->safe_psql('postgres', sprintf($q, 'change_log')),
	'the applied changes are the source changes, none missing, none twice');
ok($srcn > 500, "the workload made enough changes ($srcn)");

$status = $src->safe_psql('postgres',
	"SELECT state, errors > 0 FROM datasync.status WHERE name = 'acct-sync'");
is($status, 'streaming|t', 'streaming, with the errors counted');

done_testing();
