/* ---------------------------------------------------------------------
 * Conflicts
 * ---------------------------------------------------------------------
 */
/*
 * One row a conflict the worker detected (every strategy but source-wins,
 * which records only with the option log_conflicts).  Written by the worker
 * before the target commits the batch, keyed by the source change that
 * caused it (change_lsn, change_seq), so a replay after a crash finds the
 * row instead of adding a second one.  A manual conflict stays 'open' until
 * resolve_conflict; later changes to its key join it (changes, source_row,
 * last_change_*).
 */
CREATE TABLE datasync.conflicts (
    id              bigserial PRIMARY KEY,
    pipeline        text NOT NULL,
    "table"         regclass NOT NULL,
    key             jsonb NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('insert_exists', 'update_missing', 'update_differs',
                                                  'delete_missing', 'delete_differs')),
    source_row      jsonb,              -- the latest source version; NULL: deleted
    target_row      jsonb,              -- the target row when detected; NULL: missing
    strategy        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution      text CHECK (resolution IN ('source', 'target')),
    detected_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz,
    resolved_by     text,               -- NULL: resolved by the strategy
    changes         integer NOT NULL DEFAULT 1,  -- source changes it holds
    pipeline_id     bigint NOT NULL,
    target_table    text NOT NULL,      -- quoted target table name
    key_texts       text[] NOT NULL,    -- the worker's form of its key(s)
    change_lsn      pg_lsn NOT NULL,    -- commit LSN of the change's transaction
    change_seq      integer NOT NULL,   -- the change's place in it
    last_change_lsn pg_lsn NOT NULL,
    last_change_seq integer NOT NULL,
    source_commit_at timestamptz,
    CHECK ((status = 'open') = (resolution IS NULL))
);
CREATE UNIQUE INDEX ON datasync.conflicts (pipeline_id, change_lsn, change_seq);
CREATE INDEX ON datasync.conflicts (pipeline_id) WHERE status = 'open';
COMMENT ON TABLE datasync.conflicts IS 'conflicts the sync met, how each was resolved, and the open ones waiting for resolve_conflict';
REVOKE ALL ON datasync.conflicts FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('datasync.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('datasync.conflicts_id_seq', '');
/*
 * The rows hold row values: a row is visible to the roles that may read
 * its table (datasync.can_read_values; the worker, a superuser, and the
 * extension's SECURITY DEFINER functions, as the table's owner, see every
 * row).
 */
ALTER TABLE datasync.conflicts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conflicts_of_readable_tables ON datasync.conflicts FOR SELECT
    USING (datasync.can_read_values("table"));

CREATE FUNCTION datasync.resolve_conflict(id bigint, resolution text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_resolve_conflict'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.resolve_conflict(bigint, text) IS 'resolve an open conflict: ''source'' applies the latest source version, ''target'' keeps the target row';

REVOKE ALL ON FUNCTION datasync.resolve_conflict(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION datasync.resolve_conflict(bigint, text) TO datasync_operator;
GRANT SELECT ON datasync.conflicts TO datasync_monitor;
