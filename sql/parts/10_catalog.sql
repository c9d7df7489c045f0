/* ---------------------------------------------------------------------
 * Catalog.  Only the extension owner reads these tables directly: the
 * target DSN may hold a password.  Users see them through views.
 * ---------------------------------------------------------------------
 */
CREATE TABLE datasync._targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL DEFAULT 'postgresql' CHECK (kind IN ('postgresql', 'http')),
    dsn         text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',
    owner       oid NOT NULL,   -- role that set the DSN; unless a superuser, the target must ask for a password
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE datasync._targets IS 'datasync targets (internal; read datasync.targets)';

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
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE datasync._pipelines IS 'datasync pipelines (internal; read datasync.pipelines and datasync.status)';

CREATE TABLE datasync._pipeline_tables (
    pipeline_id  bigint NOT NULL REFERENCES datasync._pipelines (id) ON DELETE CASCADE,
    relid        oid NOT NULL,
    sync_state   "char" NOT NULL DEFAULT 'i' CHECK (sync_state IN ('i', 's', 'r')), -- init, resync requested, ready
    added_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (pipeline_id, relid)
);
COMMENT ON TABLE datasync._pipeline_tables IS 'tables of each pipeline (internal)';

REVOKE ALL ON datasync._targets, datasync._pipelines, datasync._pipeline_tables FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('datasync._targets', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('datasync._pipeline_tables', '');

