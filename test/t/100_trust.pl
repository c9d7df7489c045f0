# Copyright (c) 2026, datasync developers
#
# 100_trust.pl -- no code a table owner defines runs with the worker's
# superuser rights (issue 14, findings 1 and 2).
#
# Topology: node "src_trust" (datasync), node "tgt_trust" (plain).
#
# The attacker is mallory, an ordinary LOGIN role that owns tables a superuser
# put into pipelines.  Every trap is a function of mallory's that records
# current_user in mallory.ran and tries ALTER ROLE mallory SUPERUSER; after
# each case mallory must still be an ordinary role and no row of mallory.ran
# may name a superuser.  Cases:
#   (a) a domain with a CHECK function on a synced table's key: an UPDATE
#       that leaves a TOASTed value unchanged makes the worker read the row
#       by key (complete_update), after the target lost the row;
#   (b) a cast to json of mallory's enum: a manual-strategy conflict makes
#       the worker write the source row as JSON (to_jsonb);
#   (c) public.to_jsonb(record), created where mallory may create: a manual
#       run's completion (jobs.c) must not resolve to it;
#   (d) a synced table turned into a view (CREATE RULE "_RETURN") whose query
#       calls mallory's function: resync_table must refuse to copy it
#       (state error, naming the table), not run the view;
#   (e) a partitioned table with a foreign-table partition: the copy refuses
#       the partition instead of scanning it as the superuser;
#   (f) a table with row-level security, copied while datasync.source_conninfo
#       names a REPLICATION role that does not bypass RLS: refused (it would
#       run mallory's policy and copy only the rows it shows); with BYPASSRLS
#       the copy is whole and the policy never runs;
#   (h) mallory, a datasync_admin granted the target, syncs a table of
#       postgres she may read; then its owner turns on row-level security that
#       hides rows from her (and, in a second table, revokes her SELECT): the
#       worker checks again when the stream describes the table anew and
#       stops the pipeline (42501) before a hidden row reaches the target;
#   (i) mallory's own pipeline stops when the target's owner revokes her use
#       of the target, and resumes once granted again;
#   (g) mallory owns the database and sets its search_path to her schema first,
#       where an operator = (bigint, bigint) of hers waits: after a restart
#       the launcher, the workers and their replication connections resolve
#       nothing through it.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $src = source_node('src_trust');
my $tgt = target_node('tgt_trust');
my $dsn = target_dsn($tgt);

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }
sub as_mallory { return $src->safe_psql('postgres', "SET ROLE mallory;\n$_[0]"); }

# mallory is still an ordinary role, and no trap ran as a superuser
sub no_escalation
{
	my ($name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(src_q("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'mallory'"),
		'f', "$name: mallory is not a superuser");
	is( src_q(
			"SELECT pg_catalog.string_agg(r.who || ':' || r.what, ', ') FROM mallory.ran r"
			  . " JOIN pg_catalog.pg_roles a ON a.rolname OPERATOR(pg_catalog.=) r.who WHERE a.rolsuper"),
		'', "$name: no trap ran as a superuser");
}

# ---------------------------------------------------------------------------
# Set-up: mallory and her traps
# ---------------------------------------------------------------------------
src_q(<<'SQL');
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
GRANT CREATE ON SCHEMA public TO mallory;
SQL
as_mallory(<<'SQL');
CREATE TABLE mallory.ran (who text, what text);
GRANT INSERT ON mallory.ran TO PUBLIC;
CREATE FUNCTION mallory.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mallory.ran VALUES (current_user, what);
    BEGIN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
GRANT EXECUTE ON FUNCTION mallory.trap(text) TO PUBLIC;
CREATE FUNCTION mallory.key_ok(v int) RETURNS boolean LANGUAGE sql
    AS $$ SELECT mallory.trap('domain check') $$;
CREATE DOMAIN mallory.dkey AS int CHECK (mallory.key_ok(VALUE));
CREATE TYPE mallory.mood AS ENUM ('sad', 'happy');
CREATE FUNCTION mallory.mood_json(m mallory.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.trap('cast to json');
    RETURN pg_catalog.to_json(m::text);
END $$;
CREATE CAST (mallory.mood AS json) WITH FUNCTION mallory.mood_json(mallory.mood);
CREATE FUNCTION public.to_jsonb(r record) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.trap('public.to_jsonb');
    RETURN '{}'::jsonb;
END $$;
CREATE FUNCTION mallory.view_value() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.trap('view query');
    RETURN 'x';
END $$;

-- (a) key of a domain type, a TOASTed column kept out of line
CREATE TABLE mallory.t_dom (id mallory.dkey PRIMARY KEY, big text, v int);
ALTER TABLE mallory.t_dom ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO mallory.t_dom
    SELECT 1, (SELECT pg_catalog.string_agg(pg_catalog.md5(i::text), '') FROM pg_catalog.generate_series(1, 400) i), 0;
-- (b) an enum with a cast to json, REPLICA IDENTITY FULL for manual conflicts
CREATE TABLE mallory.t_mood (id int PRIMARY KEY, m mallory.mood);
ALTER TABLE mallory.t_mood REPLICA IDENTITY FULL;
-- (d) a table with no index (so that it may become a view)
CREATE TABLE mallory.t_view (id int, v text);
ALTER TABLE mallory.t_view REPLICA IDENTITY FULL;
INSERT INTO mallory.t_view VALUES (1, 'one');
SQL
src_q('CREATE TABLE public.plain (id int PRIMARY KEY, v text)');

tgt_q(<<'SQL');
CREATE SCHEMA mallory;
CREATE TABLE mallory.t_dom (id int PRIMARY KEY, big text, v int);
CREATE TABLE mallory.t_mood (id int PRIMARY KEY, m text);
CREATE TABLE mallory.t_view (id int, v text);
CREATE TABLE public.plain (id int PRIMARY KEY, v text);
SQL

src_q("SELECT datasync.create_target('tgt', '$dsn')");
src_q("SELECT datasync.create_pipeline('p_dom', 'tgt', ARRAY['mallory.t_dom']::regclass[])");
src_q("SELECT datasync.create_pipeline('p_mood', 'tgt', ARRAY['mallory.t_mood']::regclass[],"
	  . " conflict_strategy => 'manual')");
src_q("SELECT datasync.create_pipeline('p_view', 'tgt', ARRAY['mallory.t_view']::regclass[])");
src_q("SELECT datasync.create_pipeline('p_manual', 'tgt', ARRAY['public.plain']::regclass[],"
	  . " mode => 'manual')");
ok(wait_for_sync($src, $_, 60), "initial sync of $_") for qw(p_dom p_mood p_view);
is(tgt_q('SELECT pg_catalog.length(big) FROM mallory.t_dom WHERE id = 1'), '12800', 'the big value was copied');

# ---------------------------------------------------------------------------
# (a) the look-up of an update's unchanged TOASTed value
# ---------------------------------------------------------------------------
tgt_q('DELETE FROM mallory.t_dom');
as_mallory('TRUNCATE mallory.ran');
as_mallory('UPDATE mallory.t_dom SET v = 1 WHERE id = 1');
ok(wait_for_sync($src, 'p_dom', 60), '(a) the update was applied');
is(tgt_q('SELECT v, pg_catalog.length(big) FROM mallory.t_dom WHERE id = 1'), '1|12800',
	'(a) the target got the whole row, the unchanged value read from the source');
no_escalation('(a) domain check on the key');

# ---------------------------------------------------------------------------
# (b) a conflict's source row as JSON
# ---------------------------------------------------------------------------
tgt_q("INSERT INTO mallory.t_mood VALUES (1, 'other')");
as_mallory("INSERT INTO mallory.t_mood VALUES (1, 'happy')");
ok( poll_until(
		$src,
		"SELECT pg_catalog.count(*) FROM datasync.conflicts WHERE pipeline = 'p_mood' AND status = 'open'",
		'1'),
	'(b) the conflict was recorded');
is(src_q("SELECT source_row->>'m' FROM datasync.conflicts WHERE pipeline = 'p_mood'"), 'happy',
	'(b) the source row holds the value');
no_escalation('(b) cast to json');

# ---------------------------------------------------------------------------
# (c) a manual run completes without public.to_jsonb(record)
# ---------------------------------------------------------------------------
src_q("INSERT INTO public.plain VALUES (1, 'a')");
like(src_q("SELECT datasync.sync_now('p_manual', '60s')"), qr/"status": "succeeded"/, "(c) the manual run succeeded");
is(tgt_q('SELECT v FROM public.plain WHERE id = 1'), 'a', '(c) the row was applied');
no_escalation('(c) public.to_jsonb(record)');

# ---------------------------------------------------------------------------
# (d) a synced table turned into a view, then resynced
# ---------------------------------------------------------------------------
as_mallory(<<'SQL');
DELETE FROM mallory.t_view;
CREATE RULE "_RETURN" AS ON SELECT TO mallory.t_view DO INSTEAD
    SELECT 2 AS id, mallory.view_value() AS v;
SQL
is(src_q("SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'mallory.t_view'::regclass"), 'v',
	'(d) mallory.t_view is a view now');
src_q("SELECT datasync.resync_table('p_view', 'mallory.t_view')");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'p_view'", 'error'),
	'(d) the pipeline stopped instead of copying the view');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_view'"),
	qr/mallory\.t_view.*view/, '(d) last_error names the table and what it became');
is(tgt_q('SELECT pg_catalog.count(*) FROM mallory.t_view WHERE id = 2'), '0',
	'(d) nothing of the view reached the target');
no_escalation('(d) view query in a copy');

# ---------------------------------------------------------------------------
# (e) a foreign-table partition
# ---------------------------------------------------------------------------
src_q(<<'SQL');
CREATE EXTENSION postgres_fdw;
GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO mallory;
SQL
as_mallory(<<SQL);
CREATE TABLE mallory.parts (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE mallory.parts_1 PARTITION OF mallory.parts FOR VALUES FROM (0) TO (100);
ALTER TABLE mallory.parts REPLICA IDENTITY FULL;
ALTER TABLE mallory.parts_1 REPLICA IDENTITY FULL;
INSERT INTO mallory.parts VALUES (1, 'one');
SQL
tgt_q('CREATE TABLE mallory.parts (id int, v text)');
src_q("SELECT datasync.create_pipeline('p_parts', 'tgt', ARRAY['mallory.parts']::regclass[])");
ok(wait_for_sync($src, 'p_parts', 60), '(e) initial sync of a partitioned table');
is(tgt_q('SELECT pg_catalog.count(*) FROM mallory.parts'), '1', '(e) its leaf was copied');
my $port = $src->port;
my $host = $src->host;
as_mallory(<<SQL);
CREATE SERVER evil FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER evil OPTIONS (user 'mallory');
CREATE FOREIGN TABLE mallory.parts_2 PARTITION OF mallory.parts FOR VALUES FROM (100) TO (200)
    SERVER evil OPTIONS (table_name 'ran');
SQL
src_q("SELECT datasync.resync_table('p_parts', 'mallory.parts')");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'p_parts'", 'error'),
	'(e) the pipeline stopped instead of scanning a foreign partition');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_parts'"),
	qr/partition "mallory\.parts_2".*foreign table/, '(e) last_error names the foreign partition');
no_escalation('(e) foreign partition');

# ---------------------------------------------------------------------------
# (f) row-level security and a replication role that is not a superuser
# ---------------------------------------------------------------------------
as_mallory(<<'SQL');
CREATE TABLE mallory.t_rls (id int PRIMARY KEY, v text);
INSERT INTO mallory.t_rls VALUES (1, 'one'), (2, 'two');
ALTER TABLE mallory.t_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON mallory.t_rls USING (mallory.trap('policy') AND id = 1);
SQL
tgt_q('CREATE TABLE mallory.t_rls (id int PRIMARY KEY, v text)');
src_q(<<'SQL');
CREATE ROLE repl LOGIN REPLICATION;
GRANT USAGE ON SCHEMA mallory TO repl;
GRANT SELECT ON ALL TABLES IN SCHEMA mallory TO repl;
ALTER SYSTEM SET datasync.source_conninfo = 'user=repl';
SELECT pg_catalog.pg_reload_conf();
SQL
src_q("SELECT datasync.create_pipeline('p_rls', 'tgt', ARRAY['mallory.t_rls']::regclass[])");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'p_rls'", 'error'),
	'(f) the copy as a role subject to RLS is refused');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_rls'"),
	qr/row-level security as role "repl"/, '(f) last_error says why');
is(src_q("SELECT pg_catalog.count(*) FROM mallory.ran WHERE who = 'repl'"), '0',
	'(f) the policy did not run as the replication role');
src_q('ALTER ROLE repl BYPASSRLS');
src_q("SELECT datasync.resume('p_rls')");
ok(wait_for_sync($src, 'p_rls', 60), '(f) with BYPASSRLS the pipeline syncs');
is(tgt_q('SELECT pg_catalog.count(*) FROM mallory.t_rls'), '2', '(f) every row was copied');
is(src_q("SELECT pg_catalog.count(*) FROM mallory.ran WHERE who = 'repl'"), '0',
	'(f) the policy never ran as the replication role');
no_escalation('(f) row-level security');
src_q('ALTER SYSTEM RESET datasync.source_conninfo');
src_q('SELECT pg_catalog.pg_reload_conf()');

# ---------------------------------------------------------------------------
# (h) the adder's rights, checked again where the table is used
# ---------------------------------------------------------------------------
src_q(<<'SQL');
GRANT datasync_admin TO mallory;
SELECT datasync.grant_target('tgt', 'mallory');
CREATE TABLE public.secret (id int PRIMARY KEY, v text);
CREATE TABLE public.secret2 (id int PRIMARY KEY, v text);
GRANT SELECT ON public.secret, public.secret2 TO mallory;
INSERT INTO public.secret VALUES (1, 'public');
INSERT INTO public.secret2 VALUES (1, 'public');
SQL
tgt_q('CREATE TABLE public.secret (id int PRIMARY KEY, v text); CREATE TABLE public.secret2 (id int PRIMARY KEY, v text)');
as_mallory("SELECT datasync.create_pipeline('p_sec', 'tgt', ARRAY['public.secret']::regclass[])");
as_mallory("SELECT datasync.create_pipeline('p_sec2', 'tgt', ARRAY['public.secret2']::regclass[])");
ok(wait_for_sync($src, $_, 60), "(h) initial sync of $_") for qw(p_sec p_sec2);
src_q(<<'SQL');
ALTER TABLE public.secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_public ON public.secret USING (v = 'public');
INSERT INTO public.secret VALUES (2, 'hidden');
REVOKE SELECT ON public.secret2 FROM mallory;
INSERT INTO public.secret2 VALUES (2, 'hidden');
SQL
for my $p (qw(p_sec p_sec2))
{
	ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = '$p'", 'error'),
		"(h) $p stopped when its adder lost the right to read every row");
}
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_sec'"),
	qr/table "public\.secret" has row-level security/, '(h) p_sec: last_error names the table and RLS');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_sec2'"),
	qr/permission denied for table "public\.secret2"/, '(h) p_sec2: last_error names the table');
is(tgt_q("SELECT pg_catalog.count(*) FROM public.secret WHERE v = 'hidden'"), '0',
	'(h) the row hidden by the policy did not reach the target');
is(tgt_q("SELECT pg_catalog.count(*) FROM public.secret2 WHERE v = 'hidden'"), '0',
	'(h) the row of the revoked table did not reach the target');

# (i) the target's use, checked again where the worker uses it: mallory's
# running pipeline stops when the target's owner revokes her use of it
src_q(<<'SQL');
CREATE TABLE public.mine (id int PRIMARY KEY, v text);
ALTER TABLE public.mine OWNER TO mallory;
SQL
tgt_q('CREATE TABLE public.mine (id int PRIMARY KEY, v text)');
as_mallory("SELECT datasync.create_pipeline('p_mine', 'tgt', ARRAY['public.mine']::regclass[])");
as_mallory("INSERT INTO public.mine VALUES (1, 'before')");
ok(wait_for_sync($src, 'p_mine', 60), '(i) mallory\'s pipeline syncs while she may use the target');
src_q("SELECT datasync.revoke_target('tgt', 'mallory')");
ok(poll_until($src, "SELECT state FROM datasync.status WHERE name = 'p_mine'", 'error'),
	'(i) after revoke_target her pipeline stops');
like(src_q("SELECT last_error FROM datasync.status WHERE name = 'p_mine'"),
	qr/permission denied for target "tgt"/, '(i) last_error says why');
as_mallory("INSERT INTO public.mine VALUES (2, 'after')");
src_q("SELECT datasync.grant_target('tgt', 'mallory')");
src_q("SELECT datasync.resume('p_mine')");
ok(wait_for_sync($src, 'p_mine', 60), '(i) granted again and resumed, it syncs');
is(tgt_q('SELECT pg_catalog.count(*) FROM public.mine'), '2', '(i) nothing was lost');

# ---------------------------------------------------------------------------
# (g) a database owner's search_path
# ---------------------------------------------------------------------------
src_q('ALTER DATABASE postgres OWNER TO mallory');
as_mallory(<<'SQL');
CREATE FUNCTION mallory.int8eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.trap('operator');
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mallory.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = mallory.int8eq);
CREATE FUNCTION mallory.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.trap('operator');
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mallory.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mallory.texteq);
ALTER DATABASE postgres SET search_path = mallory, pg_catalog;
SQL
src_q('TRUNCATE mallory.ran');
$src->restart;
as_mallory('UPDATE mallory.t_dom SET v = 2 WHERE id = 1');
ok(wait_for_sync($src, 'p_dom', 60), '(g) the pipeline streams after the restart');
is(tgt_q('SELECT v FROM mallory.t_dom WHERE id = 1'), '2', '(g) the change was applied');
src_q("INSERT INTO public.plain VALUES (2, 'b')");
like(src_q("SELECT datasync.sync_now('p_manual', '60s')"), qr/"status": "succeeded"/,
	'(g) a manual run succeeds');
no_escalation('(g) database search_path');

done_testing();
