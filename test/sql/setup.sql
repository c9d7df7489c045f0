--
-- setup: runs first (REGRESS in the Makefile), in the database every test
-- shares, and defines the helpers the tests use.
--

-- run a statement; 'ok', or its SQLSTATE and message on one line
CREATE FUNCTION ds_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- poll a condition (an SQL boolean expression) for at most timeout_s seconds
CREATE FUNCTION ds_wait_for(cond text, timeout_s float8 DEFAULT 60) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        EXECUTE 'SELECT (' || cond || ')' INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
