# Helpers for datasync's TAP tests (test/t/*.pl); documentation below (perldoc).

=pod

=head1 NAME

DatasyncTest - helpers for datasync's TAP tests

=head1 SYNOPSIS

  use strict;
  use warnings;
  use PostgreSQL::Test::Cluster;
  use PostgreSQL::Test::Utils;
  use Test::More;
  use DatasyncTest;    # exports everything below

  my $src = source_node('src');          # datasync preloaded, extension created
  my $tgt = target_node('tgt');          # plain server
  my $dsn = target_dsn($tgt);

  $src->safe_psql('postgres', "SELECT datasync.create_target('t', '$dsn')");
  ...
  wait_for_sync($src, 'p1', 30);         # dies with datasync.status on timeout
  compare_tables($src, $tgt, 'public.items', 'id');
  compare_hash($src, $tgt, 'public.big');

  done_testing();

The Makefile runs the tests with C<prove -I ./test/perl>, so C<use DatasyncTest>
just works.  All SQL runs in database C<postgres> (C<$DatasyncTest::DBNAME>).

=head1 FUNCTIONS

All are exported by default.

=cut

package DatasyncTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(source_node target_node target_dsn wait_for_sync
  compare_tables table_hash compare_hash change_logs poll_until
  control_pipeline control_marker);

# The helpers of the conflict tests (060 to 063), on request only: other
# tests have subs of some of these names.
#   use DatasyncTest qw(:DEFAULT :conflicts);
our @CONFLICT_HELPERS = qw(conflict_nodes conflict_tables src_q tgt_q lit
  synced sqlstate tgt_row cwhere conflicts_of images_of nconflicts
  conflict_matrix conflict_runs kill_after_conflict
  $T00 $T20 $T21 $T22 $T25 $T30 $T99 %KIND %KEPT);
our @EXPORT_OK = @CONFLICT_HELPERS;
our %EXPORT_TAGS = (conflicts => \@CONFLICT_HELPERS);

# Database that the helpers use on every node.
our $DBNAME = 'postgres';

# compare_tables() shows both results in full (is()) only up to this many rows.
our $MAX_IS_ROWS = 50;

# Quote a value for postgresql.conf, unless it is quoted already.
sub _conf_value
{
	my ($v) = @_;
	return $v if $v =~ /^'.*'$/s;
	$v =~ s/'/''/g;
	return "'$v'";
}

# Quote a value for a libpq conninfo string if it needs it.
sub _conninfo_value
{
	my ($v) = @_;
	return $v if $v =~ /^[^\s'\\]+$/;
	$v =~ s/([\\'])/\\$1/g;
	return "'$v'";
}

# Quote a string as an SQL literal.
sub _sql_literal
{
	my ($v) = @_;
	$v =~ s/'/''/g;
	return "'$v'";
}

=pod

=over

=item source_node($name, %extra_conf)

A new node set up for logical decoding with datasync preloaded
(C<shared_preload_libraries>, C<wal_level = logical>, 20 slots, WAL senders and
worker processes, C<datasync.database = 'postgres'>, C<datasync.http_port = 0>: no
metrics worker, C<log_min_messages = info>),
plus any C<< key => value >> from C<%extra_conf> (values are quoted for you
unless already in single quotes; they come last, so they override).  The node
is started and C<CREATE EXTENSION datasync> has run in database C<postgres>.
Note that C<< init(allows_streaming => 'logical') >> sets C<max_connections = 10>
and C<shared_buffers = 1MB>; pass e.g. C<< max_connections => 50 >> to change that.
Returns the node.

=cut

sub source_node
{
	my ($name, %extra_conf) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');

	my @conf = (
		"shared_preload_libraries = 'datasync'",
		"wal_level = logical",
		"max_replication_slots = 20",
		"max_wal_senders = 20",
		"max_worker_processes = 20",
		"datasync.database = " . _conf_value($DBNAME),
		"datasync.http_port = 0",
		"log_min_messages = info");
	push @conf, "$_ = " . _conf_value($extra_conf{$_})
	  for sort keys %extra_conf;
	$node->append_conf('postgresql.conf', join("\n", @conf));

	$node->start;
	$node->safe_psql($DBNAME, 'CREATE EXTENSION datasync');
	return $node;
}

=pod

=item target_node($name)

A new plain node (no datasync), initialised and started.  Returns the node.

=cut

sub target_node
{
	my ($name) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->start;
	return $node;
}

=pod

=item target_dsn($node)

A libpq conninfo string for C<$node>:
C<host=E<lt>socket dirE<gt> port=E<lt>portE<gt> dbname=postgres>.

=cut

sub target_dsn
{
	my ($node) = @_;
	return join(' ',
		'host=' . _conninfo_value($node->host),
		'port=' . _conninfo_value($node->port),
		'dbname=' . _conninfo_value($DBNAME));
}

=pod

=item wait_for_sync($src, $pipeline, $timeout_s)

Runs C<SELECT datasync.wait_for_sync('$pipeline', '$timeout_s seconds')> on
C<$src>.  Returns true when it does; if it returns false, dies with the rows
of C<datasync.status>.  C<$timeout_s> defaults to the TAP default timeout
(C<PG_TEST_TIMEOUT_DEFAULT>, 180 s).

=cut

sub wait_for_sync
{
	my ($src, $pipeline, $timeout_s) = @_;
	$timeout_s //= $PostgreSQL::Test::Utils::timeout_default;

	my $sql = sprintf("SELECT datasync.wait_for_sync(%s, %s)",
		_sql_literal($pipeline), _sql_literal("$timeout_s seconds"));
	# psql gets a margin over the server-side timeout before it gives up.
	my $res = $src->safe_psql($DBNAME, $sql, timeout => $timeout_s + 60);
	return 1 if $res eq 't';

	my $status = eval {
		$src->safe_psql($DBNAME, 'SELECT * FROM datasync.status',
			extra_params => [ '-P', 'format=aligned', '-P', 'tuples_only=off', '-x' ]);
	};
	$status = "(could not read datasync.status: $@)" unless defined $status;
	die "datasync.wait_for_sync('$pipeline') returned '$res' after ${timeout_s}s;"
	  . " datasync.status:\n$status\n";
}

=pod

=item compare_tables($src, $tgt, $table, $order_by)

Fetches C<SELECT * FROM $table ORDER BY $order_by> from both nodes and checks
with C<is()> that the target has the same rows as the source; returns the
result of C<is()>.  C<$table> may be C<[$src_table, $tgt_table]> when the names
differ.  On a mismatch, the row counts and the first differing row are shown
(results over C<$DatasyncTest::MAX_IS_ROWS> = 50 rows are checked with C<ok()>
so that they are not printed in full).

=cut

sub compare_tables
{
	my ($src, $tgt, $table, $order_by) = @_;
	my ($st, $tt) = ref $table eq 'ARRAY' ? @$table : ($table, $table);

	my $want = $src->safe_psql($DBNAME, "SELECT * FROM $st ORDER BY $order_by");
	my $got  = $tgt->safe_psql($DBNAME, "SELECT * FROM $tt ORDER BY $order_by");

	my @w = $want eq '' ? () : split /\n/, $want, -1;
	my @g = $got eq ''  ? () : split /\n/, $got,  -1;
	my $name = sprintf('%s: target has the same %d row(s) as source', $tt, scalar @w);

	# Report failures at the caller's line.  is() prints both results in full,
	# so past $MAX_IS_ROWS rows use ok() and rely on the diagnostic below.
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = (@w <= $MAX_IS_ROWS && @g <= $MAX_IS_ROWS)
	  ? is($got, $want, $name)
	  : ok($got eq $want, $name);
	unless ($ok)
	{
		my $i = 0;
		$i++ while $i < @w && $i < @g && $w[$i] eq $g[$i];
		diag(sprintf("source %s: %d rows, target %s: %d rows; first difference at row %d:\n"
			  . "  source: %s\n  target: %s",
			$st, scalar @w, $tt, scalar @g, $i + 1,
			$w[$i] // '(no row)', $g[$i] // '(no row)'));
	}
	return $ok;
}

=pod

=item table_hash($node, $table)

C<md5(string_agg(t::text, '|' ORDER BY t::text))> over all rows of C<$table>
on C<$node> (the md5 of the empty string for an empty table).  Cheap way to
compare big tables; both tables must have the same column types and order.

=cut

sub table_hash
{
	my ($node, $table) = @_;
	return $node->safe_psql($DBNAME,
		    "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text COLLATE \"C\")), md5(''))"
		  . " FROM $table AS t");
}

=pod

=item compare_hash($src, $tgt, $table)

Checks with C<is()> that C<table_hash> is the same on both nodes; returns the
result.  C<$table> may be C<[$src_table, $tgt_table]>.  On a mismatch, the row
counts are shown.

=cut

sub compare_hash
{
	my ($src, $tgt, $table) = @_;
	my ($st, $tt) = ref $table eq 'ARRAY' ? @$table : ($table, $table);

	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = is(table_hash($tgt, $tt), table_hash($src, $st),
		"$tt: target rows hash the same as source");
	unless ($ok)
	{
		diag(sprintf("row counts: source %s: %s, target %s: %s",
			$st, $src->safe_psql($DBNAME, "SELECT count(*) FROM $st"),
			$tt, $tgt->safe_psql($DBNAME, "SELECT count(*) FROM $tt")));
	}
	return $ok;
}

=pod

=item change_logs($src, $tgt, $table)

Exactly-once evidence for C<$table> (columns C<id> and an integer C<v>): an
AFTER trigger on the source logs every change to C<change_log (id, v)>, and
an C<ENABLE ALWAYS> trigger on the target (it fires under
C<session_replication_role = replica> too) logs every applied change to
C<applied_log>; a delete logs C<v = -1>.  Compare the two logs as multisets.

=cut

sub change_logs
{
	my ($src, $tgt, $table) = @_;
	my $sql = sub {
		my ($log, $fn) = @_;
		return qq{
CREATE TABLE $log (n bigserial PRIMARY KEY, id bigint, v int);
CREATE FUNCTION $fn() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO $log (id, v) VALUES (OLD.id, -1);
  ELSE
    INSERT INTO $log (id, v) VALUES (NEW.id, NEW.v);
  END IF;
  RETURN NULL;
END \$\$;
CREATE TRIGGER $fn AFTER INSERT OR UPDATE OR DELETE ON $table
  FOR EACH ROW EXECUTE FUNCTION $fn();
};
	};
	$src->safe_psql($DBNAME, $sql->('change_log', 'log_change'));
	$tgt->safe_psql($DBNAME, $sql->('applied_log', 'log_applied')
		  . "ALTER TABLE $table ENABLE ALWAYS TRIGGER log_applied;");
	return;
}

=pod

=item poll_until($node, $query [, $expected])

Like C<< $node->poll_query_until($DBNAME, $query, $expected) >> (C<$expected>
defaults to C<t>; retries every 0.1 s for the TAP default timeout; returns
true, or false after a C<diag> of the last output), but safe while the server
restarts after a crash.  C<poll_query_until> writes the query to psql's
standard input; when the server refuses the connection ("the database system
is in recovery mode") psql may exit before that write, and the test dies of
C<Broken pipe>.  Here the query is passed with C<-c>, so nothing is written
to psql.  Use it after C<kill 'KILL'> of a server process.

=cut

sub poll_until
{
	my ($node, $query, $expected) = @_;
	$expected //= 't';

	local %ENV = $node->_get_env();
	my $cmd = [
		$node->installed_command('psql'), '-XAtq',
		'-d', $node->connstr($DBNAME), '-c', $query
	];
	my ($stdout, $stderr) = ('', '');
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		IPC::Run::run($cmd, '<', '/dev/null', '>', \$stdout, '2>', \$stderr);
		chomp($stdout);
		chomp($stderr);
		return 1 if $stdout eq $expected && $stderr eq '';
		select(undef, undef, undef, 0.1);
	}
	my $shown = length($query) > 300 ? substr($query, 0, 300) . '...' : $query;
	diag "poll_until timed out on: $shown\nexpected: $expected\n"
	  . "last output: $stdout\nstderr: $stderr";
	return 0;
}

=pod

=item control_pipeline($src, $tgt, $target, $name)

A control pipeline for negative assertions ("nothing happened"): creates
table C<$name (n bigserial PRIMARY KEY, note text)> on both nodes and a
real-time pipeline C<$name> of it to the target C<$target> (as created with
C<create_target>), and waits until it streams (C<wait_for_sync>, which dies
on a timeout).  Then C<control_marker> sends markers through it.

=cut

sub control_pipeline
{
	my ($src, $tgt, $target, $name) = @_;
	my $table = "CREATE TABLE $name (n bigserial PRIMARY KEY, note text)";

	$src->safe_psql($DBNAME, $table);
	$tgt->safe_psql($DBNAME, $table);
	$src->safe_psql($DBNAME,
		sprintf("SELECT datasync.create_pipeline(%s, %s, ARRAY[%s]::regclass[])",
			_sql_literal($name), _sql_literal($target), _sql_literal($name)));
	wait_for_sync($src, $name);
	return;
}

=pod

=item control_marker($src, $tgt, $name [, $note])

Commits a marker row (with C<$note>) into the table of the control pipeline
C<$name> in a source transaction of its own -- so after everything the
caller committed before -- and waits until it is on the target.  Dies when
it does not arrive.  Returns the marker's C<n>.

Once it returns, the control pipeline's real-time worker has decoded the
source's WAL past every earlier commit and applied a later one on the same
target: time enough for a real-time pipeline to have applied those earlier
commits, measured by the system itself (it grows with the machine's load,
which a fixed sleep does not).  What else proves the negative at hand (no
worker, a slot that did not move, the same pipeline's order) is the
caller's to say.

=cut

sub control_marker
{
	my ($src, $tgt, $name, $note) = @_;
	$note //= 'marker';

	my $n = $src->safe_psql($DBNAME,
		"INSERT INTO $name (note) VALUES (" . _sql_literal($note) . ") RETURNING n");
	wait_for_sync($src, $name);
	my $there = $tgt->safe_psql($DBNAME, "SELECT count(*) FROM $name WHERE n = $n");
	die "control marker $n ($note) of pipeline '$name' is not on the target after wait_for_sync\n"
	  unless $there eq '1';
	return $n;
}

=pod

=back

=head2 Helpers of the conflict tests

Exported with C<use DatasyncTest qw(:DEFAULT :conflicts)> (060 to 063 split
the conflict strategies into files of their own, on the same set-up).  They
work on the two nodes that C<conflict_nodes> made, on database C<postgres>.

=over

=item conflict_nodes($suffix, %opt)

Source node C<src_$suffix> (datasync, 40 worker processes and connections,
C<restart_after_crash = on> for the kill -9 tests) and target node
C<tgt_$suffix> (plain; with C<< commit_timestamps => 1 >> it has
C<track_commit_timestamp = on>, for latest-timestamp without a
timestamp_column), and the datasync target C<tgt> for it.  The helpers
below use these two nodes.  Returns C<($src, $tgt)>.

=cut

my ($csrc, $ctgt);

sub conflict_nodes
{
	my ($suffix, %opt) = @_;

	$csrc = source_node(
		"src_$suffix",
		max_worker_processes => 40,
		max_connections => 40,
		restart_after_crash => 'on');
	$ctgt = PostgreSQL::Test::Cluster->new("tgt_$suffix");
	$ctgt->init;
	$ctgt->append_conf('postgresql.conf', 'track_commit_timestamp = on')
	  if $opt{commit_timestamps};
	$ctgt->start;
	src_q("SELECT datasync.create_target('tgt', " . lit(target_dsn($ctgt)) . ")");
	return ($csrc, $ctgt);
}

=pod

=item conflict_tables(@tables)

Creates each table as C<(id int PRIMARY KEY, v text, ts timestamptz)> with
C<REPLICA IDENTITY FULL> on both nodes.

=cut

sub conflict_tables
{
	my $schema = join('',
		map { "CREATE TABLE $_ (id int PRIMARY KEY, v text, ts timestamptz);\n"
			  . "ALTER TABLE $_ REPLICA IDENTITY FULL;\n" } @_);
	src_q($schema);
	tgt_q($schema);
	return;
}

=pod

=item src_q($sql), tgt_q($sql), lit($string)

C<safe_psql> on the source, on the target; C<$string> as an SQL literal.

=cut

sub src_q { return $csrc->safe_psql($DBNAME, $_[0]); }
sub tgt_q { return $ctgt->safe_psql($DBNAME, $_[0]); }
sub lit   { return _sql_literal($_[0]); }

=pod

=item synced($name, @pipelines)

C<wait_for_sync> (60 s) on each pipeline, each an C<ok()>: one failed wait
is one failed test, not the end of the file.  Returns true when all synced.

=cut

sub synced
{
	my ($name, @pipelines) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $all = 1;
	for my $p (@pipelines)
	{
		my $ok = eval { wait_for_sync($csrc, $p, 60); };
		ok($ok, "$name: wait_for_sync('$p')") or diag($@);
		$all &&= $ok;
	}
	return $all;
}

=pod

=item sqlstate($sql)

The SQLSTATE of the error that C<$sql> raises on the source, or a text that
says there was none.

=cut

sub sqlstate
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $csrc->psql($DBNAME, "\\set VERBOSITY verbose\n$sql");
	return $1 if $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return "no error (rc $rc, out '$out', err '$err')";
}

=pod

=item tgt_row($table, $id)

The target row of key C<$id> as C<v@YYYY-MM-DD> (ts in UTC), or C<missing>.

=cut

sub tgt_row
{
	my ($table, $id) = @_;
	return tgt_q(
		"SELECT coalesce((SELECT coalesce(v, 'NULL') || '\@' || coalesce(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'NULL')"
		  . " FROM $table WHERE id = $id), 'missing')");
}

=pod

=item cwhere($pipeline, $table, $id)

The C<WHERE> clause of the conflicts of key C<{"id": $id}> of C<$table> in
C<$pipeline>.

=cut

sub cwhere
{
	my ($pipeline, $table, $id) = @_;
	return "pipeline = " . lit($pipeline)
	  . " AND \"table\" = " . lit($table) . "::regclass"
	  . " AND key = jsonb_build_object('id', $id)";
}

=pod

=item conflicts_of($pipeline, $table, $id [, $cols])

The conflicts of one key, one C<kind|status|resolution|strategy> a row
(resolution C<-> when NULL; or C<$cols>, an SQL expression), C<;>-separated,
oldest first; C<none> when there is none.

=cut

sub conflicts_of
{
	my ($pipeline, $table, $id, $cols) = @_;
	$cols //= "kind || '|' || status || '|' || coalesce(resolution, '-') || '|' || strategy";
	return src_q("SELECT coalesce(string_agg($cols, ';' ORDER BY id), 'none') FROM datasync.conflicts WHERE "
		  . cwhere($pipeline, $table, $id));
}

=pod

=item images_of($pipeline, $table, $id)

C<v of source_row|v of target_row> of the conflicts of one key (C<NULL>
when the image is NULL).

=cut

sub images_of
{
	my ($pipeline, $table, $id) = @_;
	return conflicts_of($pipeline, $table, $id,
		"CASE WHEN source_row IS NULL THEN 'NULL' ELSE coalesce(source_row ->> 'v', '?') END || '|' || "
		  . "CASE WHEN target_row IS NULL THEN 'NULL' ELSE coalesce(target_row ->> 'v', '?') END");
}

=pod

=item nconflicts($pipeline)

How many conflicts C<datasync.conflicts> holds for C<$pipeline>.

=cut

sub nconflicts
{
	my ($pipeline) = @_;
	return src_q("SELECT count(*) FROM datasync.conflicts WHERE pipeline = " . lit($pipeline));
}

=pod

=item $T00, $T20, $T21, $T22, $T25, $T30, $T99

SQL literals of 1 January 2000, 2020, 2021, 2022, 2025, 2030 and 2100, UTC.

=item %KIND, %KEPT

The keys of the conflict matrix: C<$KIND{$id}> is the conflict kind that
C<conflict_matrix> makes on key 1 to 5 (key 6 is a clean insert, key 7 an
insert of a row the target has already, identical: neither is a conflict);
C<$KEPT{$id}> the target row (as C<tgt_row> shows it) of keys 1 to 7 when
the strategy keeps the target as it was.

=cut

our $T20 = "'2020-01-01 00:00:00+00'";
our $T21 = "'2021-01-01 00:00:00+00'";
our $T22 = "'2022-01-01 00:00:00+00'";
our $T25 = "'2025-01-01 00:00:00+00'";
our $T30 = "'2030-01-01 00:00:00+00'";
our $T00 = "'2000-01-01 00:00:00+00'";
our $T99 = "'2100-01-01 00:00:00+00'";

our %KIND = (1 => 'insert_exists', 2 => 'update_missing', 3 => 'update_differs',
	4 => 'delete_missing', 5 => 'delete_differs');
our %KEPT = (1 => 'target@2030-01-01', 2 => 'missing', 3 => 'target@2030-01-01',
	4 => 'missing', 5 => 'target@2030-01-01', 6 => 'clean@2020-01-01', 7 => 'same@2025-01-01');

=pod

=item conflict_matrix(\@pipelines, @tables)

The conflict matrix on each of C<@tables> (made by C<conflict_tables>,
synced by C<@pipelines>): rows 2 to 5 that every later change starts from,
synced (C<synced('matrix set-up', @pipelines)>); the target diverges (key 1
and the identical row 7 inserted, 2 and 4 deleted, 3 and 5 changed); the
source changes (inserts 1, 7 and the clean 6, updates 2 and 3, deletes 4
and 5), synced (C<synced('matrix conflicts', @pipelines)>).  See C<%KIND>.

=cut

sub conflict_matrix
{
	my ($pipelines, @tables) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	# 1. rows every later change starts from
	for my $t (@tables)
	{
		src_q("INSERT INTO $t VALUES (2, 'orig', $T20), (3, 'orig', $T20), (4, 'orig', $T20), (5, 'orig', $T20)");
	}
	synced('matrix set-up', @$pipelines);

	# 2. the target diverges
	for my $t (@tables)
	{
		tgt_q(qq{
INSERT INTO $t VALUES (1, 'target', $T30), (7, 'same', $T25);
DELETE FROM $t WHERE id IN (2, 4);
UPDATE $t SET v = 'target', ts = $T30 WHERE id IN (3, 5);
});
	}

	# 3. the source changes
	for my $t (@tables)
	{
		src_q(qq{
INSERT INTO $t VALUES (1, 'source', $T20), (7, 'same', $T25), (6, 'clean', $T20);
UPDATE $t SET v = 'source', ts = $T21 WHERE id IN (2, 3);
DELETE FROM $t WHERE id IN (4, 5);
});
	}
	synced('matrix conflicts', @$pipelines);
	return;
}

=pod

=item conflict_runs($pipeline, $table, $c1020, $c1030, $v1020, $v1030)

A long transaction of inserts goes out in runs of 64 rows: conflicts inside
a run are found and decided row by row all the same.  The target gets keys
1010 (identical to what the source inserts), 1020 (other values, a newer
ts) and 1030 (other values, an older ts); the source inserts 1000 to 1199
in one transaction; synced (C<synced('runs', $pipeline)>).  Then six tests:
the conflicts of 1020 and 1030 are C<$c1020> and C<$c1030> (as
C<conflicts_of> shows them), 1010 has none, the run has two, the target's
C<v> of 1020 and 1030 are C<$v1020> and C<$v1030>, and every other row of
the run is on the target.

=cut

sub conflict_runs
{
	my ($p, $t, $c20, $c30, $v20, $v30) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	tgt_q("INSERT INTO $t VALUES (1010, 'bulk', $T20), (1020, 'tgt', $T22), (1030, 'tgt', $T00)");
	src_q("INSERT INTO $t SELECT g, 'bulk', $T20 FROM generate_series(1000, 1199) g");
	synced('runs', $p);
	is(conflicts_of($p, $t, 1020), $c20, "runs/$p: key 1020 (target newer)");
	is(conflicts_of($p, $t, 1030), $c30, "runs/$p: key 1030 (target older)");
	is(conflicts_of($p, $t, 1010), 'none', "runs/$p: the identical row is no conflict");
	is(src_q("SELECT count(*) FROM datasync.conflicts WHERE pipeline = " . lit($p)
		  . " AND (key->>'id')::int BETWEEN 1000 AND 1199"),
		'2', "runs/$p: two conflicts in the run");
	is(tgt_q("SELECT string_agg(v, ',' ORDER BY id) FROM $t WHERE id IN (1020, 1030)"), "$v20,$v30",
		"runs/$p: the target rows as the strategy decided");
	is(tgt_q("SELECT count(*) FILTER (WHERE v = 'bulk') FROM $t WHERE id BETWEEN 1000 AND 1199"),
		200 - ($v20 eq 'tgt' ? 1 : 0) - ($v30 eq 'tgt' ? 1 : 0),
		"runs/$p: every other row of the run is on the target");
	return;
}

=pod

=item kill_after_conflict($pipeline, $table, $id)

Polls for the conflict of key C<$id> and kills (-9) the worker of
C<$pipeline> as soon as it is there (an C<ok()>); then waits for the source
to be back with a new worker (another C<ok()>).  Returns the killed pid.

=cut

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
	ok( poll_until($csrc,
			"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM datasync.status WHERE name = " . lit($pipeline)),
		"$pipeline: source back after kill -9, new worker");
	return $pid;
}

=back

=cut

1;
