# Copyright (c) 2026, datasync developers
#
# 061_conflicts_target_wins.pl -- conflict detection under target-wins.
# (060 to 063 test one strategy each; the set-up and the helpers are
# DatasyncTest's :conflicts.)
#
# Topology: node "src_tw" (datasync, restart_after_crash on),
#           node "tgt_tw" (plain PostgreSQL).
#
# Every table is (id int PRIMARY KEY, v text, ts timestamptz) with REPLICA
# IDENTITY FULL on both nodes, one realtime pipeline each:
#   p_tw   cf_tw    target-wins
#   p_alt  cf_alt   target-wins, log_conflicts; altered to source-wins
#   p_by   cf_by    source-wins, a bystander of the kill -9
# A conflict is made by syncing a row, changing the target by hand, then
# changing the source.  The matrix's keys 1 to 7 are those of 060 (see
# conflict_matrix in DatasyncTest).
#
# Scenario:
#   (b) the matrix under target-wins: the target stays as it was, every
#       conflict is logged resolved for the target;
#   (g) alter_pipeline from target-wins to source-wins;
#   (h) kill -9 of the worker right after it recorded a conflict: the
#       conflict is recorded once, its change counted once, and the other
#       pipelines come back untouched;
#   (i) a schema change while a conflict's result is still out;
#   (k) a long transaction of inserts goes out in runs of 64 rows.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest qw(:DEFAULT :conflicts);

my ($src, $tgt) = conflict_nodes('tw');
conflict_tables(qw(cf_tw cf_alt cf_by));

# ---------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------
src_q(q{
SELECT datasync.create_pipeline('p_tw', 'tgt', ARRAY['cf_tw']::regclass[],
    conflict_strategy => 'target-wins');
SELECT datasync.create_pipeline('p_alt', 'tgt', ARRAY['cf_alt']::regclass[],
    conflict_strategy => 'target-wins', options => '{"log_conflicts": true}');
SELECT datasync.create_pipeline('p_by', 'tgt', ARRAY['cf_by']::regclass[]);
});
my @all = qw(p_tw p_alt p_by);
synced('all pipelines created', @all);
is(src_q("SELECT string_agg(name || ':' || conflict_strategy, ' ' ORDER BY name) FROM datasync.pipelines"),
	'p_alt:target-wins p_by:source-wins p_tw:target-wins',
	'strategies stored');

# ---------------------------------------------------------------------------
# (b) the matrix: target-wins leaves the target as it was
# ---------------------------------------------------------------------------
conflict_matrix(['p_tw'], 'cf_tw');

for my $id (sort keys %KEPT)
{
	my $what = $KIND{$id} // ($id == 6 ? 'clean insert' : 'identical row');
	is(tgt_row('cf_tw', $id), $KEPT{$id}, "target-wins/$what: target row as expected");
}
for my $id (1 .. 5)
{
	is(conflicts_of('p_tw', 'cf_tw', $id), "$KIND{$id}|resolved|target|target-wins",
		"target-wins/$KIND{$id}: logged resolved for the target");
}
is(images_of('p_tw', 'cf_tw', 3), 'source|target', 'target-wins/update_differs: both row images logged');
is(nconflicts('p_tw'), '5', 'target-wins: exactly the five conflicts');

# ---------------------------------------------------------------------------
# (g) alter_pipeline: target-wins -> source-wins
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_alt VALUES (1, 'orig', $T20), (2, 'orig', $T20)");
synced('alter: set-up', 'p_alt');
my $counts = "SELECT rows_updated || '|' || conflicts FROM datasync.status WHERE name = 'p_alt'";
my ($upd0, $conf0) = split /\|/, src_q($counts);
tgt_q("UPDATE cf_alt SET v = 'target' WHERE id = 1");
src_q("UPDATE cf_alt SET v = 'source' WHERE id = 1");
synced('alter: conflict under target-wins', 'p_alt');
is(src_q($counts), "$upd0|" . ($conf0 + 1),
	'counters: the update target-wins kept off the target is a conflict, not an applied row');
is(tgt_row('cf_alt', 1), 'target@2020-01-01', 'alter: before, target-wins keeps the target');
is(conflicts_of('p_alt', 'cf_alt', 1), 'update_differs|resolved|target|target-wins',
	'alter: before, resolved for the target');

my $alt_session = tgt_q("SELECT pid FROM pg_stat_activity WHERE application_name = 'datasync p_alt'");
$alt_session =~ /^\d+$/ or die "not one target session of p_alt: '$alt_session'";
src_q(q{SELECT datasync.alter_pipeline('p_alt', '{"conflict_strategy": "source-wins"}')});
is(src_q("SELECT conflict_strategy FROM datasync.pipelines WHERE name = 'p_alt'"), 'source-wins',
	'alter: strategy changed');
# A session reads the strategy when it starts; the alter makes the worker
# end its session at the next batch boundary, and what that session
# decodes before then (wait_for_sync's marker too) is still decided the old
# way.  A new session connects to the target after it read the catalog: its
# target connection shows the new strategy is in force.
$tgt->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'datasync p_alt' AND pid <> $alt_session")
  or die 'the worker of p_alt does not start a new session after alter_pipeline';
synced('alter: after alter_pipeline', 'p_alt');
tgt_q("UPDATE cf_alt SET v = 'target' WHERE id = 2");
src_q("UPDATE cf_alt SET v = 'source2' WHERE id = 2");
synced('alter: conflict under source-wins', 'p_alt');
is(src_q($counts), ($upd0 + 1) . '|' . ($conf0 + 2),
	'counters: the update source-wins applied is counted, and its conflict');
is(tgt_row('cf_alt', 2), 'source2@2020-01-01', 'alter: after, source-wins applies the source');
is(conflicts_of('p_alt', 'cf_alt', 2), 'update_differs|resolved|source|source-wins',
	'alter: after, resolved for the source');
is(tgt_row('cf_alt', 1), 'target@2020-01-01', 'alter: the earlier resolution stays');

# ---------------------------------------------------------------------------
# (h) kill -9 of the worker right after it recorded a conflict
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_tw VALUES (50, 'orig', $T20)");
synced('crash/target-wins: set-up', 'p_tw');
tgt_q("UPDATE cf_tw SET v = 'target' WHERE id = 50");
# the bystander has changes on their way too
src_q("INSERT INTO cf_by SELECT g, 'before', $T20 FROM generate_series(1, 100) g");
src_q("UPDATE cf_tw SET v = 's1' WHERE id = 50");
kill_after_conflict('p_tw', 'cf_tw', 50);
src_q("INSERT INTO cf_tw VALUES (51, 'other', $T20)");
src_q("UPDATE cf_by SET v = 'after' WHERE id <= 50");
synced('crash/target-wins: after the restart', 'p_tw');
is(conflicts_of('p_tw', 'cf_tw', 50), 'update_differs|resolved|target|target-wins',
	'crash/target-wins: the conflict is recorded exactly once');
is(tgt_row('cf_tw', 50), 'target@2020-01-01', 'crash/target-wins: the target row is kept');
is(tgt_row('cf_tw', 51), 'other@2020-01-01', 'crash/target-wins: another key is applied');
is(nconflicts('p_tw'), '6', 'crash/target-wins: no other conflict appeared');

# every pipeline came back and nothing else was touched by the crash
synced('after the crash', @all);
compare_tables($src, $tgt, 'cf_by', 'id');
is(src_q("SELECT count(*) FROM datasync.status WHERE state = 'error'"), '0', 'no pipeline in error');

# ---------------------------------------------------------------------------
# (i) a schema change while a conflict's result is still out: the conflict
# keeps the shape its change was sent with
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_tw VALUES (60, 'orig', $T20), (61, 'orig', $T20)");
synced('schema change: set-up', 'p_tw');
tgt_q("UPDATE cf_tw SET v = 'target' WHERE id = 60; ALTER TABLE cf_tw ADD COLUMN extra text");
src_q(qq{
BEGIN;
UPDATE cf_tw SET v = 'before the change' WHERE id = 60;
ALTER TABLE cf_tw ADD COLUMN extra text;
UPDATE cf_tw SET v = 'after the change', extra = 'x' WHERE id = 61;
COMMIT;
});
synced('schema change: applied', 'p_tw');
is(src_q("SELECT kind || '|' || (source_row->>'v') || '|' || (source_row ? 'extra')::text"
	  . " FROM datasync.conflicts WHERE pipeline = 'p_tw' AND key = '{\"id\": 60}'"),
	'update_differs|before the change|false',
	'schema change: the conflict has the row as it was sent, without the new column');
is(tgt_q("SELECT v || '|' || extra FROM cf_tw WHERE id = 61"), 'after the change|x',
	'schema change: the next change has the new column');
is(tgt_row('cf_tw', 60), 'target@2020-01-01', 'schema change: the target row is kept');

# ---------------------------------------------------------------------------
# (k) a long transaction of inserts goes out in runs of 64 rows: conflicts
# inside a run are found and decided row by row all the same
# ---------------------------------------------------------------------------
conflict_runs('p_tw', 'cf_tw', 'insert_exists|resolved|target|target-wins',
	'insert_exists|resolved|target|target-wins', 'tgt', 'tgt');

done_testing();
