# bench/lib.sh -- what bench/run.sh and bench/pertxn.sh share: throwaway
# clusters under one directory, each in <dir>/<name>/data, stopped by the
# pid in their postmaster.pid.  Sourced, not run.

# Stop every server under $1 that is still up, then remove $1.
bench_stop_clusters() {
	local base=$1 pidfile pid
	for pidfile in "$base"/*/data/postmaster.pid; do
		[ -f "$pidfile" ] || continue
		pid=$(head -1 "$pidfile")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -QUIT "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$base"
}

# Refuse to trample on a run under $1 that is still going ($2: who runs there).
bench_refuse_running() {
	local base=$1 who=$2 pidfile pid
	for pidfile in "$base"/*/data/postmaster.pid; do
		[ -f "$pidfile" ] || continue
		pid=$(head -1 "$pidfile")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			echo "bench: ERROR: a benchmark server is still running (pid $pid, $pidfile); is another $who running?" >&2
			exit 1
		fi
	done
}
