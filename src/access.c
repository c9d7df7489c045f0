/*-------------------------------------------------------------------------
 *
 * access.c
 *		Who may do what: the users of a target, the tables a role may
 *		sync, the names a table may be mapped to on a target.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/access.c
 *
 * NOTES
 *		A target is usable by its owner (the role that last set its DSN, and
 *		the members of that role), by the roles it is granted to
 *		(datasync.grant_target) and their members, and by superusers; only
 *		the owner and superusers may change, drop, grant or revoke it.  A
 *		target set up by a superuser may log in with the server's own
 *		credentials, so it must not be lent to every datasync_admin.
 *
 *		A table may be synced by a role that may SELECT it and that sees
 *		every row of it: row-level security must not apply to that role
 *		(it owns the table without FORCE ROW LEVEL SECURITY, or it has
 *		BYPASSRLS, as superusers do).
 *
 *		No table is ever written in a system schema of a target
 *		(pg_catalog, information_schema, pg_toast, pg_temp*, any pg_*), nor
 *		into datasync's progress table there.  The names are checked when
 *		options or tables are set (ds_check_mapped_tables), wherever a
 *		table's target name is computed (ds_target_qname: the worker's
 *		relation map and copies, test_target), and, once connected, on the
 *		target itself (ds_target_refuse_system).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "access.h"
#include "api/apiutil.h"
#include "pgconn.h"
#include "worker/relmap.h"

/*
 * Has datasync's catalog table the column?  Not before ALTER EXTENSION
 * datasync UPDATE: this library may run over the 0.1 catalog meanwhile.
 */
bool
ds_catalog_has_column(const char *table, const char *column)
{
	Oid			relid = get_relname_relid(table, get_namespace_oid(DATASYNC_SCHEMA, false));

	return OidIsValid(relid) && get_attnum(relid, column) != InvalidAttrNumber;
}

/*
 * May role use (or own) a target with this owner and these grantees (an
 * oid[] datum)?
 */
bool
ds_target_has_right(Oid role, Oid owner, Datum grantees, bool grantees_null,
					DsTargetRight right)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (superuser_arg(role) || has_privs_of_role(role, owner))
		return true;
	if (right == DS_TARGET_OWN || grantees_null)
		return false;
	deconstruct_array(DatumGetArrayTypeP(grantees), OIDOID, sizeof(Oid), true,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && has_privs_of_role(role, DatumGetObjectId(elems[i])))
			return true;
	return false;
}

/*
 * Raise unless caller has the right on the target.  The caller is
 * connected to SPI; SPI_tuptable changes.
 */
void
ds_target_check_right(int64 target_id, Oid caller, DsTargetRight right)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	bool		gnull;
	char	   *name;
	Oid			owner;
	Datum		grantees;
	char	   *owner_name;

	args[0] = Int64GetDatum(target_id);
	ds_spi_exec(ds_catalog_has_column("_targets", "grantees") ?
				"SELECT name, owner, grantees FROM datasync._targets WHERE id = $1" :
				"SELECT name, owner, NULL::oid[] FROM datasync._targets WHERE id = $1",
				1, argtypes, args, SPI_OK_SELECT);
	if (SPI_processed == 0)
		elog(ERROR, "target " INT64_FORMAT " does not exist", target_id);
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	grantees = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &gnull);
	if (ds_target_has_right(caller, owner, grantees, gnull, right))
		return;

	owner_name = GetUserNameFromId(owner, true);
	if (owner_name == NULL)
		owner_name = psprintf("%u", owner);
	if (right == DS_TARGET_OWN)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of target \"%s\"", name),
				 errdetail("Target \"%s\" belongs to role \"%s\"; only its owner and superusers may change, drop, grant or revoke it.",
						   name, owner_name)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for target \"%s\"", name),
			 errdetail("Target \"%s\" belongs to role \"%s\"; only its owner, the roles it is granted to and superusers may use it.",
					   name, owner_name),
			 errhint("Its owner or a superuser may run SELECT datasync.grant_target('%s', '%s').",
					 name, GetUserNameFromId(caller, false))));
}

/* does the table have a primary key or a replica identity index? */
static bool
has_identity_index(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	bool		result;

	result = OidIsValid(RelationGetReplicaIndex(rel));
	relation_close(rel, AccessShareLock);
	return result;
}

/*
 * Can role sync this table?  It must be a permanent user table that role
 * may read in full (SELECT, and no row-level security applies to it),
 * with a key the stream can carry: a primary key, a replica identity
 * index, or REPLICA IDENTITY FULL.  Needs a transaction.
 */
void
ds_check_sync_table(Oid relid, Oid role)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class cls;
	char	   *display;
	char	   *nspname;
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	cls = (Form_pg_class) GETSTRUCT(tup);
	nsp = cls->relnamespace;
	nspname = get_namespace_name(nsp);
	display = psprintf("%s.%s", nspname ? nspname : "?", NameStr(cls->relname));

	if (cls->relkind != RELKIND_RELATION && cls->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", display),
				 errdetail("Only ordinary and partitioned tables can be synced.")));
	if (cls->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is %s", display,
						cls->relpersistence == RELPERSISTENCE_TEMP ? "temporary" : "unlogged"),
				 errdetail("Changes to temporary and unlogged tables are not written to WAL, so they cannot be streamed.")));
	if (IsCatalogNamespace(nsp) || nsp == get_namespace_oid(DATASYNC_SCHEMA, false) ||
		IsToastNamespace(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table \"%s\" is a system or datasync table", display)));
	if (pg_class_aclcheck(relid, role, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table \"%s\"", display),
				 errdetail("Syncing a table needs the SELECT privilege on it.")));
	/* the copy and the stream see every row: so must the role */
	if (check_enable_rls(relid, role, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s\" has row-level security", display),
				 errdetail("Every row of a synced table reaches the target, policies or not; only the table's owner (unless FORCE ROW LEVEL SECURITY is set) and roles with BYPASSRLS may sync it.")));

	if (cls->relreplident == REPLICA_IDENTITY_NOTHING ||
		(cls->relreplident != REPLICA_IDENTITY_FULL && !has_identity_index(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has neither a primary key nor a usable replica identity", display),
				 errhint("Add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL.",
						 quote_qualified_identifier(nspname, NameStr(cls->relname)))));
	ReleaseSysCache(tup);
}

/* pg_catalog, pg_toast, pg_temp, pg_temp_3, pg_toast_temp_3, ... */
bool
ds_is_system_schema(const char *nspname)
{
	return strcmp(nspname, "information_schema") == 0 ||
		strncmp(nspname, "pg_", 3) == 0;
}

/*
 * Split "table" or "schema.table" as SQL reads it (double quotes keep case
 * and odd characters); *schema is NULL for a bare table name.  False when
 * it is not such a name.
 */
bool
ds_split_table_name(const char *name, char **schema, char **relname)
{
	char	   *raw = pstrdup(name);
	List	   *parts;

	ListCell   *lc;

	if (!SplitIdentifierString(raw, '.', &parts))
		return false;
	foreach(lc, parts)
		if (((char *) lfirst(lc))[0] == '\0')
			return false;		/* "" */
	if (list_length(parts) == 1)
	{
		*schema = NULL;
		*relname = pstrdup(linitial(parts));
		return true;
	}
	if (list_length(parts) == 2)
	{
		*schema = pstrdup(linitial(parts));
		*relname = pstrdup(lsecond(parts));
		return true;
	}
	return false;
}

static bool
is_progress_table(const char *schema, const char *relname)
{
	return strcmp(psprintf("%s.%s", schema, relname), DATASYNC_PROGRESS_TABLE) == 0;
}

/*
 * Refuse to sync table source (schema.table) into schema.relname on the
 * target when that is a system schema or datasync's progress table.
 */
void
ds_check_target_table(const char *source, const char *schema, const char *relname)
{
	if (ds_is_system_schema(schema))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot sync table \"%s\" into \"%s.%s\": \"%s\" is a system schema",
						source, schema, relname, schema),
				 errdetail("datasync never writes into pg_catalog, information_schema, pg_toast, pg_temp or any other pg_* schema of a target.")));
	if (is_progress_table(schema, relname))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot sync table \"%s\" into \"%s.%s\": that is datasync's progress table",
						source, schema, relname),
				 errhint("Map the table to another name with the pipeline option \"table_map\" or \"target_schema\".")));
}

/*
 * A value of the pipeline option table_map: a table name, not in a system
 * schema, not the progress table.  (A bare name goes to target_schema or
 * the source's schema, checked where the table is known.)
 */
void
ds_check_table_map_value(const char *source, const char *value)
{
	char	   *schema;
	char	   *relname;

	if (!ds_split_table_name(value, &schema, &relname))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("pipeline option \"table_map\" maps \"%s\" to \"%s\", which is not a table name", source, value),
				 errhint("Write table or schema.table, with identifiers quoted as in SQL.")));
	if (schema && ds_is_system_schema(schema))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pipeline option \"table_map\" maps \"%s\" into system schema \"%s\"", source, schema),
				 errdetail("datasync never writes into pg_catalog, information_schema, pg_toast, pg_temp or any other pg_* schema of a target.")));
	if (schema && is_progress_table(schema, relname))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pipeline option \"table_map\" maps \"%s\" onto datasync's progress table \"%s\"", source, DATASYNC_PROGRESS_TABLE)));
}

/*
 * Check the names a pipeline's options send tables to (target_schema, every
 * value of table_map), then compute (and so check) the target name of
 * every table of relids under them.  Tables dropped meanwhile are skipped.
 * The SQL API calls it wherever options or tables are set; a worker meets
 * the same checks in ds_target_qname.
 */
void
ds_check_mapped_tables(List *relids, DsPipelineOptions *opts)
{
	DsPipelineConfig cfg;
	ListCell   *lc;

	if (opts->target_schema && ds_is_system_schema(opts->target_schema))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pipeline option \"target_schema\" names system schema \"%s\"", opts->target_schema),
				 errdetail("datasync never writes into pg_catalog, information_schema, pg_toast, pg_temp or any other pg_* schema of a target.")));
	foreach(lc, opts->table_map)
		ds_check_table_map_value(((DsTableMapEntry *) lfirst(lc))->source,
								 ((DsTableMapEntry *) lfirst(lc))->target);

	memset(&cfg, 0, sizeof(cfg));
	cfg.options = *opts;
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *rel = get_rel_name(relid);
		char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

		if (rel && nsp)
			(void) ds_target_qname(&cfg, nsp, rel);
	}
}

/* a text[] literal of the strings in names */
static char *
text_array_literal(List *names)
{
	StringInfoData buf;
	ListCell   *lc;
	const char *p;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, names)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '"');
		for (p = lfirst(lc); *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * On a freshly connected target: refuse when a table of the pipeline maps
 * to a system relation there (one of initdb's, or one in a system schema)
 * however it was named.  Opens a transaction when the caller has none.
 */
void
ds_target_refuse_system(PGconn *conn, DsPipelineConfig *cfg)
{
	List	   *qnames = NIL;
	const char *vals[1];
	PGresult   *res;
	ListCell   *lc;
	bool		started = ds_xact_start();

	foreach(lc, cfg->tables)
	{
		Oid			relid = ((DsPipelineTable *) lfirst(lc))->relid;
		char	   *rel = get_rel_name(relid);
		char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

		if (rel && nsp)
			qnames = lappend(qnames, ds_target_qname(cfg, nsp, rel));
	}
	ds_xact_commit(started);
	if (qnames == NIL)
		return;

	vals[0] = text_array_literal(qnames);
	res = ds_pq_exec_params(conn,
							"SELECT q FROM pg_catalog.unnest($1::pg_catalog.text[]) q"
							" JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(q)"
							" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							" WHERE c.oid < 16384 OR n.nspname = 'information_schema'"
							" OR n.nspname OPERATOR(pg_catalog.^@) 'pg_' LIMIT 1",
							1, vals, DS_CONN_TARGET);
	if (PQntuples(res) > 0)
	{
		char	   *qname = pstrdup(PQgetvalue(res, 0, 0));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("target table %s of pipeline \"%s\" is a system relation on target \"%s\"",
						qname, cfg->name, cfg->target_name),
				 errdetail("datasync never writes into a system catalog of a target.")));
	}
	PQclear(res);
}
