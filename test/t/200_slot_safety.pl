# Copyright (c) 2026, datasync developers
#
# 200_slot_safety.pl -- issue 17, slot safety: when the source is busy but
# a pipeline's tables are idle, the pipeline's slot is confirmed forward
# (the worker confirms the walsender's keepalives), so it keeps no more than
# a few MB of WAL; a paused pipeline's slot keeps everything (documented in
# docs/operations.md, "WAL kept by a slot").
#
# Topology: node "src_slot" (datasync), node "tgt_slot" (plain PostgreSQL).
# Real-time pipeline "slot-rt" over table synced (slot datasync_slot_rt);
# real-time pipeline "slot-paused" over table quiet (slot
# datasync_slot_paused), paused before the writes; table busy is in no
# pipeline.
#
# What bounds a logical slot's restart_lsn in PostgreSQL 15: it moves only
# to a running-xacts record the walsender has decoded (logged by every
# checkpoint, and by the bgwriter every 15 s while WAL is written), once the
# client's confirmed position has passed that record; one such candidate
# waits at a time.  So the test, while it waits, runs CHECKPOINT each round
# (PostgreSQL 16's pg_log_standby_snapshot() does not exist in 15) and waits
# for what matters: retained WAL under 16 MB and confirmed_flush_lsn past
# the writes.  Nothing writes to the pipelines' tables meanwhile and no
# wait_for_sync runs (its marker would move the slot by itself): only the
# walsender's keepalives can.  And the source stays busy while the test
# waits, as a real one would: a trickle of small transactions into busy
# (20 a second) makes the walsender send a keepalive at every WAL flush, so
# the worker never sits a whole second without input.
#
#   1. both pipelines synced; slot-paused paused;
#   2. a change to synced is applied (the target commits asynchronously:
#      the worker must learn that it is durable before it confirms past
#      it), then one source transaction writes >= 200 MB of WAL into busy
#      (decoding streams it to the worker, with no change for it): within
#      60 s the slot of slot-rt keeps < 16 MB, confirmed past the writes;
#   3. likewise with 2000 small transactions of >= 200 MB of WAL together
#      (pgoutput skips them as empty);
#   4. synced still syncs: changes made now are on the target;
#   5. the paused pipeline's slot did not move: it keeps all of that WAL
#      (>= 400 MB); resumed, it catches up and then keeps < 16 MB too.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use DatasyncTest;

my $MB = 1024 * 1024;
my $LIMIT = 16 * $MB;			# what a slot of idle tables may keep
my $WRITE = 200 * $MB;			# WAL each busy phase writes at least
my $RELEASE_TIMEOUT = 60;		# seconds

my $src = source_node('src_slot');
my $tgt = target_node('tgt_slot');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

my $schema = q{
CREATE TABLE synced (id int PRIMARY KEY, v text);
CREATE TABLE quiet (id int PRIMARY KEY, v text);
};
src_q($schema);
tgt_q($schema);
# rows of about 1.9 kB, under the TOAST threshold: each adds its size to the WAL
src_q("CREATE TABLE busy (id bigint, pad text) WITH (autovacuum_enabled = off)");
src_q("CREATE TABLE trickle_stop (stop bool)");

my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('t', '$dsn')");
src_q("INSERT INTO synced SELECT g, 'before' FROM generate_series(1, 100) g");
src_q("INSERT INTO quiet SELECT g, 'before' FROM generate_series(1, 10) g");
src_q("SELECT datasync.create_pipeline('slot-rt', 't', ARRAY['synced']::regclass[])");
src_q("SELECT datasync.create_pipeline('slot-paused', 't', ARRAY['quiet']::regclass[])");

# ---- 1. synced; one pipeline paused ----------------------------------------
wait_for_sync($src, 'slot-rt', 90);
wait_for_sync($src, 'slot-paused', 90);
compare_tables($src, $tgt, 'synced', 'id');
is(src_q("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM datasync._pipelines"),
	'datasync_slot_paused,datasync_slot_rt', 'slot names: datasync_ and the name with - as _');
src_q("SELECT datasync.pause('slot-paused')");
ok(poll_until($src, "SELECT NOT active FROM pg_replication_slots WHERE slot_name = 'datasync_slot_paused'"),
	'paused: its slot is inactive');
my $paused_restart = src_q("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'datasync_slot_paused'");

sub slot_row
{
	my ($slot) = @_;
	return src_q("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint || '|' || confirmed_flush_lsn"
		  . " FROM pg_replication_slots WHERE slot_name = '$slot'");
}

# WAL written by $sql (run on the source): [bytes, the position after it]
sub write_wal
{
	my ($sql) = @_;
	my $before = src_q("SELECT pg_current_wal_lsn()");
	src_q($sql);
	my $after = src_q("SELECT pg_current_wal_lsn()");
	return (src_q("SELECT pg_wal_lsn_diff('$after', '$before')::bigint"), $after);
}

# A trickle of small transactions into busy, 20 a second, until
# trickle_stop() (at most 3 minutes): the source stays busy.
sub trickle_start
{
	src_q("TRUNCATE trickle_stop");
	local %ENV = $src->_get_env();
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[
			$src->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $src->connstr('postgres'), '-c', q{
DO $$
BEGIN
	FOR i IN 1..3600 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM trickle_stop);
		INSERT INTO busy VALUES (-i, 'trickle');
		COMMIT;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$}
		],
		'<', '/dev/null', '>', \$out, '2>', \$err);
}

sub trickle_stop
{
	my ($h) = @_;
	src_q("INSERT INTO trickle_stop VALUES (true)");
	$h->finish;
	is($h->result(0), 0, 'the trickle of small transactions ran');
	return;
}

# Run CHECKPOINT until $slot keeps < 16 MB and is confirmed past $after.
# Returns the seconds it took, or undef after $RELEASE_TIMEOUT (with a diag).
sub wait_released
{
	my ($slot, $after) = @_;
	my $t0 = time;
	my $row = '';
	while (time - $t0 < $RELEASE_TIMEOUT)
	{
		src_q("CHECKPOINT");
		$row = slot_row($slot);
		my ($retained, $confirmed) = split /\|/, $row;
		return time - $t0
		  if $retained < $LIMIT
		  && src_q("SELECT '$confirmed'::pg_lsn >= '$after'::pg_lsn") eq 't';
		select(undef, undef, undef, 0.25);
	}
	diag("$slot after ${RELEASE_TIMEOUT}s: retained|confirmed_flush_lsn = $row, writes ended at $after");
	return undef;
}

my $paused_retained_min = 0;
my $round = 0;

# One busy phase: a change to synced applied, then the writes, then the
# slot of slot-rt lets go of them while the trickle goes on.
sub busy_phase
{
	my ($what, $sql) = @_;
	$round++;
	src_q("UPDATE synced SET v = 'round $round' WHERE id = $round");
	wait_for_sync($src, 'slot-rt', 90);
	my $trickle = trickle_start();
	my $t0 = time;
	my ($written, $after) = write_wal($sql);
	my $write_s = time - $t0;
	$paused_retained_min += $written;
	my ($retained_after_write) = split /\|/, slot_row('datasync_slot_rt');
	ok($written >= $WRITE, sprintf('%s: %.0f MB of WAL written into busy', $what, $written / $MB));
	my $s = wait_released('datasync_slot_rt', $after);
	ok(defined $s, "$what: the slot of slot-rt keeps under 16 MB and is confirmed past the writes");
	my ($retained) = split /\|/, slot_row('datasync_slot_rt');
	diag(sprintf('%s: %.1f MB of WAL in %.1f s; slot-rt kept %.1f MB when the writes ended,'
		  . ' %.2f MB after %.1f s',
		$what, $written / $MB, $write_s, $retained_after_write / $MB, $retained / $MB, $s // -1));
	trickle_stop($trickle);
	is(src_q("SELECT state FROM datasync.status WHERE name = 'slot-rt'"), 'streaming', "$what: slot-rt streaming");
	return;
}

# ---- 2. one big transaction --------------------------------------------------
busy_phase('one transaction',
	"INSERT INTO busy SELECT g, repeat(md5(g::text), 59) FROM generate_series(1, 110000) g");

# ---- 3. many small transactions --------------------------------------------
src_q("TRUNCATE busy");
busy_phase('2000 transactions', q{
DO $$
BEGIN
	FOR i IN 1..2000 LOOP
		INSERT INTO busy SELECT g, repeat(md5(g::text), 59) FROM generate_series(i * 55, i * 55 + 54) g;
		COMMIT;
	END LOOP;
END $$});

# ---- 4. synced still syncs ---------------------------------------------------
src_q("UPDATE synced SET v = 'after' WHERE id <= 50; DELETE FROM synced WHERE id > 90;"
	  . " INSERT INTO synced VALUES (101, 'new')");
wait_for_sync($src, 'slot-rt', 90);
compare_tables($src, $tgt, 'synced', 'id');

# ---- 5. a paused pipeline keeps the WAL ------------------------------------
src_q("CHECKPOINT");
my ($paused_retained) = split /\|/, slot_row('datasync_slot_paused');
is(src_q("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'datasync_slot_paused'"),
	$paused_restart, 'paused: its slot did not move');
ok($paused_retained >= $paused_retained_min,
	sprintf('paused: its slot keeps all the WAL written since (%.0f MB)', $paused_retained / $MB));
src_q("UPDATE quiet SET v = 'after'");
src_q("SELECT datasync.resume('slot-paused')");
my $t0 = time;
wait_for_sync($src, 'slot-paused', 120);
my $catch_up_s = time - $t0;
compare_tables($src, $tgt, 'quiet', 'id');
my $trickle = trickle_start();
my $after = src_q("SELECT pg_current_wal_lsn()");
my $s = wait_released('datasync_slot_paused', $after);
ok(defined $s, 'resumed: caught up, its slot keeps under 16 MB too');
diag(sprintf('slot-paused kept %.1f MB while paused; resumed, caught up in %.1f s, released after %.1f s more',
	$paused_retained / $MB, $catch_up_s, $s // -1));
trickle_stop($trickle);

done_testing();
