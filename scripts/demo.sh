#!/usr/bin/env bash
# scripts/demo.sh -- datasync end to end on two throw-away local clusters.
# Run as root on Debian 12, from anywhere:  bash scripts/demo.sh
#
#   1. scripts/setup.sh: install missing packages, build and install datasync
#   2. stop and remove the clusters of a previous demo (/tmp/datasync-demo)
#   3. as the `postgres` OS user, initdb two clusters (trust auth, Unix socket
#      only, socket directory /tmp/datasync-demo):
#        source  port 5433  shared_preload_libraries = 'datasync,pg_cron',
#                           wal_level = logical, datasync.database = 'demo',
#                           cron.database_name = 'demo'
#        target  port 5434  a plain PostgreSQL
#   4. database `demo` on both, with the same tables: users, orders,
#      order_items, inventory; a few hundred rows on the source
#   5. CREATE EXTENSION datasync, pg_cron; a target and one pipeline of each
#      mode: users-sync (users, real-time), orders-sync (orders, order_items,
#      manual), inventory-sync (inventory, scheduled every minute by pg_cron)
#   6. 10 seconds of pgbench traffic (inserts, updates, deletes) on the source
#   7. users-sync: datasync.wait_for_sync(); orders-sync: datasync.sync_now();
#      inventory-sync: wait for its next pg_cron run (at most a minute); then
#      datasync.status, datasync.jobs and a source-vs-target comparison of
#      every table (row count and md5)
#
# Exits non-zero if a pipeline does not catch up or a table differs.  The
# clusters are left running; the last lines say how to connect and stop.
# Idempotent: a second run starts again from scratch.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
DEMO=/tmp/datasync-demo
SRC=$DEMO/source
TGT=$DEMO/target
SRC_PORT=5433
TGT_PORT=5434
DB=demo
OS_USER=postgres
ACTIVITY_SECONDS=10
# initdb and psql need a locale that exists whatever the caller has
export LANG=C.UTF-8 LC_ALL=C.UTF-8

step() { echo; echo "==> demo: $*"; }
die()  { echo "demo: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (I install packages and run the clusters as '$OS_USER')"

# ---- 1. packages, build, install ------------------------------------------
step "scripts/setup.sh (packages, build, make install)"
# Only setup's own progress lines here; the whole output goes to a log.
SETUP_LOG=/tmp/datasync-demo-setup.log
if ! bash "$REPO/scripts/setup.sh" >"$SETUP_LOG" 2>&1; then
	tail -n 40 "$SETUP_LOG"
	die "scripts/setup.sh failed (log: $SETUP_LOG)"
fi
grep '^==> setup' "$SETUP_LOG" | sed 's/^/    /'

# Everything below runs as the postgres user, from a directory it can read.
cd /
as_pg() { runuser -u "$OS_USER" -- env LANG="$LANG" LC_ALL="$LC_ALL" "$@"; }
# psql on one of the clusters: psql_on PORT [psql args...]
psql_on() {
	local port=$1
	shift
	as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DEMO" -p "$port" -d "$DB" "$@"
}
# one value: value_on PORT SQL
value_on() { psql_on "$1" -At -c "$2"; }

# On failure, show the end of the server logs.
on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		for log in "$DEMO/source.log" "$DEMO/target.log"; do
			if [ -f "$log" ]; then
				echo
				echo "----- tail -n 30 $log -----"
				tail -n 30 "$log"
			fi
		done
		echo
		echo "demo: FAILED (exit $rc); the clusters (if started) are left in $DEMO" >&2
	fi
	exit "$rc"
}
trap on_exit EXIT

# ---- 2. previous demo ---------------------------------------------------------
# Stop a postmaster whose data directory is $1: pg_ctl stop -m immediate,
# else SIGQUIT (immediate shutdown) and finally SIGKILL to the pid in
# postmaster.pid, after checking that it is a postgres of that directory.
stop_cluster() {
	local datadir=$1 pid piddir
	[ -f "$datadir/postmaster.pid" ] || return 0
	pid=$(sed -n 1p "$datadir/postmaster.pid" 2>/dev/null || true)
	piddir=$(sed -n 2p "$datadir/postmaster.pid" 2>/dev/null || true)
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	[ "$piddir" = "$datadir" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	grep -q postgres "/proc/$pid/cmdline" 2>/dev/null || return 0
	echo "    stopping the postmaster $pid of $datadir"
	as_pg "$PGBIN/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	if kill -0 "$pid" 2>/dev/null; then
		kill -QUIT "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

step "removing a previous demo in $DEMO"
stop_cluster "$SRC"
stop_cluster "$TGT"
rm -rf "$DEMO"
mkdir -p "$DEMO"
chown "$OS_USER:" "$DEMO"
chmod 700 "$DEMO"

# ---- 3. two clusters ------------------------------------------------------------
# start_cluster DATADIR LOGFILE
start_cluster() {
	as_pg "$PGBIN/pg_ctl" -D "$1" -l "$2" -w -t 60 start >/dev/null \
		|| die "could not start the cluster in $1 (log: $2)"
}

for dir in "$SRC" "$TGT"; do
	step "initdb $dir"
	as_pg "$PGBIN/initdb" -D "$dir" -A trust -U "$OS_USER" -E UTF8 --no-instructions >/dev/null
done

cat >>"$SRC/postgresql.conf" <<EOF

# ---- datasync demo: source ----
port = $SRC_PORT
listen_addresses = ''
unix_socket_directories = '$DEMO'
EOF
cat >>"$TGT/postgresql.conf" <<EOF

# ---- datasync demo: target ----
port = $TGT_PORT
listen_addresses = ''
unix_socket_directories = '$DEMO'
EOF

# The source gets datasync only once database demo exists: the launcher
# connects to datasync.database when the server starts.
step "starting the target (port $TGT_PORT) and the source (port $SRC_PORT)"
start_cluster "$TGT" "$DEMO/target.log"
start_cluster "$SRC" "$DEMO/source.log"
for port in $SRC_PORT $TGT_PORT; do
	as_pg "$PGBIN/createdb" -h "$DEMO" -p "$port" "$DB"
done

cat >>"$SRC/postgresql.conf" <<EOF
shared_preload_libraries = 'datasync,pg_cron'
wal_level = logical
max_replication_slots = 10      # one slot a pipeline, plus one while a table is copied
max_wal_senders = 10            # one WAL sender a pipeline, plus one while a table is copied
max_worker_processes = 20       # launcher + one worker a pipeline + pg_cron's + PostgreSQL's own
datasync.database = '$DB'
cron.database_name = '$DB'      # pg_cron runs the scheduled pipeline
cron.use_background_workers = on
EOF
step "restarting the source with shared_preload_libraries = 'datasync,pg_cron', wal_level = logical"
as_pg "$PGBIN/pg_ctl" -D "$SRC" -l "$DEMO/source.log" -m fast -w -t 60 restart >/dev/null \
	|| die "could not restart the source (log: $DEMO/source.log)"

# ---- 4. schema and seed data ------------------------------------------------------
SCHEMA=$(cat "$REPO/scripts/demo-schema.sql")
step "tables users, orders, order_items, inventory on both clusters"
psql_on $SRC_PORT -c "$SCHEMA"
psql_on $TGT_PORT -c "$SCHEMA"

step "seeding the source"
psql_on $SRC_PORT < "$REPO/scripts/demo-seed.sql"
psql_on $SRC_PORT -c "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM orders) AS orders,
                             (SELECT count(*) FROM order_items) AS order_items, (SELECT count(*) FROM inventory) AS inventory"

# ---- 5. datasync --------------------------------------------------------------------
step "CREATE EXTENSION datasync, pg_cron; one target, a pipeline of each mode"
psql_on $SRC_PORT -e <<EOSQL
CREATE EXTENSION datasync;
CREATE EXTENSION pg_cron;
SELECT datasync.create_target('demo-target', 'host=$DEMO port=$TGT_PORT dbname=$DB');
EOSQL
# One after the other: each pipeline's worker copies its tables and then
# streams; wait_for_sync returns once the copy is on the target.  (Workers
# of pipelines created at the same moment on a new target race to create
# its progress table, public.datasync_progress; all but one stop in state
# "error" until datasync.resume().  Creating the first one alone avoids it.)
# A manual or scheduled pipeline copies its tables in its first run: the
# demo asks for that run at once with sync_now().
create_pipeline() {   # create_pipeline NAME MODE_ARGS TABLE...
	local name=$1 mode=$2 tables
	shift 2
	tables=$(printf "'%s', " "$@")
	psql_on $SRC_PORT -e -c "SELECT datasync.create_pipeline('$name', 'demo-target', ARRAY[${tables%, }]::regclass[]$mode)"
	if [ -z "$mode" ]; then
		[ "$(value_on $SRC_PORT "SELECT datasync.wait_for_sync('$name', '60s')")" = t ] \
			|| die "pipeline $name did not finish its initial copy within 60 s"
	else
		[ "$(value_on $SRC_PORT "SELECT datasync.sync_now('$name', '60s')->>'status'")" = succeeded ] \
			|| die "the first run of pipeline $name did not succeed within 60 s"
	fi
}
create_pipeline users-sync "" users
create_pipeline orders-sync ", mode => 'manual'" orders order_items
create_pipeline inventory-sync ", mode => 'scheduled', schedule => '* * * * *'" inventory
psql_on $SRC_PORT -c "SELECT jobname, schedule, command FROM cron.job"

# ---- 6. activity -------------------------------------------------------------------
WORKLOAD=$DEMO/workload.sql
cat >"$WORKLOAD" <<'EOSQL'
-- one pgbench "transaction": a new customer places an order, stock moves,
-- an order changes status, and now and then an order or a customer goes
\set nitems random(1, 4)
\set sku random(1, 50)
\set back random(0, 40)
\set dice random(1, 10)
BEGIN;
SELECT nextval('users_id_seq') AS uid, nextval('orders_id_seq') AS oid \gset
INSERT INTO users (id, name, email) VALUES (:uid, 'User ' || :uid, 'user' || :uid || '@example.com');
INSERT INTO orders (id, user_id) VALUES (:oid, :uid);
INSERT INTO order_items (order_id, line_no, sku, qty, price)
    SELECT :oid, l, 'SKU-' || lpad((1 + (:oid + l * 7) % 50)::text, 4, '0'), 1 + l % 3, 4.75 * l
      FROM generate_series(1, :nitems) l;
UPDATE orders SET total = (SELECT sum(qty * price) FROM order_items WHERE order_id = :oid) WHERE id = :oid;
COMMIT;
UPDATE inventory SET qty = qty - 1, updated_at = now() WHERE sku = 'SKU-' || lpad(:sku::text, 4, '0');
UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE 'delivered' END
 WHERE id = (SELECT max(id) FROM orders) - :back;
\if :dice = 1
DELETE FROM orders WHERE id = (SELECT min(id) FROM orders);
\elif :dice = 2
UPDATE users SET name = name || ' Jr.', updated_at = now() WHERE id = (SELECT max(id) FROM users) - :back;
\elif :dice = 3
DELETE FROM users u WHERE u.id = (SELECT min(id) FROM users)
   AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id);
\endif
EOSQL
chown "$OS_USER:" "$WORKLOAD"

step "activity: pgbench -n -T $ACTIVITY_SECONDS -c 2 -f $WORKLOAD"
if as_pg "$PGBIN/pgbench" -n -T "$ACTIVITY_SECONDS" -c 2 -f "$WORKLOAD" -h "$DEMO" -p $SRC_PORT "$DB" \
	>"$DEMO/pgbench.out" 2>&1; then
	grep -E '^(number of transactions actually processed|latency average|tps)' "$DEMO/pgbench.out" \
		| sed 's/^/    /'
else
	# a client that hit an error stops early; the comparison below still holds
	echo "demo: WARNING: pgbench reported errors:" >&2
	sed 's/^/    /' "$DEMO/pgbench.out" >&2
fi

# ---- 7. results --------------------------------------------------------------------
synced=1
ACTIVITY_END=$(value_on $SRC_PORT "SELECT now()")
step "users-sync (real-time): SELECT datasync.wait_for_sync('users-sync', '60s')"
r=$(value_on $SRC_PORT "SELECT datasync.wait_for_sync('users-sync', '60s')")
echo "    $r"
[ "$r" = t ] || synced=0

step "orders-sync (manual): the target has what the last run applied, until datasync.sync_now('orders-sync')"
for tbl in orders order_items; do
	printf '    %-12s source %6s rows, target %6s rows\n' "$tbl" \
		"$(value_on $SRC_PORT "SELECT count(*) FROM $tbl")" "$(value_on $TGT_PORT "SELECT count(*) FROM $tbl")"
done
psql_on $SRC_PORT -c "SELECT j->>'status' AS status, j->>'rows_inserted' AS inserted, j->>'rows_updated' AS updated,
       j->>'rows_deleted' AS deleted, j->>'transactions' AS transactions, round((j->>'duration_ms')::numeric, 1) AS ms
  FROM datasync.sync_now('orders-sync', '60s') j"

step "inventory-sync (scheduled '* * * * *'): waiting for its next pg_cron run (at most about a minute)"
r=f
for _ in $(seq 1 90); do
	r=$(value_on $SRC_PORT "SELECT EXISTS (SELECT FROM datasync.jobs WHERE pipeline = 'inventory-sync'
	      AND kind = 'scheduled' AND status = 'succeeded' AND requested_at > '$ACTIVITY_END')")
	[ "$r" = t ] && break
	sleep 1
done
echo "    scheduled run done: $r"
[ "$r" = t ] || synced=0

step "datasync.jobs"
psql_on $SRC_PORT -P footer=off -c "SELECT id, pipeline, kind, status, rows_applied, transactions, round(duration_ms::numeric, 1) AS ms
  FROM datasync.jobs ORDER BY id"

step "datasync.status"
psql_on $SRC_PORT -P footer=off -c "SELECT name, mode, state, target, lag_bytes, last_applied_lsn, rows_applied, errors, last_error
  FROM datasync.status ORDER BY name"

step "source vs target"
HASH_SQL="SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text COLLATE \"C\")), md5(''))"
differ=0
printf '    %-12s %12s %12s  %s\n' table "source rows" "target rows" match
printf '    %-12s %12s %12s  %s\n' ------------ ------------ ------------ -----
for tbl in users orders order_items inventory; do
	s=$(value_on $SRC_PORT "$HASH_SQL FROM $tbl t")
	t=$(value_on $TGT_PORT "$HASH_SQL FROM $tbl t")
	srows=${s%% *} shash=${s#* } trows=${t%% *} thash=${t#* }
	if [ "$srows" = "$trows" ] && [ "$shash" = "$thash" ]; then
		match=yes
	else
		match=no
		differ=1
	fi
	printf '    %-12s %12s %12s  %s\n' "$tbl" "$srows" "$trows" "$match"
done

cat <<EOF

==> demo: the clusters keep running.
    source (datasync):  psql -h $DEMO -p $SRC_PORT -U $OS_USER $DB
    target:             psql -h $DEMO -p $TGT_PORT -U $OS_USER $DB
    (as root, -U $OS_USER is needed: the clusters have no role "root";
     or: runuser -u $OS_USER -- psql -h $DEMO -p $SRC_PORT $DB)
    status page:        http://127.0.0.1:9090/   (also /metrics and /health; datasync.http_port)
    logs:               $DEMO/source.log, $DEMO/target.log
    stop them:          runuser -u $OS_USER -- $PGBIN/pg_ctl -D $SRC stop
                        runuser -u $OS_USER -- $PGBIN/pg_ctl -D $TGT stop
    remove them:        rm -rf $DEMO   (after stopping; bash scripts/demo.sh does both)
EOF

[ "$synced" -eq 1 ] || die "a pipeline did not catch up (see datasync.status above)"
[ "$differ" -eq 0 ] || die "source and target differ (see the table above)"
echo
echo "demo: OK: every table on the target equals the source"
