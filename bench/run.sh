#!/usr/bin/env bash
# bench/run.sh -- datasync vs native logical replication, side by side.  Run as root.
#
#   bash bench/run.sh            full run: 3 repetitions (about 20-30 minutes)
#   bash bench/run.sh --quick    1 repetition, smaller workloads (a few minutes)
#
# Extra options go to bench/bench.py (--reps N, --only W1,W3, --systems datasync).
# Throwaway clusters live under /tmp/dsbench and are stopped (by pid) and removed
# at the end, also on failure or Ctrl-C.  Results: bench/results/<timestamp>.md/.json.
# See bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=/tmp/dsbench
PGBIN=/usr/lib/postgresql/15/bin

die() { echo "bench: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (servers and psql run as the postgres user via runuser)"
[ -x "$PGBIN/pgbench" ] || die "$PGBIN/pgbench not found (postgresql-15 / postgresql-client-15)"
id postgres >/dev/null 2>&1 || die "no postgres OS user"
[ -f "$($PGBIN/pg_config --pkglibdir)/datasync.so" ] || die "datasync is not installed (cd /work/main && make install)"

PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
	echo "bench: installing python3" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y python3 >/dev/null || {
		apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 >/dev/null; }
fi

# shared with bench/pertxn.sh: stop by pid, refuse to trample on a running one
. "$HERE/lib.sh"
cleanup() { bench_stop_clusters "$BASE"; }
bench_refuse_running "$BASE" bench/run.sh
rm -rf "$BASE"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$BASE/sock"
chown -R postgres:postgres "$BASE"
chmod 755 "$BASE"

"$PY" "$HERE/bench.py" "$@"
