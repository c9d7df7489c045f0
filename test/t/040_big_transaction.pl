# Copyright (c) 2026, datasync developers
#
# One source transaction of 1,000,000 rows is applied with the worker's
# memory bounded: the worker never holds the transaction.  The 1M-row one
# outgrows logical_decoding_work_mem (64MB) and is streamed while in
# progress; the worker keeps it in a temporary file and, at its commit,
# sends each change to the target as it reads it back.
#
# Topology: source (datasync) -> target.  A 100,000-row transaction, then
# a 1,000,000-row one, into a synced table; after each, the sync worker's
# peak resident set (VmHWM) is read from /proc.  The peak after 1M rows
# must stay close to the peak after 100k (the figures are printed; the
# bound here is generous, the benchmark in bench/ reports the ratio).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_big', logical_decoding_work_mem => '64MB');
my $tgt = target_node('tgt_big');

my $ddl = 'CREATE TABLE big (id int PRIMARY KEY, a text, b int, c timestamptz)';
$src->safe_psql('postgres', $ddl);
$tgt->safe_psql('postgres', $ddl);
my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
SELECT datasync.create_target('tgt', '$dsn');
SELECT datasync.create_pipeline('big', 'tgt', ARRAY['big']::regclass[]);
});
ok(wait_for_sync($src, 'big'), 'pipeline is streaming');

my $pid = $src->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'datasync worker'");

sub peak_kb
{
	open(my $fh, '<', "/proc/$pid/status") or die "no worker process $pid: $!";
	while (<$fh>)
	{
		return $1 if /^VmHWM:\s+(\d+) kB/;
	}
	die 'no VmHWM';
}

sub load
{
	my ($from, $to) = @_;
	$src->safe_psql('postgres', qq{
INSERT INTO big SELECT g, md5(g::text), g % 1000, now() FROM generate_series($from, $to) g;
});
	ok(wait_for_sync($src, 'big', 900), "rows $from..$to arrived");
	is($tgt->safe_psql('postgres', 'SELECT count(*) FROM big'),
		$src->safe_psql('postgres', 'SELECT count(*) FROM big'),
		'row counts match');
}

load(1, 100_000);
my $peak100k = peak_kb();
load(100_001, 1_100_000);
my $peak1m = peak_kb();
note("sync worker peak RSS: ${peak100k} kB after 100k rows, ${peak1m} kB after 1M rows");
diag(sprintf('worker peak RSS: 100k rows %.1f MB, 1M rows %.1f MB (ratio %.2f)',
		$peak100k / 1024, $peak1m / 1024, $peak1m / $peak100k));
ok($peak1m < $peak100k * 1.5 + 16 * 1024,
	'worker memory does not grow with transaction size');
is($src->safe_psql('postgres', 'SELECT pid FROM pg_stat_activity WHERE backend_type = \'datasync worker\''),
	$pid, 'the same worker applied both (no restart)');

is($src->safe_psql('postgres', q{
SELECT stream_txns > 0, spill_txns FROM pg_stat_replication_slots
 WHERE slot_name = (SELECT slot_name FROM datasync._pipelines WHERE name = 'big')}),
	't|0', 'the 1M-row transaction was streamed while in progress, not spilled by the walsender');

compare_hash($src, $tgt, 'big');
is($src->safe_psql('postgres', "SELECT transactions >= 2, errors FROM datasync.status WHERE name = 'big'"),
	't|0', 'status counts the transactions, no errors');

done_testing();
