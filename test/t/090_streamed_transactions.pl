# Copyright (c) 2026, datasync developers
#
# Source transactions streamed while in progress (protocol version 2,
# streaming 'on'): the walsender sends a transaction that outgrows
# logical_decoding_work_mem in pieces before it commits; the worker keeps
# them in a temporary file and applies them at STREAM COMMIT, in commit
# order, exactly once.
#
# Topology: source (datasync, logical_decoding_work_mem = 64kB, so a few
# thousand rows stream) -> target.  An ENABLE ALWAYS trigger on the target
# logs every row it applies.
#   1. an open transaction streams: nothing of it is on the target, while
#      small transactions committed meanwhile arrive; it goes on (updates
#      rows those committed, deletes some of its own) and commits: all of it
#      arrives once, after them;
#   2. a streamed transaction that rolls back leaves nothing;
#   3. subtransactions rolled back in a streamed transaction (nested, after
#      their rows streamed, and before) leave nothing of theirs;
#   4. quotes, backslashes, tabs, newlines and non-ASCII in a table name,
#      column names and values, and NULLs, through the temporary file;
#   5. the worker's session restarts (alter_pipeline, then a restart of
#      the target) while a streamed transaction is open: the walsender
#      streams it again from its start, and it is applied once;
#   6. the slot's statistics show that the transactions were streamed, not
#      spilled to disk by the walsender (checked before 5, where a restarted
#      walsender may spill while it re-reads up to where it stopped);
#   7. a streamed transaction over the worker's temp_file_limit: the
#      pipeline retries with the error and goes on once the limit is raised
#      by a reload.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_strm', logical_decoding_work_mem => '64kB');
my $tgt = target_node('tgt_strm');

my $ddl = q{
CREATE TABLE s (id int PRIMARY KEY, v text, n int);
CREATE TABLE "Straße ""q""" ("Wert ""ä""" text, id int PRIMARY KEY, "n\t" numeric);
};
$src->safe_psql('postgres', $ddl);
$tgt->safe_psql('postgres', $ddl . q{
CREATE TABLE applied (k bigserial PRIMARY KEY, id int, op text);
CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		INSERT INTO applied (id, op) VALUES (OLD.id, TG_OP);
	ELSE
		INSERT INTO applied (id, op) VALUES (NEW.id, TG_OP);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER log_applied AFTER INSERT OR UPDATE OR DELETE ON s
	FOR EACH ROW EXECUTE FUNCTION log_applied();
ALTER TABLE s ENABLE ALWAYS TRIGGER log_applied;
});

my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
SELECT datasync.create_target('tgt', '$dsn');
SELECT datasync.create_pipeline('strm', 'tgt', ARRAY['s', '"Straße ""q"""']::regclass[]);
});
ok(wait_for_sync($src, 'strm'), 'pipeline is streaming');
my $slot = $src->safe_psql('postgres',
	"SELECT slot_name FROM datasync._pipelines WHERE name = 'strm'");

# streamed transactions so far, as the walsender counts them
sub stream_txns
{
	return $src->safe_psql('postgres',
		"SELECT coalesce(sum(stream_txns), 0) FROM pg_stat_replication_slots WHERE slot_name = '$slot'");
}

sub wait_streamed
{
	my ($before, $what) = @_;
	ok($src->poll_query_until('postgres',
			"SELECT stream_txns > $before FROM pg_stat_replication_slots WHERE slot_name = '$slot'"),
		"$what was streamed while in progress");
}

sub applied_count
{
	my ($where) = @_;
	return $tgt->safe_psql('postgres', "SELECT count(*) FROM applied WHERE $where");
}

# 1. an open transaction streams, others commit meanwhile
my $big = $src->background_psql('postgres');
my $n0 = stream_txns();
$big->query_safe(q{
BEGIN;
INSERT INTO s SELECT g, repeat('x', 100) || g, g FROM generate_series(1, 3000) g;
});
wait_streamed($n0, 'the open transaction');
$src->safe_psql('postgres', q{
INSERT INTO s VALUES (100001, 'small 1', 1);
INSERT INTO s VALUES (100002, 'small 2', 2);
});
ok(wait_for_sync($src, 'strm'), 'small transactions committed meanwhile arrived');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM s WHERE id > 100000'), '2',
	'they are on the target');
is($tgt->safe_psql('postgres', 'SELECT count(*) FROM s WHERE id <= 3000'), '0',
	'nothing of the open transaction is');
$big->query_safe(q{
INSERT INTO s SELECT g, repeat('y', 100) || g, g FROM generate_series(3001, 6000) g;
UPDATE s SET v = 'updated by the big one', n = -n WHERE id IN (100001, 100002);
UPDATE s SET n = n * 10 WHERE id BETWEEN 1 AND 500;
DELETE FROM s WHERE id BETWEEN 5001 AND 5500;
COMMIT;
});
ok(wait_for_sync($src, 'strm'), 'the streamed transaction arrived');
compare_tables($src, $tgt, 's', 'id');
is($tgt->safe_psql('postgres', "SELECT v FROM s WHERE id = 100001"), 'updated by the big one',
	'its update of a row committed meanwhile came after that row');
is(applied_count('id BETWEEN 1 AND 6000'), 6000 + 500 + 500,
	'each of its changes applied once (6000 inserts, 500 updates, 500 deletes)');

# 2. rolled back
$n0 = stream_txns();
$big->query_safe(q{
BEGIN;
INSERT INTO s SELECT g, repeat('r', 100), g FROM generate_series(10001, 14000) g;
DELETE FROM s WHERE id BETWEEN 1 AND 1000;
});
wait_streamed($n0, 'the transaction to roll back');
$big->query_safe('ROLLBACK');
$src->safe_psql('postgres', "INSERT INTO s VALUES (100003, 'after the rollback', 3)");
ok(wait_for_sync($src, 'strm'), 'caught up after the rollback');
compare_tables($src, $tgt, 's', 'id');
is(applied_count('id BETWEEN 10001 AND 14000 OR id BETWEEN 1 AND 1000'), 1000 + 500,
	'nothing of the rolled back transaction was applied');

# 3. subtransactions rolled back
$n0 = stream_txns();
$big->query_safe(q{
BEGIN;
INSERT INTO s SELECT g, 'top', g FROM generate_series(20001, 22000) g;
SAVEPOINT a;
INSERT INTO s SELECT g, 'a', g FROM generate_series(22001, 24000) g;
SAVEPOINT b;
INSERT INTO s SELECT g, 'b, rolled back', g FROM generate_series(24001, 26000) g;
UPDATE s SET v = 'b touched it' WHERE id BETWEEN 20001 AND 20100;
ROLLBACK TO b;
INSERT INTO s SELECT g, 'a after b', g FROM generate_series(26001, 27000) g;
SAVEPOINT c;
UPDATE s SET v = 'c, rolled back with a' WHERE id BETWEEN 20101 AND 20200;
RELEASE c;
ROLLBACK TO a;
SAVEPOINT d;
INSERT INTO s VALUES (27001, 'small subtransaction, rolled back', 0);
ROLLBACK TO d;
SAVEPOINT e;
INSERT INTO s SELECT g, 'e', g FROM generate_series(28001, 30000) g;
DELETE FROM s WHERE id BETWEEN 20001 AND 20050;
RELEASE e;
UPDATE s SET v = 'top again' WHERE id BETWEEN 21001 AND 21010;
COMMIT;
});
wait_streamed($n0, 'the transaction with subtransactions');
ok(wait_for_sync($src, 'strm'), 'the transaction with subtransactions arrived');
compare_tables($src, $tgt, 's', 'id');
is($tgt->safe_psql('postgres',
		"SELECT count(*) FROM s WHERE id BETWEEN 22001 AND 27001 OR v LIKE '%rolled back%' OR v LIKE '%touched%'"),
	'0', 'nothing of the rolled back subtransactions is on the target');
is(applied_count('id BETWEEN 20001 AND 30000'), 2000 + 2000 + 50 + 10,
	'the rest applied once');

# 4. quotes, backslashes, control characters, non-ASCII, NULLs
$n0 = stream_txns();
$src->safe_psql('postgres', <<'EOSQL');
INSERT INTO "Straße ""q""" SELECT
	CASE WHEN g % 7 = 0 THEN NULL
		 ELSE E'O''Brien \\ "q" \t tab \n newline ünïcödé 日本 ' || g END,
	g, CASE WHEN g % 5 = 0 THEN NULL ELSE g / 3.0 END
FROM generate_series(1, 4000) g;
UPDATE "Straße ""q""" SET "Wert ""ä""" = E'back\\slash \\\\ and \'' WHERE id % 11 = 0;
EOSQL
wait_streamed($n0, 'the transaction on the quoted table');
ok(wait_for_sync($src, 'strm'), 'it arrived');
compare_tables($src, $tgt, '"Straße ""q"""', 'id');

# a restarted walsender re-reads an open transaction up to where it
# stopped without streaming (it may spill): look at the statistics now
my $spilled = $src->safe_psql('postgres',
	"SELECT spill_txns FROM pg_stat_replication_slots WHERE slot_name = '$slot'");
is($spilled, '0', 'the walsender spilled no transaction to disk: it streamed them');

# 5. the session restarts while a streamed transaction is open
sub walsender_pid
{
	return $src->safe_psql('postgres',
		"SELECT pid FROM pg_stat_replication WHERE application_name = 'datasync strm'");
}
$n0 = stream_txns();
$big->query_safe(q{
BEGIN;
INSERT INTO s SELECT g, repeat('z', 100), g FROM generate_series(40001, 43000) g;
});
wait_streamed($n0, 'the transaction open across restarts');
my $wpid = walsender_pid();
$src->safe_psql('postgres', q{SELECT datasync.alter_pipeline('strm', '{"batch_size": 5000}')});
ok($src->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'datasync strm' AND pid <> $wpid"),
	'a new session (with a new walsender) after alter_pipeline');
$big->query_safe(q{
INSERT INTO s SELECT g, repeat('z', 100), g FROM generate_series(43001, 46000) g;
});
$tgt->restart;
$big->query_safe(q{
UPDATE s SET n = 0 WHERE id BETWEEN 40001 AND 40100;
COMMIT;
});
ok(wait_for_sync($src, 'strm'), 'the transaction open across restarts arrived');
compare_tables($src, $tgt, 's', 'id');
is(applied_count('id BETWEEN 40001 AND 46000'), 6000 + 100,
	'applied once, although streamed more than once');
ok($src->safe_psql('postgres', "SELECT errors FROM datasync.status WHERE name = 'strm'") >= 1,
	'the target restart was noticed');
$big->quit;

# 6. the slot's statistics
my $streamed = stream_txns();
ok($streamed >= 5, "the walsender streamed the large transactions ($streamed times)");

# 7. a streamed transaction larger than the worker's temp_file_limit: the
# pipeline retries with the error; once the limit is raised (a reload, no
# restart), the transaction arrives
$src->safe_psql('postgres', q{
ALTER SYSTEM SET temp_file_limit = '256kB';
SELECT pg_reload_conf();
});
$src->safe_psql('postgres',
	"INSERT INTO s SELECT g, repeat('t', 200), g FROM generate_series(50001, 60000) g");
ok($src->poll_query_until('postgres', q{
SELECT state = 'retrying' AND last_error LIKE '%temp_file_limit%'
  FROM datasync.status WHERE name = 'strm'}),
	'over temp_file_limit: the pipeline retries, with the error');
$src->safe_psql('postgres', q{
ALTER SYSTEM RESET temp_file_limit;
SELECT pg_reload_conf();
});
ok(wait_for_sync($src, 'strm'), 'the limit raised, the transaction arrived');
compare_tables($src, $tgt, 's', 'id');
is(applied_count('id BETWEEN 50001 AND 60000'), 10000, 'once');
is($src->safe_psql('postgres', "SELECT state FROM datasync.status WHERE name = 'strm'"),
	'streaming', 'the pipeline is streaming');

done_testing();
