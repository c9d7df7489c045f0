#!/usr/bin/env bash
# scripts/test.sh -- THE test command of datasync (CI runs it through .ci/run).
# Run as root from anywhere:  bash scripts/test.sh
# (developers: DS_TAP="test/t/010_x.pl" or DS_TAP=none, DS_REGRESS=0 narrow the run;
#  DS_PGBIN=/opt/pgX/usr/lib/postgresql/15/bin builds, installs and tests against a
#  relocated copy of the PostgreSQL tree instead of the system's, so that two
#  checkouts can be tested side by side)
#
#   1. scripts/setup.sh --deps-only     install missing Debian packages
#   2. copy the working tree (without .git and test output) to a fresh
#      /tmp/datasync-test.XXXXXX owned by the `postgres` OS user
#   3. build there as postgres (make WERROR=1), install as root (make install)
#   4. as postgres: make installcheck = pg_regress with its own temporary
#      server (tmp_regress/), then the TAP tests test/t/*.pl via prove
#   5. on failure print regression.diffs and the tail of the server/TAP logs
#      and exit non-zero (the copy is kept); on success print a summary and
#      remove the copy.
#
# PostgreSQL refuses to run as root, hence the postgres user.  Every server
# the tests start lives under the copy; an EXIT trap stops any left running.
# No network is needed except apt (and only when a package is missing).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PGBIN=${DS_PGBIN:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=$PGBIN/pg_config
export PATH=$PGBIN:$PATH
# A locale that always exists on Debian, so initdb works whatever the caller had.
export LANG=C.UTF-8 LC_ALL=C.UTF-8
TEST_USER=postgres
LOG_TAIL=80

step() { echo "==> test: $*"; }
die()  { echo "test: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (I install packages and run the tests as '$TEST_USER')"

# Run a command as the test user with our environment.  PERL5LIB makes
# test/perl (DatasyncTest.pm) visible to the TAP tests even though PGXS's
# Makefile.global resets a PROVE_FLAGS set before `include $(PGXS)`.  TMPDIR
# puts the servers' socket directories (pg_regress, PostgreSQL::Test::Utils)
# under the copy too, so nothing is left behind in /tmp.
as_test_user() {
	runuser -u "$TEST_USER" -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" LANG="$LANG" LC_ALL="$LC_ALL" \
		PERL5LIB="$WORK/test/perl${PERL5LIB:+:$PERL5LIB}" TMPDIR="$WORK/tmp" "$@"
}

# ---- 1. packages ----------------------------------------------------------
step "scripts/setup.sh --deps-only"
bash "$REPO/scripts/setup.sh" --deps-only

# ---- 2. copy ------------------------------------------------------------------
WORK=$(mktemp -d /tmp/datasync-test.XXXXXX)

# Stop every postmaster whose data directory is under $WORK (normally none:
# pg_regress and PostgreSQL::Test::Cluster stop their own servers).
stop_leftover_servers() {
	local pidfile pid datadir
	while IFS= read -r -d '' pidfile; do
		pid=$(sed -n 1p "$pidfile" 2>/dev/null || true)
		datadir=$(sed -n 2p "$pidfile" 2>/dev/null || true)
		[[ "$pid" =~ ^[0-9]+$ ]] || continue
		[[ "$datadir" == "$WORK"/* ]] || continue
		kill -0 "$pid" 2>/dev/null || continue
		grep -q postgres "/proc/$pid/cmdline" 2>/dev/null || continue
		echo "==> test: stopping leftover postmaster $pid ($datadir)"
		kill -QUIT "$pid" 2>/dev/null || true          # immediate shutdown
		for _ in $(seq 1 50); do               # up to 10 s
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done < <(find "$WORK" -name postmaster.pid -print0 2>/dev/null)
}

on_exit() {
	local rc=$?
	stop_leftover_servers || true
	if [ "$rc" -eq 0 ]; then
		rm -rf "$WORK"
	else
		echo "==> test: FAILED (exit $rc); build/test tree kept in $WORK" >&2
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "copying working tree to $WORK"
tar -C "$REPO" --anchored \
	--exclude=./.git --exclude=./tmp_check --exclude=./tmp_regress --exclude=./results \
	--exclude=./regression.diffs --exclude=./regression.out --exclude=./log \
	-cf - . | tar -C "$WORK" -xf -
mkdir -p "$WORK/tmp"
chown -R "$TEST_USER:" "$WORK"

# ---- 3. build and install -----------------------------------------------------
step "building as $TEST_USER: make clean all WERROR=1"
as_test_user make -C "$WORK" clean all WERROR=1

step "installing as root: make install"
make -C "$WORK" install WERROR=1

# ---- 4. installcheck ----------------------------------------------------------
extra=()
if ! compgen -G "$WORK/test/t/*.pl" >/dev/null; then
	# With no test/t/*.pl, PGXS would run `prove t/*.pl` and fail.
	echo "==> test: WARNING: no TAP tests in test/t/, running pg_regress only"
	extra+=(TAP_TESTS=)
fi

# Developer knobs (not used by CI): DS_TAP="test/t/010_x.pl ..." runs only
# those TAP files; DS_TAP=none skips TAP; DS_REGRESS=0 skips pg_regress.
if [ -n "${DS_TAP:-}" ]; then
	if [ "$DS_TAP" = none ]; then extra+=(TAP_TESTS=); else extra+=("PROVE_TESTS=$DS_TAP"); fi
fi
if [ "${DS_REGRESS:-1}" = 0 ]; then extra+=(REGRESS=); fi

step "running as $TEST_USER: make installcheck (pg_regress, then TAP)"
OUT=$WORK/installcheck.out
if as_test_user make -C "$WORK" installcheck "${extra[@]}" 2>&1 | tee "$OUT"; then
	rc=0
else
	rc=$?
fi

# ---- 5. report ----------------------------------------------------------------
show_tail() {   # show_tail FILE: last $LOG_TAIL lines of FILE
	echo
	echo "----- tail -n $LOG_TAIL $1 -----"
	tail -n "$LOG_TAIL" "$1"
	echo "----- end of $1 -----"
}

if [ "$rc" -ne 0 ]; then
	echo
	echo "==> test: make installcheck FAILED (exit $rc)"
	if [ -s "$WORK/regression.diffs" ]; then
		echo
		echo "----- $WORK/regression.diffs -----"
		cat "$WORK/regression.diffs"
		echo "----- end of regression.diffs -----"
		# pg_regress writes its temporary server's log to log/postmaster.log
		if [ -f "$WORK/log/postmaster.log" ]; then show_tail "$WORK/log/postmaster.log"; fi
	fi
	if [ -d "$WORK/tmp_check/log" ]; then
		# Failing TAP tests, as listed in prove's "Test Summary Report".
		mapfile -t failed < <(sed -n '/^Test Summary Report/,$p' "$OUT" \
			| sed -n 's/^\([^ ]*\.pl\) .*(Wstat:.*/\1/p' | sort -u)
		logs=()
		if [ ${#failed[@]} -gt 0 ]; then
			echo "==> test: failing TAP tests: ${failed[*]}"
			for t in "${failed[@]}"; do
				base=$(basename "$t" .pl)
				for f in "$WORK/tmp_check/log/regress_log_$base" "$WORK/tmp_check/log/${base}_"*.log; do
					[ -f "$f" ] && logs+=("$f")
				done
			done
		else
			# prove did not say which test failed (e.g. it died): show all logs.
			for f in "$WORK/tmp_check/log/"*; do
				[ -f "$f" ] && logs+=("$f")
			done
		fi
		for f in ${logs[@]+"${logs[@]}"}; do show_tail "$f"; done
	fi
	exit "$rc"
fi

# Summary: pg_regress prints "All N tests passed.", prove "Files=F, Tests=T, ...".
regress_n=$(sed -n 's/^ *All \([0-9][0-9]*\) tests passed.*/\1/p' "$OUT" | tail -n 1)
tap_files=$(sed -n 's/^Files=\([0-9]*\), Tests=[0-9]*.*/\1/p' "$OUT" | tail -n 1)
tap_n=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\).*/\1/p' "$OUT" | tail -n 1)
echo
step "summary: pg_regress: ${regress_n:-0} tests passed; TAP: ${tap_n:-0} tests in ${tap_files:-0} files passed"
echo "datasync: $(( ${regress_n:-0} + ${tap_n:-0} )) passed, 0 failed"
