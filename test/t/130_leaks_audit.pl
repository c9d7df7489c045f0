# Copyright (c) 2026, datasync developers
#
# Leaks to listeners and monitors, and the audit log's integrity (issue 14,
# findings 7 and 8), through real logins:
#
#   (a) NOTIFY datasync_events: any role may LISTEN, so the payload carries
#       ids, states and counts, never the error text (it may quote row
#       values) nor who asked for the run; the event names stay
#       jobCompleted / jobFailed.
#   (b) a datasync_operator login (so a monitor too) that may not read the
#       table sees no value in status, jobs, job_errors, job_status or the
#       audit log; a monitor that may read it sees the whole error text.
#   (c) a login given UPDATE/DELETE/TRUNCATE on the audit log and the right
#       to SET session_replication_role still cannot change it; a superuser
#       who cuts the tail is found by the anchor kept from verify_audit_log.
#   (d) ALTER EXTENSION UPDATE of a 0.1 installation that holds row values
#       in its audit log and error texts: the values and texts move out of
#       sight of the monitor and the chain still verifies.
#
# The attackers are ordinary LOGIN roles: mallory (no datasync role at all)
# and mona (datasync_operator).  Every row value contains "SECRET".
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_leaks');
my $tgt = target_node('tgt_leaks');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

# a query as another login: (stdout, stderr)
sub as_login
{
	my ($role, $sql, $db) = @_;
	my ($out, $err) = ('', '');
	$src->psql($db // 'postgres', $sql,
		stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ]);
	return ($out, $err);
}

src_q(q{
CREATE ROLE mallory LOGIN;
CREATE ROLE mona LOGIN IN ROLE datasync_operator;
CREATE ROLE rita LOGIN IN ROLE datasync_monitor;
CREATE TABLE acct (id int PRIMARY KEY, v text);
GRANT SELECT ON acct TO rita;
INSERT INTO acct VALUES (1, 'SECRET one');
});
tgt_q(q{
CREATE TABLE acct (id int PRIMARY KEY, v text);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.v LIKE 'refuse%' THEN
        RAISE EXCEPTION 'row (%, %) is refused', NEW.id, NEW.v USING ERRCODE = '42P17';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE acct ENABLE ALWAYS TRIGGER refuse;
});
my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('tgt', '$dsn')");
src_q("SELECT datasync.create_pipeline('leaky', 'tgt', ARRAY['acct']::regclass[], mode => 'manual')");
like(src_q("SELECT datasync.sync_now('leaky')"), qr/"status": "succeeded"/, 'first run copies');

# ---------------------------------------------------------------------
# (a) NOTIFY datasync_events, as seen by a role with no datasync rights
# ---------------------------------------------------------------------
my $listener = $src->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
$listener->query_safe('LISTEN datasync_events');

src_q("INSERT INTO acct VALUES (2, 'SECRET two')");
my $ok_run = src_q("SELECT datasync.sync_now('leaky')");
my ($ok_id) = $ok_run =~ /"id": (\d+)/;
src_q("INSERT INTO acct VALUES (3, 'refuse SECRET three')");
my $bad_run = src_q("SELECT datasync.sync_now('leaky')");
my ($bad_id) = $bad_run =~ /"id": (\d+)/;
like($bad_run, qr/"status": "failed"/, 'the refused row fails the run');

# collect what mallory's session was sent (psql prints it after a command)
my $heard = '';
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$heard .= $listener->query_safe('SELECT 1');
	last if $heard =~ /"id": $bad_id\b/;
	select(undef, undef, undef, 0.1);
}
$listener->quit;
my @payloads = $heard =~ /Asynchronous notification "datasync_events" with payload "(.*?)" received from server process/g;
my ($completed) = grep { /"id": $ok_id\b/ } @payloads;
my ($failed) = grep { /"id": $bad_id\b/ } @payloads;
ok(defined $completed, 'mallory heard the completed run') or diag $heard;
ok(defined $failed, 'mallory heard the failed run') or diag $heard;
$completed //= '';
$failed //= '';
like($completed, qr/"event": "jobCompleted"/, 'jobCompleted event');
like($completed, qr/"status": "succeeded"/, 'with its status');
like($completed, qr/"rows_inserted": 1\b/, 'and its counts');
like($completed, qr/"pipeline": "leaky"/, 'and its pipeline');
like($failed, qr/"event": "jobFailed"/, 'jobFailed event');
like($failed, qr/"status": "failed"/, 'with its status');
unlike($failed, qr/SECRET/, 'no row value in the jobFailed payload');
unlike($failed, qr/refused/, 'no error text in the jobFailed payload');
unlike(join("\n", @payloads), qr/"error"|"requested_by"/, 'no error nor requester key in any payload');
unlike($heard, qr/SECRET/, 'nothing mallory heard quotes a row');

# ---------------------------------------------------------------------
# (b) monitors: mona may not read acct, rita may
# ---------------------------------------------------------------------
ok($src->poll_query_until('postgres',
		"SELECT state = 'error' FROM datasync.status WHERE name = 'leaky'"),
	'the pipeline is stopped by the error');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'leaky'"),
	qr/row \(3, refuse SECRET three\) is refused/, 'a superuser sees the whole error text');
my ($out, $err) = as_login('mona', q{
SELECT 'status:' || s::text FROM datasync.status s;
SELECT 'jobs:' || j::text FROM datasync.jobs j;
SELECT 'job_errors:' || e::text FROM datasync.job_errors e;
SELECT 'audit:' || a::text FROM datasync.audit_log a;
SELECT 'job_status:' || datasync.job_status(j.id)::text FROM datasync.jobs j;
});
is($err, '', 'mona reads the views without error');
like($out, qr/status:.*error text withheld/, 'mona sees that there is an error');
like($out, qr/job_errors:\($bad_id,/, 'mona sees which job failed');
unlike($out, qr/SECRET|refused/, 'mona sees no row value and no error text');
($out, $err) = as_login('rita', "SELECT last_error FROM datasync.status WHERE name = 'leaky'; "
	  . "SELECT error FROM datasync.job_errors WHERE id = $bad_id");
like($out, qr/row \(3, refuse SECRET three\) is refused.*\n.*row \(3, refuse SECRET three\) is refused/,
	'rita, who may read acct, sees the whole text in status and job_errors');
($out, $err) = as_login('mallory', "SELECT * FROM datasync.status");
like($err, qr/permission denied/, 'mallory may not read datasync.status at all');

# ---------------------------------------------------------------------
# (c) the audit log against a login with grants, and against the tail cut
# ---------------------------------------------------------------------
src_q("SELECT datasync._audit('tap', 'test', 'entry ' || g, jsonb_build_object('n', g)) FROM generate_series(1, 3) g");
src_q(q{
GRANT UPDATE, DELETE, TRUNCATE ON datasync.audit_log, datasync.audit_row_values TO mallory;
GRANT USAGE ON SCHEMA datasync TO mallory;
GRANT SET ON PARAMETER session_replication_role TO mallory;
});
for my $stmt ("UPDATE datasync.audit_log SET actor = 'mallory'",
	'DELETE FROM datasync.audit_log',
	'TRUNCATE datasync.audit_log')
{
	for my $srr ('origin', 'replica', 'local')
	{
		($out, $err) = as_login('mallory', "SET session_replication_role = $srr; $stmt");
		like($err, qr/datasync\.audit_log is append-only/, "mallory: $stmt under $srr is refused");
	}
}
src_q(q{
REVOKE UPDATE, DELETE, TRUNCATE ON datasync.audit_log, datasync.audit_row_values FROM mallory;
REVOKE USAGE ON SCHEMA datasync FROM mallory;
REVOKE SET ON PARAMETER session_replication_role FROM mallory;
});
is(src_q("SELECT count(*) FROM datasync.audit_log WHERE actor = 'tap'"), '3', 'the entries are all there');

# the anchor, kept outside the database
my $anchor = src_q('SELECT datasync.verify_audit_log()');
like($anchor, qr/"ok": true/, 'the chain verifies');
my ($last_id) = $anchor =~ /"last_id": (\d+)/;
my ($last_hash) = $anchor =~ /"last_hash": "([0-9a-f]{64})"/;
is(src_q("SELECT hash FROM datasync.audit_log WHERE id = $last_id"), $last_hash,
	'the anchor is the last entry and its hash');
src_q("SELECT datasync._audit('tap', 'test', 'after the anchor', NULL)");
like(src_q("SELECT datasync.verify_audit_log('$anchor')"), qr/"ok": true/,
	'an entry after the anchor keeps it valid');
# a superuser drops the guard and cuts the tail, anchor included
src_q(qq{
ALTER TABLE datasync.audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM datasync.audit_log WHERE id >= $last_id - 1;
ALTER TABLE datasync.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
});
like(src_q('SELECT datasync.verify_audit_log()'), qr/"ok": true/,
	'without the anchor the shorter chain looks intact');
my $checked = src_q("SELECT datasync.verify_audit_log('$anchor')");
like($checked, qr/"ok": false/, 'with the anchor the cut is found');
like($checked, qr/"reason": "entries missing up to the anchor"/, 'and named');
($out, $err) = as_login('mona', "SELECT datasync.verify_audit_log('$anchor')");
like($out, qr/"ok": false/, 'a monitor finds it too');

# ---------------------------------------------------------------------
# (d) upgrade of a 0.1 installation with values in its audit log and
#     error texts in its catalog
# ---------------------------------------------------------------------
src_q('CREATE DATABASE up');
$src->safe_psql('up', q{
CREATE EXTENSION datasync VERSION '0.1';
CREATE TABLE acct (id int PRIMARY KEY, v text);
GRANT SELECT ON acct TO rita;
SELECT datasync._audit('alice', 'resolve_conflict', 'conflict 1',
    jsonb_build_object('pipeline', 'p', 'table', 'public.acct', 'key', '{"id": 7}'::jsonb,
                       'kind', 'update_differs', 'resolution', 'source',
                       'source_row', '{"id": 7, "v": "SECRET seven"}'::jsonb));
SELECT datasync._audit('bob', 'pause', 'pipeline p', NULL);
INSERT INTO datasync.jobs (id, pipeline_id, pipeline, kind, status, requested_at, started_at, finished_at, upto_lsn, error)
VALUES (1, 1, 'p', 'api', 'failed', now(), now(), now(), '0/0', 'duplicate key: SECRET eight');
});
$src->safe_psql('up', "SELECT datasync.create_target('t', '$dsn')");
$src->safe_psql('up', q{
-- pipelines of a database other than datasync.database cannot be created
-- through the API (55000): write the catalog rows as a restored dump would
INSERT INTO datasync._pipelines (name, slot_name, target_id, mode, incarnation)
    SELECT 'upp', 'datasync_upp', id, 'manual', 1 FROM datasync._targets WHERE name = 't';
INSERT INTO datasync._pipeline_tables (pipeline_id, relid)
    SELECT id, 'acct'::regclass FROM datasync._pipelines WHERE name = 'upp';
UPDATE datasync._pipelines SET error = 'row (9, SECRET nine) is refused';
});
is($src->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"), '0.1', 'a 0.1 installation');
$src->safe_psql('up', 'ALTER EXTENSION datasync UPDATE');
is($src->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"), '0.2', 'updated to 0.2');
# two entries written above, and create_target's own
like($src->safe_psql('up', 'SELECT datasync.verify_audit_log()'), qr/"ok": true, "entries": 3/,
	'the 0.1 chain still verifies with its values moved');
is($src->safe_psql('up', "SELECT count(*) FROM datasync.audit_log a WHERE a::text LIKE '%SECRET%'"), '0',
	'no value left in the audit log');
is($src->safe_psql('up', "SELECT \"values\"->'source_row'->>'v' FROM datasync.audit_row_values"),
	'SECRET seven', 'the values are kept apart');
is($src->safe_psql('up', "SELECT count(*) FROM datasync.jobs j WHERE j::text LIKE '%SECRET%'"), '0',
	'no error text left in datasync.jobs');
is($src->safe_psql('up', 'SELECT error FROM datasync.job_errors WHERE id = 1'), 'duplicate key: SECRET eight',
	'a superuser reads it in job_errors');
is($src->safe_psql('up', "SELECT state || ': ' || last_error FROM datasync.status WHERE name = 'upp'"),
	'error: row (9, SECRET nine) is refused', 'a superuser reads the stopped pipeline\'s error in status');
is($src->safe_psql('up', "SELECT count(*) FROM datasync._pipelines p WHERE p::text LIKE '%SECRET%'"), '0',
	'no error text left in the catalog');
($out, $err) = as_login('mona', q{
SELECT s::text FROM datasync.status s;
SELECT a::text FROM datasync.audit_log a;
SELECT v::text FROM datasync.audit_row_values v;
SELECT e::text FROM datasync.job_errors e;
SELECT datasync.verify_audit_log();
}, 'up');
is($err, '', 'mona reads the upgraded installation');
unlike($out, qr/SECRET/, 'and sees no value');
like($out, qr/"ok": true/, 'and verifies its chain');
($out, $err) = as_login('rita', "SELECT \"values\"->'key' FROM datasync.audit_row_values; "
	  . "SELECT last_error FROM datasync.status", 'up');
is($out, qq{{"id": 7}\nrow (9, SECRET nine) is refused},
	'rita, who may read acct, sees the values of its entry and the pipeline\'s error');
ok($src->safe_psql('up', q{
SELECT bool_and(tgenabled = 'A') FROM pg_trigger
 WHERE tgrelid = 'datasync.audit_log'::regclass AND NOT tgisinternal}) eq 't',
	'the guards of an updated installation fire under every session_replication_role');

done_testing();
