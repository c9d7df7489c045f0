# Copyright (c) 2026, datasync developers
#
# 195_docs_signatures.pl -- every function signature docs/sql-reference.md
# shows is the one the extension has: name, argument names, types and
# order, which arguments have a default, and the result type; and every
# function a role may call is documented.
#
# Topology: node "src_doc" (datasync), no target.
#
# A signature is a line (or lines, up to ") RETURNS type") in a ```sql block
# of docs/sql-reference.md that starts with "datasync.name(".  Defaults are
# compared by their presence only: the catalog prints them after evaluation
# ('00:01:00'::interval for '60s').
use strict;
use warnings FATAL => 'all';

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $root = dirname(dirname(dirname(__FILE__)));
$root = '.' if !-f "$root/docs/sql-reference.md";

my $src = source_node('src_doc');

# ---- the documented signatures ------------------------------------------------
my $ref = slurp_file("$root/docs/sql-reference.md");
my %doc;
while ($ref =~ /^```sql\n(.*?)^```/msg)
{
	my $block = $1;
	while ($block =~ /^(datasync\.(\w+)\((.*?)\)\s+RETURNS\s+(\w+(?:\[\])?))/msg)
	{
		my ($name, $args, $result) = ($2, $3, $4);
		$args =~ s/\s+/ /g;
		push @{ $doc{$name} }, { args => $args, result => $result };
	}
}
ok(keys %doc >= 20, 'sql-reference shows signatures (' . scalar(keys %doc) . ' functions)');

# "name type [DEFAULT ...], ..." as "name type|d, ..." (d: has a default)
sub shape
{
	my ($args) = @_;
	my @out;
	# split on commas outside quotes and parentheses
	my ($depth, $q, $cur) = (0, 0, '');
	for my $c (split //, $args)
	{
		$q = !$q if $c eq "'";
		$depth++ if !$q && $c eq '(';
		$depth-- if !$q && $c eq ')';
		if (!$q && $depth == 0 && $c eq ',')
		{
			push @out, $cur;
			$cur = '';
			next;
		}
		$cur .= $c;
	}
	push @out, $cur if $cur =~ /\S/;
	return join(', ',
		map {
			my $a = $_;
			$a =~ s/^\s+|\s+$//g;
			my $d = $a =~ s/\s+DEFAULT\s+.*$//i ? '|d' : '';
			$a =~ s/\s+/ /g;
			"$a$d"
		} @out);
}

# ---- the catalog ----------------------------------------------------------------
my %cat;
for my $row (split /\n/, $src->safe_psql('postgres', q{
	SELECT p.proname || E'\t' || pg_catalog.pg_get_function_arguments(p.oid) || E'\t'
	       || pg_catalog.pg_get_function_result(p.oid)
	  FROM pg_catalog.pg_proc p
	 WHERE p.pronamespace = 'datasync'::regnamespace AND p.proname !~ '^_'
	 ORDER BY 1}))
{
	my ($name, $args, $result) = split /\t/, $row;
	push @{ $cat{$name} }, { args => $args, result => $result };
}

for my $name (sort keys %doc)
{
	ok(exists $cat{$name}, "datasync.$name exists") or next;
	for my $d (@{ $doc{$name} })
	{
		my ($match) = grep { shape($_->{args}) eq shape($d->{args}) } @{ $cat{$name} };
		ok($match, "datasync.$name(" . shape($d->{args}) . ") as documented")
		  or diag('the catalog has: ' . join(' / ', map { shape($_->{args}) } @{ $cat{$name} }));
		is($match->{result}, $d->{result}, "datasync.$name returns $d->{result}") if $match;
	}
}

# every callable function (not an internal _one, not an event trigger's) is documented
for my $name (sort keys %cat)
{
	next if grep { $_->{result} eq 'event_trigger' || $_->{result} eq 'trigger' } @{ $cat{$name} };
	ok(exists $doc{$name}, "datasync.$name is documented in sql-reference.md");
}

done_testing();
