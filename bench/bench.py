#!/usr/bin/env python3
"""datasync vs native logical replication: the benchmark driver.

Run through bench/run.sh (as root).  See bench/README.md for what every figure
means.  Only the standard library is used; every SQL statement goes through
psql (run as the `postgres` OS user with runuser), pgbench likewise.

Layout of one run:
  for rep in 1..R:
    for system in (datasync, native)  (order alternates between repetitions):
      fresh source + target clusters under /tmp/dsbench (identical postgresql.conf)
      W1 bulk, W2 OLTP, W3 initial sync, W4 updates/deletes
      stop and remove both clusters
A workload that fails (timeout, error, content mismatch) is recorded as failed
and the cluster pair is rebuilt before the next workload.

With --strategies, the datasync pair of each repetition also runs W1 and W2 once
per listed conflict strategy (same clusters, after the plain source-wins
workloads in odd repetitions, before them in reverse order in even ones), and
the report gives each strategy's figures as ratios to plain source-wins.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

PGBIN = '/usr/lib/postgresql/15/bin'
BASE = '/tmp/dsbench'
SOCK = BASE + '/sock'
DB = 'bench'
OSUSER = 'postgres'
CLK_TCK = os.sysconf('SC_CLK_TCK')
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024
SYSTEMS = ('datasync', 'native')

# --strategies: name -> (conflict_strategy, extra pipeline options, the target needs
# track_commit_timestamp = on, REPLICA IDENTITY FULL set by ALTER TABLE on the source).
# Every variant but source-wins-rif passes {"replica_identity_full": true}, so that
# create_pipeline sets REPLICA IDENTITY FULL on the source tables itself (the bench
# role owns them).  latest-timestamp has no timestamp_column (the pgbench tables have
# no time column): it compares commit timestamps, so the target runs with
# track_commit_timestamp = on for that variant only.  source-wins-rif is plain
# source-wins (fast path) on tables set to REPLICA IDENTITY FULL: the cost of the
# bigger WAL alone, without the checking path.
STRATEGIES = {
    'target-wins': ('target-wins', {'replica_identity_full': True}, False, False),
    'latest-timestamp': ('latest-timestamp', {'replica_identity_full': True}, True, False),
    'manual': ('manual', {'replica_identity_full': True}, False, False),
    'source-wins-log': ('source-wins', {'log_conflicts': True, 'replica_identity_full': True}, False, False),
    'source-wins-rif': ('source-wins', {}, False, True),
}
STRATEGY_WORKLOADS = ('W1', 'W2')

# The one postgresql.conf of all four clusters (port and socket dir appended).
CONF = """
listen_addresses = ''
unix_socket_directories = '{sock}'
port = {port}
max_connections = 50
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_worker_processes = 16
shared_preload_libraries = 'datasync'
datasync.database = '{db}'
log_line_prefix = '%m [%p] %b '
log_min_messages = info
"""

T0 = time.time()
LOGF = None


def log(msg):
    line = '[%7.1fs] %s' % (time.time() - T0, msg)
    print(line, file=sys.stderr, flush=True)
    if LOGF:
        LOGF.write(line + '\n')
        LOGF.flush()


class BenchError(Exception):
    pass


def lit(s):
    return "'" + str(s).replace("'", "''") + "'"


def as_postgres(cmd):
    return ['runuser', '-u', OSUSER, '--'] + cmd


def run_cmd(cmd, timeout, input=None, env=None):
    """Run cmd in its own process group; kill the group on timeout."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env=env)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        p.communicate()
        raise BenchError('timeout after %ss: %s' % (timeout, ' '.join(cmd)[:200]))
    return p.returncode, out, err


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# clusters

LIVE_POSTMASTERS = set()


class Cluster:
    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.dir = os.path.join(BASE, name)
        self.data = os.path.join(self.dir, 'data')
        self.logfile = os.path.join(self.dir, 'server.log')
        self.pid = None

    def env(self, statement_timeout_s):
        e = dict(os.environ)
        e['PGOPTIONS'] = '-c statement_timeout=%d' % int(statement_timeout_s * 1000)
        e['PGAPPNAME'] = 'dsbench'
        return e

    def init(self):
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        shutil.chown(self.dir, OSUSER, OSUSER)
        rc, out, err = run_cmd(as_postgres([PGBIN + '/initdb', '-D', self.data, '-A', 'trust',
                                            '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8',
                                            '--no-sync']), 120)
        if rc != 0:
            raise BenchError('initdb %s failed: %s' % (self.name, err[-2000:]))
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(CONF.format(sock=SOCK, port=self.port, db=DB))
        # the database exists before the server starts, so that datasync's launcher
        # (datasync.database = bench) finds it at once
        rc, out, err = run_cmd(as_postgres([PGBIN + '/postgres', '--single', '-D', self.data, 'postgres']), 120,
                               input='CREATE DATABASE %s\n' % DB)
        if rc != 0:
            raise BenchError('creating database %s in %s failed: %s %s' % (DB, self.name, out[-1000:], err[-1000:]))

    def start(self):
        rc, out, err = run_cmd(as_postgres([PGBIN + '/pg_ctl', '-D', self.data, '-l', self.logfile,
                                            '-w', '-t', '120', 'start']), 180)
        if rc != 0:
            raise BenchError('pg_ctl start %s failed: %s %s' % (self.name, out, err))
        with open(os.path.join(self.data, 'postmaster.pid')) as f:
            self.pid = int(f.readline())
        LIVE_POSTMASTERS.add(self.pid)

    def stop(self):
        if self.pid is None:
            return
        try:
            run_cmd(as_postgres([PGBIN + '/pg_ctl', '-D', self.data, '-m', 'fast', '-w', '-t', '60',
                                 'stop']), 90)
        except BenchError:
            pass
        kill_postmaster(self.pid)
        LIVE_POSTMASTERS.discard(self.pid)
        self.pid = None

    def psql(self, sql, timeout=120, db=DB):
        """Run an SQL script (statements sent one by one); rows as lists of fields."""
        cmd = as_postgres([PGBIN + '/psql', '-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1',
                           '-h', SOCK, '-p', str(self.port), '-d', db, '-f', '-'])
        rc, out, err = run_cmd(cmd, timeout + 10, input=sql, env=self.env(timeout))
        if rc != 0:
            raise BenchError('psql on %s failed (rc %d): %s\nSQL: %s' % (self.name, rc, err.strip()[-1500:],
                                                                        sql.strip()[:500]))
        return [line.split('|') for line in out.splitlines() if line != '']

    def val(self, sql, timeout=120):
        rows = self.psql(sql, timeout)
        if not rows:
            raise BenchError('no result from %s: %s' % (self.name, sql[:200]))
        return rows[-1][0]

    def psql_bg(self, sql, timeout):
        """Start psql in the background; returns a Popen (stdout/stderr to pipes)."""
        cmd = as_postgres([PGBIN + '/psql', '-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1',
                           '-h', SOCK, '-p', str(self.port), '-d', DB, '-c', sql])
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env=self.env(timeout))

    # -- /proc readings -------------------------------------------------------
    def cpu_seconds(self):
        """CPU seconds of the postmaster, its reaped children and its live children."""
        if self.pid is None:
            return None
        try:
            f = read_stat(self.pid)
        except OSError:
            return None
        ticks = f[11] + f[12] + f[13] + f[14]
        for pid in os.listdir('/proc'):
            if not pid.isdigit():
                continue
            try:
                c = read_stat(int(pid))
            except (OSError, ValueError, IndexError):
                continue
            if c[1] == self.pid:
                ticks += c[11] + c[12]
        return ticks / CLK_TCK


def proc_ticks(ppid):
    """{pid: (title, utime+stime ticks)} of the live children of ppid."""
    res = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            c = read_stat(int(pid))
            if c[1] != ppid:
                continue
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                title = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
        except (OSError, ValueError, IndexError):
            continue
        res[int(pid)] = (title, c[11] + c[12])
    return res


def read_stat(pid):
    """/proc/<pid>/stat as a list indexed like proc(5) minus 2 (index 0 = state)."""
    with open('/proc/%d/stat' % pid) as f:
        s = f.read()
    rest = s[s.rindex(')') + 2:].split()
    return [rest[0]] + [int(x) for x in rest[1:]]


def proc_status_kb(pid, keys=('VmHWM', 'VmRSS', 'RssAnon')):
    res = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in keys:
                    res[k] = int(v.split()[0])
    except OSError:
        return None
    return res


def kill_postmaster(pid):
    """Immediate shutdown of a postmaster we started, then SIGKILL if still there."""
    for sig, wait in ((signal.SIGQUIT, 10), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def cleanup_all():
    for pid in list(LIVE_POSTMASTERS):
        kill_postmaster(pid)
        LIVE_POSTMASTERS.discard(pid)


# Target-side poller: loops with pg_sleep(0.01) until cond holds (and confirm,
# when given, also holds), returns the epoch of that moment; done is NULL on
# timeout.  probe (optional) records when it first held; partial counts polls
# where probe held but cond did not (an atomic source transaction must never
# show that: its first row visible without its last).  Volatile plpgsql: each
# EXECUTE takes a fresh snapshot.
POLLER_SQL = r"""
CREATE OR REPLACE FUNCTION bench_wait(cond text, confirm text, timeout_s float8, probe text DEFAULT NULL,
    OUT done float8, OUT probe_first float8, OUT partial int, OUT polls int)
LANGUAGE plpgsql AS $f$
DECLARE
    ok bool;
    p bool;
    deadline timestamptz := clock_timestamp() + timeout_s * interval '1 second';
BEGIN
    partial := 0;
    polls := 0;
    LOOP
        polls := polls + 1;
        IF probe IS NOT NULL AND probe_first IS NULL THEN
            EXECUTE probe INTO p;
            IF p THEN
                probe_first := extract(epoch FROM clock_timestamp());
            END IF;
        END IF;
        EXECUTE cond INTO ok;
        IF ok AND confirm IS NOT NULL THEN
            EXECUTE confirm INTO ok;
        END IF;
        IF ok THEN
            done := extract(epoch FROM clock_timestamp());
            RETURN;
        END IF;
        IF probe_first IS NOT NULL THEN
            partial := partial + 1;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$f$;
"""


class Poller:
    """bench_wait() running on the target in a background psql."""

    def __init__(self, tgt, cond, timeout, confirm=None, probe=None):
        self.tgt = tgt
        self.timeout = timeout
        sql = 'SELECT * FROM bench_wait(%s, %s, %s, %s)' % (
            lit(cond), 'NULL' if confirm is None else lit(confirm), timeout,
            'NULL' if probe is None else lit(probe))
        self.proc = tgt.psql_bg(sql, timeout + 30)
        # be sure the loop is running before the caller starts the event
        deadline = time.time() + 15
        while time.time() < deadline:
            n = tgt.val("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT * FROM bench_wait(%%' "
                        "AND state = 'active' AND pid <> pg_backend_pid()")
            if int(n) > 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        out, err = self.proc.communicate()
        raise BenchError('poller did not start on %s: %s' % (tgt.name, err.strip()))

    def result(self):
        try:
            out, err = self.proc.communicate(timeout=self.timeout + 60)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.proc.communicate()
            raise BenchError('poller on %s did not return' % self.tgt.name)
        if self.proc.returncode != 0:
            raise BenchError('poller failed on %s: %s' % (self.tgt.name, err.strip()))
        f = out.strip().split('|')
        done = float(f[0]) if f[0] else None
        return {'done': done, 'probe_first': float(f[1]) if f[1] else None,
                'partial': int(f[2]), 'polls': int(f[3])}

    def wait(self, what):
        r = self.result()
        if r['done'] is None:
            raise BenchError('%s: not visible on the target after %ss' % (what, self.timeout))
        return r

    def cancel(self):
        if self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.communicate()


class RssSampler(threading.Thread):
    """Samples /proc/<pid>/status of some processes every 50 ms; keeps the peaks."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = {k: v for k, v in pids.items() if v}
        self.peak = {k: {} for k in self.pids}
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            for k, pid in self.pids.items():
                st = proc_status_kb(pid)
                if st:
                    for key, v in st.items():
                        self.peak[k][key] = max(self.peak[k].get(key, 0), v)
            self.stop_ev.wait(0.05)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        for k, pid in self.pids.items():
            st = proc_status_kb(pid)
            if st:
                for key, v in st.items():
                    self.peak[k][key] = max(self.peak[k].get(key, 0), v)
        return self.peak


# --------------------------------------------------------------------------
# the two systems

class Pair:
    """A source and a target cluster and one way of syncing them."""

    def __init__(self, system, tag):
        self.system = system
        self.src = Cluster('%s_src' % tag, 55431)
        self.tgt = Cluster('%s_tgt' % tag, 55432)
        self.sync_name = None
        self.tables = []
        self.strategy = None        # None: the pipeline's defaults (plain source-wins)
        self.tgt_commit_ts = False  # target restarted with track_commit_timestamp = on

    @property
    def label(self):
        return self.system if self.strategy is None else '%s/%s' % (self.system, self.strategy)

    def set_strategy(self, strategy):
        """Pipelines created from now on use this conflict strategy (None: defaults);
        restarts the target when its track_commit_timestamp must change."""
        self.strategy = strategy
        need = STRATEGIES[strategy][2] if strategy else False
        if need == self.tgt_commit_ts:
            return
        self.tgt.psql('ALTER SYSTEM SET track_commit_timestamp = on' if need
                      else 'ALTER SYSTEM RESET track_commit_timestamp')
        self.tgt.stop()
        self.tgt.start()
        v = self.tgt.val('SHOW track_commit_timestamp')
        if v != ('on' if need else 'off'):
            raise BenchError('target: track_commit_timestamp is %s after the restart' % v)
        self.tgt_commit_ts = need
        log('  target restarted with track_commit_timestamp = %s' % v)

    def conflict_rows(self):
        return int(self.src.val('SELECT count(*) FROM datasync.conflicts'))

    def up(self):
        self.tgt_commit_ts = False
        for c in (self.src, self.tgt):
            c.init()
            c.start()
        self.src.psql('CREATE EXTENSION datasync')
        self.tgt.psql(POLLER_SQL)
        if self.system == 'datasync':
            self.src.psql("SELECT datasync.create_target('tgt', %s)" % lit(
                'host=%s port=%d dbname=%s' % (SOCK, self.tgt.port, DB)))

    def down(self):
        for c in (self.src, self.tgt):
            c.stop()
        for c in (self.src, self.tgt):
            if os.path.exists(c.dir):
                shutil.rmtree(c.dir, ignore_errors=True)

    def save_logs(self, dest):
        os.makedirs(dest, exist_ok=True)
        for c in (self.src, self.tgt):
            if os.path.exists(c.logfile):
                shutil.copy(c.logfile, os.path.join(dest, c.name + '.log'))

    def both(self, sql, timeout=120):
        self.src.psql(sql, timeout)
        self.tgt.psql(sql, timeout)

    # -- sync set-up ----------------------------------------------------------
    def start_sync(self, name, tables, timeout=120):
        """Start syncing tables (already on both sides).  Returns the epoch just
        before the create call (from the server that runs it)."""
        self.sync_name = name
        self.tables = tables
        if self.system == 'datasync':
            arr = 'ARRAY[%s]::regclass[]' % ', '.join(lit(t) for t in tables)
            extra = ''
            if self.strategy is not None:
                strategy, options, _, alter_rif = STRATEGIES[self.strategy]
                if alter_rif:
                    self.src.psql(''.join('ALTER TABLE %s REPLICA IDENTITY FULL;\n' % t for t in tables))
                extra = ', conflict_strategy => %s, options => %s::jsonb' % (lit(strategy),
                                                                             lit(json.dumps(options)))
            rows = self.src.psql("SELECT extract(epoch FROM clock_timestamp());\n"
                                 "SELECT datasync.create_pipeline(%s, 'tgt', %s%s);" % (lit(name), arr, extra),
                                 timeout)
            if self.strategy is not None:
                # every variant measures REPLICA IDENTITY FULL tables: be sure they are
                bad = self.src.psql("SELECT c.oid::regclass FROM pg_class c WHERE c.oid = ANY (%s) "
                                    "AND c.relreplident <> 'f'" % arr)
                if bad:
                    raise BenchError('%s: tables without REPLICA IDENTITY FULL after create_pipeline: %s'
                                     % (self.label, ', '.join(r[0] for r in bad)))
        else:
            self.src.psql('CREATE PUBLICATION %s FOR TABLE %s' % (name, ', '.join(tables)))
            rows = self.tgt.psql("SELECT extract(epoch FROM clock_timestamp());\n"
                                 "CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s;" % (
                                     name, lit('host=%s port=%d dbname=%s' % (SOCK, self.src.port, DB)),
                                     name), timeout)
        return float(rows[0][0])

    def wait_ready(self, timeout=120):
        """Initial copy done (native: every table 'r') and a marker row arrived."""
        if self.system == 'native':
            deadline = time.time() + timeout
            while True:
                n = int(self.tgt.val("SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s "
                                     "ON s.oid = r.srsubid WHERE s.subname = %s AND r.srsubstate <> 'r'"
                                     % lit(self.sync_name)))
                if n == 0:
                    break
                if time.time() > deadline:
                    raise BenchError('subscription %s: tablesync not done after %ss' % (self.sync_name, timeout))
                time.sleep(0.1)
        self.barrier(timeout)

    def barrier(self, timeout, key=None):
        """Commit a marker row on the source and wait until the target has it:
        everything committed before is then applied.  Returns (commit epoch, visible epoch)."""
        key = key if key is not None else int(time.time() * 1000) % 2000000000
        p = Poller(self.tgt, 'SELECT EXISTS (SELECT 1 FROM mk WHERE id = %d)' % key, timeout)
        try:
            t = float(self.src.val('INSERT INTO mk VALUES (%d);\nSELECT extract(epoch FROM clock_timestamp());' % key))
            r = p.wait('marker row %d' % key)
        finally:
            p.cancel()
        return t, r['done']

    def stop_sync(self, timeout=120):
        if self.sync_name is None:
            return
        if self.system == 'datasync':
            self.src.psql('SELECT datasync.drop_pipeline(%s)' % lit(self.sync_name), timeout)
        else:
            self.tgt.psql('DROP SUBSCRIPTION %s' % self.sync_name, timeout)
            self.src.psql('DROP PUBLICATION %s' % self.sync_name, timeout)
        self.sync_name = None

    def worker_pids(self):
        """(sync worker pid, walsender pid) of the running sync."""
        ws = self.src.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' "
                           "AND query LIKE 'START_REPLICATION%' ORDER BY backend_start DESC LIMIT 1")
        if self.system == 'datasync':
            w = self.src.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'datasync worker'")
        else:
            w = self.tgt.psql("SELECT pid FROM pg_stat_subscription WHERE subname = %s AND relid IS NULL"
                              % lit(self.sync_name))
        return (int(w[0][0]) if w and w[0][0] else None, int(ws[0][0]) if ws and ws[0][0] else None)

    def checkpoint(self):
        self.both('CHECKPOINT', 300)

    def cpu(self):
        return (self.src.cpu_seconds(), self.tgt.cpu_seconds())

    def proc_snapshot(self):
        return {'source': proc_ticks(self.src.pid), 'target': proc_ticks(self.tgt.pid)}

    @staticmethod
    def top_procs(before, after, seconds, n=4):
        """The processes that used the most CPU between two snapshots, as
        'cluster: title: cpu s (share of the window)'."""
        rows = []
        for side in ('source', 'target'):
            for pid, (title, ticks) in after[side].items():
                d = (ticks - before[side].get(pid, (title, 0))[1]) / CLK_TCK
                if d > 0:
                    title = re.sub(r'^postgres: (\S+: )?', '', title)
                    rows.append((d, '%s: %s' % (side, title[:60])))
        rows.sort(reverse=True)
        return ['%s %.1fs (%.0f%%)' % (t, d, 100 * d / seconds if seconds > 0 else 0) for d, t in rows[:n]]

    def content_check(self, tables, timeout=600):
        """tables: list of (name, order by).  Raises on a mismatch."""
        for t, key in tables:
            q = ("SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY %s), '')) FROM %s x"
                 % (key, t))
            a = self.src.psql(q, timeout)[0]
            b = self.tgt.psql(q, timeout)[0]
            if a != b:
                raise BenchError('content check failed for %s: source count %s md5 %s, target count %s md5 %s'
                                 % (t, a[0], a[1], b[0], b[1]))


def cpu_delta(before, after):
    return [None if a is None or b is None else round(b - a, 2) for a, b in zip(before, after)]


# --------------------------------------------------------------------------
# workloads: each returns {metric: value}; raises BenchError on failure

def arrival_ddl(tab, idtype):
    """Target only: {tab}_arrival records when each row of {tab} became visible.

    A deferred constraint trigger fires at the commit of the target transaction
    that applies the row; ENABLE ALWAYS makes it fire in apply sessions
    (session_replication_role = replica: the native apply worker and datasync's
    target session alike).  A timing to the microsecond, where the poller's is
    to its 10 ms sleep."""
    return """
DROP TABLE IF EXISTS {t}_arrival;
CREATE TABLE {t}_arrival (id {ty} NOT NULL, arrived timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION {t}_arrive() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.{t}_arrival VALUES (NEW.id, clock_timestamp());
    RETURN NULL;
END
$f$;
CREATE CONSTRAINT TRIGGER {t}_arrive AFTER INSERT ON {t} DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION {t}_arrive();
ALTER TABLE {t} ENABLE ALWAYS TRIGGER {t}_arrive;
""".format(t=tab, ty=idtype)


def mk_table(pair):
    pair.both('DROP TABLE IF EXISTS mk; CREATE TABLE mk (id int PRIMARY KEY)')
    pair.tgt.psql(arrival_ddl('mk', 'int'))


def mk_arrived(pair, key):
    """Commit time (epoch) of the target transaction that applied marker key."""
    r = pair.tgt.psql('SELECT extract(epoch FROM arrived) FROM mk_arrival WHERE id = %d' % key)
    if len(r) != 1:
        raise BenchError('marker %d arrived %d times on the target' % (key, len(r)))
    return float(r[0][0])


def w1_bulk(pair, cfg):
    n = cfg['w1_rows']
    n_small = 100000
    ddl = ('DROP TABLE IF EXISTS w1a, w1; '
           'CREATE TABLE w1a (id int PRIMARY KEY, a text, b int, c timestamptz); '
           'CREATE TABLE w1 (id int PRIMARY KEY, a text, b int, c timestamptz);')
    pair.both(ddl)
    mk_table(pair)
    pair.start_sync('w1', ['w1a', 'w1', 'mk'])
    pair.wait_ready()
    worker, walsender = pair.worker_pids()
    res = {}

    def one(table, rows, tag):
        pair.checkpoint()
        p = Poller(pair.tgt, 'SELECT EXISTS (SELECT 1 FROM %s WHERE id = %d)' % (table, rows), cfg['timeout_bulk'],
                   probe='SELECT EXISTS (SELECT 1 FROM %s WHERE id = 1)' % table)
        sampler = RssSampler({'worker': worker, 'walsender': walsender})
        sampler.start()
        c0 = pair.cpu()
        p0 = pair.proc_snapshot()
        try:
            r = pair.src.psql(
                'SELECT extract(epoch FROM clock_timestamp());\n'
                'BEGIN;\n'
                "INSERT INTO %s SELECT g, md5(g::text), g %% 1000, now() FROM generate_series(1, %d) g;\n"
                'COMMIT;\n'
                'SELECT extract(epoch FROM clock_timestamp());' % (table, rows), cfg['timeout_bulk'])
            t_start, t_commit = float(r[0][0]), float(r[1][0])
            w = p.wait('%s row %d' % (table, rows))
        finally:
            p.cancel()
            peaks = sampler.stop()
        c1 = pair.cpu()
        p1 = pair.proc_snapshot()
        cd = cpu_delta(c0, c1)
        res[tag + '_top_procs'] = pair.top_procs(p0, p1, w['done'] - t_start)
        res[tag + '_commit_visible_s'] = w['done'] - t_commit
        res[tag + '_start_visible_s'] = w['done'] - t_start
        res[tag + '_source_s'] = t_commit - t_start
        res[tag + '_rows_per_s'] = rows / (w['done'] - t_start)
        res[tag + '_cpu_src_s'], res[tag + '_cpu_tgt_s'] = cd
        res[tag + '_partial_polls'] = w['partial']
        if w['probe_first'] is not None:
            res[tag + '_first_row_visible_s'] = w['probe_first'] - t_commit
        if worker:
            st = proc_status_kb(worker) or {}
            pk = peaks.get('worker', {})
            res[tag + '_worker_vmhwm_mb'] = max(st.get('VmHWM', 0), pk.get('VmHWM', 0)) / 1024
            res[tag + '_worker_anon_peak_mb'] = pk.get('RssAnon', 0) / 1024
        if walsender:
            pk = peaks.get('walsender', {})
            res[tag + '_walsender_vmhwm_mb'] = pk.get('VmHWM', 0) / 1024
            res[tag + '_walsender_anon_peak_mb'] = pk.get('RssAnon', 0) / 1024
        log('  %s %s rows: commit->visible %.2fs, start->visible %.2fs, cpu src %s tgt %s s, partial polls %d'
            % (pair.label, rows, res[tag + '_commit_visible_s'], res[tag + '_start_visible_s'],
               cd[0], cd[1], w['partial']))
        log('    busiest: ' + '; '.join(res[tag + '_top_procs']))

    one('w1a', n_small, 'w1_100k')
    one('w1', n, 'w1')
    w2, ws2 = pair.worker_pids()
    res['w1_worker_restarted'] = int(w2 != worker)
    pair.content_check([('w1a', 'id'), ('w1', 'id')])
    pair.stop_sync()
    pair.both('DROP TABLE w1a, w1, mk')
    return res


PGB_DDL = """
DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, hb, hb_arrival,
    hb_commit, hb_stop, mk;
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY;
CREATE TABLE hb (id bigserial PRIMARY KEY, sent timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE mk (id int PRIMARY KEY);
"""
# source only: commit time of each heartbeat (unlogged, not published) and the stop flag
PGB_SRC_DDL = """
CREATE UNLOGGED TABLE hb_commit (id bigint PRIMARY KEY, committed timestamptz NOT NULL);
CREATE UNLOGGED TABLE hb_stop (x int);
"""
# target only: arrival time of each heartbeat
PGB_TGT_DDL = arrival_ddl('hb', 'bigint')
PGB_LOAD = """
INSERT INTO pgbench_branches (bid, bbalance) SELECT g, 0 FROM generate_series(1, {s}) g;
INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, {s} * 10) g;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
    SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, {s} * 100000) g;
"""
HEARTBEAT = """
DO $$
DECLARE i bigint;
BEGIN
    LOOP
        INSERT INTO hb DEFAULT VALUES RETURNING id INTO i;
        COMMIT;
        INSERT INTO hb_commit VALUES (i, clock_timestamp());
        EXIT WHEN EXISTS (SELECT 1 FROM hb_stop);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$
"""
W2_TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history', 'hb', 'mk']


def pgbench(pair, cfg):
    cmd = as_postgres([PGBIN + '/pgbench', '-n', '-b', 'tpcb-like', '-c', '4', '-j', '2',
                       '-T', str(cfg['w2_seconds']), '-h', SOCK, '-p', str(pair.src.port), DB])
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def pgbench_tps(proc, cfg):
    try:
        out, err = proc.communicate(timeout=cfg['w2_seconds'] + 120)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        raise BenchError('pgbench did not finish')
    m = re.search(r'tps = ([0-9.]+) \(without initial connection time\)', out)
    if proc.returncode != 0 or not m:
        raise BenchError('pgbench failed (rc %s): %s %s' % (proc.returncode, out[-1000:], err[-1000:]))
    fails = re.search(r'number of failed transactions: (\d+)', out)
    ntx = re.search(r'number of transactions actually processed: (\d+)', out)
    return float(m.group(1)), int(fails.group(1)) if fails else 0, int(ntx.group(1)) if ntx else None


def start_heartbeat(pair, cfg):
    pair.src.psql('DELETE FROM hb_stop')
    return pair.src.psql_bg(HEARTBEAT, cfg['w2_seconds'] + 600)


def stop_heartbeat(pair, hbp):
    pair.src.psql('INSERT INTO hb_stop VALUES (1)')
    try:
        out, err = hbp.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        kill_group(hbp)
        hbp.communicate()
        raise BenchError('heartbeat writer did not stop')
    if hbp.returncode != 0:
        raise BenchError('heartbeat writer failed: %s' % err.strip())


class LagSampler(threading.Thread):
    """Slot lag (bytes behind pg_current_wal_lsn) on the source, once a second."""

    def __init__(self, src):
        super().__init__(daemon=True)
        self.src = src
        self.samples = []
        self.stop_ev = threading.Event()

    def sample(self):
        v = self.src.val("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0) "
                         "FROM pg_replication_slots WHERE slot_type = 'logical'", 20)
        return float(v)

    def run(self):
        while not self.stop_ev.wait(1.0):
            try:
                self.samples.append(self.sample())
            except BenchError:
                pass

    def stop(self):
        self.stop_ev.set()
        self.join(30)


def percentile(xs, q):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def w2_oltp(pair, cfg):
    s = cfg['w2_scale']
    res = {}
    # (a) the same workload with no replication at all
    pair.src.psql(PGB_DDL + PGB_SRC_DDL + PGB_LOAD.format(s=s), 600)
    pair.src.psql('VACUUM ANALYZE', 600)
    pair.checkpoint()
    hbp = start_heartbeat(pair, cfg)
    pb = pgbench(pair, cfg)
    try:
        tps, _, _ = pgbench_tps(pb, cfg)
    finally:
        stop_heartbeat(pair, hbp)
    res['w2_tps_norepl'] = tps
    log('  %s baseline (no replication): %.0f tps' % (pair.label, tps))

    # (b) replicated
    pair.src.psql(PGB_DDL + PGB_SRC_DDL, 120)
    pair.tgt.psql(PGB_DDL + PGB_TGT_DDL, 120)
    pair.start_sync('w2', W2_TABLES)
    pair.wait_ready()
    t_load = time.time()
    pair.src.psql(PGB_LOAD.format(s=s), 600)
    pair.barrier(cfg['timeout_bulk'])
    log('  %s loaded and synced scale %d in %.1fs' % (pair.label, s, time.time() - t_load))
    pair.src.psql('VACUUM ANALYZE', 600)
    pair.tgt.psql('VACUUM ANALYZE', 600)
    pair.checkpoint()
    lag = LagSampler(pair.src)
    lsn0 = pair.src.val('SELECT pg_current_wal_lsn()')
    c0 = pair.cpu()
    p0 = pair.proc_snapshot()
    t_begin = time.time()
    hbp = start_heartbeat(pair, cfg)
    lag.start()
    pb = pgbench(pair, cfg)
    try:
        tps, failed_tx, ntx = pgbench_tps(pb, cfg)
        t_end = time.time()
        lag.stop()
        lag_end = lag.sample()
        wal = float(pair.src.val('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)' % lit(lsn0)))
    finally:
        lag.stop()
        stop_heartbeat(pair, hbp)
    t_mark, t_vis = pair.barrier(cfg['timeout_catchup'], key=2)
    c1 = pair.cpu()
    p1 = pair.proc_snapshot()
    res['w2_top_procs'] = pair.top_procs(p0, p1, t_vis - t_begin, 6)
    res['w2_tps'] = tps
    res['w2_tps_vs_norepl'] = tps / res['w2_tps_norepl']
    res['w2_catchup_s'] = t_vis - t_end
    res['w2_marker_commit_visible_s'] = t_vis - t_mark
    res['w2_slot_lag_max_mb'] = max(lag.samples + [lag_end]) / 1048576
    res['w2_slot_lag_end_mb'] = lag_end / 1048576
    # source WAL written during pgbench (with the heartbeats); REPLICA IDENTITY FULL shows here
    res['w2_wal_mb'] = wal / 1048576
    if ntx:
        res['w2_wal_kb_per_tx'] = wal / 1024 / ntx
    res['w2_cpu_src_s'], res['w2_cpu_tgt_s'] = cpu_delta(c0, c1)
    # heartbeat latency: commit on the source -> commit of the applying target transaction
    sent = {int(r[0]): float(r[1]) for r in pair.src.psql(
        'SELECT h.id, extract(epoch FROM coalesce(c.committed, h.sent)) FROM hb h LEFT JOIN hb_commit c USING (id)')}
    arr = {}
    dup = 0
    for r in pair.tgt.psql('SELECT id, extract(epoch FROM arrived) FROM hb_arrival'):
        i = int(r[0])
        if i in arr:
            dup += 1
        arr[i] = float(r[1])
    missing = [i for i in sent if i not in arr]
    if missing:
        raise BenchError('%d heartbeat(s) never arrived on the target (e.g. id %s)' % (len(missing), missing[:5]))
    if dup:
        raise BenchError('%d heartbeat(s) applied more than once on the target' % dup)
    lat = [(arr[i] - sent[i]) * 1000 for i in sent]
    res['w2_heartbeats'] = len(lat)
    res['w2_lat_p50_ms'] = percentile(lat, 50)
    res['w2_lat_p99_ms'] = percentile(lat, 99)
    res['w2_lat_max_ms'] = max(lat)
    res['w2_pgbench_failed_tx'] = failed_tx
    log('  %s replicated: %.0f tps (%.2f of baseline), latency p50 %.1f ms p99 %.1f ms max %.1f ms, '
        'catch-up %.2fs, slot lag max %.1f MB, cpu src %s tgt %s s'
        % (pair.label, tps, res['w2_tps_vs_norepl'], res['w2_lat_p50_ms'], res['w2_lat_p99_ms'],
           res['w2_lat_max_ms'], res['w2_catchup_s'], res['w2_slot_lag_max_mb'],
           res['w2_cpu_src_s'], res['w2_cpu_tgt_s']))
    log('    busiest: ' + '; '.join(res['w2_top_procs']))
    pair.content_check([('pgbench_accounts', 'aid'), ('pgbench_branches', 'bid'), ('pgbench_tellers', 'tid'),
                        ('pgbench_history', 'hid'), ('hb', 'id')])
    pair.stop_sync()
    pair.src.psql('DROP TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, hb, '
                  'hb_commit, hb_stop, mk')
    pair.tgt.psql('DROP TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, hb, '
                  'hb_arrival, mk; DROP FUNCTION hb_arrive()')
    return res


def w3_initial(pair, cfg):
    n = cfg['w3_rows']
    pair.both('DROP TABLE IF EXISTS w3; CREATE TABLE w3 (id int PRIMARY KEY, a text, b int, c timestamptz)')
    mk_table(pair)
    pair.src.psql("INSERT INTO w3 SELECT g, md5(g::text), g % 1000, now() FROM generate_series(1, {n}) g;"
                  .format(n=n), 600)
    pair.src.psql('VACUUM ANALYZE w3', 600)
    pair.checkpoint()
    # Native's launcher starts apply workers at most once per wal_retrieve_retry_interval
    # (5 s); the previous workload's DROP SUBSCRIPTION woke it, and a subscription created
    # within those 5 s would wait for the rest of them.  Not what W3 is about: let the
    # interval pass (both systems, same pause).
    time.sleep(6)
    p = Poller(pair.tgt, 'SELECT EXISTS (SELECT 1 FROM w3 WHERE id = %d)' % n, cfg['timeout_bulk'],
               confirm='SELECT count(*) = %d FROM w3' % n, probe='SELECT EXISTS (SELECT 1 FROM w3 WHERE id = 1)')
    c0 = pair.cpu()
    p0 = pair.proc_snapshot()
    try:
        t0 = pair.start_sync('w3', ['w3', 'mk'], cfg['timeout_bulk'])
        t_ret = time.time()
        w = p.wait('w3: all %d rows' % n)
    finally:
        p.cancel()
    c1 = pair.cpu()
    p1 = pair.proc_snapshot()
    res = {'w3_create_visible_s': w['done'] - t0, 'w3_create_call_s': t_ret - t0,
           'w3_rows_per_s': n / (w['done'] - t0), 'w3_partial_polls': w['partial']}
    res['w3_cpu_src_s'], res['w3_cpu_tgt_s'] = cpu_delta(c0, c1)
    log('  %s initial sync %d rows: %.2fs (create call %.2fs), cpu src %s tgt %s s'
        % (pair.label, n, res['w3_create_visible_s'], res['w3_create_call_s'],
           res['w3_cpu_src_s'], res['w3_cpu_tgt_s']))
    res['w3_top_procs'] = pair.top_procs(p0, p1, res['w3_create_visible_s'])
    log('    busiest: ' + '; '.join(res['w3_top_procs']))
    pair.wait_ready(cfg['timeout_bulk'])
    pair.content_check([('w3', 'id')])
    pair.stop_sync()
    pair.both('DROP TABLE w3, mk')
    return res


W4_DO = """
SELECT extract(epoch FROM clock_timestamp());
DO $$
DECLARE
    nu int := {nu};
    ntx int := {ntx};
    upt int := {nu} / {ntx};
    dpt int := {nd} / {ntx};
    k int;
    i bigint := 0;
    j int := 0;
BEGIN
    FOR t IN 1..ntx LOOP
        FOR x IN 1..upt LOOP
            k := ((i * 7919) % nu) + 1;
            UPDATE w4 SET v = v + 1, a = md5(k::text || 'u') WHERE id = k;
            i := i + 1;
        END LOOP;
        FOR x IN 1..dpt LOOP
            j := j + 1;
            DELETE FROM w4 WHERE id = nu + j;
        END LOOP;
        IF t = ntx THEN
            INSERT INTO mk VALUES (4);
        END IF;
        COMMIT;
    END LOOP;
END
$$;
SELECT extract(epoch FROM clock_timestamp());
"""


def w4_upddel(pair, cfg):
    nu, nd, ntx = cfg['w4_updates'], cfg['w4_deletes'], cfg['w4_tx']
    pair.both('DROP TABLE IF EXISTS w4; CREATE TABLE w4 (id int PRIMARY KEY, v int NOT NULL, a text)')
    mk_table(pair)
    pair.start_sync('w4', ['w4', 'mk'])
    pair.wait_ready()
    pair.src.psql('INSERT INTO w4 SELECT g, 0, md5(g::text) FROM generate_series(1, %d) g' % (nu + nd), 600)
    pair.barrier(cfg['timeout_bulk'])
    pair.src.psql('VACUUM ANALYZE w4', 600)
    pair.tgt.psql('VACUUM ANALYZE w4', 600)
    pair.checkpoint()
    p = Poller(pair.tgt, 'SELECT EXISTS (SELECT 1 FROM mk WHERE id = 4)', cfg['timeout_catchup'] + 600)
    c0 = pair.cpu()
    p0 = pair.proc_snapshot()
    try:
        r = pair.src.psql(W4_DO.format(nu=nu, nd=nd, ntx=ntx), 900)
        t_start, t_last = float(r[0][0]), float(r[1][0])
        p.wait('w4 last transaction')
    finally:
        p.cancel()
    c1 = pair.cpu()
    p1 = pair.proc_snapshot()
    # the poller saw it; the trigger says when it committed
    done = mk_arrived(pair, 4)
    res = {'w4_source_s': t_last - t_start, 'w4_catchup_ms': (done - t_last) * 1000,
           'w4_start_visible_s': done - t_start,
           'w4_changes_per_s': (nu + nd) / (done - t_start)}
    res['w4_cpu_src_s'], res['w4_cpu_tgt_s'] = cpu_delta(c0, c1)
    log('  %s %d updates + %d deletes in %d tx: source %.2fs, last commit->caught up %.1f ms, cpu src %s tgt %s s'
        % (pair.label, nu, nd, ntx, res['w4_source_s'], res['w4_catchup_ms'], res['w4_cpu_src_s'],
           res['w4_cpu_tgt_s']))
    res['w4_top_procs'] = pair.top_procs(p0, p1, res['w4_start_visible_s'])
    log('    busiest: ' + '; '.join(res['w4_top_procs']))
    pair.content_check([('w4', 'id')])
    pair.stop_sync()
    pair.both('DROP TABLE w4, mk')
    return res


WORKLOADS = [('W1', w1_bulk), ('W2', w2_oltp), ('W3', w3_initial), ('W4', w4_upddel)]

# --------------------------------------------------------------------------
# figures shown in the table: key, workload, label, unit, better ('lower'/'higher'/None), decimals

FIGURES = [
    ('w1_commit_visible_s', 'W1', 'COMMIT → last row visible ({w1} rows)', 's', 'lower', 2),
    ('w1_start_visible_s', 'W1', 'INSERT start → last row visible ({w1} rows)', 's', 'lower', 2),
    ('w1_rows_per_s', 'W1', 'rows/s end to end ({w1} rows)', 'rows/s', 'higher', 0),
    ('w1_source_s', 'W1', 'source INSERT+COMMIT alone ({w1} rows)', 's', None, 2),
    ('w1_cpu_src_s', 'W1', 'CPU source cluster ({w1} rows)', 's', 'lower', 1),
    ('w1_cpu_tgt_s', 'W1', 'CPU target cluster ({w1} rows)', 's', 'lower', 1),
    ('w1_100k_commit_visible_s', 'W1', 'COMMIT → last row visible (100000 rows)', 's', 'lower', 2),
    ('w1_100k_start_visible_s', 'W1', 'INSERT start → last row visible (100000 rows)', 's', 'lower', 2),
    ('w1_100k_worker_vmhwm_mb', 'W1', 'sync/apply worker peak RSS (VmHWM) after 100000 rows', 'MB', 'lower', 1),
    ('w1_worker_vmhwm_mb', 'W1', 'sync/apply worker peak RSS (VmHWM) after {w1} rows', 'MB', 'lower', 1),
    ('w1_100k_worker_anon_peak_mb', 'W1', 'sync/apply worker peak RssAnon (sampled), 100000 rows', 'MB',
     'lower', 1),
    ('w1_worker_anon_peak_mb', 'W1', 'sync/apply worker peak RssAnon (sampled), {w1} rows', 'MB', 'lower', 1),
    ('w1_walsender_anon_peak_mb', 'W1', 'walsender peak RssAnon (sampled), {w1} rows', 'MB', 'lower', 1),
    ('w2_tps', 'W2', 'source TPS with replication', 'tps', 'higher', 0),
    ('w2_tps_norepl', 'W2', 'source TPS, no replication (same cluster)', 'tps', None, 0),
    ('w2_tps_vs_norepl', 'W2', 'TPS with / without replication', '', 'higher', 3),
    ('w2_lat_p50_ms', 'W2', 'heartbeat commit → visible p50', 'ms', 'lower', 1),
    ('w2_lat_p99_ms', 'W2', 'heartbeat commit → visible p99', 'ms', 'lower', 1),
    ('w2_lat_max_ms', 'W2', 'heartbeat commit → visible max', 'ms', 'lower', 1),
    ('w2_catchup_s', 'W2', 'catch-up after pgbench ends', 's', 'lower', 2),
    ('w2_slot_lag_max_mb', 'W2', 'slot lag, max of 1 s samples', 'MB', 'lower', 1),
    ('w2_slot_lag_end_mb', 'W2', 'slot lag when pgbench ends', 'MB', 'lower', 1),
    ('w2_cpu_src_s', 'W2', 'CPU source cluster (pgbench + catch-up)', 's', None, 1),
    ('w2_cpu_tgt_s', 'W2', 'CPU target cluster (pgbench + catch-up)', 's', 'lower', 1),
    ('w3_create_visible_s', 'W3', 'create → all {w3} rows on target', 's', 'lower', 2),
    ('w3_rows_per_s', 'W3', 'rows/s', 'rows/s', 'higher', 0),
    ('w3_cpu_src_s', 'W3', 'CPU source cluster', 's', 'lower', 1),
    ('w3_cpu_tgt_s', 'W3', 'CPU target cluster', 's', 'lower', 1),
    ('w4_catchup_ms', 'W4', 'last commit → caught up ({w4u} upd + {w4d} del, {w4t} tx)', 'ms', 'lower', 1),
    ('w4_start_visible_s', 'W4', 'first statement → caught up', 's', 'lower', 2),
    ('w4_source_s', 'W4', 'source run alone', 's', None, 2),
    ('w4_changes_per_s', 'W4', 'changes/s end to end', 'rows/s', 'higher', 0),
    ('w4_cpu_src_s', 'W4', 'CPU source cluster', 's', 'lower', 1),
    ('w4_cpu_tgt_s', 'W4', 'CPU target cluster', 's', 'lower', 1),
]


# figures of the --strategies table (keys of FIGURES, plus the source WAL of W2)
STRATEGY_FIGURES = ['w1_commit_visible_s', 'w1_start_visible_s', 'w1_rows_per_s', 'w1_source_s', 'w1_cpu_src_s',
                    'w1_cpu_tgt_s', 'w1_100k_commit_visible_s', 'w1_worker_anon_peak_mb',
                    'w2_tps', 'w2_tps_norepl', 'w2_tps_vs_norepl', 'w2_lat_p50_ms', 'w2_lat_p99_ms', 'w2_lat_max_ms',
                    'w2_catchup_s', 'w2_slot_lag_max_mb', 'w2_wal_kb_per_tx', 'w2_cpu_src_s', 'w2_cpu_tgt_s']
EXTRA_FIGURES = [
    ('w2_wal_kb_per_tx', 'W2', 'source WAL per pgbench transaction', 'kB', 'lower', 2),
]


def summarize(values):
    if not values:
        return None
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values), 'n': len(values)}


def fmt(v, dec):
    if v is None:
        return '–'
    if dec == 0:
        return '{:,.0f}'.format(v)
    return '%.*f' % (dec, v)


def cell_text(sm, failed, runs, dec, prefix=''):
    """median [min–max] (just the value for one), FAILED / n/a, '(k/n failed)'."""
    if sm is None:
        cell = 'FAILED' if failed else 'n/a'
    elif sm['n'] == 1:
        cell = prefix + fmt(sm['median'], dec)
    else:
        cell = '%s%s [%s–%s]' % (prefix, fmt(sm['median'], dec), fmt(sm['min'], dec), fmt(sm['max'], dec))
    if failed and sm is not None:
        cell += ' (%d/%d failed)' % (failed, runs)
    return cell


def strategy_report(runs, cfg, label_args):
    """The --strategies section: each strategy's W1/W2 figures as ratios to plain
    source-wins (datasync, strategy None) of the same repetition."""
    strategies = cfg['strategies']
    spec = {f[0]: f for f in FIGURES + EXTRA_FIGURES}
    names = ['source-wins'] + strategies
    figures = []
    for key in STRATEGY_FIGURES:
        _, wl, label, unit, better, dec = spec[key]
        fig = {'key': key, 'workload': wl, 'label': label.format(**label_args), 'unit': unit, 'better': better}
        by = {}
        for name in names:
            strat = None if name == 'source-wins' else name
            rs = [r for r in runs if r['system'] == 'datasync' and r.get('strategy') == strat and r['workload'] == wl]
            vals = {r['rep']: r['metrics'][key] for r in rs if r['ok'] and r['metrics'].get(key) is not None}
            by[name] = vals
            fig[name] = {'values': [vals[k] for k in sorted(vals)], 'reps': sorted(vals),
                         'failed': sum(1 for r in rs if not r['ok']), 'runs': len(rs),
                         'summary': summarize(list(vals.values()))}
        if not any(fig[n]['runs'] for n in names):
            continue  # workload not run (--only)
        for name in strategies:
            base = by['source-wins']
            ratios = {k: v / base[k] for k, v in by[name].items() if k in base and base[k]}
            fig[name]['ratios'] = [ratios[k] for k in sorted(ratios)]
            fig[name]['ratio_reps'] = sorted(ratios)
            fig[name]['ratio_summary'] = summarize(list(ratios.values()))
        figures.append(fig)

    lines = ['', '## Conflict strategies (datasync)', '',
             'W1 and W2 once per strategy on the same datasync cluster pair as the plain source-wins run of the '
             'same repetition (pipeline defaults, the table above). Every strategy runs with REPLICA IDENTITY FULL '
             'on the source tables (`{"replica_identity_full": true}`; source-wins-rif: `ALTER TABLE` and plain '
             'source-wins); `latest-timestamp` compares commit timestamps (no `timestamp_column`), its target runs '
             'with `track_commit_timestamp = on`. Cells: plain source-wins as measured; for each strategy the '
             'ratio strategy / source-wins computed per repetition, then median [min–max] of those ratios '
             '(below 1 is better for times, CPU, lag, WAL and memory; above 1 for TPS and rows/s). The same '
             'content check applies to every strategy.', '',
             '| Workload | Figure | unit | source-wins | %s |' % ' | '.join('%s / source-wins' % n for n in strategies),
             '|---|---|---|---|%s' % ('---|' * len(strategies))]
    for fig in figures:
        dec = spec[fig['key']][5]
        cells = [cell_text(fig['source-wins']['summary'], fig['source-wins']['failed'],
                           fig['source-wins']['runs'], dec)]
        for name in strategies:
            d = fig[name]
            cells.append(cell_text(d['ratio_summary'], d['failed'], d['runs'], 2, '×'))
        lines.append('| %s | %s | %s | %s |' % (fig['workload'], fig['label'] + ('' if fig['better'] else ' (info)'),
                                                fig['unit'], ' | '.join(cells)))
    lines += ['', 'The same figures as measured (median [min–max]):', '',
              '| Workload | Figure | unit | %s |' % ' | '.join(names),
              '|---|---|---|%s' % ('---|' * len(names))]
    for fig in figures:
        dec = spec[fig['key']][5]
        cells = [cell_text(fig[n]['summary'], fig[n]['failed'], fig[n]['runs'], dec) for n in names]
        lines.append('| %s | %s | %s | %s |' % (fig['workload'], fig['label'], fig['unit'], ' | '.join(cells)))
    return lines, figures


def run_name(r):
    return r['system'] if r.get('strategy') is None else '%s/%s' % (r['system'], r['strategy'])


def build_report(runs, cfg, meta):
    """runs: list of {rep, system, strategy, workload, ok, error, metrics}."""
    label_args = dict(w1=cfg['w1_rows'], w3=cfg['w3_rows'], w4u=cfg['w4_updates'], w4d=cfg['w4_deletes'],
                      w4t=cfg['w4_tx'])
    figures = []
    for key, wl, label, unit, better, dec in FIGURES:
        fig = {'key': key, 'workload': wl, 'label': label.format(**label_args), 'unit': unit,
               'better': better}
        for s in SYSTEMS:
            rs = [r for r in runs if r['system'] == s and r['workload'] == wl and r.get('strategy') is None]
            vals = [r['metrics'][key] for r in rs if r['ok'] and r['metrics'].get(key) is not None]
            fig[s] = {'values': vals, 'failed': sum(1 for r in rs if not r['ok']), 'runs': len(rs),
                      'summary': summarize(vals)}
        a, b = fig['datasync']['summary'], fig['native']['summary']
        fig['ratio'] = (a['median'] / b['median']) if a and b and b['median'] else None
        figures.append(fig)

    lines = ['# datasync vs native logical replication', '',
             '%s, %s mode, %d repetition(s), host %s (%d cores), PostgreSQL %s, datasync commit %s.'
             % (meta['started'], meta['mode'], cfg['reps'], meta['host'], os.cpu_count(), meta['pg_version'],
                meta['commit']), '',
             'Cells: median [min–max] over the successful repetitions. Ratio = datasync / native '
             '(medians): below 1 is better for times, CPU and memory; above 1 is better for TPS and rows/s. '
             'A measurement whose content check failed is counted as failed, never as a number.', '',
             '| Workload | Figure | unit | datasync | native | ratio ds/native |',
             '|---|---|---|---|---|---|']
    decs = {f[0]: f[5] for f in FIGURES}
    for fig in figures:
        cells = []
        for s in SYSTEMS:
            d = fig[s]
            sm = d['summary']
            if sm is None:
                cell = 'FAILED' if d['failed'] else 'n/a'
            elif sm['n'] == 1:
                cell = fmt(sm['median'], decs[fig['key']])
            else:
                cell = '%s [%s–%s]' % (fmt(sm['median'], decs[fig['key']]), fmt(sm['min'], decs[fig['key']]),
                                        fmt(sm['max'], decs[fig['key']]))
            if d['failed'] and sm is not None:
                cell += ' (%d/%d failed)' % (d['failed'], d['runs'])
            cells.append(cell)
        ratio = '%.2f' % fig['ratio'] if fig['ratio'] is not None else '–'
        if fig['better'] is None and fig['ratio'] is not None:
            ratio += ' (info)'
        lines.append('| %s | %s | %s | %s | %s | %s |' % (fig['workload'], fig['label'], fig['unit'],
                                                         cells[0], cells[1], ratio))
    strategy_figures = None
    if cfg.get('strategies'):
        more, strategy_figures = strategy_report(runs, cfg, label_args)
        lines += more
    failures = [r for r in runs if not r['ok']]
    lines += ['', '## Failures', '']
    if failures:
        for r in failures:
            lines.append('- rep %d, %s, %s: %s' % (r['rep'], run_name(r), r['workload'],
                                                   r['error'].replace('\n', ' ')[:600]))
    else:
        lines.append('None: every measurement passed its content check (row count and md5 of all rows).')
    anomalies = []
    for r in runs:
        m = r['metrics']
        for k in ('w1_100k_partial_polls', 'w1_partial_polls', 'w3_partial_polls'):
            if m.get(k):
                anomalies.append('rep %d, %s, %s: %d target polls saw the first row of one source transaction '
                                 'without its last (%s)' % (r['rep'], run_name(r), r['workload'], m[k], k))
        if m.get('w1_worker_restarted'):
            anomalies.append('rep %d, %s: the sync/apply worker was a different process after W1' % (
                r['rep'], run_name(r)))
        if m.get('w2_pgbench_failed_tx'):
            anomalies.append('rep %d, %s: pgbench reported %d failed transactions' % (
                r['rep'], run_name(r), m['w2_pgbench_failed_tx']))
        if m.get('conflicts_recorded'):
            anomalies.append('rep %d, %s, %s: %d conflict(s) recorded in datasync.conflicts (the workloads '
                             'have none)' % (r['rep'], run_name(r), r['workload'], m['conflicts_recorded']))
    if anomalies:
        lines += ['', '## Anomalies', ''] + ['- ' + a for a in anomalies]
    lines += ['', 'Total run time: %.0f s.' % meta['duration_s'], '']
    return '\n'.join(lines), figures, strategy_figures


# --------------------------------------------------------------------------

def main():
    global LOGF
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--reps', type=int)
    ap.add_argument('--only', help='comma-separated workloads, e.g. W1,W3 (for debugging)')
    ap.add_argument('--systems', default='datasync,native')
    ap.add_argument('--strategies', default='',
                    help='comma-separated conflict strategies to measure against plain source-wins on W1 and W2 '
                         '(datasync only): %s' % ', '.join(STRATEGIES))
    ap.add_argument('--keep-logs', action='store_true', help='copy every server log next to the results')
    ap.add_argument('--outdir', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results'))
    args = ap.parse_args()

    if args.quick:
        cfg = dict(reps=1, w1_rows=200000, w2_scale=10, w2_seconds=10, w3_rows=200000,
                   w4_updates=40000, w4_deletes=10000, w4_tx=50)
    else:
        cfg = dict(reps=3, w1_rows=1000000, w2_scale=10, w2_seconds=30, w3_rows=1000000,
                   w4_updates=200000, w4_deletes=50000, w4_tx=250)
    if args.reps:
        cfg['reps'] = args.reps
    cfg['timeout_bulk'] = 900
    cfg['timeout_catchup'] = 600
    only = set(args.only.split(',')) if args.only else None
    systems = [s for s in SYSTEMS if s in args.systems.split(',')]
    strategies = [x.strip() for x in args.strategies.split(',') if x.strip()]
    for x in strategies:
        if x not in STRATEGIES:
            ap.error('unknown strategy %r (valid: %s)' % (x, ', '.join(STRATEGIES)))
    if len(set(strategies)) != len(strategies):
        ap.error('a strategy is listed twice')
    if strategies and 'datasync' not in systems:
        ap.error('--strategies needs the system datasync')
    if strategies and only and not only & set(STRATEGY_WORKLOADS):
        ap.error('--strategies measures W1 and W2; --only selects neither')
    if strategies:
        cfg['strategies'] = strategies

    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    os.makedirs(args.outdir, exist_ok=True)
    LOGF = open(os.path.join(BASE, 'driver.log'), 'w')
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(['git', '-C', repo, 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = '?'
    pgv = subprocess.run([PGBIN + '/postgres', '--version'], capture_output=True, text=True).stdout.strip()
    meta = {'started': datetime.datetime.now().isoformat(timespec='seconds'), 'mode': 'quick' if args.quick else 'full',
            'host': os.uname().nodename, 'commit': commit,
            'pg_version': (re.search(r'PostgreSQL\) (\S+)', pgv) or re.search('(.*)', pgv)).group(1),
            'config': cfg}
    log('config: %s' % json.dumps(cfg))

    runs = []
    for rep in range(1, cfg['reps'] + 1):
        order = systems if rep % 2 == 1 else list(reversed(systems))
        for system in order:
            pair = Pair(system, 'r%d_%s' % (rep, system[:2]))
            log('rep %d: %s: starting clusters' % (rep, system))
            pair_ok = False
            # None = the normal run (pipeline defaults: plain source-wins); then each
            # strategy on W1/W2.  Even repetitions reverse the order, so that plain
            # source-wins is not always measured first on the pair.
            variants = [None] + (strategies if system == 'datasync' else [])
            if rep % 2 == 0:
                variants.reverse()
            for strategy in variants:
                for wl, fn in WORKLOADS:
                    if only and wl not in only:
                        continue
                    if strategy is not None and wl not in STRATEGY_WORKLOADS:
                        continue
                    if not pair_ok:
                        pair.down()
                        pair.up()
                        pair_ok = True
                    what = system if strategy is None else '%s/%s' % (system, strategy)
                    log('rep %d: %s: %s' % (rep, what, wl))
                    rec = {'rep': rep, 'system': system, 'strategy': strategy, 'workload': wl, 'ok': False,
                           'error': None, 'metrics': {}}
                    t = time.time()
                    try:
                        pair.set_strategy(strategy)
                        n_conf = pair.conflict_rows() if strategy is not None else None
                        rec['metrics'] = fn(pair, cfg)
                        rec['ok'] = True
                        if strategy is not None:
                            # no conflicts in these workloads: none may be recorded
                            rec['metrics']['conflicts_recorded'] = pair.conflict_rows() - n_conf
                            if rec['metrics']['conflicts_recorded']:
                                log('  %d conflict(s) recorded in datasync.conflicts'
                                    % rec['metrics']['conflicts_recorded'])
                    except Exception as e:  # noqa: BLE001 -- any failure is a failed measurement
                        rec['error'] = '%s: %s' % (type(e).__name__, e)
                        log('  FAILED: %s' % rec['error'])
                        dest = os.path.join(BASE, 'failed-logs', 'rep%d-%s-%s' % (
                            rep, what.replace('/', '-'), wl))
                        pair.save_logs(dest)
                        rec['logs'] = dest
                        pair_ok = False  # rebuild the clusters before the next workload
                    rec['wall_s'] = round(time.time() - t, 1)
                    runs.append(rec)
            pair.strategy = None
            if args.keep_logs:
                pair.save_logs(os.path.join(BASE, 'server-logs', 'rep%d-%s' % (rep, system)))
            pair.down()

    meta['duration_s'] = time.time() - T0
    md, figures, strategy_figures = build_report(runs, cfg, meta)
    base = os.path.join(args.outdir, stamp + ('-quick' if args.quick else ''))
    with open(base + '.md', 'w') as f:
        f.write(md)
    with open(base + '.json', 'w') as f:
        out = {'meta': meta, 'figures': figures, 'runs': runs}
        if strategy_figures is not None:
            out['strategy_figures'] = strategy_figures
        json.dump(out, f, indent=1, default=str)
    # keep failure logs next to the results
    if os.path.isdir(os.path.join(BASE, 'failed-logs')):
        shutil.copytree(os.path.join(BASE, 'failed-logs'), base + '-failed-logs', dirs_exist_ok=True)
    shutil.copy(os.path.join(BASE, 'driver.log'), base + '.log')
    if os.path.isdir(os.path.join(BASE, 'server-logs')):
        shutil.copytree(os.path.join(BASE, 'server-logs'), base + '-server-logs', dirs_exist_ok=True)
    print(md)
    log('wrote %s.md and %s.json' % (base, base))
    return 0 if all(r['ok'] for r in runs) else 1


if __name__ == '__main__':
    def on_signal(signum, frame):
        cleanup_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        sys.exit(main())
    finally:
        cleanup_all()
