# Copyright (c) 2026, datasync developers
#
# 170_error_context.pl -- an error while a change is applied names the
# pipeline, the table, the change's place in its source transaction and
# that transaction's commit LSN (a CONTEXT line in the source's log).
#
# Topology: node "src_ctx" (datasync), node "tgt_ctx" (plain PostgreSQL).
#
#   1. a stage fails: the complete stage reads an UPDATE's unchanged TOAST
#      values from the source table as its owner, who revoked their own
#      SELECT; the pipeline stops in "error", the log's CONTEXT names the
#      UPDATE, the table, change 2 of the transaction, its commit LSN, the
#      "complete" stage and the pipeline;
#   2. the target refuses a row (a CHECK the source lacks): the statement
#      that carried changes 1 to 3 of one source transaction fails; the
#      error names the target table, its CONTEXT those changes, the commit
#      LSN and the pipeline (and not the change being applied when the
#      result came back);
#   3. skip_transaction with the LSN of that CONTEXT: bad inputs refused,
#      the transaction skipped after resume(), a later one applied, the
#      request cleared, logged and audited; NULL takes a request back.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_ctx');
my $tgt = target_node('tgt_ctx');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('tgt', '$dsn')");

# the commit LSN named in a CONTEXT line lies between these two
sub lsn_between
{
	my ($lsn, $lo, $hi) = @_;
	return src_q("SELECT '$lsn'::pg_lsn >= '$lo'::pg_lsn AND '$lsn'::pg_lsn <= '$hi'::pg_lsn") eq 't';
}

# wait until the pipeline is stopped by an error; its last_error
sub wait_error
{
	my ($pipeline) = @_;
	ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = '$pipeline'", 'error'),
		"$pipeline: state error");
	return src_q("SELECT last_error FROM datasync.status WHERE name = '$pipeline'");
}

# ---- 1. a stage fails ------------------------------------------------------
src_q(q{
	CREATE ROLE ctx_owner LOGIN;
	CREATE TABLE public.toasty (id int PRIMARY KEY, n int, big text);
	ALTER TABLE public.toasty OWNER TO ctx_owner;
	INSERT INTO public.toasty
		SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
});
tgt_q("CREATE TABLE public.toasty (id int PRIMARY KEY, n int, big text)");
src_q("SELECT datasync.create_pipeline('ctx1', 'tgt', ARRAY['public.toasty'::regclass])");
wait_for_sync($src, 'ctx1', 90);
is(tgt_q("SELECT length(big) FROM public.toasty WHERE id = 1"), '12800', 'ctx1: copied');

# the owner can no longer read their table: the complete stage fails
src_q("REVOKE SELECT ON public.toasty FROM ctx_owner");
my $log_at = -s $src->logfile;
my $lo = src_q("SELECT pg_current_wal_lsn()");
src_q("BEGIN; INSERT INTO public.toasty VALUES (2, 0, 'x'); UPDATE public.toasty SET n = 1 WHERE id = 1; COMMIT;");
my $hi = src_q("SELECT pg_current_wal_lsn()");
like(wait_error('ctx1'), qr/permission denied/, 'ctx1: last_error says why');
my $log = slurp_file($src->logfile, $log_at);
ok( $log =~ /ERROR:  permission denied for table toasty\n.*CONTEXT:  .*\n\s+UPDATE of table "public\.toasty" \(change 2 of the source transaction committed at ([0-9A-F]+\/[0-9A-F]+)\), complete stage of pipeline "ctx1"/,
	'ctx1: CONTEXT names the change, the table, the stage and the pipeline')
  or diag($log);
ok(defined $1 && lsn_between($1, $lo, $hi), 'ctx1: ... and the commit LSN of its transaction');

src_q("SELECT datasync.drop_pipeline('ctx1')");

# ---- 2. the target refuses a row -------------------------------------------
src_q("CREATE TABLE public.checked (id int PRIMARY KEY, v int)");
tgt_q("CREATE TABLE public.checked (id int PRIMARY KEY, v int CHECK (v < 100))");
src_q("SELECT datasync.create_pipeline('ctx2', 'tgt', ARRAY['public.checked'::regclass])");
wait_for_sync($src, 'ctx2', 90);

$log_at = -s $src->logfile;
$lo = src_q("SELECT pg_current_wal_lsn()");
src_q("BEGIN; INSERT INTO public.checked VALUES (1, 1), (2, 2), (3, 500); COMMIT;");
$hi = src_q("SELECT pg_current_wal_lsn()");
like(wait_error('ctx2'), qr/violates check constraint/, 'ctx2: last_error says why');
$log = slurp_file($src->logfile, $log_at);
ok( $log =~ /ERROR:  applying changes to table public\.checked on the target failed: new row for relation "checked" violates check constraint "checked_v_check"\n.*\n?.*CONTEXT:  changes 1 to 3 of the source transaction committed at ([0-9A-F]+\/[0-9A-F]+), pipeline "ctx2"/,
	'ctx2: CONTEXT names the target table, the changes and the pipeline')
  or diag($log);
my $commit_lsn = $1;
ok(defined $commit_lsn && lsn_between($commit_lsn, $lo, $hi), 'ctx2: ... and the commit LSN of their transaction');

# ---- 3. skip_transaction: pass the transaction that can never apply -------
sub src_err
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$src->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return $err;
}
like(src_err("SELECT datasync.skip_transaction('ctx2', '0/0')"), qr/22023: invalid commit LSN 0\/0/,
	'skip: 0/0 is refused');
like(src_err("SELECT datasync.skip_transaction('ctx2', '0/1')"), qr/22023: pipeline "ctx2" is past the transaction committed at 0\/1/,
	'skip: a transaction the slot confirmed is refused');
like(src_err("SELECT datasync.skip_transaction('no_such', '$commit_lsn')"), qr/42704/,
	'skip: an unknown pipeline is refused');
like(src_err("SELECT datasync.skip_transaction(NULL, '$commit_lsn')"), qr/22004/,
	'skip: the pipeline is required');

$log_at = -s $src->logfile;
src_q("SELECT datasync.skip_transaction('ctx2', '$commit_lsn')");
is(src_q("SELECT skip_lsn FROM datasync.pipelines WHERE name = 'ctx2'"), $commit_lsn, 'skip: the request is shown');
src_q("SELECT datasync.resume('ctx2')");
src_q("INSERT INTO public.checked VALUES (4, 4)");
wait_for_sync($src, 'ctx2', 90);
is(tgt_q("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM public.checked"), '4:4',
	'skip: nothing of the skipped transaction reached the target, the next one did');
is(src_q("SELECT state FROM datasync.status WHERE name = 'ctx2'"), 'streaming', 'skip: the pipeline streams again');
ok(poll_until($src, "SELECT skip_lsn IS NULL FROM datasync.pipelines WHERE name = 'ctx2'", 't'),
	'skip: the request is cleared once a later transaction is on the target');
like(slurp_file($src->logfile, $log_at),
	qr/datasync pipeline "ctx2" skipped the source transaction committed at \Q$commit_lsn\E, as datasync.skip_transaction asked/,
	'skip: the log says so');
is(src_q("SELECT details->>'commit_lsn' FROM datasync.audit_log WHERE action = 'skip_transaction'"), $commit_lsn,
	'skip: the audit log records it');

# a request taken back: the transaction is applied after all
src_q("SELECT datasync.pause('ctx2')");
$lo = src_q("SELECT pg_current_wal_lsn()");
src_q("INSERT INTO public.checked VALUES (5, 5)");
$hi = src_q("SELECT pg_current_wal_lsn()");
# the commit LSN is not known here: any LSN after the slot's position will do
src_q("SELECT datasync.skip_transaction('ctx2', '$hi')");
src_q("SELECT datasync.skip_transaction('ctx2', NULL)");
is(src_q("SELECT skip_lsn IS NULL FROM datasync.pipelines WHERE name = 'ctx2'"), 't', 'skip: NULL takes the request back');
src_q("SELECT datasync.resume('ctx2')");
wait_for_sync($src, 'ctx2', 90);
is(tgt_q("SELECT string_agg(id::text, ',' ORDER BY id) FROM public.checked"), '4,5', 'skip: ... and nothing is skipped');

done_testing();
