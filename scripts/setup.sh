#!/usr/bin/env bash
# scripts/setup.sh -- set up a Debian 12 machine for datasync.  Run as root.
#
#   bash scripts/setup.sh              install missing packages, then build and install datasync
#   bash scripts/setup.sh --deps-only  only install missing packages
#
# Idempotent: packages are checked with dpkg-query and apt-get (and its
# `update`) runs only when something is missing.  It never starts, stops or
# uses the Debian default cluster (15/main) that installing postgresql-15 may
# create; the tests run their own temporary servers.
#
# The build runs as the unprivileged `postgres` user in a throw-away copy of the
# working tree (PostgreSQL tools refuse to run as root, and a root-owned build
# in the repo would get in the way later); only `make install` runs as root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PGBIN=/usr/lib/postgresql/15/bin
export PG_CONFIG=$PGBIN/pg_config
export PATH=$PGBIN:$PATH
TEST_USER=postgres

# Everything needed to build datasync and to run pg_regress and the TAP tests
# (PostgreSQL::Test::Cluster ships with postgresql-server-dev-15's dependencies
# and needs IPC::Run; IO::Pty for interactive_psql; prove comes with perl).
PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	libpq-dev libcurl4-openssl-dev libmicrohttpd-dev curl
	make gcc libc6-dev
	perl libipc-run-perl libio-pty-perl
	python3 python3-yaml
)

step() { echo "==> setup: $*"; }
die()  { echo "setup: ERROR: $*" >&2; exit 1; }

deps_only=0
for arg in "$@"; do
	case "$arg" in
		--deps-only) deps_only=1 ;;
		-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown option: $arg (usage: $0 [--deps-only])" ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die "run me as root (packages are installed with apt-get)"

# ---- 1. packages ----------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	step "all ${#PACKAGES[@]} packages already installed"
else
	command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian 12"
	export DEBIAN_FRONTEND=noninteractive
	aptlog=$(mktemp /tmp/datasync-apt.XXXXXX)
	step "apt-get update (missing: ${missing[*]})"
	apt-get update -q >"$aptlog" 2>&1 || { tail -n 40 "$aptlog"; die "apt-get update failed"; }
	step "apt-get install ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1 \
		|| { tail -n 40 "$aptlog"; die "apt-get install failed (log: $aptlog)"; }
	rm -f "$aptlog"
	step "installed ${#missing[@]} package(s)"
fi

[ -x "$PG_CONFIG" ] || die "$PG_CONFIG missing after install"
id -u "$TEST_USER" >/dev/null 2>&1 || die "OS user '$TEST_USER' missing (postgresql-common creates it)"
command -v runuser >/dev/null || die "runuser not found (util-linux)"

if [ "$deps_only" -eq 1 ]; then
	step "done (--deps-only)"
	exit 0
fi

# ---- 2. build (as postgres, in a copy) and install (as root) --------------
BUILD=$(mktemp -d /tmp/datasync-build.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT

step "copying working tree to $BUILD"
tar -C "$REPO" --anchored \
	--exclude=./.git --exclude=./tmp_check --exclude=./tmp_regress --exclude=./results \
	--exclude=./regression.diffs --exclude=./regression.out --exclude=./log \
	-cf - . | tar -C "$BUILD" -xf -
chown -R "$TEST_USER:" "$BUILD"

step "building as $TEST_USER: make clean all WERROR=1"
runuser -u "$TEST_USER" -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" \
	make -C "$BUILD" clean all WERROR=1

step "installing as root: make install"
make -C "$BUILD" install WERROR=1

step "done: datasync installed into $($PG_CONFIG --pkglibdir)"
