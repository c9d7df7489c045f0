/* ---------------------------------------------------------------------
 * Catalog.  Only the extension owner reads these tables directly: the
 * target DSN may hold a password.  Users see them through views.
 * Columns added by an upgrade come last, where ALTER TABLE ADD COLUMN puts
 * them in an upgraded installation (SELECT *, COPY and pg_dump see the
 * same columns in the same order in both).
 * ---------------------------------------------------------------------
 */
CREATE TABLE datasync._targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL DEFAULT 'postgresql' CHECK (kind IN ('postgresql', 'http')),
    dsn         text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',
    owner       oid NOT NULL,   -- unless a superuser, the target must ask it for a password
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    grantees    oid[] NOT NULL DEFAULT '{}'     -- 0.2
);
COMMENT ON TABLE datasync._targets IS 'datasync targets (internal; read datasync.targets)';
/*
 * Who may use a target: its owner (the role that last set its DSN) and
 * the members of that role, the roles in grantees and their members, and
 * superusers.  Pipelines to a target and test_target need the use; alter,
 * drop, grant and revoke need the ownership.
 */
COMMENT ON COLUMN datasync._targets.owner IS 'role that last set the DSN; it (and superusers) may change, drop, grant and revoke the target';
COMMENT ON COLUMN datasync._targets.grantees IS 'roles that may use the target besides its owner (datasync.grant_target)';

CREATE TABLE datasync._pipelines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name <> ''),
    slot_name         text NOT NULL UNIQUE, -- name of the slot and the publication
    target_id         bigint NOT NULL REFERENCES datasync._targets (id),
    mode              text NOT NULL DEFAULT 'realtime',
    schedule          text,
    conflict_strategy text NOT NULL DEFAULT 'source-wins',
    options           jsonb NOT NULL DEFAULT '{}',
    enabled           boolean NOT NULL DEFAULT true,
    error             text,             -- set when the pipeline stopped on a permanent error
    incarnation       bigint NOT NULL,  -- random; tells this pipeline's progress rows on the target from an older one of the same name
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by        oid,              -- 0.2; NULL for pipelines created before 0.2, which are not checked
    skip_lsn          pg_lsn            -- 0.2; skip_transaction: the commit LSN of a source transaction to skip
);
COMMENT ON TABLE datasync._pipelines IS 'datasync pipelines (internal; read datasync.pipelines and datasync.status)';
COMMENT ON COLUMN datasync._pipelines.created_by IS 'role that created the pipeline; its right to use the target is checked by the worker';
COMMENT ON COLUMN datasync._pipelines.skip_lsn IS 'commit LSN of a source transaction the worker skips (skip_transaction); cleared once a later one is on the target';

CREATE TABLE datasync._pipeline_tables (
    pipeline_id  bigint NOT NULL REFERENCES datasync._pipelines (id) ON DELETE CASCADE,
    relid        oid NOT NULL,
    sync_state   "char" NOT NULL DEFAULT 'i' CHECK (sync_state IN ('i', 's', 'r')), -- init, resync requested, ready
    added_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    added_by     oid,   -- 0.2; the worker checks again, as that role, that it may read the table in full
    PRIMARY KEY (pipeline_id, relid)
);
COMMENT ON TABLE datasync._pipeline_tables IS 'tables of each pipeline (internal)';
COMMENT ON COLUMN datasync._pipeline_tables.added_by IS 'role that added the table (create_pipeline, add_table); NULL for tables added before 0.2';

REVOKE ALL ON datasync._targets, datasync._pipelines, datasync._pipeline_tables FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('datasync._targets', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipeline_tables', '');

