/*-------------------------------------------------------------------------
 *
 * progress.c
 *		The progress table on PostgreSQL targets: its layout, and whose
 *		rows are whose.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/progress.c
 *
 * NOTES
 *		public.datasync_progress on a target holds one row per pipeline
 *		incarnation and relid (0: the stream; apply_pg.c reads and writes
 *		it).  One target may serve several sources, and two of them may
 *		have a pipeline of the same name, so a row is keyed by
 *
 *			(pipeline, source, incarnation, relid)
 *
 *		where source is "<system identifier>:<database oid>" of the source
 *		database and incarnation the random number the pipeline got when it
 *		was created.  A pipeline dropped and created again, a second
 *		database or server with a pipeline of the same name, a dump of the
 *		source restored elsewhere: each writes rows of its own.
 *
 *		datasync 0.1 keyed rows by (pipeline, relid) alone.  The first
 *		worker that connects to a target with that layout changes it (as
 *		the table's owner, under the advisory lock that also serializes its
 *		creation); rows 0.1 wrote get source '' and are adopted, on each
 *		session start, by the pipeline of that name and incarnation: after
 *		ALTER EXTENSION datasync UPDATE it goes on from the progress 0.1
 *		recorded, with nothing copied or applied again.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pgconn.h"
#include "target/progress.h"

/* serializes creating and changing the table, across workers and sources */
#define PROGRESS_LOCK_SQL "SELECT pg_catalog.pg_advisory_xact_lock(1684108398, 1886547815)"

#define PROGRESS_CREATE_SQL \
	"CREATE TABLE IF NOT EXISTS " DATASYNC_PROGRESS_TABLE " (" \
	" pipeline text NOT NULL," \
	" relid oid NOT NULL," \
	" incarnation bigint NOT NULL," \
	" lsn pg_lsn NOT NULL," \
	" updated_at timestamptz NOT NULL DEFAULT now()," \
	" source text NOT NULL DEFAULT ''," \
	" PRIMARY KEY (pipeline, source, incarnation, relid))"

/* 0.1's layout to this one; %s: the old primary key's DROP CONSTRAINT */
#define PROGRESS_UPGRADE_SQL \
	"ALTER TABLE " DATASYNC_PROGRESS_TABLE " ADD COLUMN source text NOT NULL DEFAULT ''%s;" \
	" ALTER TABLE " DATASYNC_PROGRESS_TABLE " ADD PRIMARY KEY (pipeline, source, incarnation, relid)"

/*
 * Where the table stands: 'm' missing, '1' 0.1's layout (no column
 * source), '2' this one.  For '1', *owner says whether the role may change
 * it and *pkey names its primary key ("" if none).
 */
static char
progress_layout(PGconn *conn, bool *owner, char **pkey)
{
	PGresult   *res;
	char		layout;

	res = ds_pq_exec(conn,
					 "SELECT c.oid IS NULL,"
					 " EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid"
					 "  AND a.attname = 'source' AND NOT a.attisdropped),"
					 " coalesce(pg_catalog.pg_has_role((SELECT r.relowner FROM pg_catalog.pg_class r"
					 "  WHERE r.oid = c.oid), 'USAGE'), false),"
					 " coalesce((SELECT k.conname FROM pg_catalog.pg_constraint k"
					 "  WHERE k.conrelid = c.oid AND k.contype = 'p'), '')"
					 " FROM (SELECT pg_catalog.to_regclass('" DATASYNC_PROGRESS_TABLE "')::pg_catalog.oid AS oid) c",
					 DS_CONN_TARGET);
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		layout = 'm';
	else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
		layout = '2';
	else
		layout = '1';
	*owner = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	*pkey = pstrdup(PQgetvalue(res, 0, 3));
	PQclear(res);
	return layout;
}

/* This source database as progress rows name it: "<system id>:<db oid>". */
char *
ds_progress_source(void)
{
	return psprintf(UINT64_FORMAT ":%u", GetSystemIdentifier(), MyDatabaseId);
}

/*
 * Make sure the target has the progress table in this version's layout,
 * creating or changing it, then adopt the rows 0.1 wrote for this
 * pipeline incarnation.  The connection is idle, not in pipeline mode.
 */
void
ds_progress_prepare(PGconn *conn, const char *pipeline, const char *incarnation,
					const char *source)
{
	bool		owner;
	char	   *pkey;
	const char *vals[3];
	PGresult   *res;

	if (progress_layout(conn, &owner, &pkey) != '2')
	{
		/* workers of several pipelines may get here at once: serialize */
		ds_pq_exec_ok(conn, "BEGIN", DS_CONN_TARGET);
		ds_pq_exec_ok(conn, PROGRESS_LOCK_SQL, DS_CONN_TARGET);
		switch (progress_layout(conn, &owner, &pkey))
		{
			case 'm':
				ds_pq_exec_ok(conn, PROGRESS_CREATE_SQL, DS_CONN_TARGET);
				break;
			case '1':
				{
					char	   *drop = pkey[0] == '\0' ? "" :
						psprintf(", DROP CONSTRAINT %s", quote_identifier(pkey));
					char	   *sql = psprintf(PROGRESS_UPGRADE_SQL, drop);

					if (!owner)
						ereport(ERROR,
								(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
								 errmsg("progress table " DATASYNC_PROGRESS_TABLE " on the target of pipeline \"%s\" has the layout of datasync 0.1, which its role may not change",
										pipeline),
								 errdetail("datasync 0.2 keys progress rows by source server and database too, so that sources with pipelines of the same name never overwrite each other's progress."),
								 errhint("Run as the table's owner on the target: %s", sql)));
					ds_pq_exec_ok(conn, sql, DS_CONN_TARGET);
					ereport(LOG,
							(errmsg("datasync pipeline \"%s\": progress table " DATASYNC_PROGRESS_TABLE " on the target changed to key rows by source",
									pipeline)));
				}
				break;
			default:
				break;			/* another worker did it meanwhile */
		}
		ds_pq_exec_ok(conn, "COMMIT", DS_CONN_TARGET);
	}

	/* rows 0.1 wrote for this pipeline incarnation become ours */
	vals[0] = pipeline;
	vals[1] = incarnation;
	vals[2] = source;
	res = ds_pq_exec_params(conn,
							"UPDATE " DATASYNC_PROGRESS_TABLE " AS p SET source = $3"
							" WHERE p.pipeline = $1 AND p.incarnation = $2 AND p.source = ''"
							" AND NOT EXISTS (SELECT 1 FROM " DATASYNC_PROGRESS_TABLE " AS q"
							"  WHERE q.pipeline = $1 AND q.source = $3 AND q.incarnation = $2"
							"  AND q.relid = p.relid)",
							3, vals, DS_CONN_TARGET);
	PQclear(res);
}
