# Copyright (c) 2026, datasync developers
#
# 060_conflicts.pl -- conflict detection and the conflict strategies.
#
# Topology: node "src_conf" (datasync, restart_after_crash on),
#           node "tgt_conf" (plain PostgreSQL, track_commit_timestamp on).
#
# Every table is (id int PRIMARY KEY, v text, ts timestamptz) with REPLICA
# IDENTITY FULL on both nodes, one realtime pipeline per strategy.  A conflict
# is made by syncing a row, changing the target by hand, then changing the
# source.  One key per conflict kind:
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
#       set, which makes create_pipeline alter the table;
#   (b) the matrix: source-wins (log_conflicts), target-wins,
#       latest-timestamp (timestamp_column ts, target later / source later /
#       tie), manual, times the five kinds;
#   (c) source-wins without log_conflicts: counted, not logged;
#   (d) latest-timestamp on commit timestamps (no timestamp_column);
#   (e) table_conflict_strategy overrides the pipeline's strategy per table;
#   (f) manual end to end: park, join, other keys flow, resolve 'source' /
#       'target', errors of resolve_conflict, audit log, open_conflicts,
#       a table whose name needs quoting with a non-ASCII text key;
#   (g) alter_pipeline from target-wins to source-wins;
#   (h) kill -9 of the worker right after it recorded a conflict (manual and
#       target-wins): the conflict is recorded once, its change counted once.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node(
	'src_conf',
	max_worker_processes => 40,
	max_connections => 40,
	restart_after_crash => 'on');
my $tgt = target_node('tgt_conf');
# latest-timestamp without a timestamp_column compares commit timestamps
$tgt->append_conf('postgresql.conf', 'track_commit_timestamp = on');
$tgt->restart;

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

# Quote a string as an SQL literal.
sub lit
{
	my ($v) = @_;
	$v =~ s/'/''/g;
	return "'$v'";
}

# Wait for pipelines without dying: one failed wait is one failed test.
sub synced
{
	my ($name, @pipelines) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $all = 1;
	for my $p (@pipelines)
	{
		my $ok = eval { wait_for_sync($src, $p, 60); };
		ok($ok, "$name: wait_for_sync('$p')") or diag($@);
		$all &&= $ok;
	}
	return $all;
}

# The SQLSTATE of the error that $sql raises on the source, or a text that
# says there was none.
sub sqlstate
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $src->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return $1 if $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return "no error (rc $rc, out '$out', err '$err')";
}

# The target row of key $id as "v@YYYY-MM-DD" (ts in UTC), or "missing".
sub tgt_row
{
	my ($table, $id) = @_;
	return tgt_q(
		"SELECT coalesce((SELECT coalesce(v, 'NULL') || '\@' || coalesce(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'NULL')"
		  . " FROM $table WHERE id = $id), 'missing')");
}

# WHERE clause of the conflicts of key {"id": $id} of $table in $pipeline
sub cwhere
{
	my ($pipeline, $table, $id) = @_;
	return "pipeline = " . lit($pipeline)
	  . " AND \"table\" = " . lit($table) . "::regclass"
	  . " AND key = jsonb_build_object('id', $id)";
}

# Conflicts of one key, one "kind|status|resolution|strategy" a row
# (resolution '-' when NULL), ';'-separated, oldest first.
sub conflicts_of
{
	my ($pipeline, $table, $id, $cols) = @_;
	$cols //= "kind || '|' || status || '|' || coalesce(resolution, '-') || '|' || strategy";
	return src_q("SELECT coalesce(string_agg($cols, ';' ORDER BY id), 'none') FROM datasync.conflicts WHERE "
		  . cwhere($pipeline, $table, $id));
}

# "v of source_row|v of target_row" of the conflicts of one key ('NULL' when
# the image is NULL)
sub images_of
{
	my ($pipeline, $table, $id) = @_;
	return conflicts_of($pipeline, $table, $id,
		"CASE WHEN source_row IS NULL THEN 'NULL' ELSE coalesce(source_row ->> 'v', '?') END || '|' || "
		  . "CASE WHEN target_row IS NULL THEN 'NULL' ELSE coalesce(target_row ->> 'v', '?') END");
}

sub nconflicts
{
	my ($pipeline) = @_;
	return src_q("SELECT count(*) FROM datasync.conflicts WHERE pipeline = " . lit($pipeline));
}

# ---------------------------------------------------------------------------
# Schema, identical on both nodes
# ---------------------------------------------------------------------------
my $qtable = q{"Conflict ""qu'oted"" tåble"};
my $qkey = q{Schlüssel 'ß' "ü" € ñ};

my @rif_tables = qw(cf_sw cf_tw cf_lt cf_man cf_plain cf_ct cf_flow cf_alt cf_tcs_a cf_tcs_b);
my $schema = join('',
	map { "CREATE TABLE $_ (id int PRIMARY KEY, v text, ts timestamptz);\n"
		  . "ALTER TABLE $_ REPLICA IDENTITY FULL;\n" } @rif_tables);
$schema .= <<EOSQL;
CREATE TABLE $qtable (k text PRIMARY KEY, v text);
ALTER TABLE $qtable REPLICA IDENTITY FULL;
CREATE TABLE norif (id int PRIMARY KEY, v text);
EOSQL
src_q($schema);
tgt_q($schema);

my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('tgt', '$dsn')");

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
src_q(qq{
SELECT datasync.create_pipeline('p_sw', 'tgt', ARRAY['cf_sw']::regclass[],
    conflict_strategy => 'source-wins', options => '{"log_conflicts": true}');
SELECT datasync.create_pipeline('p_tw', 'tgt', ARRAY['cf_tw']::regclass[],
    conflict_strategy => 'target-wins');
SELECT datasync.create_pipeline('p_lt', 'tgt', ARRAY['cf_lt']::regclass[],
    conflict_strategy => 'latest-timestamp', options => '{"timestamp_column": "ts"}');
SELECT datasync.create_pipeline('p_man', 'tgt', ARRAY['cf_man']::regclass[],
    conflict_strategy => 'manual');
SELECT datasync.create_pipeline('p_plain', 'tgt', ARRAY['cf_plain']::regclass[]);
SELECT datasync.create_pipeline('p_ct', 'tgt', ARRAY['cf_ct']::regclass[],
    conflict_strategy => 'latest_timestamp');
SELECT datasync.create_pipeline('p_flow', 'tgt', ARRAY['cf_flow', @{[ lit($qtable) ]}]::regclass[],
    conflict_strategy => 'manual');
SELECT datasync.create_pipeline('p_alt', 'tgt', ARRAY['cf_alt']::regclass[],
    conflict_strategy => 'target-wins', options => '{"log_conflicts": true}');
SELECT datasync.create_pipeline('p_tcs', 'tgt', ARRAY['cf_tcs_a', 'cf_tcs_b']::regclass[],
    options => '{"log_conflicts": true, "table_conflict_strategy": {"public.cf_tcs_b": "target-wins"}}');
});
my @all = qw(p_sw p_tw p_lt p_man p_plain p_ct p_flow p_alt p_tcs);
synced('all pipelines created', @all);
is(src_q("SELECT string_agg(name || ':' || conflict_strategy, ' ' ORDER BY name) FROM datasync.pipelines"),
	'p_alt:target-wins p_ct:latest-timestamp p_flow:manual p_lt:latest-timestamp p_man:manual '
	  . 'p_plain:source-wins p_sw:source-wins p_tcs:source-wins p_tw:target-wins',
	'strategies stored, latest_timestamp spelled latest-timestamp');

# ---------------------------------------------------------------------------
# (b) the matrix, and (c) source-wins without log_conflicts
# ---------------------------------------------------------------------------
my $T20 = "'2020-01-01 00:00:00+00'";
my $T21 = "'2021-01-01 00:00:00+00'";
my $T22 = "'2022-01-01 00:00:00+00'";
my $T25 = "'2025-01-01 00:00:00+00'";
my $T30 = "'2030-01-01 00:00:00+00'";
my $T00 = "'2000-01-01 00:00:00+00'";
my $T99 = "'2100-01-01 00:00:00+00'";

my @generic = qw(cf_sw cf_tw cf_man cf_plain);

# 1. rows every later change starts from
for my $t (@generic)
{
	src_q("INSERT INTO $t VALUES (2, 'orig', $T20), (3, 'orig', $T20), (4, 'orig', $T20), (5, 'orig', $T20)");
}
src_q("INSERT INTO cf_lt VALUES (2, 'orig', $T20), (3, 'orig', $T20), (13, 'orig', $T20),"
	  . " (4, 'orig', $T20), (5, 'orig', $T20), (15, 'orig', $T20)");
synced('matrix set-up', qw(p_sw p_tw p_man p_plain p_lt));
is(tgt_q("SELECT string_agg(id::text, ',' ORDER BY id) FROM cf_lt"), '2,3,4,5,13,15',
	'matrix: rows synced before the target diverges');

# 2. the target diverges
for my $t (@generic)
{
	tgt_q(qq{
INSERT INTO $t VALUES (1, 'target', $T30), (7, 'same', $T25);
DELETE FROM $t WHERE id IN (2, 4);
UPDATE $t SET v = 'target', ts = $T30 WHERE id IN (3, 5);
});
}
tgt_q(qq{
INSERT INTO cf_lt VALUES (1, 'target', $T30), (11, 'target', $T20), (21, 'target', $T25), (7, 'same', $T25);
DELETE FROM cf_lt WHERE id IN (2, 4);
UPDATE cf_lt SET v = 'target', ts = $T30 WHERE id = 3;
UPDATE cf_lt SET v = 'target', ts = $T22 WHERE id = 13;
UPDATE cf_lt SET v = 'target', ts = $T99 WHERE id = 5;
UPDATE cf_lt SET v = 'target', ts = $T00 WHERE id = 15;
});

# 3. the source changes
for my $t (@generic)
{
	src_q(qq{
INSERT INTO $t VALUES (1, 'source', $T20), (7, 'same', $T25), (6, 'clean', $T20);
UPDATE $t SET v = 'source', ts = $T21 WHERE id IN (2, 3);
DELETE FROM $t WHERE id IN (4, 5);
});
}
src_q(qq{
INSERT INTO cf_lt VALUES (1, 'source', $T20), (11, 'source', $T30), (21, 'source', $T25),
                         (7, 'same', $T25), (6, 'clean', $T20);
UPDATE cf_lt SET v = 'source', ts = $T21 WHERE id = 2;
UPDATE cf_lt SET v = 'source', ts = $T25 WHERE id = 3;
UPDATE cf_lt SET v = 'source', ts = $T30 WHERE id = 13;
DELETE FROM cf_lt WHERE id IN (4, 5, 15);
});
synced('matrix conflicts', qw(p_sw p_tw p_man p_plain p_lt));

my %kind = (1 => 'insert_exists', 2 => 'update_missing', 3 => 'update_differs',
	4 => 'delete_missing', 5 => 'delete_differs');

# --- source-wins with log_conflicts
compare_tables($src, $tgt, 'cf_sw', 'id');
for my $id (1 .. 5)
{
	is(conflicts_of('p_sw', 'cf_sw', $id), "$kind{$id}|resolved|source|source-wins",
		"source-wins/$kind{$id}: target equals source, logged resolved for the source");
}
is(images_of('p_sw', 'cf_sw', 1), 'source|target', 'source-wins/insert_exists: both row images logged');
is(images_of('p_sw', 'cf_sw', 3), 'source|target', 'source-wins/update_differs: both row images logged');
is(nconflicts('p_sw'), '5', 'source-wins: no conflict for the clean insert nor the identical row');
ok($src->poll_query_until('postgres', "SELECT conflicts >= 5 FROM datasync.status WHERE name = 'p_sw'"),
	'source-wins: conflicts counted');
is(src_q("SELECT conflicts || '/' || open_conflicts FROM datasync.status WHERE name = 'p_sw'"), '5/0',
	'source-wins: status counts 5 conflicts, none open');

# --- target-wins and manual leave the target as it was
my %kept = (1 => 'target@2030-01-01', 2 => 'missing', 3 => 'target@2030-01-01',
	4 => 'missing', 5 => 'target@2030-01-01', 6 => 'clean@2020-01-01', 7 => 'same@2025-01-01');
for my $id (sort keys %kept)
{
	my $what = $kind{$id} // ($id == 6 ? 'clean insert' : 'identical row');
	is(tgt_row('cf_tw', $id), $kept{$id}, "target-wins/$what: target row as expected");
}
for my $id (1 .. 5)
{
	is(conflicts_of('p_tw', 'cf_tw', $id), "$kind{$id}|resolved|target|target-wins",
		"target-wins/$kind{$id}: logged resolved for the target");
}
is(images_of('p_tw', 'cf_tw', 3), 'source|target', 'target-wins/update_differs: both row images logged');
is(nconflicts('p_tw'), '5', 'target-wins: exactly the five conflicts');

# --- manual: parked, open, with both versions
for my $id (sort keys %kept)
{
	my $what = $kind{$id} // ($id == 6 ? 'clean insert' : 'identical row');
	is(tgt_row('cf_man', $id), $kept{$id}, "manual/$what: target row as expected");
}
my %images = (1 => 'source|target', 2 => 'source|NULL', 3 => 'source|target',
	4 => 'NULL|NULL', 5 => 'NULL|target');
for my $id (1 .. 5)
{
	is(conflicts_of('p_man', 'cf_man', $id), "$kind{$id}|open|-|manual",
		"manual/$kind{$id}: parked as an open conflict");
	is(images_of('p_man', 'cf_man', $id), $images{$id},
		"manual/$kind{$id}: source_row and target_row");
	is(conflicts_of('p_man', 'cf_man', $id, 'changes::text'), '1', "manual/$kind{$id}: one change");
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

# --- latest-timestamp on the ts column
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

# --- (c) source-wins without log_conflicts: counted, not logged
compare_tables($src, $tgt, 'cf_plain', 'id');
is(nconflicts('p_plain'), '0', 'source-wins without log_conflicts: nothing in datasync.conflicts');
ok($src->poll_query_until('postgres', "SELECT conflicts >= 3 FROM datasync.status WHERE name = 'p_plain'"),
	'source-wins without log_conflicts: conflicts counted');
is(src_q("SELECT conflicts FROM datasync.status WHERE name = 'p_plain'"), '3',
	'source-wins without log_conflicts: insert_exists, update_missing, delete_missing counted; the identical row is not');

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
# (g) alter_pipeline: target-wins -> source-wins
# ---------------------------------------------------------------------------
src_q("INSERT INTO cf_alt VALUES (1, 'orig', $T20), (2, 'orig', $T20)");
synced('alter: set-up', 'p_alt');
tgt_q("UPDATE cf_alt SET v = 'target' WHERE id = 1");
src_q("UPDATE cf_alt SET v = 'source' WHERE id = 1");
synced('alter: conflict under target-wins', 'p_alt');
is(tgt_row('cf_alt', 1), 'target@2020-01-01', 'alter: before, target-wins keeps the target');
is(conflicts_of('p_alt', 'cf_alt', 1), 'update_differs|resolved|target|target-wins',
	'alter: before, resolved for the target');

src_q(q{SELECT datasync.alter_pipeline('p_alt', '{"conflict_strategy": "source-wins"}')});
is(src_q("SELECT conflict_strategy FROM datasync.pipelines WHERE name = 'p_alt'"), 'source-wins',
	'alter: strategy changed');
synced('alter: after alter_pipeline', 'p_alt');
sleep 1;
tgt_q("UPDATE cf_alt SET v = 'target' WHERE id = 2");
src_q("UPDATE cf_alt SET v = 'source2' WHERE id = 2");
synced('alter: conflict under source-wins', 'p_alt');
is(tgt_row('cf_alt', 2), 'source2@2020-01-01', 'alter: after, source-wins applies the source');
is(conflicts_of('p_alt', 'cf_alt', 2), 'update_differs|resolved|source|source-wins',
	'alter: after, resolved for the source');
is(tgt_row('cf_alt', 1), 'target@2020-01-01', 'alter: the earlier resolution stays');

# ---------------------------------------------------------------------------
# (h) kill -9 of the worker right after it recorded a conflict
# ---------------------------------------------------------------------------
# Poll for the conflict of key $id and kill -9 the worker of $pipeline as
# soon as it is there; then wait for the source to be back with a new
# worker.  Returns the killed pid.
sub kill_after_conflict
{
	my ($pipeline, $table, $id) = @_;
	my $sql = "SELECT worker_pid FROM datasync.status WHERE name = " . lit($pipeline)
	  . " AND EXISTS (SELECT 1 FROM datasync.conflicts WHERE " . cwhere($pipeline, $table, $id) . ")";
	my $pid = '';
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$pid = src_q($sql);
		last if $pid =~ /^\d+$/;
		select(undef, undef, undef, 0.01);
	}
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($pid =~ /^\d+$/, "$pipeline: conflict of key $id recorded, worker pid $pid")
	  or return;
	kill 'KILL', $pid;
	ok( poll_until($src,
			"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM datasync.status WHERE name = " . lit($pipeline)),
		"$pipeline: source back after kill -9, new worker");
	return $pid;
}

# manual
src_q("INSERT INTO cf_man VALUES (50, 'orig', $T20)");
synced('crash/manual: set-up', 'p_man');
tgt_q("UPDATE cf_man SET v = 'target' WHERE id = 50");
src_q("UPDATE cf_man SET v = 's1' WHERE id = 50");
kill_after_conflict('p_man', 'cf_man', 50);
src_q("UPDATE cf_man SET v = 's2' WHERE id = 50");
src_q("INSERT INTO cf_man VALUES (51, 'other', $T20)");
synced('crash/manual: after the restart', 'p_man');
is(conflicts_of('p_man', 'cf_man', 50, "kind || '|' || status || '|' || changes"), 'update_differs|open|2',
	'crash/manual: one open conflict for the key, its 2 changes counted once');
is(images_of('p_man', 'cf_man', 50), 's2|target', 'crash/manual: source_row is the latest source version');
is(tgt_row('cf_man', 50), 'target@2020-01-01', 'crash/manual: the target row is unchanged');
is(tgt_row('cf_man', 51), 'other@2020-01-01', 'crash/manual: another key is applied');
is(nconflicts('p_man'), '6', 'crash/manual: no other conflict appeared');

# target-wins
src_q("INSERT INTO cf_tw VALUES (50, 'orig', $T20)");
synced('crash/target-wins: set-up', 'p_tw');
tgt_q("UPDATE cf_tw SET v = 'target' WHERE id = 50");
src_q("UPDATE cf_tw SET v = 's1' WHERE id = 50");
kill_after_conflict('p_tw', 'cf_tw', 50);
src_q("INSERT INTO cf_tw VALUES (51, 'other', $T20)");
synced('crash/target-wins: after the restart', 'p_tw');
is(conflicts_of('p_tw', 'cf_tw', 50), 'update_differs|resolved|target|target-wins',
	'crash/target-wins: the conflict is recorded exactly once');
is(tgt_row('cf_tw', 50), 'target@2020-01-01', 'crash/target-wins: the target row is kept');
is(tgt_row('cf_tw', 51), 'other@2020-01-01', 'crash/target-wins: another key is applied');
is(nconflicts('p_tw'), '6', 'crash/target-wins: no other conflict appeared');

# every pipeline came back and nothing else was touched by the crashes
synced('after the crashes', @all);
compare_tables($src, $tgt, 'cf_sw', 'id');
compare_tables($src, $tgt, 'cf_plain', 'id');
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
for my $t (qw(cf_sw cf_tw cf_lt cf_man))
{
	tgt_q(qq{
INSERT INTO $t VALUES (1010, 'bulk', $T20), (1020, 'tgt', $T22), (1030, 'tgt', $T00);
});
	src_q("INSERT INTO $t SELECT g, 'bulk', $T20 FROM generate_series(1000, 1199) g");
}
synced('runs', qw(p_sw p_tw p_lt p_man));
my %want = (
	p_sw  => ['cf_sw',  'insert_exists|resolved|source|source-wins', 'insert_exists|resolved|source|source-wins', 'bulk', 'bulk'],
	p_tw  => ['cf_tw',  'insert_exists|resolved|target|target-wins', 'insert_exists|resolved|target|target-wins', 'tgt', 'tgt'],
	p_lt  => ['cf_lt',  'insert_exists|resolved|target|latest-timestamp', 'insert_exists|resolved|source|latest-timestamp', 'tgt', 'bulk'],
	p_man => ['cf_man', 'insert_exists|open|-|manual', 'insert_exists|open|-|manual', 'tgt', 'tgt']);
for my $p (sort keys %want)
{
	my ($t, $c20, $c30, $v20, $v30) = @{ $want{$p} };
	is(conflicts_of($p, $t, 1020), $c20, "runs/$p: key 1020 (target newer)");
	is(conflicts_of($p, $t, 1030), $c30, "runs/$p: key 1030 (target older)");
	is(conflicts_of($p, $t, 1010), 'none', "runs/$p: the identical row is no conflict");
	is(src_q("SELECT count(*) FROM datasync.conflicts WHERE pipeline = '$p' AND (key->>'id')::int BETWEEN 1000 AND 1199"),
		'2', "runs/$p: two conflicts in the run");
	is(tgt_q("SELECT string_agg(v, ',' ORDER BY id) FROM $t WHERE id IN (1020, 1030)"), "$v20,$v30",
		"runs/$p: the target rows as the strategy decided");
	is(tgt_q("SELECT count(*) FILTER (WHERE v = 'bulk') FROM $t WHERE id BETWEEN 1000 AND 1199"),
		200 - ($v20 eq 'tgt' ? 1 : 0) - ($v30 eq 'tgt' ? 1 : 0),
		"runs/$p: every other row of the run is on the target");
}
is(images_of('p_man', 'cf_man', 1020), 'bulk|tgt', 'runs/p_man: both versions parked');

done_testing();
