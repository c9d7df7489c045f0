# Copyright (c) 2026, datasync developers
#
# 196_docs_examples.pl -- every SQL example in docs/*.md runs: each ```sql
# block (but signatures) is run as written, inside a transaction that is
# rolled back, against clusters set up like the demo's, so the examples
# cannot drift from the product.
#
# Topology: node "src_ex" (datasync and pg_cron, like the demo's source),
# node "tgt_ex" (plain PostgreSQL).  Both get scripts/demo-schema.sql and the
# tables items and events; the source the demo's seed.  The fixture: targets
# "warehouse" and "reporting" (to tgt_ex), the manual pipeline "orders-sync"
# to "warehouse", roles alice and grafana.
#
# A DSN of the examples (a quoted string naming a host in example.com) is
# replaced by tgt_ex's.  An HTML comment on the line before a block steers
# it (it does not show when the Markdown is rendered):
#   <!-- docs-test: skip: <why> -->         not run (a placeholder, or it
#                                            needs what no rollback undoes)
#   <!-- docs-test: before: <SQL> -->       run first, in the same transaction
#   <!-- docs-test: error <SQLSTATE> -->    must fail with that SQLSTATE
use strict;
use warnings FATAL => 'all';

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $root = dirname(dirname(dirname(__FILE__)));
$root = '.' if !-d "$root/docs";

my $src = source_node('src_ex',
	shared_preload_libraries => 'datasync,pg_cron',
	'cron.database_name' => 'postgres',
	'cron.use_background_workers' => 'on');
my $tgt = target_node('tgt_ex');
my $extra = 'CREATE TABLE items (id int PRIMARY KEY, name text); CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz, body text);';
for my $node ($src, $tgt)
{
	$node->safe_psql('postgres', slurp_file("$root/scripts/demo-schema.sql") . $extra);
}
$src->safe_psql('postgres', slurp_file("$root/scripts/demo-seed.sql"));
my $dsn = target_dsn($tgt);
$src->safe_psql('postgres', qq{
	CREATE EXTENSION pg_cron;
	CREATE ROLE alice;
	CREATE ROLE grafana;
	SELECT datasync.create_target('warehouse', '$dsn');
	SELECT datasync.create_target('reporting', '$dsn');
	SELECT datasync.create_pipeline('orders-sync', 'warehouse', ARRAY['orders', 'order_items']::regclass[], mode => 'manual');
});

my $blocks = 0;
for my $file (sort glob("$root/docs/*.md"))
{
	my $doc = slurp_file($file);
	my $base = $file =~ s/.*\///r;
	my @lines = split /\n/, $doc;
	for (my $i = 0; $i < @lines; $i++)
	{
		next unless $lines[$i] =~ /^```sql\s*$/;
		my $start = $i + 1;
		my @body;
		for ($i++; $i < @lines && $lines[$i] !~ /^```/; $i++)
		{
			push @body, $lines[$i];
		}
		my $sql = join("\n", @body);
		# a signature, not an example
		next if $sql =~ /^datasync\.\w+\(/ && $sql =~ /\bRETURNS\b/;

		my ($prev) = grep { $_ =~ /\S/ } reverse @lines[0 .. $start - 2];
		my %how;
		if (defined $prev && $prev =~ /^<!-- docs-test: (skip|before|error)\b:?\s*(.*?)\s*-->$/)
		{
			$how{$1} = $2;
		}
		my $where = "$base:$start";
		next if exists $how{skip};
		$blocks++;

		$sql =~ s/(['"])[^'"\n]*\.example\.com[^'"\n]*\1/$1$dsn$1/g;
		my $script = "BEGIN;\n" . ($how{before} ? "$how{before};\n" : '') . "$sql\nROLLBACK;\n";
		my ($stdout, $stderr) = ('', '');
		my $rc = $src->psql('postgres', $script, stdout => \$stdout, stderr => \$stderr,
			on_error_stop => 1, timeout => 120, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		if (exists $how{error})
		{
			like($stderr, qr/ERROR:\s+\Q$how{error}\E:/, "$where fails with $how{error} as it says");
		}
		else
		{
			is($rc, 0, "$where runs") or diag("$script\n$stderr");
		}
	}
}
ok($blocks >= 10, "the docs have SQL examples ($blocks run)");

# the fixture is as it was: every example was rolled back
is($src->safe_psql('postgres', q{SELECT string_agg(name, ',' ORDER BY name) FROM datasync.pipelines}), 'orders-sync',
	'the examples left the pipelines as they were');

done_testing();
