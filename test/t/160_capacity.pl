# Copyright (c) 2026, datasync developers
#
# 160_capacity.pl -- create_pipeline says when the server cannot carry one
# more pipeline (issue 16: with the slots used up, a pipeline sat in
# "retrying" for ever without a word).
#
# Node "src_cap" has max_replication_slots = 2 and max_wal_senders = 1:
#   p1 (real-time) is created without a word and syncs;
#   p2 takes the last slot (WARNING: no room for add_table's copy slot) and
#      would need a second WAL sender (WARNING);
#   p3 finds no replication slot left: 53400, and nothing is created;
#   a manual pipeline needs no WAL sender between runs: no warning about it.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_cap', max_replication_slots => 2, max_wal_senders => 1);
my $tgt = target_node('tgt_cap');
my $dsn = target_dsn($tgt);

$src->safe_psql('postgres', 'CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)');
$tgt->safe_psql('postgres', 'CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)');
$src->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn')");

# psql with VERBOSITY verbose, so that SQLSTATEs show; returns (ret, stderr)
sub try_sql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ret = $src->psql('postgres', "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
	return ($ret, $err);
}

my ($ret, $err) = try_sql("SELECT datasync.create_pipeline('p1', 't', ARRAY['a']::regclass[])");
is($ret, 0, 'p1 is created');
is($err, '', 'without a warning');
$src->safe_psql('postgres', 'INSERT INTO a VALUES (1)');
ok(wait_for_sync($src, 'p1', 60), 'p1 syncs');

($ret, $err) = try_sql("SELECT datasync.create_pipeline('p2', 't', ARRAY['b']::regclass[])");
is($ret, 0, 'p2 is created');
like($err, qr/WARNING:  53400: pipeline "p2" takes the last replication slot/, 'p2: warned that it takes the last slot');
like($err, qr/WARNING:  53400: max_wal_senders \(1\) may be too low for pipeline "p2"/,
	'p2: warned that it needs a second WAL sender');

($ret, $err) = try_sql("SELECT datasync.create_pipeline('p3', 't', ARRAY['b']::regclass[])");
isnt($ret, 0, 'p3 is refused');
like($err, qr/ERROR:  53400: cannot create pipeline "p3": no replication slot left/, 'p3: no replication slot left (53400)');
like($err, qr/HINT:  Raise max_replication_slots/, 'with a hint');
is($src->safe_psql('postgres', "SELECT count(*) FROM datasync.pipelines WHERE name = 'p3'"), '0',
	'nothing of p3 was created');
is($src->safe_psql('postgres', "SELECT count(*) FROM pg_publication WHERE pubname = 'datasync_p3'"), '0',
	'not even its publication');

# a slot freed: a manual pipeline fits, and needs no WAL sender between runs
$src->safe_psql('postgres', "SELECT datasync.drop_pipeline('p2')");
($ret, $err) = try_sql("SELECT datasync.create_pipeline('m1', 't', ARRAY['b']::regclass[], mode => 'manual')");
is($ret, 0, 'a manual pipeline takes the freed slot');
unlike($err, qr/max_wal_senders/, 'without a warning about WAL senders');

done_testing();
