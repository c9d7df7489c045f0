# Copyright (c) 2026, datasync developers
#
# 062_conflicts_latest_timestamp.pl -- conflict detection under
# latest-timestamp, on a timestamp column and on commit timestamps.  (060 to
# 063 test one strategy each; the set-up and the helpers are DatasyncTest's
# :conflicts.)
#
# Topology: node "src_lt" (datasync, restart_after_crash on),
#           node "tgt_lt" (plain PostgreSQL, track_commit_timestamp on).
#
# Every table is (id int PRIMARY KEY, v text, ts timestamptz) with REPLICA
# IDENTITY FULL on both nodes, one realtime pipeline each:
#   p_lt  cf_lt  latest-timestamp, timestamp_column ts
#   p_ct  cf_ct  latest_timestamp (the underscore spelling), no
#                timestamp_column: commit timestamps
# A conflict is made by syncing a row, changing the target by hand, then
# changing the source.  One key per conflict kind and outcome:
#    1 insert_exists, target later     11 insert_exists, source later
#   21 insert_exists, a tie             2 update_missing
#    3 update_differs, target later    13 update_differs, source later
#    4 delete_missing
#    5 delete_differs, target later than the commit
#   15 delete_differs, the commit later than the target
#    6 a clean insert, 7 an insert of a row the target already has, identical
#      (neither is a conflict)
#
# Scenario:
#   (b) the matrix under latest-timestamp on ts: target later / source
#       later / tie, times the five kinds;
#   (d) latest-timestamp on commit timestamps (no timestamp_column);
#   (k) a long transaction of inserts goes out in runs of 64 rows.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest qw(:DEFAULT :conflicts);

# latest-timestamp without a timestamp_column compares commit timestamps
my ($src, $tgt) = conflict_nodes('lt', commit_timestamps => 1);
conflict_tables(qw(cf_lt cf_ct));

# ---------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------
src_q(q{
SELECT datasync.create_pipeline('p_lt', 'tgt', ARRAY['cf_lt']::regclass[],
    conflict_strategy => 'latest-timestamp', options => '{"timestamp_column": "ts"}');
SELECT datasync.create_pipeline('p_ct', 'tgt', ARRAY['cf_ct']::regclass[],
    conflict_strategy => 'latest_timestamp');
});
synced('all pipelines created', qw(p_lt p_ct));
is(src_q("SELECT string_agg(name || ':' || conflict_strategy, ' ' ORDER BY name) FROM datasync.pipelines"),
	'p_ct:latest-timestamp p_lt:latest-timestamp',
	'strategies stored, latest_timestamp spelled latest-timestamp');

# ---------------------------------------------------------------------------
# (b) the matrix on the ts column
# ---------------------------------------------------------------------------
# 1. rows every later change starts from
src_q("INSERT INTO cf_lt VALUES (2, 'orig', $T20), (3, 'orig', $T20), (13, 'orig', $T20),"
	  . " (4, 'orig', $T20), (5, 'orig', $T20), (15, 'orig', $T20)");
synced('matrix set-up', 'p_lt');
is(tgt_q("SELECT string_agg(id::text, ',' ORDER BY id) FROM cf_lt"), '2,3,4,5,13,15',
	'matrix: rows synced before the target diverges');

# 2. the target diverges
tgt_q(qq{
INSERT INTO cf_lt VALUES (1, 'target', $T30), (11, 'target', $T20), (21, 'target', $T25), (7, 'same', $T25);
DELETE FROM cf_lt WHERE id IN (2, 4);
UPDATE cf_lt SET v = 'target', ts = $T30 WHERE id = 3;
UPDATE cf_lt SET v = 'target', ts = $T22 WHERE id = 13;
UPDATE cf_lt SET v = 'target', ts = $T99 WHERE id = 5;
UPDATE cf_lt SET v = 'target', ts = $T00 WHERE id = 15;
});

# 3. the source changes
src_q(qq{
INSERT INTO cf_lt VALUES (1, 'source', $T20), (11, 'source', $T30), (21, 'source', $T25),
                         (7, 'same', $T25), (6, 'clean', $T20);
UPDATE cf_lt SET v = 'source', ts = $T21 WHERE id = 2;
UPDATE cf_lt SET v = 'source', ts = $T25 WHERE id = 3;
UPDATE cf_lt SET v = 'source', ts = $T30 WHERE id = 13;
DELETE FROM cf_lt WHERE id IN (4, 5, 15);
});
synced('matrix conflicts', 'p_lt');

my %lt = (
	1  => [ 'target@2030-01-01', 'insert_exists|resolved|target',  'insert_exists, target later' ],
	11 => [ 'source@2030-01-01', 'insert_exists|resolved|source',  'insert_exists, source later' ],
	21 => [ 'source@2025-01-01', 'insert_exists|resolved|source',  'insert_exists, tie' ],
	2  => [ 'source@2021-01-01', 'update_missing|resolved|source', 'update_missing' ],
	3  => [ 'target@2030-01-01', 'update_differs|resolved|target', 'update_differs, target later' ],
	13 => [ 'source@2030-01-01', 'update_differs|resolved|source', 'update_differs, source later' ],
	5  => [ 'target@2100-01-01', 'delete_differs|resolved|target', 'delete_differs, target later than the commit' ],
	15 => [ 'missing',           'delete_differs|resolved|source', 'delete_differs, commit later than the target' ],
);
for my $id (sort { $a <=> $b } keys %lt)
{
	my ($row, $conflict, $what) = @{ $lt{$id} };
	is(tgt_row('cf_lt', $id), $row, "latest-timestamp/$what: target row");
	is(conflicts_of('p_lt', 'cf_lt', $id), "$conflict|latest-timestamp",
		"latest-timestamp/$what: conflict logged");
}
is(tgt_row('cf_lt', 4), 'missing', 'latest-timestamp/delete_missing: row stays missing');
is(conflicts_of('p_lt', 'cf_lt', 4, "kind || '|' || status || '|' || strategy"),
	'delete_missing|resolved|latest-timestamp', 'latest-timestamp/delete_missing: conflict logged');
is(tgt_row('cf_lt', 6) . ' ' . tgt_row('cf_lt', 7), 'clean@2020-01-01 same@2025-01-01',
	'latest-timestamp: clean insert and identical row applied');
is(nconflicts('p_lt'), '9', 'latest-timestamp: exactly the nine conflicts');

# ---------------------------------------------------------------------------
# (d) latest-timestamp on commit timestamps (no timestamp_column)
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_ct VALUES (1, 'orig', $T20), (2, 'orig', $T20)");
synced('commit timestamps: set-up', 'p_ct');

# key 1: the target changes the row after the source's change committed
src_q("SELECT datasync.pause('p_ct')");
ok($src->poll_query_until('postgres', "SELECT worker_pid IS NULL FROM datasync.status WHERE name = 'p_ct'"),
	'commit timestamps: pipeline paused, worker gone');
src_q("UPDATE cf_ct SET v = 'source', ts = $T30 WHERE id = 1");
select(undef, undef, undef, 0.2);
tgt_q("UPDATE cf_ct SET v = 'target', ts = $T00 WHERE id = 1");
src_q("SELECT datasync.resume('p_ct')");
synced('commit timestamps: target committed later', 'p_ct');
is(tgt_row('cf_ct', 1), 'target@2000-01-01', 'commit timestamps: the later target commit is kept');
is(conflicts_of('p_ct', 'cf_ct', 1), 'update_differs|resolved|target|latest-timestamp',
	'commit timestamps: resolved for the target');

# key 2: the source's change commits after the target's
tgt_q("UPDATE cf_ct SET v = 'target', ts = $T30 WHERE id = 2");
select(undef, undef, undef, 0.2);
src_q("UPDATE cf_ct SET v = 'source', ts = $T00 WHERE id = 2");
synced('commit timestamps: source committed later', 'p_ct');
is(tgt_row('cf_ct', 2), 'source@2000-01-01', 'commit timestamps: the later source commit wins');
is(conflicts_of('p_ct', 'cf_ct', 2), 'update_differs|resolved|source|latest-timestamp',
	'commit timestamps: resolved for the source');

# ---------------------------------------------------------------------------
# (k) a long transaction of inserts goes out in runs of 64 rows: conflicts
# inside a run are found and decided row by row all the same
# ---------------------------------------------------------------------------
conflict_runs('p_lt', 'cf_lt', 'insert_exists|resolved|target|latest-timestamp',
	'insert_exists|resolved|source|latest-timestamp', 'tgt', 'bulk');

done_testing();
