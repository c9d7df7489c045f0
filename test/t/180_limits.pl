# Copyright (c) 2026, datasync developers
#
# 180_limits.pl -- what docs/limits.md says happens to schema changes and
# the objects logical replication does not carry, and what to do.
#
# Topology: node "src_lim" (datasync), node "tgt_lim" (plain PostgreSQL).
# One realtime pipeline "lim" over the tables below.
#
#   1. a source table renamed: the next change stops the pipeline naming
#      the new name on the target; renaming the target table and resume()
#      applies it, the table stays in the pipeline;
#   2. a source column renamed: likewise, naming the column;
#   3. a column retyped on the source (int -> bigint): values the target's
#      type takes flow on; one it cannot take stops the pipeline (22003);
#      retyping the target and resume() applies it;
#   4. a column added on the source: the target needs it first (42703),
#      then resume();
#   5. ATTACH PARTITION of a table that has rows: its rows are not on the
#      target (they were never changed), later changes to them are;
#      resync_table copies the partitioned table again;
#   6. sequences are not synced: the target's sequence stays where it was;
#   7. stored generated columns: not sent, the target computes its own;
#   8. TRUNCATE of tables linked by a foreign key, both in the pipeline:
#      applied to both on the target in one statement;
#   9. the slot dropped while paused: resume() copies every table again
#      (a WARNING), a change the stream missed arrives; the target's
#      progress row deleted: copied again.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_lim');
my $tgt = target_node('tgt_lim');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

my $schema = q{
CREATE TABLE ren_t (id int PRIMARY KEY, v text);
CREATE TABLE ren_c (id int PRIMARY KEY, old_name text);
CREATE TABLE retype (id int PRIMARY KEY, n int);
CREATE TABLE added (id int PRIMARY KEY);
CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (1) TO (100);
CREATE TABLE seqd (id serial PRIMARY KEY, v text);
CREATE TABLE gen (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED);
CREATE TABLE fk_parent (id int PRIMARY KEY);
CREATE TABLE fk_child (id int PRIMARY KEY, parent int REFERENCES fk_parent);
};
src_q($schema);
tgt_q($schema);

my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('t', '$dsn')");
src_q(q{SELECT datasync.create_pipeline('lim', 't',
	ARRAY['ren_t', 'ren_c', 'retype', 'added', 'parted', 'seqd', 'gen', 'fk_parent', 'fk_child']::regclass[])});
wait_for_sync($src, 'lim', 90);

sub error_of
{
	my ($what) = @_;
	ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'lim'", 'error'), "$what: the pipeline stops");
	return src_q("SELECT last_error FROM datasync.status WHERE name = 'lim'");
}

sub resumed
{
	my ($what) = @_;
	src_q("SELECT datasync.resume('lim')");
	wait_for_sync($src, 'lim', 90);
	is(src_q("SELECT state FROM datasync.status WHERE name = 'lim'"), 'streaming', "$what: streaming again");
}

# ---- 1. a source table renamed ---------------------------------------------
src_q("INSERT INTO ren_t VALUES (1, 'a')");
wait_for_sync($src, 'lim', 90);
src_q("ALTER TABLE ren_t RENAME TO ren_t2");
src_q("INSERT INTO ren_t2 VALUES (2, 'b')");
like(error_of('rename table'), qr/ren_t2/, 'rename table: the error names the new name');
tgt_q("ALTER TABLE ren_t RENAME TO ren_t2");
resumed('rename table');
is(tgt_q("SELECT string_agg(id::text, ',' ORDER BY id) FROM ren_t2"), '1,2', 'rename table: the change is applied');
is(src_q("SELECT 'ren_t2'::regclass = ANY (tables) FROM datasync.pipelines WHERE name = 'lim'"), 't',
	'rename table: the table stays in the pipeline');

# ---- 2. a source column renamed --------------------------------------------
src_q("ALTER TABLE ren_c RENAME COLUMN old_name TO new_name");
src_q("INSERT INTO ren_c VALUES (1, 'x')");
like(error_of('rename column'), qr/new_name/, 'rename column: the error names the column');
tgt_q("ALTER TABLE ren_c RENAME COLUMN old_name TO new_name");
resumed('rename column');
is(tgt_q("SELECT new_name FROM ren_c WHERE id = 1"), 'x', 'rename column: the change is applied');

# ---- 3. a column retyped on the source --------------------------------------
src_q("ALTER TABLE retype ALTER COLUMN n TYPE bigint");
src_q("INSERT INTO retype VALUES (1, 5)");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT n FROM retype WHERE id = 1"), '5', 'retype: a value the target type takes flows on');
src_q("INSERT INTO retype VALUES (2, 5000000000)");
like(error_of('retype'), qr/out of range/, 'retype: one it cannot take stops the pipeline');
tgt_q("ALTER TABLE retype ALTER COLUMN n TYPE bigint");
resumed('retype');
is(tgt_q("SELECT n FROM retype WHERE id = 2"), '5000000000', 'retype: applied after the target is retyped');

# ---- 4. a column added on the source ------------------------------------------
src_q("ALTER TABLE added ADD COLUMN extra text");
src_q("INSERT INTO added VALUES (1, 'e')");
like(error_of('add column'), qr/extra/, 'add column: the target needs it first');
tgt_q("ALTER TABLE added ADD COLUMN extra text");
resumed('add column');
is(tgt_q("SELECT extra FROM added WHERE id = 1"), 'e', 'add column: applied');

# ---- 5. ATTACH PARTITION of a table with rows ---------------------------------
src_q("INSERT INTO parted VALUES (1, 'p1')");
tgt_q("CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200)");
src_q("CREATE TABLE parted_2 (id int PRIMARY KEY, v text); INSERT INTO parted_2 VALUES (100, 'old'), (101, 'old')");
src_q("ALTER TABLE parted ATTACH PARTITION parted_2 FOR VALUES FROM (100) TO (200)");
src_q("INSERT INTO parted VALUES (102, 'new')");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT string_agg(id::text, ',' ORDER BY id) FROM parted"), '1,102',
	'attach partition: the rows it had are not on the target, new ones are');
src_q("UPDATE parted SET v = 'changed' WHERE id = 100");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT v FROM parted WHERE id = 100"), 'changed', 'attach partition: a change to one of them brings it');
src_q("SELECT datasync.resync_table('lim', 'parted')");
ok(poll_until($src, "SELECT count(*) FROM datasync._pipeline_tables WHERE relid = 'parted'::regclass AND sync_state = 'r'", '1'),
	'attach partition: resync_table copies the table again');
wait_for_sync($src, 'lim', 90);
compare_tables($src, $tgt, 'parted', 'id');

# ---- 6. sequences ------------------------------------------------------------
src_q("INSERT INTO seqd (v) SELECT 's' FROM generate_series(1, 5)");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT count(*) || '|' || max(id) FROM seqd"), '5|5', 'sequences: the rows and their ids are synced');
is(tgt_q("SELECT coalesce(last_value, 0) FROM pg_sequences WHERE sequencename = 'seqd_id_seq'"), '0',
	'sequences: the target\'s sequence is not');

# ---- 7. stored generated columns ------------------------------------------------
src_q("INSERT INTO gen (id, a) VALUES (1, 21)");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT twice FROM gen WHERE id = 1"), '42', 'generated column: computed on the target');

# ---- 8. TRUNCATE of tables linked by a foreign key ----------------------------
src_q("INSERT INTO fk_parent VALUES (1); INSERT INTO fk_child VALUES (1, 1)");
wait_for_sync($src, 'lim', 90);
src_q("TRUNCATE fk_parent, fk_child");
wait_for_sync($src, 'lim', 90);
is(tgt_q("SELECT (SELECT count(*) FROM fk_parent) + (SELECT count(*) FROM fk_child)"), '0',
	'TRUNCATE of both tables of a foreign key is applied');
is(src_q("SELECT state FROM datasync.status WHERE name = 'lim'"), 'streaming', 'still streaming at the end');

# ---- 9. the slot lost, the progress row lost (docs/upgrade-ha.md) -------------
# a change the target never got while the slot is gone: the copy brings it
src_q("SELECT datasync.pause('lim')");
ok(poll_until($src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'datasync_lim' AND NOT active", '1'),
	'paused: the slot is idle');
src_q("SELECT pg_drop_replication_slot('datasync_lim')");
src_q("INSERT INTO gen (id, a) VALUES (2, 1)");
my $log_at = -s $src->logfile;
src_q("SELECT datasync.resume('lim')");
wait_for_sync($src, 'lim', 90);
like(slurp_file($src->logfile, $log_at), qr/replication slot "datasync_lim" of pipeline "lim" is missing; copying all tables again/,
	'slot lost: the log says the tables are copied again');
is(tgt_q("SELECT string_agg(id || ':' || twice, ',' ORDER BY id) FROM gen"), '1:42,2:2', 'slot lost: the copy brings what the stream missed');
compare_tables($src, $tgt, 'ren_t2', 'id');

# the target lost its progress row (and rows): copied again
tgt_q("DELETE FROM gen; DELETE FROM datasync_progress WHERE pipeline = 'lim'");
src_q("SELECT datasync.pause('lim')");
src_q("SELECT datasync.resume('lim')");
wait_for_sync($src, 'lim', 90);
compare_tables($src, $tgt, 'gen', 'id');
compare_tables($src, $tgt, 'retype', 'id');

done_testing();
