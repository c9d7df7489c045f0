# Copyright (c) 2026, datasync developers
#
# 220_http.pl -- the metrics worker: GET /metrics, /health and / over HTTP
# on datasync.http_listen:datasync.http_port, asked with curl.
#
# Topology: node "src_http" (datasync, datasync.http_port = a free port),
# node "tgt_http" (plain PostgreSQL).
#
#   1. /metrics: the Prometheus text format, the pipeline's counters with
#      labels (rows_applied_total by op), a histogram whose buckets are
#      cumulative and whose +Inf bucket equals _count; the same figure as
#      datasync.prometheus() and datasync.status;
#   2. /health: 200 and "ok"; 503 and "critical" while the pipeline is in
#      error; 200 again after the fix and resume (and some traffic);
#   3. /: an HTML page naming the pipeline (escaped), no external assets,
#      and once the worker has two samples, charts of throughput and lag;
#   4. what is not served: an unknown path (404), POST (405), a request
#      line of 100 kB (refused, and the worker answers the next request);
#      the worker never restarts meanwhile (same pid).
use strict;
use warnings FATAL => 'all';

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DatasyncTest;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $src = source_node('src_http', 'datasync.http_port' => $port);
my $tgt = target_node('tgt_http');

sub src_q { return $src->safe_psql('postgres', $_[0]); }
sub tgt_q { return $tgt->safe_psql('postgres', $_[0]); }

# GET (or another method) with curl: (status, body)
sub http
{
	my ($path, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'curl', '-s', '-m', '10', '-w', '\n%{http_code}', @args, "http://127.0.0.1:$port$path" ],
		'>', \$out, '2>', \$err);
	my ($body, $code) = $out =~ /^(.*)\n(\d+)$/s;
	return ($code // 0, $body // '');
}

# wait until the worker's next refresh shows what we expect
sub http_until
{
	my ($path, $code_want, $re) = @_;
	for (1 .. 600)
	{
		my ($code, $body) = http($path);
		return ($code, $body) if $code == $code_want && $body =~ $re;
		select(undef, undef, undef, 0.1);
	}
	return http($path);
}

for my $node ($src, $tgt)
{
	$node->safe_psql('postgres', 'CREATE TABLE items (id int PRIMARY KEY, v int)');
}
src_q('INSERT INTO items SELECT g, g FROM generate_series(1, 10) g');
my $dsn = target_dsn($tgt);
src_q("SELECT datasync.create_target('t', '$dsn')");
src_q(q{SELECT datasync.create_pipeline('web "1"', 't', ARRAY['items']::regclass[])});
wait_for_sync($src, 'web "1"', 90);
for my $i (1 .. 5)
{
	src_q("UPDATE items SET v = v + 1 WHERE id = $i");
}
src_q('DELETE FROM items WHERE id = 10');
wait_for_sync($src, 'web "1"', 90);
my $pid = src_q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'datasync metrics'");
like($pid, qr/^\d+$/, 'the metrics worker runs');

# ---- 1. /metrics ---------------------------------------------------------------
my ($code, $body) = http_until('/metrics', 200, qr/datasync_rows_applied_total\{pipeline="web \\"1\\"",op="update"\} 5\n/);
is($code, 200, '/metrics: 200');
like($body, qr/^# TYPE datasync_rows_applied_total counter$/m, '/metrics: TYPE lines');
like($body, qr/^datasync_rows_applied_total\{pipeline="web \\"1\\"",op="delete"\} 1$/m,
	'/metrics: a counter with labels, the label value escaped');
like($body, qr/^datasync_rows_copied_total\{pipeline="web \\"1\\""\} 10$/m, '/metrics: rows copied');
like($body, qr/^# TYPE datasync_commit_to_target_latency_seconds histogram$/m, '/metrics: a histogram');
my @buckets = $body =~ /^datasync_commit_to_target_latency_seconds_bucket\{pipeline="web \\"1\\"",le="([^"]+)"\} (\d+)$/mg;
my ($count) = $body =~ /^datasync_commit_to_target_latency_seconds_count\{pipeline="web \\"1\\""\} (\d+)$/m;
my %b = @buckets;
my @vals = map { $buckets[2 * $_ + 1] } 0 .. $#buckets / 2;
is(scalar(grep { $vals[$_] < $vals[$_ - 1] } 1 .. $#vals), 0, '/metrics: buckets are cumulative');
ok(defined $count && $count >= 6 && $b{'+Inf'} == $count, '/metrics: +Inf bucket equals _count');
like(src_q('SELECT datasync.prometheus()'), qr/datasync_rows_applied_total\{pipeline="web \\"1\\"",op="update"\} 5\n/,
	'datasync.prometheus(): the same text');
like($body, qr/^datasync_up\{pipeline="web \\"1\\"",state="streaming"\} 1$/m, '/metrics: the state as a label');

# ---- 2. /health ------------------------------------------------------------------
($code, $body) = http_until('/health', 200, qr/"status": "ok"/);
is($code, 200, '/health: 200 when healthy');
like($body, qr/"status": "ok"/, '/health: ok');
tgt_q('ALTER TABLE items ADD CONSTRAINT small CHECK (v < 1000)');
src_q('UPDATE items SET v = 5000 WHERE id = 1');
($code, $body) = http_until('/health', 503, qr/"status": "critical"/);
is($code, 503, '/health: 503 while a pipeline is in error');
like($body, qr/\{"check": "state"[^}]*"status": "critical"/, '/health: the state check says critical');
tgt_q('ALTER TABLE items DROP CONSTRAINT small');
src_q(q{SELECT datasync.resume('web "1"')});
src_q('DO $$BEGIN FOR i IN 1..30 LOOP UPDATE items SET v = v + 1 WHERE id = 2; COMMIT; END LOOP; END$$');
wait_for_sync($src, 'web "1"', 90);
($code, $body) = http_until('/health', 200, qr/"status": "ok"/);
is($code, 200, '/health: 200 again after the fix and resume');

# ---- 3. the status page -----------------------------------------------------------
($code, $body) = http('/');
is($code, 200, '/: 200');
like($body, qr/<!DOCTYPE html>.*web &quot;1&quot;/s, '/: an HTML page naming the pipeline, escaped');
unlike($body, qr/<(script|link|img)\b|https?:/i, '/: no external assets, no script');
# the worker samples every 10 s: two samples make a chart of throughput and lag
($code, $body) = http_until('/', 200, qr/<polyline[^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+/);
like($body, qr/<svg.*<polyline[^>]*stroke="#2962a8"[^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+.*<svg.*stroke="#b35c00"/s,
	'/: charts of throughput and lag over the last hour');

# ---- 4. what is not served ----------------------------------------------------------
($code) = http('/nope');
is($code, 404, 'an unknown path: 404');
($code) = http('/metrics', '-X', 'POST', '-d', 'x=1');
is($code, 405, 'POST: 405');
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 10)
	  or die "connect: $!";
	$sock->print('GET /' . ('a' x 100_000) . " HTTP/1.1\r\nHost: x\r\n\r\n");
	my $reply = '';
	$sock->recv($reply, 200);
	like($reply, qr{^HTTP/1\.1 (414|431|400)|^$}, 'a request line of 100 kB is refused');
	close($sock);
}
($code) = http('/metrics');
is($code, 200, 'the worker answers the next request');
is(src_q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'datasync metrics'"), $pid,
	'the metrics worker never restarted');

done_testing();
