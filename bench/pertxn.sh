#!/usr/bin/env bash
# bench/pertxn.sh -- CPU and context switches per source transaction under
# W2's pgbench load, by process, for one system.  Run as root.
#
#   bash bench/pertxn.sh [--system datasync|native] [--seconds N] [--runs N]
#
# TPS on a shared machine moves with the neighbours; the work each process
# does per source transaction moves much less.  So an A/B of two datasync
# builds is: make install one, run this, make install the other, run this,
# and so on in turns; compare the worker's and the target backend's figures,
# also against the walsender's (whose work per transaction does not depend
# on datasync's build).  See docs/performance.md ("fourth session").
#
# Two throwaway clusters under /tmp/dspertxn (Unix sockets only), pgbench
# scale 10 as in W2, then --runs runs of pgbench -c 4 -j 2 -T --seconds.
# The clusters are stopped by pid and removed at the end, also on failure.
set -euo pipefail

SYSTEM=datasync
SECONDS_PER_RUN=12
RUNS=3
while [ $# -gt 0 ]; do
	case "$1" in
		--system) SYSTEM=$2; shift 2 ;;
		--seconds) SECONDS_PER_RUN=$2; shift 2 ;;
		--runs) RUNS=$2; shift 2 ;;
		*) echo "usage: $0 [--system datasync|native] [--seconds N] [--runs N]" >&2; exit 2 ;;
	esac
done
case "$SYSTEM" in datasync|native) ;; *) echo "pertxn: --system is datasync or native" >&2; exit 2 ;; esac
[[ "$SECONDS_PER_RUN" =~ ^[1-9][0-9]*$ && "$RUNS" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "pertxn: --seconds and --runs take positive integers" >&2; exit 2; }

BASE=/tmp/dspertxn
SOCK=$BASE/sock
BIN=/usr/lib/postgresql/15/bin
SRC_PORT=5611
TGT_PORT=5612

die() { echo "pertxn: ERROR: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run me as root (the servers run as the postgres user via runuser)"
[ -x "$BIN/pgbench" ] || die "$BIN/pgbench not found"
[ -f "$($BIN/pg_config --pkglibdir)/datasync.so" ] || die "datasync is not installed (make install)"

as_pg() { runuser -u postgres -- "$@"; }
psql_src() { PGOPTIONS="-c client_min_messages=warning" as_pg psql -qAtX -v ON_ERROR_STOP=1 -h "$SOCK" -p $SRC_PORT bench "$@"; }
psql_tgt() { PGOPTIONS="-c client_min_messages=warning" as_pg psql -qAtX -v ON_ERROR_STOP=1 -h "$SOCK" -p $TGT_PORT bench "$@"; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
cleanup() { bench_stop_clusters "$BASE"; }
bench_refuse_running "$BASE" bench/pertxn.sh
rm -rf "$BASE"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$SOCK"
chown -R postgres:postgres "$BASE"

[ -x /usr/bin/python3 ] || die "/usr/bin/python3 is needed (bench/run.sh installs it)"
# the clusters of bench.py, with its postgresql.conf (CONF)
for c in src:$SRC_PORT tgt:$TGT_PORT; do
	n=${c%%:*}
	p=${c##*:}
	as_pg "$BIN/initdb" -D "$BASE/$n/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
	/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import bench
print(bench.CONF.format(sock=sys.argv[2], port=int(sys.argv[3]), db="bench"))' "$HERE" "$SOCK" "$p" \
		>>"$BASE/$n/data/postgresql.conf"
	echo "CREATE DATABASE bench" | as_pg "$BIN/postgres" --single -D "$BASE/$n/data" postgres >"$BASE/$n/single.log" 2>&1 ||
		die "creating the database failed: $(tail -5 "$BASE/$n/single.log")"
	as_pg "$BIN/pg_ctl" -D "$BASE/$n/data" -l "$BASE/$n/server.log" -w start >/dev/null
done

# W2's tables and rows, from bench.py (PGB_DDL, PGB_LOAD)
from_bench() {
	/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import bench
print(getattr(bench, sys.argv[2]).format(s=10))' "$HERE" "$1"
}
DDL=$(from_bench PGB_DDL)
TABLES="pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
psql_src -c "$DDL" -c "CREATE EXTENSION datasync" -c "$(from_bench PGB_LOAD)" >/dev/null
psql_tgt -c "$DDL" >/dev/null
if [ "$SYSTEM" = datasync ]; then
	psql_src -c "SELECT datasync.create_target('tgt', 'host=$SOCK port=$TGT_PORT dbname=bench')" \
		-c "SELECT datasync.create_pipeline('p', 'tgt', '{$TABLES}'::regclass[])" >/dev/null
else
	psql_src -c "CREATE PUBLICATION p FOR TABLE $TABLES" >/dev/null
	psql_tgt -c "CREATE SUBSCRIPTION p CONNECTION 'host=$SOCK port=$SRC_PORT dbname=bench' PUBLICATION p" >/dev/null
fi
for _ in $(seq 300); do
	[ "$(psql_tgt -c 'SELECT count(*) FROM pgbench_accounts')" = 1000000 ] && break
	sleep 1
done
[ "$(psql_tgt -c 'SELECT count(*) FROM pgbench_accounts')" = 1000000 ] || die "the initial copy did not finish"
sleep 2
psql_src -c CHECKPOINT
psql_tgt -c CHECKPOINT

# the processes: the postmaster's children, by their titles
children() { ps -o pid=,args= --ppid "$(head -1 "$BASE/$1/data/postmaster.pid")"; }
pid_of() { children "$1" | grep -E "$2" | awk '{print $1}' | head -1 || true; }
WALSENDER=$(pid_of src 'walsender .*START_REPLICATION')
if [ "$SYSTEM" = datasync ]; then
	WORKER=$(pid_of src 'datasync worker')
	APPLY=$(pid_of tgt 'postgres bench \[local\]')
else
	WORKER=
	APPLY=$(pid_of tgt 'logical replication worker')
fi
[ -n "$WALSENDER" ] && [ -n "$APPLY" ] || die "replication processes not found"
[ "$SYSTEM" = native ] || [ -n "$WORKER" ] || die "datasync worker not found"

ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
switches() { [ -n "$1" ] && awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$1/status" || echo 0; }
HZ=$(getconf CLK_TCK)

echo "system: $SYSTEM; build: $(md5sum "$($BIN/pg_config --pkglibdir)/datasync.so" | cut -c1-12); pgbench -c 4 -j 2 -T $SECONDS_PER_RUN, $RUNS runs"
echo "per source transaction: CPU in µs (switches); target = datasync's target backend or native's apply worker"
for run in $(seq "$RUNS"); do
	a1=$(ticks "$APPLY"); w1=$(ticks "$WORKER"); s1=$(ticks "$WALSENDER")
	aw1=$(switches "$APPLY"); ww1=$(switches "$WORKER")
	out=$(as_pg "$BIN/pgbench" -n -b tpcb-like -c 4 -j 2 -T "$SECONDS_PER_RUN" -h "$SOCK" -p $SRC_PORT bench 2>&1) ||
		die "pgbench failed: $out"
	# let the sync catch up: the target's branch balances equal the source's
	want=$(psql_src -c 'SELECT sum(bbalance) FROM pgbench_branches')
	for _ in $(seq 600); do
		[ "$(psql_tgt -c 'SELECT sum(bbalance) FROM pgbench_branches')" = "$want" ] && break
		sleep 0.1
	done
	[ "$(psql_tgt -c 'SELECT sum(bbalance) FROM pgbench_branches')" = "$want" ] || die "the target did not catch up"
	a2=$(ticks "$APPLY"); w2=$(ticks "$WORKER"); s2=$(ticks "$WALSENDER")
	aw2=$(switches "$APPLY"); ww2=$(switches "$WORKER")
	n=$(echo "$out" | awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}')
	tps=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
	awk -v run="$run" -v n="$n" -v tps="$tps" -v hz="$HZ" -v a=$((a2 - a1)) -v w=$((w2 - w1)) -v s=$((s2 - s1)) \
		-v aw=$((aw2 - aw1)) -v ww=$((ww2 - ww1)) -v sys="$SYSTEM" 'BEGIN {
		us = 1e6 / hz / n;
		printf "run %d: %s tps, %d txns | target %.1f (%.2f)", run, tps, n, a * us, aw / n;
		if (sys == "datasync") printf " | worker %.1f (%.2f)", w * us, ww / n;
		printf " | walsender %.1f | target/walsender %.2f", s * us, (s > 0 ? a / s : 0);
		if (sys == "datasync") printf " | worker/walsender %.2f", (s > 0 ? w / s : 0);
		printf "\n";
	}'
done
