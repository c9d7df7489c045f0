# Copyright (c) 2026, datasync developers
#
# 210_status_metrics.pl -- the columns of datasync.status that issue 17
# added, and rows_copied in jobs and in sync_now's outcome.
#
# Topology: node "src_mon" (datasync), node "tgt_mon" (plain PostgreSQL).
#
#   1. a real-time pipeline: rows_copied is its initial copy's rows; after
#      streamed changes, latency_p50_ms and latency_p99_ms are set and
#      p50 <= p99, throughput_rps is not negative, lag_ms is 0 once caught
#      up, retained_wal_bytes and wal_status come from its slot, rejected
#      and queue_size are 0;
#      datasync.metrics has the same figures a row a metric; reset_stats
#      starts them from zero (audited, 42704 for an unknown pipeline);
#   2. lag_ms grows while the target holds a lock on the table (the batch
#      waits there) and is 0 again once it is released;
#      health: ok; critical (state, worker) while the pipeline is in error;
#      after the fix and resume a warning for the failure rate (one error
#      among few transactions), ok once more transactions went through;
#   3. a manual pipeline: the first sync_now reports the rows its copy
#      made (rows_copied in its outcome and in datasync.jobs), a later run
#      none.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_mon');
my $tgt = target_node('tgt_mon');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

for my $node ($src, $tgt)
{
	$node->safe_psql('postgres', 'CREATE TABLE rt (id int PRIMARY KEY, v int); CREATE TABLE man (id int PRIMARY KEY, v int)');
}
src_q('INSERT INTO rt SELECT g, g FROM generate_series(1, 150) g; INSERT INTO man SELECT g, g FROM generate_series(1, 70) g');
my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('t', '$dsn')");

# ---- 1. a real-time pipeline ---------------------------------------------------
src_q("SELECT datasync.create_pipeline('rt', 't', ARRAY['rt']::regclass[])");
wait_for_sync($src, 'rt', 90);
is(src_q("SELECT rows_copied FROM datasync.status WHERE name = 'rt'"), '150', 'rows_copied: the initial copy');
for my $i (1 .. 20)
{
	src_q("UPDATE rt SET v = v + 1 WHERE id = $i");
}
wait_for_sync($src, 'rt', 90);
is(src_q("SELECT latency_p50_ms IS NOT NULL AND latency_p99_ms IS NOT NULL AND latency_p50_ms >= 0"
	  . " AND latency_p50_ms <= latency_p99_ms FROM datasync.status WHERE name = 'rt'"), 't',
	'latency: p50 and p99 of the streamed transactions');
is(src_q("SELECT throughput_rps >= 0 FROM datasync.status WHERE name = 'rt'"), 't', 'throughput_rps is there');
ok(poll_until($src, "SELECT lag_ms FROM datasync.status WHERE name = 'rt'", '0'), 'lag_ms: 0 once caught up');
is(src_q("SELECT rows_applied || '|' || rejected || '|' || queue_size FROM datasync.status WHERE name = 'rt'"), '20|0|0',
	'rows_applied counts the stream only; rejected and queue_size are 0');
is(src_q("SELECT retained_wal_bytes >= 0 AND wal_status = 'reserved' FROM datasync.status WHERE name = 'rt'"), 't',
	'the slot: retained WAL and wal_status');

# datasync.metrics: the same figures, a row a metric
is(src_q("SELECT value FROM datasync.metrics WHERE pipeline = 'rt' AND metric = 'rows_applied' AND labels = '{\"op\": \"update\"}'"),
	'20', 'metrics: rows_applied{op=update}');
is(src_q("SELECT count(DISTINCT metric) FROM datasync.metrics WHERE pipeline = 'rt'"
	  . " AND metric IN ('sync_throughput', 'sync_latency', 'sync_errors', 'sync_conflicts', 'queue_size',"
	  . " 'lag_bytes', 'lag_ms', 'slot_retained_wal_bytes', 'rows_copied', 'transactions')"),
	'10', 'metrics: the seed\'s names, lag and the slot\'s WAL');
is(src_q("SELECT string_agg(labels->>'quantile', ',' ORDER BY labels->>'quantile') FROM datasync.metrics"
	  . " WHERE pipeline = 'rt' AND metric = 'sync_latency'"), '0.5,0.99', 'metrics: sync_latency by quantile');

# reset_stats: counters from zero, audited; bad input refused
src_q("SELECT datasync.reset_stats('rt')");
is(src_q("SELECT rows_applied || '|' || rows_copied || '|' || transactions || '|' || (latency_p50_ms IS NULL)"
	  . " FROM datasync.status WHERE name = 'rt'"), '0|0|0|true', 'reset_stats: counters and latency from zero');
is(src_q("SELECT count(*) FROM datasync.audit_log WHERE action = 'reset_stats' AND object = 'pipeline rt'"), '1',
	'reset_stats: audited');
my ($rc, $out, $err) = $src->psql('postgres', "SELECT datasync.reset_stats('nope')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42704/, 'reset_stats: an unknown pipeline is refused');
src_q('UPDATE rt SET v = v + 1 WHERE id = 1');
wait_for_sync($src, 'rt', 90);
is(src_q("SELECT rows_applied FROM datasync.status WHERE name = 'rt'"), '1', 'reset_stats: counting goes on');

# ---- 2. lag_ms while the target waits ---------------------------------------------
my $lock = $tgt->background_psql('postgres');
$lock->query_safe('BEGIN; LOCK TABLE rt IN ACCESS EXCLUSIVE MODE');
src_q('UPDATE rt SET v = 0 WHERE id = 100');
ok(poll_until($src, "SELECT lag_ms > 1000 FROM datasync.status WHERE name = 'rt'", 't'),
	'lag_ms: above a second while the change waits on the target');
$lock->query_safe('COMMIT');
$lock->quit;
wait_for_sync($src, 'rt', 90);
ok(poll_until($src, "SELECT lag_ms FROM datasync.status WHERE name = 'rt'", '0'), 'lag_ms: 0 again');

# ---- health: critical while a pipeline is in error, ok after the fix --------
is(src_q("SELECT datasync.health()->>'status'"), 'ok', 'health: ok');
is(src_q("SELECT count(*) FROM datasync.health WHERE pipeline = 'rt'"), '6', 'health: six checks a pipeline');
tgt_q('ALTER TABLE rt ADD CONSTRAINT small CHECK (v < 1000000)');
src_q('UPDATE rt SET v = 5000000 WHERE id = 2');
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'rt'", 'error'), 'a pipeline stops in error');
is(src_q("SELECT datasync.health()->>'status'"), 'critical', 'health: critical');
is(src_q("SELECT string_agg(\"check\", ',' ORDER BY \"check\") FROM datasync.health WHERE status = 'critical'"),
	'state,worker', 'health: the state and worker checks say why');
tgt_q('ALTER TABLE rt DROP CONSTRAINT small');
src_q("SELECT datasync.resume('rt')");
wait_for_sync($src, 'rt', 90);
is(src_q("SELECT string_agg(\"check\" || ':' || status, ',' ORDER BY \"check\") FROM datasync.health"
	  . " WHERE pipeline = 'rt' AND status <> 'ok'"), 'failure_rate:warning',
	'health: after the fix, the one error is a high failure rate among few transactions');
# the failure rate counts since the last reset_stats: more transactions dilute it
src_q("DO \$\$BEGIN FOR i IN 1..30 LOOP UPDATE rt SET v = v + 1 WHERE id = 3; COMMIT; END LOOP; END\$\$");
wait_for_sync($src, 'rt', 90);
is(src_q("SELECT datasync.health()->>'status'"), 'ok', 'health: ok again after the fix, the resume and some traffic');

# ---- 3. a manual pipeline: its first run's copy ----------------------------------
src_q("SELECT datasync.create_pipeline('man', 't', ARRAY['man']::regclass[], mode => 'manual')");
is(src_q("SELECT (j->>'rows_copied') || '|' || (j->>'status') FROM datasync.sync_now('man', '90s') j"), '70|succeeded',
	'sync_now: the first run reports the rows its copy made');
is(src_q("SELECT rows_copied FROM datasync.jobs WHERE pipeline = 'man' ORDER BY id DESC LIMIT 1"), '70',
	'jobs.rows_copied: the same');
src_q('INSERT INTO man VALUES (71, 71)');
is(src_q("SELECT (j->>'rows_copied') || '|' || (j->>'rows_inserted') FROM datasync.sync_now('man', '90s') j"), '0|1',
	'a later run copies nothing');
is(src_q("SELECT rows_copied FROM datasync.status WHERE name = 'man'"), '70', 'status: rows_copied of the pipeline');
compare_tables($src, $tgt, 'man', 'id');

done_testing();
