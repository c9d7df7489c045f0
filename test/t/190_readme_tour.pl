# Copyright (c) 2026, datasync developers
#
# 190_readme_tour.pl -- the README's tour, run as written against clusters
# set up like the demo's, so that the README cannot drift from the product.
#
# Topology: node "src_tour" (datasync and pg_cron, like the demo's source),
# node "tgt_tour" (plain PostgreSQL).  Both get scripts/demo-schema.sql, the
# source scripts/demo-seed.sql, as scripts/demo.sh does.
#
# The statements are read from README.md, section "A five-minute tour": every
# line of a code block that starts with the prompt "demo=# " (continued by
# "demo-# ") up to a ";".  A block whose fence says "psql-target" runs on the
# target, any other on the source; one that says "psql-demo-setup" is what
# scripts/demo.sh ran (CREATE EXTENSION datasync is skipped: the node has
# it).  The target's DSN is replaced by this test's.  Each statement must
# succeed, or fail with the ERROR line the README shows after it; where the
# README shows a one-row, one-column result of t or f (wait_for_sync), the
# result must be that.  The SQL block of "On your own server" runs on a
# second pair of nodes, with its target DSN replaced.
use strict;
use warnings FATAL => 'all';

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $root = dirname(dirname(dirname(__FILE__)));
$root = '.' if !-f "$root/README.md";

my $src = source_node('src_tour',
	shared_preload_libraries => 'datasync,pg_cron',
	'cron.database_name' => 'postgres',
	'cron.use_background_workers' => 'on');
my $tgt = target_node('tgt_tour');

for my $node ($src, $tgt)
{
	$node->safe_psql('postgres', slurp_file("$root/scripts/demo-schema.sql"));
}
$src->safe_psql('postgres', slurp_file("$root/scripts/demo-seed.sql"));
my $dsn = target_dsn($tgt);

# ---- read the tour ----------------------------------------------------------
my $readme = slurp_file("$root/README.md");
$readme =~ /^## A five-minute tour\n(.*?)^## /ms or die 'README.md has no section "A five-minute tour"';
my $tour = $1;

# (node, sql, expected error or undef, expected one-value result or undef, fence)
my @steps;
my ($in_block, $fence, $cur) = (0, '', undef);
for my $line (split /\n/, $tour)
{
	if ($line =~ /^```(\S*)/)
	{
		$in_block = !$in_block;
		$fence = $in_block ? $1 : '';
		$cur = undef;
		next;
	}
	next unless $in_block;
	if ($line =~ /^demo=# (.*)$/)
	{
		$cur = { fence => $fence, sql => $1, out => [] };
		push @steps, $cur;
	}
	elsif ($line =~ /^demo-# (.*)$/ && $cur)
	{
		$cur->{sql} .= "\n$1";
	}
	elsif ($cur)
	{
		push @{ $cur->{out} }, $line;
	}
}
ok(@steps >= 20, 'the tour has its statements (' . scalar(@steps) . ')');

# ---- run it -----------------------------------------------------------------
my $n = 0;
for my $step (@steps)
{
	$n++;
	my $sql = $step->{sql};
	next if $sql =~ /^CREATE EXTENSION datasync;$/ && $step->{fence} eq 'psql-demo-setup';
	$sql =~ s/'host=\/tmp\/datasync-demo port=5434 dbname=demo'/'$dsn'/g;
	my $node = $step->{fence} eq 'psql-target' ? $tgt : $src;
	my ($error) = grep { /^ERROR:/ } @{ $step->{out} };

	# a result of one row and one column: header, dashes, value, (1 row)
	my $value;
	my @out = grep { $_ ne '' } @{ $step->{out} };
	if (@out >= 4 && $out[1] =~ /^-+$/ && $out[3] eq '(1 row)' && $out[2] =~ /^\s*([tf])\s*$/)
	{
		$value = $1;
	}

	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr, timeout => 180);
	my $name = "tour step $n: " . (split /\n/, $sql)[0];
	$name = substr($name, 0, 110) . '...' if length($name) > 110;
	if (defined $error)
	{
		my $msg = $error =~ s/^ERROR:\s+//r;
		like($stderr, qr/ERROR:\s+\Q$msg\E/, "$name fails as shown");
	}
	else
	{
		is($rc, 0, "$name runs") or diag($stderr);
		is($stdout, $value, "$name returns $value") if defined $value;
	}
}

# ---- "On your own server": its SQL block, against a target of our own --------
$readme =~ /^```sql own-server\n(.*?)^```/ms or die 'README.md has no "sql own-server" block';
my $own = $1;
my $src2 = source_node('src_own');
my $tgt2 = target_node('tgt_own');
$tgt2->safe_psql('postgres', 'CREATE TABLE items (id int PRIMARY KEY, name text)');
my $dsn2 = target_dsn($tgt2);
# the block creates the extension itself
$src2->safe_psql('postgres', 'DROP EXTENSION datasync');
$own =~ s/'host=localhost dbname=app_copy user=sync password=change-me'/'$dsn2'/
  or die 'the own-server block no longer has the DSN this test replaces';
my $k = 0;
for my $stmt (grep { /\S/ } split /;\n/, $own)
{
	$k++;
	my ($stdout, $stderr) = ('', '');
	my $rc = $src2->psql('postgres', "$stmt;", stdout => \$stdout, stderr => \$stderr, timeout => 180);
	is($rc, 0, "own server step $k: " . substr($stmt, 0, 80) . ' runs') or diag($stderr);
	is($stdout, 't', 'own server: wait_for_sync returns t') if $stmt =~ /wait_for_sync/;
	like($stdout, qr/"ok": true/, 'own server: test_target finds nothing missing') if $stmt =~ /test_target/;
}
is($tgt2->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM items}), '1,2,3',
	'own server: the target has the three rows');

done_testing();
