# Copyright (c) 2026, datasync developers
#
# Batches are committed without waiting for the target; a batch sent while
# another is in flight must not commit when that one failed.
#
# Topology: source (datasync) -> target.  The pipeline has batch_size 1, so
# every source transaction closes its batch at once, also while the one
# before is still on its way.  On the target an ENABLE ALWAYS trigger makes
# the row v = -1 wait four seconds and then fail with a CHECK violation
# (permanent): the batch after it is sent meanwhile, and the guard in its
# progress statement (it moves the progress row on only from the previous
# batch's end) must abort it.
#   1. many small transactions in quick succession: all arrive, counted;
#   2. a failing batch with one behind it: the pipeline stops with the
#      first batch's error and the second batch's row is not on the target;
#   3. after the fix, resume applies both exactly once;
#   4. wait_for_sync returns only once what it waited for is on the target;
#   5. the slot is confirmed while batches keep coming: each batch's progress
#      statement brings the target's WAL flush position, so the source is
#      told what the target holds durably without a quiet second (the worker
#      asks by itself only after a second without input);
#   6. the counters follow a last transaction with nothing after it in the
#      stream: the worker is not woken by that batch's result (nothing waits
#      for it) and reads it after 10 ms, not at the next message (a
#      keepalive comes only after half of wal_sender_timeout, 30 s).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use DatasyncTest;

my $src = source_node('src_fly');
my $tgt = target_node('tgt_fly');

$src->safe_psql('postgres', 'CREATE TABLE g (id int PRIMARY KEY, v int)');
$tgt->safe_psql('postgres', q{
CREATE TABLE g (id int PRIMARY KEY, v int);
CREATE TABLE applied (n bigserial PRIMARY KEY, id int, v int);
CREATE FUNCTION slow_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.v = -1 THEN
		PERFORM pg_sleep(4);
		RAISE EXCEPTION 'v = -1 is refused here' USING ERRCODE = '23514';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow_fail BEFORE INSERT ON g FOR EACH ROW EXECUTE FUNCTION slow_fail();
ALTER TABLE g ENABLE ALWAYS TRIGGER slow_fail;
CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO applied (id, v) VALUES (NEW.id, NEW.v);
	RETURN NULL;
END $$;
CREATE TRIGGER log_applied AFTER INSERT OR UPDATE ON g FOR EACH ROW EXECUTE FUNCTION log_applied();
ALTER TABLE g ENABLE ALWAYS TRIGGER log_applied;
});

my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
SELECT datasync.create_target('tgt', '$dsn');
SELECT datasync.create_pipeline('fly', 'tgt', ARRAY['g']::regclass[],
	options => '{"batch_size": 1, "retry_base_ms": 100, "retry_max_ms": 500}');
});
ok(wait_for_sync($src, 'fly'), 'pipeline is streaming');

sub status
{
	my ($cols) = @_;
	return $src->safe_psql('postgres', "SELECT $cols FROM datasync.status WHERE name = 'fly'");
}

# rows from..to, each in a transaction of its own
sub commit_rows
{
	my ($from, $to) = @_;
	$src->safe_psql('postgres', qq{
DO \$\$
BEGIN
	FOR i IN $from..$to LOOP
		INSERT INTO g VALUES (i, i);
		COMMIT;
	END LOOP;
END \$\$;
});
}

# 1. many small transactions, one batch each
my $tx0 = status('transactions');
commit_rows(1, 300);
$src->safe_psql('postgres', 'UPDATE g SET v = v + 1000 WHERE id <= 10');
ok(wait_for_sync($src, 'fly'), 'small transactions arrived');
compare_tables($src, $tgt, 'g', 'id');
is(status('transactions') - $tx0, 301, 'every transaction counted once');
is($tgt->safe_psql('postgres', 'SELECT count(*), count(DISTINCT (id, v)) FROM applied'),
	'310|310', 'each change applied once');

# 2. a failing batch, and one sent behind it.  The second row is committed
# only once the first batch is on the target, in its trigger's pg_sleep: it
# is in flight, and stays so for the four seconds in which the second batch
# is sent behind it.
$src->safe_psql('postgres', 'INSERT INTO g VALUES (1001, -1)');
$tgt->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'datasync fly' AND wait_event = 'PgSleep'")
  or die 'the failing batch does not reach the target';
$src->safe_psql('postgres', 'INSERT INTO g VALUES (1002, 2)');
ok($src->poll_query_until('postgres',
		"SELECT state = 'error' FROM datasync.status WHERE name = 'fly'"),
	'the pipeline stopped on the error');
like(status('last_error'), qr/v = -1 is refused here/, 'with the failing batch\'s error');
# The worker closed its target session before it set the state, but the
# target's backend still runs, in order, what it had received before the
# connection's end (the second batch among it), or dies of the lost
# connection on the way.  Once that backend is gone, the second batch has
# committed or failed for good, and nothing writes for this pipeline until
# resume: only then does "did not commit" hold for more than a moment.
$tgt->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'datasync fly'")
  or die 'the target session of the failed batch does not end';
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM g WHERE id >= 1001'), '0',
	'the batch behind the failed one did not commit');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM applied WHERE id >= 1001'), '0',
	'nothing of it was applied');

# 3. fixed: both arrive, once
$tgt->safe_psql('postgres', 'DROP TRIGGER slow_fail ON g');
$src->safe_psql('postgres', "SELECT datasync.resume('fly')");
ok(wait_for_sync($src, 'fly'), 'resumed pipeline caught up');
compare_tables($src, $tgt, 'g', 'id');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM applied WHERE id >= 1001'), '2',
	'both rows applied once');

# 4. wait_for_sync under a stream of batches
commit_rows(2001, 2200);
ok(wait_for_sync($src, 'fly'), 'wait_for_sync returned');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM g WHERE id BETWEEN 2001 AND 2200'), '200',
	'everything it waited for is on the target');
is(status('state || \' \' || errors'), 'streaming 1', 'streaming, the one error counted');

# 5. a transaction every 50 ms for 10 s, from a background psql
my $slot = $src->safe_psql('postgres', "SELECT slot_name FROM datasync._pipelines WHERE name = 'fly'");
my $stream = IPC::Run::start(
	[ 'psql', '-X', '-q', '-h', $src->host, '-p', $src->port, '-d', 'postgres', '-c',
	  'DO $$ BEGIN FOR i IN 3001..3200 LOOP INSERT INTO g VALUES (i, i); COMMIT; '
	  . 'PERFORM pg_sleep(0.05); END LOOP; END $$' ]);
$src->poll_query_until('postgres', 'SELECT count(*) >= 20 FROM g WHERE id > 3000')
  or die 'the stream of transactions does not run';
my $mid = $src->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my $confirmed = 'f';
for (1 .. 50)
{
	$confirmed = $src->safe_psql('postgres',
		"SELECT confirmed_flush_lsn > '$mid' FROM pg_replication_slots WHERE slot_name = '$slot'");
	last if $confirmed eq 't';
	usleep(100_000);
}
my $committed = $src->safe_psql('postgres', 'SELECT count(*) FROM g WHERE id > 3000');
ok($confirmed eq 't' && $committed < 200,
	"slot confirmed past $mid while the stream still ran ($committed of 200 committed)");
$stream->finish;
ok(wait_for_sync($src, 'fly'), 'the stream arrived');
compare_tables($src, $tgt, 'g', 'id');

# 6. one transaction, then silence: the counters follow within seconds
my ($tx6, $ins6) = split /\|/, status('transactions || \'|\' || rows_inserted');
$src->safe_psql('postgres', 'INSERT INTO g VALUES (4001, 4001)');
my $seen = '';
for (1 .. 100)
{
	$seen = status('transactions || \' \' || rows_inserted');
	last if $seen eq ($tx6 + 1) . ' ' . ($ins6 + 1);
	usleep(100_000);
}
is($seen, ($tx6 + 1) . ' ' . ($ins6 + 1),
	'a last transaction is counted without further traffic (within 10 s)');
is($tgt->safe_psql('postgres', 'SELECT v FROM g WHERE id = 4001'), '4001', 'and it is on the target');

done_testing();
