# Copyright (c) 2026, datasync developers
#
# 150_upgrade.pl -- an installation of 0.1 updated to 0.2 has the same catalog
# as a fresh installation of 0.2.
#
# Database "postgres" gets CREATE EXTENSION datasync (the default version),
# database "upd" CREATE EXTENSION datasync VERSION '0.1' and then ALTER
# EXTENSION datasync UPDATE TO '0.2'.  Both are described by the same query
# (every object of the extension: functions with their signature, security,
# settings, privileges and body; tables and views with their columns,
# defaults, constraints, indexes, triggers and their firing mode, policies,
# row-level security and privileges; event triggers; the extension's
# configuration tables), and the descriptions must be equal.  Today a fresh
# install runs datasync--0.1.sql and the update script, so they are equal by
# construction; the test keeps them so when a datasync--0.2.sql is added.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $node = source_node('src_upgrade');

$node->safe_psql('postgres', 'CREATE DATABASE upd');
$node->safe_psql('upd', "CREATE EXTENSION datasync VERSION '0.1'");
is($node->safe_psql('upd', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.1', 'database upd starts at 0.1');
$node->safe_psql('upd', "ALTER EXTENSION datasync UPDATE TO '0.2'");
is($node->safe_psql('upd', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.2', 'and is updated to 0.2');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.2', 'a fresh install is 0.2');

# One line per object property, sorted; OIDs replaced by names.
my $describe = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'datasync'),
members AS (
    SELECT classid, objid FROM pg_depend, ext
     WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e'
),
lines AS (
    -- functions
    SELECT format('function %s: kind=%s secdef=%s volatile=%s strict=%s config=%s acl=%s returns=%s lang=%s body=%s',
                  p.oid::regprocedure, p.prokind, p.prosecdef, p.provolatile, p.proisstrict,
                  p.proconfig, p.proacl, pg_get_function_result(p.oid),
                  (SELECT lanname FROM pg_language WHERE oid = p.prolang), md5(p.prosrc)) AS l
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    -- relations
    SELECT format('relation %s: kind=%s rls=%s force=%s acl=%s replident=%s',
                  c.oid::regclass, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.relreplident)
      FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    UNION ALL
    SELECT format('column %s.%s: type=%s notnull=%s default=%s identity=%s generated=%s acl=%s',
                  c.oid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl)
      FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    UNION ALL
    SELECT format('view %s: %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
      FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
     WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
      FROM pg_constraint co JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = co.conrelid
    UNION ALL
    SELECT format('index on %s: %s', i.indrelid::regclass,
                  regexp_replace(pg_get_indexdef(i.indexrelid), 'INDEX \S+ ON', 'INDEX ON'))
      FROM pg_index i JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = i.indrelid
    UNION ALL
    SELECT format('trigger %s on %s: enabled=%s %s', t.tgname, t.tgrelid::regclass, t.tgenabled,
                  pg_get_triggerdef(t.oid))
      FROM pg_trigger t JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = t.tgrelid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s on %s: cmd=%s roles=%s using=%s check=%s', po.polname, po.polrelid::regclass,
                  po.polcmd, po.polroles::regrole[], pg_get_expr(po.polqual, po.polrelid),
                  pg_get_expr(po.polwithcheck, po.polrelid))
      FROM pg_policy po JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = po.polrelid
    UNION ALL
    SELECT format('event trigger %s: event=%s enabled=%s function=%s tags=%s', e.evtname, e.evtevent,
                  e.evtenabled, e.evtfoid::regproc, e.evttags)
      FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    SELECT format('type %s: kind=%s', t.oid::regtype, t.typtype)
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('extension: config=%s conditions=%s schema=%s',
                  (SELECT array_agg(x::regclass::text ORDER BY x::regclass::text) FROM unnest(e.extconfig) x),
                  e.extcondition, e.extnamespace::regnamespace)
      FROM pg_extension e WHERE e.extname = 'datasync'
    UNION ALL
    SELECT format('schema datasync: acl=%s', n.nspacl) FROM pg_namespace n WHERE n.nspname = 'datasync'
)
SELECT l FROM lines ORDER BY l COLLATE "C";
SQL

my $fresh = $node->safe_psql('postgres', "SET search_path = pg_catalog, pg_temp;\n$describe");
my $updated = $node->safe_psql('upd', "SET search_path = pg_catalog, pg_temp;\n$describe");
my @fresh = split /\n/, $fresh;
cmp_ok(scalar(@fresh), '>', 100, 'the description covers the catalog (' . scalar(@fresh) . ' lines)');
ok(scalar(grep { /^function datasync\.create_pipeline/ } @fresh), 'it lists the functions');
ok(scalar(grep { /^trigger audit_log_append_only on datasync\.audit_log: enabled=A/ } @fresh),
	'and the firing mode of triggers');

if ($fresh eq $updated)
{
	pass('0.1 updated to 0.2 has the catalog of a fresh 0.2 install');
}
else
{
	my %u = map { $_ => 1 } split /\n/, $updated;
	my %f = map { $_ => 1 } @fresh;
	diag("only in the fresh install: $_") for grep { !$u{$_} } @fresh;
	diag("only in the updated one: $_") for grep { !$f{$_} } split /\n/, $updated;
	fail('0.1 updated to 0.2 has the catalog of a fresh 0.2 install');
}

done_testing();
