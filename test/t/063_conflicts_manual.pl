# Copyright (c) 2026, datasync developers
#
# 063_conflicts_manual.pl -- conflict detection under manual: conflicts are
# parked until someone resolves them.  (060 to 063 test one strategy each;
# the set-up and the helpers are DatasyncTest's :conflicts.)
#
# Topology: node "src_man" (datasync, restart_after_crash on),
#           node "tgt_man" (plain PostgreSQL).
#
# Every table is (id int PRIMARY KEY, v text, ts timestamptz) with REPLICA
# IDENTITY FULL on both nodes (and one with a text key whose name needs
# quoting), one realtime pipeline each:
#   p_man   cf_man                   manual
#   p_flow  cf_flow, the quoted one  manual
#   p_by    cf_by                    source-wins, a bystander of the kill -9
# A conflict is made by syncing a row, changing the target by hand, then
# changing the source.  The matrix's keys 1 to 7 are those of 060 (see
# conflict_matrix in DatasyncTest).
#
# Scenario:
#   (b) the matrix under manual: parked as open conflicts with both
#       versions, the target as it was;
#   (f) manual end to end: park, join, other keys flow, resolve 'source' /
#       'target', errors of resolve_conflict, audit log, open_conflicts,
#       a table whose name needs quoting with a non-ASCII text key;
#   (h) kill -9 of the worker right after it recorded a conflict: the
#       conflict is recorded once, its changes counted once, and the other
#       pipelines come back untouched;
#   (j) a conflict written in a batch the target never committed, resolved
#       by hand before the batch came round again;
#   (k) a long transaction of inserts goes out in runs of 64 rows.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest qw(:DEFAULT :conflicts);

my ($src, $tgt) = conflict_nodes('man');
conflict_tables(qw(cf_man cf_flow cf_by));
my $qtable = q{"Conflict ""qu'oted"" tåble"};
my $qkey = q{Schlüssel 'ß' "ü" € ñ};
my $qschema = "CREATE TABLE $qtable (k text PRIMARY KEY, v text);\n"
  . "ALTER TABLE $qtable REPLICA IDENTITY FULL;\n";
src_q($qschema);
tgt_q($qschema);

# ---------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------
src_q(qq{
SELECT datasync.create_pipeline('p_man', 'tgt', ARRAY['cf_man']::regclass[],
    conflict_strategy => 'manual');
SELECT datasync.create_pipeline('p_flow', 'tgt', ARRAY['cf_flow', @{[ lit($qtable) ]}]::regclass[],
    conflict_strategy => 'manual');
SELECT datasync.create_pipeline('p_by', 'tgt', ARRAY['cf_by']::regclass[]);
});
my @all = qw(p_man p_flow p_by);
synced('all pipelines created', @all);
is(src_q("SELECT string_agg(name || ':' || conflict_strategy, ' ' ORDER BY name) FROM datasync.pipelines"),
	'p_by:source-wins p_flow:manual p_man:manual',
	'strategies stored');

# ---------------------------------------------------------------------------
# (b) the matrix
# ---------------------------------------------------------------------------
conflict_matrix(['p_man'], 'cf_man');

# --- manual: parked, open, with both versions
for my $id (sort keys %KEPT)
{
	my $what = $KIND{$id} // ($id == 6 ? 'clean insert' : 'identical row');
	is(tgt_row('cf_man', $id), $KEPT{$id}, "manual/$what: target row as expected");
}
my %images = (1 => 'source|target', 2 => 'source|NULL', 3 => 'source|target',
	4 => 'NULL|NULL', 5 => 'NULL|target');
for my $id (1 .. 5)
{
	is(conflicts_of('p_man', 'cf_man', $id), "$KIND{$id}|open|-|manual",
		"manual/$KIND{$id}: parked as an open conflict");
	is(images_of('p_man', 'cf_man', $id), $images{$id},
		"manual/$KIND{$id}: source_row and target_row");
	is(conflicts_of('p_man', 'cf_man', $id, 'changes::text'), '1', "manual/$KIND{$id}: one change");
}
is(src_q(qq{
SELECT (c.source_row - 'ts') = (to_jsonb(s) - 'ts') AND (c.source_row ->> 'ts')::timestamptz = s.ts
   AND (c.target_row - 'ts') = '{"id": 1, "v": "target"}'::jsonb
   AND (c.target_row ->> 'ts')::timestamptz = $T30
  FROM datasync.conflicts c, cf_man s
 WHERE s.id = 1 AND } . cwhere('p_man', 'cf_man', 1)),
	't', 'manual/insert_exists: source_row is the source row, target_row the target row, as jsonb');
is(nconflicts('p_man'), '5', 'manual: exactly the five conflicts');
is(src_q("SELECT open_conflicts FROM datasync.status WHERE name = 'p_man'"), '5',
	'manual: status shows 5 open conflicts');

# ---------------------------------------------------------------------------
# (f) manual, end to end
# ---------------------------------------------------------------------------
my $audit0 = src_q("SELECT count(*) FROM datasync.audit_log WHERE action = 'resolve_conflict'");

src_q("INSERT INTO cf_flow VALUES (1, 'orig', $T20), (4, 'orig', $T20)");
synced('manual flow: set-up', 'p_flow');
tgt_q(qq{
UPDATE cf_flow SET v = 'target' WHERE id IN (1, 4);
INSERT INTO cf_flow VALUES (3, 'target', $T20);
});
src_q(qq{
UPDATE cf_flow SET v = 's1' WHERE id IN (1, 4);
INSERT INTO cf_flow VALUES (3, 'source', $T20);
});
synced('manual flow: conflicts parked', 'p_flow');
is(conflicts_of('p_flow', 'cf_flow', 1), 'update_differs|open|-|manual', 'manual flow: key 1 parked');
is(conflicts_of('p_flow', 'cf_flow', 3), 'insert_exists|open|-|manual', 'manual flow: key 3 parked');
is(conflicts_of('p_flow', 'cf_flow', 4), 'update_differs|open|-|manual', 'manual flow: key 4 parked');
is(src_q("SELECT open_conflicts FROM datasync.status WHERE name = 'p_flow'"), '3',
	'manual flow: 3 open conflicts');

# later changes to parked keys join their conflict; another key flows
src_q(qq{
UPDATE cf_flow SET v = 's2' WHERE id = 1;
DELETE FROM cf_flow WHERE id = 4;
INSERT INTO cf_flow VALUES (2, 'other', $T20);
});
synced('manual flow: later changes', 'p_flow');
is(tgt_row('cf_flow', 2), 'other@2020-01-01', 'manual flow: a change to another key is applied');
is(tgt_row('cf_flow', 1), 'target@2020-01-01', 'manual flow: the parked key is not overtaken');
is(tgt_row('cf_flow', 4), 'target@2020-01-01', 'manual flow: the delete of a parked key waits too');
is(conflicts_of('p_flow', 'cf_flow', 1, "status || '|' || changes"), 'open|2',
	'manual flow: the update joined the open conflict (one row, 2 changes)');
is(images_of('p_flow', 'cf_flow', 1), 's2|target', 'manual flow: source_row is the latest source version');
is(conflicts_of('p_flow', 'cf_flow', 4, "status || '|' || changes"), 'open|2',
	'manual flow: the delete joined the open conflict');
is(src_q("SELECT open_conflicts FROM datasync.status WHERE name = 'p_flow'"), '3',
	'manual flow: still 3 open conflicts');

my $c1 = src_q("SELECT id FROM datasync.conflicts WHERE " . cwhere('p_flow', 'cf_flow', 1));
my $c3 = src_q("SELECT id FROM datasync.conflicts WHERE " . cwhere('p_flow', 'cf_flow', 3));
my $c4 = src_q("SELECT id FROM datasync.conflicts WHERE " . cwhere('p_flow', 'cf_flow', 4));
ok($c1 =~ /^\d+$/ && $c3 =~ /^\d+$/ && $c4 =~ /^\d+$/, "conflict ids $c1, $c3, $c4");

# errors of resolve_conflict
my $maxid = src_q('SELECT coalesce(max(id), 0) + 1000 FROM datasync.conflicts');
is(sqlstate("SELECT datasync.resolve_conflict($maxid, 'source')"), '42704',
	'resolve_conflict of an unknown id: 42704');
is(sqlstate("SELECT datasync.resolve_conflict($c1, 'both')"), '22023',
	'resolve_conflict with a resolution other than source/target: 22023');
is(sqlstate("SELECT datasync.resolve_conflict(NULL::bigint, 'source')"), '22004',
	'resolve_conflict(NULL, ...): 22004');
is(sqlstate("SELECT datasync.resolve_conflict($c1, NULL::text)"), '22004',
	'resolve_conflict(id, NULL): 22004');
is(conflicts_of('p_flow', 'cf_flow', 1, 'status'), 'open', 'failed calls left the conflict open');

# resolve 'source': the latest source version goes to the target
my $res = src_q("SELECT datasync.resolve_conflict($c1, 'source')");
like($res, qr/^\{.*\}$/s, 'resolve_conflict returns a jsonb object');
ok($tgt->poll_query_until('postgres', "SELECT v = 's2' FROM cf_flow WHERE id = 1"),
	"resolved 'source': the target has the latest source version");
is(src_q("SELECT status || '|' || resolution || '|' || (resolved_at IS NOT NULL) || '|' || (resolved_by::text = current_user::text)"
		  . " FROM datasync.conflicts WHERE id = $c1"),
	'resolved|source|true|true', "resolved 'source': status, resolution, resolved_at, resolved_by");
is(src_q("SELECT open_conflicts FROM datasync.status WHERE name = 'p_flow'"), '2',
	'open_conflicts went down to 2');
is(sqlstate("SELECT datasync.resolve_conflict($c1, 'target')"), '55000',
	'resolve_conflict of a resolved conflict: 55000');

# resolve 'source' when the latest source change is a delete
src_q("SELECT datasync.resolve_conflict($c4, 'source')");
ok($tgt->poll_query_until('postgres', "SELECT count(*) = 0 FROM cf_flow WHERE id = 4"),
	"resolved 'source' after a source delete: the target row is deleted");
is(src_q("SELECT status || '|' || resolution FROM datasync.conflicts WHERE id = $c4"), 'resolved|source',
	'key 4 resolved for the source');

# resolve 'target': the target stays
src_q("SELECT datasync.resolve_conflict($c3, 'target')");
is(src_q("SELECT status || '|' || resolution || '|' || (resolved_at IS NOT NULL) || '|' || (resolved_by::text = current_user::text)"
		  . " FROM datasync.conflicts WHERE id = $c3"),
	'resolved|target|true|true', "resolved 'target': status, resolution, resolved_at, resolved_by");
synced('manual flow: after resolving', 'p_flow');
is(tgt_row('cf_flow', 3), 'target@2020-01-01', "resolved 'target': the target row is unchanged");
is(src_q("SELECT open_conflicts FROM datasync.status WHERE name = 'p_flow'"), '0',
	'open_conflicts went down to 0');

# after the resolution, the key flows again
src_q("UPDATE cf_flow SET v = 's3' WHERE id = 1");
synced('manual flow: key 1 after resolve', 'p_flow');
is(tgt_row('cf_flow', 1), 's3@2020-01-01', 'a new change to the resolved key is applied');
is(conflicts_of('p_flow', 'cf_flow', 1, 'status'), 'resolved', 'and makes no new conflict');

# a table whose name needs quoting, with a non-ASCII text key
(my $qtable_lit = $qtable) =~ s/'/''/g;
tgt_q("INSERT INTO $qtable VALUES (" . lit($qkey) . ", 'target')");
src_q("INSERT INTO $qtable VALUES (" . lit($qkey) . ", 'source')");
synced('quoted table: conflict', 'p_flow');
my $qwhere = "pipeline = 'p_flow' AND \"table\" = '$qtable_lit'::regclass AND key = jsonb_build_object('k', "
  . lit($qkey) . ")";
is(src_q("SELECT kind || '|' || status || '|' || (source_row ->> 'v') || '|' || (target_row ->> 'v') FROM datasync.conflicts WHERE $qwhere"),
	'insert_exists|open|source|target', 'quoted table: conflict parked under its key');
is(src_q("SELECT \"table\"::text FROM datasync.conflicts WHERE $qwhere"), $qtable,
	'quoted table: "table" is the source table');
is(tgt_q("SELECT v FROM $qtable WHERE k = " . lit($qkey)), 'target', 'quoted table: target unchanged meanwhile');
my $cq = src_q("SELECT id FROM datasync.conflicts WHERE $qwhere");
src_q("SELECT datasync.resolve_conflict($cq, 'source')");
ok($tgt->poll_query_until('postgres', "SELECT v = 'source' FROM $qtable WHERE k = " . lit($qkey)),
	"quoted table: resolved 'source', the target has the source row");
is(src_q("SELECT status || '|' || resolution FROM datasync.conflicts WHERE id = $cq"), 'resolved|source',
	'quoted table: conflict resolved');

# the audit log
is(src_q("SELECT count(*) FROM datasync.audit_log WHERE action = 'resolve_conflict'") - $audit0, 4,
	'audit_log: one resolve_conflict entry for each of the 4 resolutions');
is(src_q("SELECT count(*) FROM datasync.audit_log WHERE action = 'resolve_conflict' AND actor::text IS DISTINCT FROM current_user::text"),
	'0', 'audit_log: the entries name the user');
my $audit_n = src_q('SELECT count(*) FROM datasync.audit_log');
my ($rc) = $src->psql('postgres', "UPDATE datasync.audit_log SET action = 'tampered' WHERE action = 'resolve_conflict'");
isnt($rc, 0, 'audit_log: UPDATE fails');
($rc) = $src->psql('postgres', 'DELETE FROM datasync.audit_log');
isnt($rc, 0, 'audit_log: DELETE fails');
is(src_q('SELECT count(*) FROM datasync.audit_log'), $audit_n, 'audit_log: nothing removed');
is(src_q("SELECT count(*) FROM datasync.audit_log WHERE action = 'tampered'"), '0', 'audit_log: nothing changed');
is(src_q("SELECT datasync.verify_audit_log() ->> 'ok'"), 'true', 'verify_audit_log: the chain is intact');

# ---------------------------------------------------------------------------
# (h) kill -9 of the worker right after it recorded a conflict
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_man VALUES (50, 'orig', $T20)");
synced('crash/manual: set-up', 'p_man');
tgt_q("UPDATE cf_man SET v = 'target' WHERE id = 50");
# the bystander has changes on their way too
src_q("INSERT INTO cf_by SELECT g, 'before', $T20 FROM generate_series(1, 100) g");
src_q("UPDATE cf_man SET v = 's1' WHERE id = 50");
kill_after_conflict('p_man', 'cf_man', 50);
src_q("UPDATE cf_man SET v = 's2' WHERE id = 50");
src_q("INSERT INTO cf_man VALUES (51, 'other', $T20)");
src_q("UPDATE cf_by SET v = 'after' WHERE id <= 50");
synced('crash/manual: after the restart', 'p_man');
is(conflicts_of('p_man', 'cf_man', 50, "kind || '|' || status || '|' || changes"), 'update_differs|open|2',
	'crash/manual: one open conflict for the key, its 2 changes counted once');
is(images_of('p_man', 'cf_man', 50), 's2|target', 'crash/manual: source_row is the latest source version');
is(tgt_row('cf_man', 50), 'target@2020-01-01', 'crash/manual: the target row is unchanged');
is(tgt_row('cf_man', 51), 'other@2020-01-01', 'crash/manual: another key is applied');
is(nconflicts('p_man'), '6', 'crash/manual: no other conflict appeared');

# every pipeline came back and nothing else was touched by the crash
synced('after the crash', @all);
compare_tables($src, $tgt, 'cf_by', 'id');
is(src_q("SELECT count(*) FROM datasync.status WHERE state = 'error'"), '0', 'no pipeline in error');

# ---------------------------------------------------------------------------
# (j) a conflict written just before the worker went away, in a batch the
# target never committed, and resolved by hand before the batch came round
# again: the replay skips what the resolution settled, and a change made
# meanwhile is applied, not swallowed by the resolved conflict
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_man VALUES (70, 'orig', $T20)");
synced('settled replay: set-up', 'p_man');
tgt_q("UPDATE cf_man SET v = 'target' WHERE id = 70");
# hold the pipeline's progress row: the batch cannot commit on the target
my $hold = $tgt->background_psql('postgres');
$hold->query_safe("BEGIN; SELECT 1 FROM datasync_progress WHERE pipeline = 'p_man' FOR UPDATE;");
src_q("BEGIN; UPDATE cf_man SET v = 's1' WHERE id = 70; UPDATE cf_man SET v = 's2' WHERE id = 70; COMMIT;");
ok($src->poll_query_until('postgres',
		"SELECT changes = 2 FROM datasync.conflicts WHERE pipeline = 'p_man' AND key = '{\"id\": 70}' AND status = 'open'"),
	'settled replay: the conflict and its joined change are written before the target commits');
src_q("SELECT datasync.pause('p_man')");
ok($src->poll_query_until('postgres', "SELECT worker_pid IS NULL FROM datasync.status WHERE name = 'p_man'"),
	'settled replay: paused, the worker is gone');
# its target session still waits for the lock: end it, so the batch is lost
tgt_q("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'datasync p_man'");
ok($tgt->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'datasync p_man'"),
	'settled replay: the target session of the batch is gone');
$hold->query_safe('COMMIT');
$hold->quit;
my $cid70 = src_q("SELECT id FROM datasync.conflicts WHERE pipeline = 'p_man' AND key = '{\"id\": 70}'");
src_q("SELECT datasync.resolve_conflict($cid70, 'source')");
is(tgt_row('cf_man', 70), 's2@2020-01-01', 'settled replay: resolving wrote the latest source version');
src_q("UPDATE cf_man SET v = 's3' WHERE id = 70");
src_q("SELECT datasync.resume('p_man')");
synced('settled replay: resumed', 'p_man');
is(tgt_row('cf_man', 70), 's3@2020-01-01', 'settled replay: the change after the resolution is applied');
is(src_q("SELECT count(*) FROM datasync.conflicts WHERE pipeline = 'p_man' AND key = '{\"id\": 70}'"), '1',
	'settled replay: no second conflict for the key');
is(src_q("SELECT status || '|' || changes FROM datasync.conflicts WHERE id = $cid70"), 'resolved|2',
	'settled replay: the resolved conflict is left as it was');

# ---------------------------------------------------------------------------
# (k) a long transaction of inserts goes out in runs of 64 rows: conflicts
# inside a run are found and decided row by row all the same
# ---------------------------------------------------------------------------
conflict_runs('p_man', 'cf_man', 'insert_exists|open|-|manual', 'insert_exists|open|-|manual', 'tgt', 'tgt');
is(images_of('p_man', 'cf_man', 1020), 'bulk|tgt', 'runs/p_man: both versions parked');

done_testing();
