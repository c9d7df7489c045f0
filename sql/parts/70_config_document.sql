/* ---------------------------------------------------------------------
 * Declarative configuration: apply_config / export_config
 * ---------------------------------------------------------------------
 */
/*
 * apply_config(config jsonb) sets up targets and pipelines from one document
 * in the shape of the seed's YAML configuration; export_config() writes the
 * current set-up as such a document.  docs/config-document.md describes the
 * format.  Both are SECURITY INVOKER: they read the views datasync.targets
 * and datasync.pipelines and call the SQL API, so the caller needs exactly
 * the rights the API needs (datasync_admin).  The one thing the views do not
 * show, whether a target's stored DSN (with its password) is the one a
 * document asks for, is answered by _config_target_dsn_is, which never
 * returns the DSN itself.
 *
 * apply_config first checks the whole document (types, keys, words, cron
 * expressions, table names, target references), then compares it with the
 * catalog and calls create_target, alter_target, create_pipeline,
 * alter_pipeline, add_table and remove_table only for what differs.  Every
 * error names the JSON path of what caused it and keeps the SQLSTATE of the
 * underlying error; being one statement, a failed run changes nothing.
 */

-- the path of key below path, in JSONPath notation: $.a.b, $."odd key"
CREATE FUNCTION datasync._config_path(path text, key text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN key ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN path || '.' || key
                ELSE path || '.' || pg_catalog.to_jsonb(key)::text END
$$;

-- raise "invalid configuration at <path>: <message>" with the given SQLSTATE
CREATE FUNCTION datasync._config_error(path text, code text, message text,
                                       detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    msg text;
BEGIN
    -- an error raised by a nested check already names its path
    IF message LIKE 'invalid configuration at %' THEN
        msg := message;
    ELSE
        msg := pg_catalog.format('invalid configuration at %s: %s', path, message);
    END IF;
    detail := coalesce(detail, '');
    hint := coalesce(hint, '');
    IF detail <> '' AND hint <> '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = code, DETAIL = detail, HINT = hint;
    ELSIF detail <> '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = code, DETAIL = detail;
    ELSIF hint <> '' THEN
        RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = code, HINT = hint;
    ELSE
        RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = code;
    END IF;
END
$$;

-- a JSON value must be of type want (object, array, string, boolean)
CREATE FUNCTION datasync._config_expect(val jsonb, path text, want text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    got text := coalesce(pg_catalog.jsonb_typeof(val), 'null');
BEGIN
    IF got <> want THEN
        PERFORM datasync._config_error(path, '22023',
            pg_catalog.format('must be %s, not %s',
                              CASE WHEN want IN ('object', 'array') THEN 'an ' ELSE 'a ' END || want,
                              CASE got WHEN 'null' THEN 'null'
                                       WHEN 'object' THEN 'an object'
                                       WHEN 'array' THEN 'an array'
                                       ELSE 'a ' || got END));
    END IF;
END
$$;

-- an object may hold only the keys in allowed (typo protection)
CREATE FUNCTION datasync._config_check_keys(obj jsonb, path text, allowed text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    FOR k IN SELECT o.k FROM pg_catalog.jsonb_object_keys(obj) o(k) ORDER BY o.k COLLATE "C" LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM datasync._config_error(datasync._config_path(path, k), '22023',
                pg_catalog.format('unrecognized key "%s"', k), NULL,
                'Valid keys here are ' ||
                (SELECT pg_catalog.string_agg(pg_catalog.format('"%s"', a), ', ' ORDER BY n)
                   FROM pg_catalog.unnest(allowed) WITH ORDINALITY u(a, n)) || '.');
        END IF;
    END LOOP;
END
$$;

-- a string member of an object; NULL when absent or JSON null
CREATE FUNCTION datasync._config_string(obj jsonb, key text, path text, required boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := obj -> key;
BEGIN
    IF v IS NULL OR pg_catalog.jsonb_typeof(v) = 'null' THEN
        IF required THEN
            PERFORM datasync._config_error(datasync._config_path(path, key), '22023', 'is missing');
        END IF;
        RETURN NULL;
    END IF;
    PERFORM datasync._config_expect(v, datasync._config_path(path, key), 'string');
    RETURN v #>> '{}';
END
$$;

-- the document's words as the SQL API stores them: real-time -> realtime, source_wins -> source-wins
CREATE FUNCTION datasync._config_word(word text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE w WHEN 'real-time' THEN 'realtime' ELSE w END
      FROM pg_catalog.replace(pg_catalog.lower(word), '_', '-') w
$$;

CREATE FUNCTION datasync._config_mode(mode text, path text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text := datasync._config_word(mode);
BEGIN
    IF m IN ('realtime', 'scheduled', 'manual') THEN
        RETURN m;
    END IF;
    PERFORM datasync._config_error(path, '22023', pg_catalog.format('invalid mode "%s"', mode), NULL,
                                   'Valid modes are "real-time" (or "realtime"), "scheduled" and "manual".');
    RETURN NULL;
END
$$;

CREATE FUNCTION datasync._config_strategy(strategy text, path text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := datasync._config_word(strategy);
BEGIN
    IF s IN ('source-wins', 'target-wins', 'latest-timestamp', 'manual') THEN
        RETURN s;
    END IF;
    PERFORM datasync._config_error(path, '22023', pg_catalog.format('invalid conflict strategy "%s"', strategy), NULL,
                                   'Valid strategies are "source-wins", "target-wins", "latest-timestamp" and "manual".');
    RETURN NULL;
END
$$;

/*
 * A cron expression as pg_cron takes it: five fields separated by single
 * spaces (a sixth, leading seconds field of 0, as the seed writes them, is
 * dropped), or one of pg_cron's @ macros.  NULL when it is not one; the
 * fields' values are left to pg_cron.
 */
CREATE FUNCTION datasync._config_cron(expr text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text[] := pg_catalog.regexp_split_to_array(pg_catalog.btrim(expr, E' \t\n\r'), E'[ \t\n\r]+');
    n integer := pg_catalog.cardinality(f);
BEGIN
    IF n = 1 AND pg_catalog.lower(f[1]) IN ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly') THEN
        RETURN pg_catalog.lower(f[1]);
    END IF;
    IF n = 6 AND f[1] = '0' THEN
        f := f[2:6];
        n := 5;
    END IF;
    IF n <> 5 OR EXISTS (SELECT 1 FROM pg_catalog.unnest(f) x WHERE x !~ '^[0-9A-Za-z*/,?-]+$') THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.array_to_string(f, ' ');
END
$$;

-- a schedule of the document: "cron" or {"cron": "...", "timezone": "UTC"}; a time
-- zone other than UTC is refused: pg_cron 1.4 has no cron.timezone, it runs in GMT
CREATE FUNCTION datasync._config_schedule(val jsonb, path text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expr text;
    expr_path text := path;
    tz text;
    f text[];
    result text;
BEGIN
    IF pg_catalog.jsonb_typeof(val) = 'object' THEN
        PERFORM datasync._config_check_keys(val, path, ARRAY['cron', 'timezone']);
        expr := datasync._config_string(val, 'cron', path, true);
        expr_path := path || '.cron';
        tz := datasync._config_string(val, 'timezone', path);
        IF tz IS NOT NULL AND pg_catalog.upper(tz) NOT IN ('UTC', 'ETC/UTC') THEN
            PERFORM datasync._config_error(path || '.timezone', '0A000',
                pg_catalog.format('time zone "%s" is not supported', tz),
                'pg_cron 1.4 runs every schedule in GMT and has no time-zone setting.',
                'Write the cron expression in GMT and leave "timezone" out, or set it to "UTC".');
        END IF;
    ELSIF pg_catalog.jsonb_typeof(val) = 'string' THEN
        expr := val #>> '{}';
    ELSE
        PERFORM datasync._config_error(path, '22023',
            pg_catalog.format('must be a string or an object, not %s',
                              CASE pg_catalog.jsonb_typeof(val) WHEN 'array' THEN 'an array'
                                   ELSE 'a ' || pg_catalog.jsonb_typeof(val) END));
    END IF;

    result := datasync._config_cron(expr);
    IF result IS NULL THEN
        f := pg_catalog.regexp_split_to_array(pg_catalog.btrim(expr, E' \t\n\r'), E'[ \t\n\r]+');
        IF pg_catalog.cardinality(f) = 6 AND f[1] <> '0' THEN
            PERFORM datasync._config_error(expr_path, '22023',
                pg_catalog.format('cron expression "%s" has a seconds field other than 0', expr), NULL,
                'pg_cron runs a schedule at most once a minute: write five fields (minute hour day month weekday), or six with seconds 0.');
        END IF;
        PERFORM datasync._config_error(expr_path, '22023',
            pg_catalog.format('invalid cron expression "%s"', expr), NULL,
            'Write five fields (minute hour day month weekday), for example "*/5 * * * *", or six with seconds 0.');
    END IF;
    RETURN result;
END
$$;

/*
 * The keyword=value pairs of a DSN as datasync._mask_dsn writes it (libpq's
 * order, a value quoted when it has to be), unquoted, in order.
 */
CREATE FUNCTION datasync._config_dsn_pairs(masked text)
RETURNS TABLE (ord bigint, keyword text, value text)
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.ord, m.r[1],
           CASE WHEN pg_catalog.left(m.r[2], 1) = ''''
                THEN pg_catalog.regexp_replace(pg_catalog.substr(m.r[2], 2, pg_catalog.length(m.r[2]) - 2),
                                               '\\(.)', '\1', 'g')
                ELSE m.r[2] END
      FROM pg_catalog.regexp_matches(masked, '([A-Za-z_]+)=(''(?:[^''\\]|\\.)*''|[^ ]*)', 'g')
           WITH ORDINALITY AS m(r, ord)
$$;

-- a value quoted for a keyword=value DSN, as libpq reads it back
CREATE FUNCTION datasync._config_dsn_quote(val text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN val <> '' AND val !~ '[[:space:]\\'']' THEN val
                ELSE '''' || pg_catalog.replace(pg_catalog.replace(val, '\', '\\'), '''', '\''') || '''' END
$$;

/*
 * Is the stored DSN of target name exactly dsn?  For documents that give a
 * password: their DSN is compared without anyone reading the stored one.
 * It answers only the target's owner and superusers (to anyone else it
 * would answer password guesses).
 */
CREATE FUNCTION datasync._config_target_dsn_is(name text, dsn text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'datasync_config_target_dsn_is'
LANGUAGE C STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp;

/*
 * options with its JSON nulls removed ("not given").
 */
CREATE FUNCTION datasync._config_strip(options jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.jsonb_object_agg(e.key, e.value) FILTER (WHERE pg_catalog.jsonb_typeof(e.value) <> 'null'), '{}')
      FROM pg_catalog.jsonb_each(coalesce(options, '{}')) e
$$;

/*
 * What turns the options current into desired through the merge of
 * alter_target/alter_pipeline: changed and new keys with their values,
 * keys gone as JSON null.
 */
CREATE FUNCTION datasync._config_diff(current jsonb, desired jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.jsonb_object_agg(k.key, coalesce(desired -> k.key, 'null'::jsonb)), '{}')
      FROM (SELECT pg_catalog.jsonb_object_keys(coalesce(desired, '{}'))
            UNION
            SELECT pg_catalog.jsonb_object_keys(coalesce(current, '{}'))) k(key)
     WHERE (desired -> k.key) IS DISTINCT FROM (current -> k.key)
$$;

/*
 * A table of the document: "schema.table", or "table" for one in schema
 * public, identifiers as in SQL (double quotes keep case and odd
 * characters).  Its OID, or an error naming path.
 */
CREATE FUNCTION datasync._config_table(name text, path text)
RETURNS oid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    relid oid;
BEGIN
    BEGIN
        parts := pg_catalog.parse_ident(name);
    EXCEPTION WHEN OTHERS THEN
        parts := NULL;
    END;
    IF parts IS NULL OR pg_catalog.cardinality(parts) > 2 THEN
        PERFORM datasync._config_error(path, '22023', pg_catalog.format('invalid table name "%s"', name), NULL,
                                       'Write schema.table, or table for a table in schema public; quote identifiers as in SQL.');
    END IF;
    IF pg_catalog.cardinality(parts) = 1 THEN
        parts := ARRAY['public', parts[1]];
    END IF;
    SELECT c.oid INTO relid
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = parts[1] AND c.relname = parts[2];
    IF relid IS NULL THEN
        PERFORM datasync._config_error(path, '42P01',
            pg_catalog.format('relation "%s.%s" does not exist', parts[1], parts[2]));
    END IF;
    RETURN relid;
END
$$;

/*
 * The path an error of the SQL API points at: the member of the target or
 * pipeline at path that the message is about, else path itself.  paths
 * maps "mode", "schedule" and "strategy" to where the document set them.
 */
CREATE FUNCTION datasync._config_error_path(path text, kind text, message text, paths jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(CASE
        WHEN kind = 'target' THEN
            CASE WHEN message ~ '\mDSN\M' THEN path || '.connectionString'
                 WHEN message ~ '^target name' THEN path || '.name'
                 WHEN message ~ '\mpassword_env\M' THEN path
                 WHEN message ~ '\moptions?\M' THEN path || '.options'
            END
        ELSE
            CASE WHEN message ~ '\mpipeline options?\M|\mtable_map\M' THEN path || '.options'
                 WHEN message ~ '\mschedule\M' THEN paths ->> 'schedule'
                 WHEN message ~ '\mmode\M' THEN paths ->> 'mode'
                 WHEN message ~ '\mconflict strategy\M' THEN paths ->> 'strategy'
                 WHEN message ~ '^(pipeline name|pipeline "[^"]*" already exists)' THEN path || '.name'
                 WHEN message ~ '^target ' THEN path || '.target'
                 WHEN message ~ '\m(table|tables|relation)\M|is not a table' THEN path || '.tables'
            END
        END, path)
$$;

/*
 * Check one target of the document and return what apply_config needs:
 * {"path", "name", "dsn" (with any password), "masked" (as datasync.targets
 * shows it), "keep" (a secret is "********": keep the stored DSN),
 * "secret" (a new secret is given), "options"}.
 */
CREATE FUNCTION datasync._config_target(t jsonb, path text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text;
    kind text;
    cs text;
    masked text;
    cs_user text;
    cs_secrets text[];
    auth jsonb;
    cred jsonb;
    cred_path text := path || '.auth.credentials';
    username text;
    password text;
    password_env text;
    sslpassword text;
    options jsonb;
    dsn text;
    keep boolean := false;
    secret boolean := false;
BEGIN
    PERFORM datasync._config_expect(t, path, 'object');
    PERFORM datasync._config_check_keys(t, path, ARRAY['name', 'type', 'connectionString', 'auth', 'options']);
    name := datasync._config_string(t, 'name', path, true);

    kind := pg_catalog.lower(coalesce(datasync._config_string(t, 'type', path), 'postgresql'));
    IF kind IN ('http', 'https') THEN
        PERFORM datasync._config_error(path || '.type', '0A000',
            pg_catalog.format('target type "%s" is not supported yet', t ->> 'type'), NULL,
            'Only PostgreSQL targets exist in this version.');
    ELSIF kind NOT IN ('postgresql', 'postgres') THEN
        PERFORM datasync._config_error(path || '.type', '22023',
            pg_catalog.format('invalid target type "%s"', t ->> 'type'), NULL,
            'Valid types are "postgresql" and "http".');
    END IF;

    -- the connection string: libpq must parse it, and it holds no secret
    cs := datasync._config_string(t, 'connectionString', path, true);
    masked := datasync._mask_dsn(cs);
    IF masked = '********' THEN
        PERFORM datasync._config_error(path || '.connectionString', '22023',
            'not a valid libpq connection string or URI', NULL,
            'Write keyword=value pairs (host=... port=... dbname=...) or a postgresql:// URI.');
    END IF;
    SELECT pg_catalog.array_agg(p.keyword ORDER BY p.ord) FILTER (WHERE p.keyword LIKE '%password%'),
           pg_catalog.min(p.value) FILTER (WHERE p.keyword = 'user')
      INTO cs_secrets, cs_user
      FROM datasync._config_dsn_pairs(masked) p;
    IF cs_secrets IS NOT NULL THEN
        PERFORM datasync._config_error(path || '.connectionString', '22023',
            pg_catalog.format('the connection string must not hold a password ("%s")', cs_secrets[1]), NULL,
            'Put the password in auth.credentials.password (sslpassword in auth.credentials.sslPassword), or use auth.credentials.passwordEnv or a passfile.');
    END IF;

    -- auth.credentials
    auth := t -> 'auth';
    IF auth IS NOT NULL AND pg_catalog.jsonb_typeof(auth) <> 'null' THEN
        PERFORM datasync._config_expect(auth, path || '.auth', 'object');
        PERFORM datasync._config_check_keys(auth, path || '.auth', ARRAY['credentials']);
        cred := auth -> 'credentials';
        IF cred IS NOT NULL AND pg_catalog.jsonb_typeof(cred) <> 'null' THEN
            PERFORM datasync._config_expect(cred, cred_path, 'object');
            PERFORM datasync._config_check_keys(cred, cred_path, ARRAY['username', 'password', 'passwordEnv', 'sslPassword']);
            username := datasync._config_string(cred, 'username', cred_path);
            password := datasync._config_string(cred, 'password', cred_path);
            password_env := datasync._config_string(cred, 'passwordEnv', cred_path);
            sslpassword := datasync._config_string(cred, 'sslPassword', cred_path);
        END IF;
    END IF;
    IF username = '' THEN
        PERFORM datasync._config_error(cred_path || '.username', '22023', 'must not be empty');
    END IF;
    IF username IS NOT NULL AND cs_user IS NOT NULL AND username <> cs_user THEN
        PERFORM datasync._config_error(cred_path || '.username', '22023',
            pg_catalog.format('user "%s" differs from user "%s" of the connection string', username, cs_user));
    END IF;
    IF password = '' THEN
        PERFORM datasync._config_error(cred_path || '.password', '22023', 'must not be empty');
    END IF;
    IF sslpassword = '' THEN
        PERFORM datasync._config_error(cred_path || '.sslPassword', '22023', 'must not be empty');
    END IF;
    keep := coalesce(password = '********', false) OR coalesce(sslpassword = '********', false);
    secret := coalesce(password <> '********', false) OR coalesce(sslpassword <> '********', false);
    IF keep AND secret THEN
        PERFORM datasync._config_error(cred_path, '22023',
            'a new secret cannot be combined with a kept ("********") one', NULL,
            'Give every secret of the target, or "********" for every one.');
    END IF;

    -- options: as create_target takes them; passwordEnv is options.password_env
    options := t -> 'options';
    IF options IS NULL OR pg_catalog.jsonb_typeof(options) = 'null' THEN
        options := '{}';
    END IF;
    PERFORM datasync._config_expect(options, path || '.options', 'object');
    options := datasync._config_strip(options);
    IF options ? 'dsn' THEN
        PERFORM datasync._config_error(path || '.options.dsn', '22023', '"dsn" is not a target option here', NULL,
                                       'Give the DSN as connectionString.');
    END IF;
    IF password_env IS NOT NULL THEN
        IF options ? 'password_env' AND options ->> 'password_env' IS DISTINCT FROM password_env THEN
            PERFORM datasync._config_error(cred_path || '.passwordEnv', '22023',
                'differs from options.password_env');
        END IF;
        options := options || pg_catalog.jsonb_build_object('password_env', password_env);
    END IF;

    -- the DSN: the connection string as libpq reads it, then the credentials
    dsn := masked;
    IF username IS NOT NULL AND cs_user IS NULL THEN
        dsn := pg_catalog.concat_ws(' ', NULLIF(dsn, ''), 'user=' || datasync._config_dsn_quote(username));
    END IF;
    IF password IS NOT NULL THEN
        dsn := pg_catalog.concat_ws(' ', NULLIF(dsn, ''), 'password=' || datasync._config_dsn_quote(password));
    END IF;
    IF sslpassword IS NOT NULL THEN
        dsn := pg_catalog.concat_ws(' ', NULLIF(dsn, ''), 'sslpassword=' || datasync._config_dsn_quote(sslpassword));
    END IF;

    RETURN pg_catalog.jsonb_build_object('path', path, 'name', name, 'dsn', dsn,
                                         'masked', datasync._mask_dsn(dsn),
                                         'keep', keep, 'secret', secret, 'options', options);
END
$$;

/*
 * The work of apply_config(config): make the targets and pipelines the
 * document names look as it says; return what was done.
 */
CREATE FUNCTION datasync._config_apply(config jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tgts jsonb := '[]';         -- checked targets (_config_target)
    pipes jsonb := '[]';        -- checked pipelines
    tgt_names text[] := '{}';
    pipe_names text[] := '{}';
    default_target text;
    default_mode text := 'realtime';
    default_strategy text := 'source-wins';
    default_schedule text;
    default_paths jsonb := '{}';
    paths jsonb;
    v jsonb;
    e jsonb;
    spec jsonb;
    i integer;
    j integer;
    path text;
    s text;
    v_name text;
    v_target text;
    v_mode text;
    v_strategy text;
    v_schedule text;
    v_options jsonb;
    relid oid;
    relids oid[];
    cur record;
    diff jsonb;
    dsn_changed boolean;
    created_t text[] := '{}';
    altered_t text[] := '{}';
    unchanged_t text[] := '{}';
    created_p text[] := '{}';
    altered_p text[] := '{}';
    unchanged_p text[] := '{}';
    actions jsonb := '[]';
    changed boolean;
    err_state text;
    err_msg text;
    err_detail text;
    err_hint text;
BEGIN
    /* ---- 1. check the whole document ---- */
    IF config IS NULL THEN
        PERFORM datasync._config_error('$', '22004', 'the document must not be null');
    END IF;
    -- one apply_config at a time, so that each compares with what the last one did
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('datasync.apply_config'));
    PERFORM datasync._config_expect(config, '$', 'object');
    PERFORM datasync._config_check_keys(config, '$',
        ARRAY['sourceSystem', 'targetSystem', 'targetSystems', 'syncMode', 'schedule',
              'conflictResolution', 'validationRules', 'monitoring', 'pipelines']);

    v := config -> 'sourceSystem';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        PERFORM datasync._config_expect(v, '$.sourceSystem', 'object');
        PERFORM datasync._config_check_keys(v, '$.sourceSystem', ARRAY['database']);
        s := datasync._config_string(v, 'database', '$.sourceSystem');
        IF s IS NOT NULL AND s <> pg_catalog.current_database() THEN
            PERFORM datasync._config_error('$.sourceSystem.database', '22023',
                pg_catalog.format('database "%s" is not this database ("%s")', s, pg_catalog.current_database()), NULL,
                'apply_config sets up the database it runs in: connect to the source database and apply the document there.');
        END IF;
    END IF;

    v := config -> 'validationRules';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        PERFORM datasync._config_expect(v, '$.validationRules', 'array');
        IF pg_catalog.jsonb_array_length(v) > 0 THEN
            PERFORM datasync._config_error('$.validationRules', '0A000', 'validation rules are not supported yet', NULL,
                                           'They come in a later version of datasync; leave "validationRules" out or empty.');
        END IF;
    END IF;
    v := config -> 'monitoring';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        PERFORM datasync._config_expect(v, '$.monitoring', 'object');
        IF v <> '{}' THEN
            PERFORM datasync._config_error('$.monitoring', '0A000', 'monitoring settings are not supported yet', NULL,
                                           'They come in a later version of datasync; leave "monitoring" out or empty.');
        END IF;
    END IF;

    -- the defaults of the pipelines
    s := datasync._config_string(config, 'syncMode', '$');
    IF s IS NOT NULL THEN
        default_mode := datasync._config_mode(s, '$.syncMode');
        default_paths := default_paths || '{"mode": "$.syncMode"}';
    END IF;
    s := datasync._config_string(config, 'conflictResolution', '$');
    IF s IS NOT NULL THEN
        default_strategy := datasync._config_strategy(s, '$.conflictResolution');
        default_paths := default_paths || '{"strategy": "$.conflictResolution"}';
    END IF;
    v := config -> 'schedule';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        default_schedule := datasync._config_schedule(v, '$.schedule');
        default_paths := default_paths || '{"schedule": "$.schedule"}';
    END IF;

    -- targets
    v := config -> 'targetSystem';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        spec := datasync._config_target(v, '$.targetSystem');
        tgts := tgts || pg_catalog.jsonb_build_array(spec);
        tgt_names := tgt_names || (spec ->> 'name');
        default_target := spec ->> 'name';
    END IF;
    v := config -> 'targetSystems';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        PERFORM datasync._config_expect(v, '$.targetSystems', 'array');
        FOR i IN 0 .. pg_catalog.jsonb_array_length(v) - 1 LOOP
            path := pg_catalog.format('$.targetSystems[%s]', i);
            spec := datasync._config_target(v -> i, path);
            IF (spec ->> 'name') = ANY (tgt_names) THEN
                PERFORM datasync._config_error(path || '.name', '22023',
                    pg_catalog.format('target "%s" is named twice', spec ->> 'name'));
            END IF;
            tgts := tgts || pg_catalog.jsonb_build_array(spec);
            tgt_names := tgt_names || (spec ->> 'name');
        END LOOP;
        IF default_target IS NULL AND pg_catalog.jsonb_array_length(v) = 1 THEN
            default_target := tgt_names[1];
        END IF;
    END IF;

    -- pipelines
    v := config -> 'pipelines';
    IF v IS NOT NULL AND pg_catalog.jsonb_typeof(v) <> 'null' THEN
        PERFORM datasync._config_expect(v, '$.pipelines', 'array');
        FOR i IN 0 .. pg_catalog.jsonb_array_length(v) - 1 LOOP
            path := pg_catalog.format('$.pipelines[%s]', i);
            e := v -> i;
            PERFORM datasync._config_expect(e, path, 'object');
            PERFORM datasync._config_check_keys(e, path,
                ARRAY['name', 'target', 'tables', 'syncMode', 'schedule', 'conflictResolution', 'options']);
            v_name := datasync._config_string(e, 'name', path, true);
            IF v_name = ANY (pipe_names) THEN
                PERFORM datasync._config_error(path || '.name', '22023',
                    pg_catalog.format('pipeline "%s" is named twice', v_name));
            END IF;
            pipe_names := pipe_names || v_name;

            v_target := coalesce(datasync._config_string(e, 'target', path), default_target);
            IF v_target IS NULL THEN
                PERFORM datasync._config_error(path, '22023', pg_catalog.format('pipeline "%s" names no target', v_name), NULL,
                                               'Add "target", or a "targetSystem" whose name is the default target.');
            END IF;
            IF NOT v_target = ANY (tgt_names)
               AND NOT EXISTS (SELECT 1 FROM datasync.targets t WHERE t.name = v_target) THEN
                PERFORM datasync._config_error(path || '.target', '42704',
                    pg_catalog.format('target "%s" does not exist', v_target), NULL,
                    'Describe it under "targetSystem" or "targetSystems", or create it with datasync.create_target().');
            END IF;

            -- tables: a non-empty array of names, no table twice
            IF e -> 'tables' IS NULL OR pg_catalog.jsonb_typeof(e -> 'tables') = 'null' THEN
                PERFORM datasync._config_error(path || '.tables', '22023', 'is missing');
            END IF;
            PERFORM datasync._config_expect(e -> 'tables', path || '.tables', 'array');
            IF pg_catalog.jsonb_array_length(e -> 'tables') = 0 THEN
                PERFORM datasync._config_error(path || '.tables', '22023', 'must not be empty');
            END IF;
            relids := '{}';
            FOR j IN 0 .. pg_catalog.jsonb_array_length(e -> 'tables') - 1 LOOP
                PERFORM datasync._config_expect(e -> 'tables' -> j, pg_catalog.format('%s.tables[%s]', path, j), 'string');
                relid := datasync._config_table(e -> 'tables' ->> j, pg_catalog.format('%s.tables[%s]', path, j));
                IF relid = ANY (relids) THEN
                    PERFORM datasync._config_error(pg_catalog.format('%s.tables[%s]', path, j), '22023',
                        pg_catalog.format('table "%s" is listed twice', relid::regclass));
                END IF;
                relids := relids || relid;
            END LOOP;

            -- each setting from the pipeline, else from the document; paths: where it was set
            paths := pg_catalog.jsonb_build_object('mode', coalesce(default_paths ->> 'mode', path),
                                                   'strategy', coalesce(default_paths ->> 'strategy', path),
                                                   'schedule', coalesce(default_paths ->> 'schedule', path));
            s := datasync._config_string(e, 'syncMode', path);
            IF s IS NULL THEN
                v_mode := default_mode;
            ELSE
                v_mode := datasync._config_mode(s, path || '.syncMode');
                paths := paths || pg_catalog.jsonb_build_object('mode', path || '.syncMode');
            END IF;
            s := datasync._config_string(e, 'conflictResolution', path);
            IF s IS NULL THEN
                v_strategy := default_strategy;
            ELSE
                v_strategy := datasync._config_strategy(s, path || '.conflictResolution');
                paths := paths || pg_catalog.jsonb_build_object('strategy', path || '.conflictResolution');
            END IF;
            v_schedule := NULL;
            IF e -> 'schedule' IS NOT NULL AND pg_catalog.jsonb_typeof(e -> 'schedule') <> 'null' THEN
                v_schedule := datasync._config_schedule(e -> 'schedule', path || '.schedule');
                paths := paths || pg_catalog.jsonb_build_object('schedule', path || '.schedule');
                IF v_mode <> 'scheduled' THEN
                    PERFORM datasync._config_error(path || '.schedule', '22023',
                        'a schedule is only valid for mode "scheduled"', NULL,
                        pg_catalog.format('Set "syncMode": "scheduled", or leave the schedule out for mode "%s".', v_mode));
                END IF;
            ELSIF v_mode = 'scheduled' THEN
                v_schedule := default_schedule;
                IF v_schedule IS NULL THEN
                    PERFORM datasync._config_error(paths ->> 'mode', '22023', 'mode "scheduled" needs a schedule', NULL,
                        'Add "schedule": {"cron": "*/5 * * * *"} to the pipeline, or to the document for all of its scheduled pipelines.');
                END IF;
            END IF;

            v_options := e -> 'options';
            IF v_options IS NULL OR pg_catalog.jsonb_typeof(v_options) = 'null' THEN
                v_options := '{}';
            END IF;
            PERFORM datasync._config_expect(v_options, path || '.options', 'object');
            v_options := datasync._config_strip(v_options);
            FOREACH s IN ARRAY ARRAY['mode', 'schedule', 'conflict_strategy'] LOOP
                IF v_options ? s THEN
                    PERFORM datasync._config_error(path || '.options.' || s, '22023',
                        pg_catalog.format('"%s" is not a pipeline option here', s), NULL,
                        pg_catalog.format('Use "%s" of the pipeline.',
                            CASE s WHEN 'mode' THEN 'syncMode' WHEN 'schedule' THEN 'schedule' ELSE 'conflictResolution' END));
                END IF;
            END LOOP;

            pipes := pipes || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'path', path, 'name', v_name, 'target', v_target, 'tables', pg_catalog.to_jsonb(relids),
                'mode', v_mode, 'schedule', v_schedule, 'strategy', v_strategy, 'options', v_options,
                'paths', paths));
        END LOOP;
    END IF;

    /* ---- 2. make the catalog look like it ---- */
    FOR spec IN SELECT x FROM pg_catalog.jsonb_array_elements(tgts) x LOOP
        path := spec ->> 'path';
        v_name := spec ->> 'name';
        SELECT t.kind, t.dsn, t.options INTO cur FROM datasync.targets t WHERE t.name = v_name;
        BEGIN
            IF NOT FOUND THEN
                IF (spec ->> 'keep')::boolean THEN
                    PERFORM datasync._config_error(path || '.auth.credentials', '22023',
                        pg_catalog.format('"********" keeps the current password, but target "%s" does not exist yet', v_name), NULL,
                        'Give the password.');
                END IF;
                PERFORM datasync.create_target(v_name, spec ->> 'dsn', spec -> 'options');
                created_t := created_t || v_name;
                actions := actions || pg_catalog.jsonb_build_array(
                    pg_catalog.jsonb_build_object('action', 'create_target', 'target', v_name));
                CONTINUE;
            END IF;

            IF spec ->> 'masked' <> cur.dsn THEN
                IF (spec ->> 'keep')::boolean THEN
                    PERFORM datasync._config_error(path || '.auth.credentials', '22023',
                        pg_catalog.format('"********" keeps the current password of target "%s" only while the rest of its connection stays the same', v_name),
                        NULL, 'Give the password to change the connection string or user.');
                END IF;
                dsn_changed := true;
            ELSE
                -- the same but for the password: compare the whole DSN
                dsn_changed := (spec ->> 'secret')::boolean
                               AND NOT datasync._config_target_dsn_is(v_name, spec ->> 'dsn');
            END IF;
            diff := datasync._config_diff(cur.options, spec -> 'options');
            IF dsn_changed THEN
                diff := diff || pg_catalog.jsonb_build_object('dsn', spec ->> 'dsn');
            END IF;
            IF diff = '{}' THEN
                unchanged_t := unchanged_t || v_name;
            ELSE
                PERFORM datasync.alter_target(v_name, diff);
                altered_t := altered_t || v_name;
                actions := actions || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'action', 'alter_target', 'target', v_name,
                    'keys', (SELECT pg_catalog.jsonb_agg(k ORDER BY k COLLATE "C") FROM pg_catalog.jsonb_object_keys(diff) k)));
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                    err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
            PERFORM datasync._config_error(datasync._config_error_path(path, 'target', err_msg),
                                           err_state, err_msg, err_detail, err_hint);
        END;
    END LOOP;

    FOR spec IN SELECT x FROM pg_catalog.jsonb_array_elements(pipes) x LOOP
        path := spec ->> 'path';
        v_name := spec ->> 'name';
        SELECT ARRAY(SELECT pg_catalog.jsonb_array_elements_text(spec -> 'tables')::oid) INTO relids;
        SELECT p.target, p.mode, p.schedule, p.conflict_strategy, p.options, p.tables::oid[] AS tables
          INTO cur FROM datasync.pipelines p WHERE p.name = v_name;
        IF NOT FOUND THEN
            BEGIN
                PERFORM datasync.create_pipeline(v_name, spec ->> 'target', relids::regclass[], spec ->> 'mode',
                                                 spec ->> 'schedule', spec ->> 'strategy', spec -> 'options');
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
                PERFORM datasync._config_error(datasync._config_error_path(path, 'pipeline', err_msg, spec -> 'paths'),
                                               err_state, err_msg, err_detail, err_hint);
            END;
            created_p := created_p || v_name;
            actions := actions || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'action', 'create_pipeline', 'pipeline', v_name,
                'tables', (SELECT pg_catalog.jsonb_agg(r::regclass::text) FROM pg_catalog.unnest(relids) r)));
            CONTINUE;
        END IF;

        IF cur.target <> spec ->> 'target' THEN
            PERFORM datasync._config_error(path || '.target', '0A000',
                pg_catalog.format('cannot change the target of pipeline "%s" from "%s" to "%s"', v_name, cur.target, spec ->> 'target'),
                NULL,
                pg_catalog.format('Drop the pipeline with datasync.drop_pipeline(%L) and apply the document again; the new pipeline copies its tables again.', v_name));
        END IF;

        changed := false;
        diff := datasync._config_diff(cur.options, spec -> 'options');
        IF cur.mode <> spec ->> 'mode' THEN
            diff := diff || pg_catalog.jsonb_build_object('mode', spec ->> 'mode');
        END IF;
        IF coalesce(datasync._config_cron(cur.schedule), cur.schedule) IS DISTINCT FROM spec ->> 'schedule' THEN
            diff := diff || pg_catalog.jsonb_build_object('schedule', spec -> 'schedule');
        END IF;
        IF cur.conflict_strategy <> spec ->> 'strategy' THEN
            diff := diff || pg_catalog.jsonb_build_object('conflict_strategy', spec ->> 'strategy');
        END IF;
        IF diff <> '{}' THEN
            BEGIN
                PERFORM datasync.alter_pipeline(v_name, diff);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
                PERFORM datasync._config_error(datasync._config_error_path(path, 'pipeline', err_msg, spec -> 'paths'),
                                               err_state, err_msg, err_detail, err_hint);
            END;
            changed := true;
            actions := actions || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'action', 'alter_pipeline', 'pipeline', v_name,
                'keys', (SELECT pg_catalog.jsonb_agg(k ORDER BY k COLLATE "C") FROM pg_catalog.jsonb_object_keys(diff) k)));
        END IF;

        -- the table set: add what is missing (first, so that it never runs empty), remove the rest
        FOR j IN 1 .. pg_catalog.cardinality(relids) LOOP
            IF NOT relids[j] = ANY (cur.tables) THEN
                BEGIN
                    PERFORM datasync.add_table(v_name, relids[j]::regclass);
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                            err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
                    PERFORM datasync._config_error(pg_catalog.format('%s.tables[%s]', path, j - 1),
                                                   err_state, err_msg, err_detail, err_hint);
                END;
                changed := true;
                actions := actions || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'action', 'add_table', 'pipeline', v_name, 'table', relids[j]::regclass::text));
            END IF;
        END LOOP;
        FOR relid IN SELECT r FROM pg_catalog.unnest(cur.tables) r
                      WHERE NOT r = ANY (relids) ORDER BY r::regclass::text COLLATE "C" LOOP
            BEGIN
                PERFORM datasync.remove_table(v_name, relid::regclass);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
                PERFORM datasync._config_error(path || '.tables', err_state, err_msg, err_detail, err_hint);
            END;
            changed := true;
            actions := actions || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'action', 'remove_table', 'pipeline', v_name, 'table', relid::regclass::text));
        END LOOP;

        IF changed THEN
            altered_p := altered_p || v_name;
        ELSE
            unchanged_p := unchanged_p || v_name;
        END IF;
    END LOOP;

    RETURN pg_catalog.jsonb_build_object(
        'targets', pg_catalog.jsonb_build_object('created', pg_catalog.to_jsonb(created_t),
                                                 'altered', pg_catalog.to_jsonb(altered_t),
                                                 'unchanged', pg_catalog.to_jsonb(unchanged_t)),
        'pipelines', pg_catalog.jsonb_build_object('created', pg_catalog.to_jsonb(created_p),
                                                   'altered', pg_catalog.to_jsonb(altered_p),
                                                   'unchanged', pg_catalog.to_jsonb(unchanged_p)),
        'actions', actions);
END
$$;

/*
 * apply_config: datasync._config_apply called as the caller; an error is
 * raised again without its statement in the server log (the document holds
 * passwords), an error of the document without the context of the helpers
 * it went through; a run is audited (src/api/config.c).
 */
CREATE FUNCTION datasync.apply_config(config jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'datasync_apply_config'
LANGUAGE C SECURITY INVOKER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION datasync.apply_config(jsonb) IS 'set up targets and pipelines from one document (docs/config-document.md); idempotent; returns what it did';

/*
 * export_config(): every target and pipeline as a document apply_config
 * takes, passwords as "********" (which apply_config reads as "keep").
 */
CREATE FUNCTION datasync.export_config()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tgts jsonb;
    pipes jsonb;
    doc jsonb;
BEGIN
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'name', t.name,
               'type', t.kind,
               'connectionString',
                   coalesce((SELECT pg_catalog.string_agg(p.keyword || '=' || datasync._config_dsn_quote(p.value), ' ' ORDER BY p.ord)
                               FROM datasync._config_dsn_pairs(t.dsn) p
                              WHERE p.keyword NOT IN ('user', 'password', 'sslpassword')), ''),
               'auth', NULLIF(pg_catalog.jsonb_build_object('credentials', NULLIF(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                           'username', (SELECT p.value FROM datasync._config_dsn_pairs(t.dsn) p WHERE p.keyword = 'user' ORDER BY p.ord DESC LIMIT 1),
                           'password', (SELECT '********' FROM datasync._config_dsn_pairs(t.dsn) p WHERE p.keyword = 'password' LIMIT 1),
                           'sslPassword', (SELECT '********' FROM datasync._config_dsn_pairs(t.dsn) p WHERE p.keyword = 'sslpassword' LIMIT 1),
                           'passwordEnv', t.options ->> 'password_env')), '{}')),
                   '{"credentials": null}'),
               'options', NULLIF(t.options - 'password_env', '{}')))
             ORDER BY t.name COLLATE "C")
      INTO tgts
      FROM datasync.targets t;

    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'name', p.name,
               'target', p.target,
               -- (a table dropped under the pipeline is left out: applied, the document removes it)
               'tables', coalesce((SELECT pg_catalog.jsonb_agg(r::text ORDER BY r::text COLLATE "C")
                                     FROM pg_catalog.unnest(p.tables) r
                                    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r)), '[]'),
               'syncMode', p.mode,
               'schedule', CASE WHEN p.schedule IS NOT NULL THEN pg_catalog.jsonb_build_object('cron', p.schedule) END,
               'conflictResolution', p.conflict_strategy,
               'options', NULLIF(p.options, '{}')))
             ORDER BY p.name COLLATE "C")
      INTO pipes
      FROM datasync.pipelines p;

    doc := pg_catalog.jsonb_build_object('sourceSystem', pg_catalog.jsonb_build_object('database', pg_catalog.current_database()));
    IF pg_catalog.jsonb_array_length(coalesce(tgts, '[]')) = 1 THEN
        doc := doc || pg_catalog.jsonb_build_object('targetSystem', tgts -> 0);
    ELSIF tgts IS NOT NULL THEN
        doc := doc || pg_catalog.jsonb_build_object('targetSystems', tgts);
    END IF;
    RETURN doc || pg_catalog.jsonb_build_object('pipelines', coalesce(pipes, '[]'));
END
$$;
COMMENT ON FUNCTION datasync.export_config() IS 'every target and pipeline as a document for apply_config, passwords masked';

REVOKE ALL ON FUNCTION
    datasync.apply_config(jsonb),
    datasync.export_config(),
    datasync._config_apply(jsonb),
    datasync._config_path(text, text),
    datasync._config_error(text, text, text, text, text),
    datasync._config_expect(jsonb, text, text),
    datasync._config_check_keys(jsonb, text, text[]),
    datasync._config_string(jsonb, text, text, boolean),
    datasync._config_word(text),
    datasync._config_mode(text, text),
    datasync._config_strategy(text, text),
    datasync._config_cron(text),
    datasync._config_schedule(jsonb, text),
    datasync._config_dsn_pairs(text),
    datasync._config_dsn_quote(text),
    datasync._config_target_dsn_is(text, text),
    datasync._config_strip(jsonb),
    datasync._config_diff(jsonb, jsonb),
    datasync._config_table(text, text),
    datasync._config_target(jsonb, text),
    datasync._config_error_path(text, text, text, jsonb)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    datasync.apply_config(jsonb),
    datasync.export_config(),
    datasync._config_apply(jsonb),
    datasync._config_path(text, text),
    datasync._config_error(text, text, text, text, text),
    datasync._config_expect(jsonb, text, text),
    datasync._config_check_keys(jsonb, text, text[]),
    datasync._config_string(jsonb, text, text, boolean),
    datasync._config_word(text),
    datasync._config_mode(text, text),
    datasync._config_strategy(text, text),
    datasync._config_cron(text),
    datasync._config_schedule(jsonb, text),
    datasync._config_dsn_pairs(text),
    datasync._config_dsn_quote(text),
    datasync._config_target_dsn_is(text, text),
    datasync._config_strip(jsonb),
    datasync._config_diff(jsonb, jsonb),
    datasync._config_table(text, text),
    datasync._config_target(jsonb, text),
    datasync._config_error_path(text, text, text, jsonb)
  TO datasync_admin;

