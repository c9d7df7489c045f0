# Copyright (c) 2026, datasync developers
#
# 150_upgrade.pl -- an installation of 0.1 updated to 0.2 has the same catalog
# as a fresh installation of 0.2.
#
# Database "postgres" gets CREATE EXTENSION datasync (the default version),
# database "upd" CREATE EXTENSION datasync VERSION '0.1' and then ALTER
# EXTENSION datasync UPDATE TO '0.2'.  Both are described by the same query
# and the descriptions must be equal: every object of the extension (its
# members, and the objects of its schema that are not); functions with
# their signature, argument names and defaults, attributes, settings, owner,
# privileges and body; tables, views and sequences with their columns in
# order (an update's ADD COLUMN appends, a fresh install must put the column
# last too), defaults, constraints, indexes, triggers and their firing mode,
# policies, row-level security and privileges; comments, also of columns;
# event triggers; the extension's configuration tables.  The two paths run
# different scripts: a fresh install runs datasync--0.2.sql alone (built
# from sql/parts/), an update the frozen datasync--0.1.sql and then
# datasync--0.1--0.2.sql.  A change of the SQL surface made in only one of
# them fails here.  (Steps of the update that only move data, such as the
# audit log's row values, have no counterpart in the fresh install.)
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $node = source_node('src_upgrade');

# PostgreSQL installs a version by its own script when there is one, and
# takes an update path only when there is none.
my $extdir = $node->config_data('--sharedir') . '/extension';
ok(-f "$extdir/datasync--0.2.sql" && -f "$extdir/datasync--0.1.sql" && -f "$extdir/datasync--0.1--0.2.sql",
	'0.2 has its own install script: a fresh install does not run 0.1 and the update');

$node->safe_psql('postgres', 'CREATE DATABASE upd');
$node->safe_psql('upd', "CREATE EXTENSION datasync VERSION '0.1'");
is($node->safe_psql('upd', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.1', 'database upd starts at 0.1');
$node->safe_psql('upd', "ALTER EXTENSION datasync UPDATE TO '0.2'");
is($node->safe_psql('upd', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.2', 'and is updated to 0.2');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'datasync'"),
	'0.2', 'a fresh install is 0.2');

# One line per object property, sorted; OIDs replaced by names.  Objects are
# found through the extension (pg_depend deptype 'e') and, for their parts,
# through the tables they belong to (columns, constraints, indexes, triggers,
# policies) so that nothing of the extension is left out.
my $describe = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'datasync'),
members AS (
    SELECT classid, objid FROM pg_depend, ext
     WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e'
),
rels AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
lines AS (
    -- membership: every object of the extension, whatever its kind
    SELECT format('member %s', pg_describe_object(m.classid, m.objid, 0)) AS l
      FROM members m
    UNION ALL
    -- objects in the extension's schema that are not members (a relation's
    -- own parts, indexes, row and array types, are not)
    SELECT format('not a member: %s', pg_describe_object('pg_class'::regclass, c.oid, 0))
      FROM pg_class c
     WHERE c.relnamespace = 'datasync'::regnamespace AND c.relkind NOT IN ('i', 'I')
       AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid)
    UNION ALL
    SELECT format('not a member: %s', pg_describe_object('pg_proc'::regclass, p.oid, 0))
      FROM pg_proc p
     WHERE p.pronamespace = 'datasync'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
    UNION ALL
    -- functions: signature with argument names and defaults, attributes, privileges, body
    SELECT format('function %s(%s): kind=%s secdef=%s volatile=%s strict=%s parallel=%s leakproof=%s cost=%s rows=%s config=%s owner=%s acl=%s returns=%s lang=%s bin=%s body=%s',
                  p.pronamespace::regnamespace || '.' || p.proname, pg_get_function_arguments(p.oid), p.prokind, p.prosecdef, p.provolatile,
                  p.proisstrict, p.proparallel, p.proleakproof, p.procost, p.prorows, p.proconfig,
                  p.proowner::regrole, p.proacl, pg_get_function_result(p.oid),
                  (SELECT lanname FROM pg_language WHERE oid = p.prolang), p.probin, md5(p.prosrc))
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    -- relations
    SELECT format('relation %s: kind=%s persistence=%s rls=%s force=%s options=%s owner=%s acl=%s replident=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
                  c.reloptions, c.relowner::regrole, c.relacl, c.relreplident)
      FROM rels c
    UNION ALL
    -- columns, with their position: ALTER TABLE ADD COLUMN appends, so a
    -- fresh install must put a column added by an update last
    SELECT format('column %s.%s: position=%s type=%s collation=%s notnull=%s default=%s identity=%s generated=%s acl=%s',
                  c.oid::regclass, a.attname,
                  (SELECT count(*) FROM pg_attribute b
                    WHERE b.attrelid = a.attrelid AND b.attnum > 0 AND b.attnum <= a.attnum AND NOT b.attisdropped),
                  format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation END,
                  a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl)
      FROM rels c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    UNION ALL
    SELECT format('view %s: %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
      FROM rels c
     WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('sequence %s: type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned by=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                  s.seqcache, s.seqcycle,
                  (SELECT string_agg(pg_describe_object(dp.refclassid, dp.refobjid, dp.refobjsubid) || ' (' || dp.deptype::text || ')', ', ')
                     FROM pg_depend dp
                    WHERE dp.classid = 'pg_class'::regclass AND dp.objid = s.seqrelid
                      AND dp.refclassid = 'pg_class'::regclass AND dp.deptype IN ('a', 'i')))
      FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
    UNION ALL
    SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
      FROM pg_constraint co JOIN rels c ON c.oid = co.conrelid
    UNION ALL
    SELECT format('index on %s: %s', i.indrelid::regclass, pg_get_indexdef(i.indexrelid))
      FROM pg_index i JOIN rels c ON c.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s on %s: enabled=%s %s', t.tgname, t.tgrelid::regclass, t.tgenabled,
                  pg_get_triggerdef(t.oid))
      FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s on %s: cmd=%s permissive=%s roles=%s using=%s check=%s', po.polname,
                  po.polrelid::regclass, po.polcmd, po.polpermissive, po.polroles::regrole[],
                  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
      FROM pg_policy po JOIN rels c ON c.oid = po.polrelid
    UNION ALL
    SELECT format('event trigger %s: event=%s enabled=%s function=%s tags=%s owner=%s', e.evtname, e.evtevent,
                  e.evtenabled, e.evtfoid::regprocedure, e.evttags, e.evtowner::regrole)
      FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    SELECT format('type %s: kind=%s', t.oid::regtype, t.typtype)
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    -- comments: of the members, their columns, and the parts of their tables
    SELECT format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
      FROM pg_description d
     WHERE EXISTS (SELECT 1 FROM members m WHERE m.classid = d.classoid AND m.objid = d.objoid)
        OR (d.classoid = 'pg_constraint'::regclass
            AND d.objoid IN (SELECT co.oid FROM pg_constraint co JOIN rels c ON c.oid = co.conrelid))
        OR (d.classoid = 'pg_trigger'::regclass
            AND d.objoid IN (SELECT t.oid FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid))
        OR (d.classoid = 'pg_policy'::regclass
            AND d.objoid IN (SELECT po.oid FROM pg_policy po JOIN rels c ON c.oid = po.polrelid))
        OR (d.classoid = 'pg_class'::regclass
            AND d.objoid IN (SELECT i.indexrelid FROM pg_index i JOIN rels c ON c.oid = i.indrelid))
    UNION ALL
    SELECT format('extension: version=%s config=%s conditions=%s schema=%s relocatable=%s',
                  e.extversion,
                  (SELECT array_agg(x::regclass::text ORDER BY x::regclass::text) FROM unnest(e.extconfig) x),
                  (SELECT array_agg(coalesce(c, '') ORDER BY x::regclass::text)
                     FROM unnest(e.extconfig, e.extcondition) u(x, c)),
                  e.extnamespace::regnamespace, e.extrelocatable)
      FROM pg_extension e WHERE e.extname = 'datasync'
    UNION ALL
    SELECT format('schema datasync: owner=%s acl=%s comment=%s', n.nspowner::regrole, n.nspacl,
                  obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n WHERE n.nspname = 'datasync'
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
ok(scalar(grep { /^column datasync\._targets\.grantees: position=8 / } @fresh),
	'the position of columns (grantees, added by the update, is last)');
ok(scalar(grep { /^comment on column owner of table datasync\._targets: / } @fresh), 'comments, also of columns');
ok(scalar(grep { /^member event trigger datasync_table_dropped$/ } @fresh), 'and what is a member of the extension');

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
