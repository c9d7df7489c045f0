# Copyright (c) 2026, datasync developers
#
# 060_conflicts_source_wins.pl -- conflict detection under source-wins, and
# which strategies need REPLICA IDENTITY FULL.  (060 to 063 test one
# strategy each; the set-up and the helpers are DatasyncTest's :conflicts.)
#
# Topology: node "src_sw" (datasync, restart_after_crash on),
#           node "tgt_sw" (plain PostgreSQL).
#
# Every conflict table is (id int PRIMARY KEY, v text, ts timestamptz) with
# REPLICA IDENTITY FULL on both nodes, one realtime pipeline each:
#   p_sw    cf_sw               source-wins, log_conflicts
#   p_plain cf_plain            source-wins
#   p_tcs   cf_tcs_a, cf_tcs_b  source-wins, log_conflicts,
#                               table_conflict_strategy cf_tcs_b: target-wins
# A conflict is made by syncing a row, changing the target by hand, then
# changing the source.  One key per conflict kind (conflict_matrix):
#    1 insert_exists   (target has the key with other values)
#    2 update_missing  (target lost the row, source updates it)
#    3 update_differs  (target changed the row, source updates it)
#    4 delete_missing  (target lost the row, source deletes it)
#    5 delete_differs  (target changed the row, source deletes it)
#    6 a clean insert, 7 an insert of a row the target already has, identical
#      (neither is a conflict)
#
# Scenario:
#   (a) REPLICA IDENTITY: a pipeline that needs old row images refuses a table
#       without REPLICA IDENTITY FULL (55000) unless replica_identity_full is
#       set, which makes create_pipeline alter the table (table norif);
#   (b) the matrix under source-wins with log_conflicts;
#   (c) source-wins without log_conflicts: counted, not logged;
#   (e) table_conflict_strategy overrides the pipeline's strategy per table;
#   (k) a long transaction of inserts goes out in runs of 64 rows.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest qw(:DEFAULT :conflicts);

my ($src, $tgt) = conflict_nodes('sw');
conflict_tables(qw(cf_sw cf_plain cf_tcs_a cf_tcs_b));
my $norif = 'CREATE TABLE norif (id int PRIMARY KEY, v text)';
src_q($norif);
tgt_q($norif);

# ---------------------------------------------------------------------------
# (a) REPLICA IDENTITY FULL is required unless create_pipeline may set it
# ---------------------------------------------------------------------------
is(sqlstate("SELECT datasync.create_pipeline('bad1', 'tgt', ARRAY['norif']::regclass[], conflict_strategy => 'target-wins')"),
	'55000', 'target-wins on a table without REPLICA IDENTITY FULL: 55000');
is(sqlstate("SELECT datasync.create_pipeline('bad2', 'tgt', ARRAY['norif']::regclass[], conflict_strategy => 'manual')"),
	'55000', 'manual on a table without REPLICA IDENTITY FULL: 55000');
is(sqlstate("SELECT datasync.create_pipeline('bad3', 'tgt', ARRAY['norif']::regclass[], conflict_strategy => 'latest-timestamp')"),
	'55000', 'latest-timestamp on a table without REPLICA IDENTITY FULL: 55000');
is(sqlstate("SELECT datasync.create_pipeline('bad4', 'tgt', ARRAY['norif']::regclass[], options => '{\"log_conflicts\": true}')"),
	'55000', 'source-wins with log_conflicts on a table without REPLICA IDENTITY FULL: 55000');
is(src_q("SELECT relreplident FROM pg_class WHERE oid = 'norif'::regclass"), 'd',
	'the refused pipelines left the replica identity alone');
is(src_q("SELECT count(*) FROM datasync.pipelines WHERE name LIKE 'bad%'"), '0',
	'and created no pipeline');

src_q("SELECT datasync.create_pipeline('p_norif', 'tgt', ARRAY['norif']::regclass[])");
is(src_q("SELECT conflict_strategy FROM datasync.pipelines WHERE name = 'p_norif'"), 'source-wins',
	'plain source-wins accepts a table without REPLICA IDENTITY FULL');
synced('plain source-wins on norif', 'p_norif');
src_q("SELECT datasync.drop_pipeline('p_norif')");
is(src_q("SELECT relreplident FROM pg_class WHERE oid = 'norif'::regclass"), 'd',
	'plain source-wins does not alter the replica identity');

src_q("SELECT datasync.create_pipeline('p_rif', 'tgt', ARRAY['norif']::regclass[], conflict_strategy => 'target_wins', options => '{\"replica_identity_full\": true}')");
is(src_q("SELECT relreplident FROM pg_class WHERE oid = 'norif'::regclass"), 'f',
	'replica_identity_full: create_pipeline set REPLICA IDENTITY FULL');
is(src_q("SELECT conflict_strategy FROM datasync.pipelines WHERE name = 'p_rif'"), 'target-wins',
	'the underscore spelling target_wins is accepted');
synced('pipeline with replica_identity_full', 'p_rif');
src_q("SELECT datasync.drop_pipeline('p_rif')");

# ---------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------
src_q(q{
SELECT datasync.create_pipeline('p_sw', 'tgt', ARRAY['cf_sw']::regclass[],
    conflict_strategy => 'source-wins', options => '{"log_conflicts": true}');
SELECT datasync.create_pipeline('p_plain', 'tgt', ARRAY['cf_plain']::regclass[]);
SELECT datasync.create_pipeline('p_tcs', 'tgt', ARRAY['cf_tcs_a', 'cf_tcs_b']::regclass[],
    options => '{"log_conflicts": true, "table_conflict_strategy": {"public.cf_tcs_b": "target-wins"}}');
});
synced('all pipelines created', qw(p_sw p_plain p_tcs));
is(src_q("SELECT string_agg(name || ':' || conflict_strategy, ' ' ORDER BY name) FROM datasync.pipelines"),
	'p_plain:source-wins p_sw:source-wins p_tcs:source-wins',
	'strategies stored');

# ---------------------------------------------------------------------------
# (b) the matrix, and (c) source-wins without log_conflicts
# ---------------------------------------------------------------------------
conflict_matrix([qw(p_sw p_plain)], qw(cf_sw cf_plain));

# --- source-wins with log_conflicts
compare_tables($src, $tgt, 'cf_sw', 'id');
for my $id (1 .. 5)
{
	is(conflicts_of('p_sw', 'cf_sw', $id), "$KIND{$id}|resolved|source|source-wins",
		"source-wins/$KIND{$id}: target equals source, logged resolved for the source");
}
is(images_of('p_sw', 'cf_sw', 1), 'source|target', 'source-wins/insert_exists: both row images logged');
is(images_of('p_sw', 'cf_sw', 3), 'source|target', 'source-wins/update_differs: both row images logged');
is(nconflicts('p_sw'), '5', 'source-wins: no conflict for the clean insert nor the identical row');
ok($src->poll_query_until('postgres', "SELECT conflicts >= 5 FROM datasync.status WHERE name = 'p_sw'"),
	'source-wins: conflicts counted');
is(src_q("SELECT conflicts || '/' || open_conflicts FROM datasync.status WHERE name = 'p_sw'"), '5/0',
	'source-wins: status counts 5 conflicts, none open');

# --- (c) source-wins without log_conflicts: counted, not logged
compare_tables($src, $tgt, 'cf_plain', 'id');
is(nconflicts('p_plain'), '0', 'source-wins without log_conflicts: nothing in datasync.conflicts');
ok($src->poll_query_until('postgres', "SELECT conflicts >= 3 FROM datasync.status WHERE name = 'p_plain'"),
	'source-wins without log_conflicts: conflicts counted');
is(src_q("SELECT conflicts FROM datasync.status WHERE name = 'p_plain'"), '3',
	'source-wins without log_conflicts: insert_exists, update_missing, delete_missing counted; the identical row is not');

# ---------------------------------------------------------------------------
# (e) table_conflict_strategy
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_tcs_a VALUES (1, 'orig', $T20); INSERT INTO cf_tcs_b VALUES (1, 'orig', $T20)");
synced('table_conflict_strategy: set-up', 'p_tcs');
tgt_q("UPDATE cf_tcs_a SET v = 'target' WHERE id = 1; UPDATE cf_tcs_b SET v = 'target' WHERE id = 1");
src_q("UPDATE cf_tcs_a SET v = 'source' WHERE id = 1; UPDATE cf_tcs_b SET v = 'source' WHERE id = 1");
synced('table_conflict_strategy: conflicts', 'p_tcs');
is(tgt_row('cf_tcs_a', 1), 'source@2020-01-01', 'table_conflict_strategy: other table follows the pipeline (source-wins)');
is(conflicts_of('p_tcs', 'cf_tcs_a', 1), 'update_differs|resolved|source|source-wins',
	'table_conflict_strategy: logged as source-wins');
is(tgt_row('cf_tcs_b', 1), 'target@2020-01-01', 'table_conflict_strategy: the overridden table keeps the target');
is(conflicts_of('p_tcs', 'cf_tcs_b', 1), 'update_differs|resolved|target|target-wins',
	'table_conflict_strategy: logged as target-wins');

# ---------------------------------------------------------------------------
# (k) a long transaction of inserts goes out in runs of 64 rows: conflicts
# inside a run are found and decided row by row all the same
# ---------------------------------------------------------------------------
conflict_runs('p_sw', 'cf_sw', 'insert_exists|resolved|source|source-wins',
	'insert_exists|resolved|source|source-wins', 'bulk', 'bulk');

done_testing();
