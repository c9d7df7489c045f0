/*-------------------------------------------------------------------------
 *
 * trust.c
 *		What runs as whom in datasync's background workers: the sessions of
 *		the launcher and the sync workers, and their reads of user tables.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/trust.c
 *
 * NOTES
 *		The launcher and the sync workers are background workers connected
 *		as the bootstrap superuser; the workers' replication connections log
 *		in as that superuser too.  They must never evaluate anything a
 *		non-superuser can define (functions, operators, casts, domain
 *		checks, rules, policies, defaults) with those rights.  So:
 *
 *		- Every session pins search_path to pg_catalog, pg_temp, and every
 *		  name in datasync's own SQL is qualified: nothing resolves through
 *		  a schema a user can create objects in (ds_pin_search_path; the
 *		  replication connection gets the same in its startup options).
 *
 *		- A read of a user table that may evaluate code its owner defined
 *		  (a key value cast to a domain with a CHECK, a row turned into JSON
 *		  through a user's cast) runs as the table's owner under
 *		  SECURITY_RESTRICTED_OPERATION with that search_path
 *		  (ds_as_table_owner): the way PostgreSQL's own maintenance
 *		  commands (ANALYZE, CREATE INDEX, REFRESH MATERIALIZED VIEW) run
 *		  owner code.  The owner's code gets the owner's rights and cannot
 *		  SET ROLE its way out.
 *
 *		- Copies run on the replication connection as relation-form COPY
 *		  (COPY t (cols) TO STDOUT), one per plain table or leaf partition,
 *		  never COPY (SELECT ...): PostgreSQL itself refuses a relation that
 *		  is not a plain table at the moment of the copy, so a table turned
 *		  into a view (CREATE RULE "_RETURN") or a foreign-table partition
 *		  can never run its owner's code as the superuser.  COPY of a plain
 *		  table by a superuser evaluates nothing but the output functions of
 *		  base types, which only superusers can create.
 *
 *		- The kind of a table is checked where it is read, not only where it
 *		  was added (ds_check_source_table).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/relation.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "access.h"
#include "trust.h"

/*
 * The checks add_table made of the role that added relid to the pipeline
 * (SELECT on it, no row-level security applying to it, a key), made
 * again where the worker uses the table: when its copy starts and when
 * the stream describes it (again after any change of its definition).
 * A table dropped since is left to the caller; one added before 0.2 has
 * no recorded role and is not checked.  Needs a transaction.
 */
void
ds_recheck_table(DsPipelineConfig *cfg, Oid relid)
{
	ListCell   *lc;
	Relation	rel;

	foreach(lc, cfg->tables)
	{
		DsPipelineTable *t = lfirst(lc);

		if (t->relid != relid || !OidIsValid(t->added_by))
			continue;
		rel = try_relation_open(relid, AccessShareLock);
		if (rel == NULL)
			return;
		ds_check_source_table(rel, "sync");
		relation_close(rel, NoLock);
		ds_check_sync_table(relid, t->added_by);
	}
}

/*
 * The role that created the pipeline must still be allowed to use its
 * target (its owner, a grantee, or a member of either, or a superuser),
 * checked where the target is used: at the start of every worker session.
 * A pipeline created before 0.2 has no recorded role and is not checked.
 * Needs a transaction.
 */
void
ds_recheck_target(DsPipelineConfig *cfg)
{
	if (!OidIsValid(cfg->created_by))
		return;
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(cfg->created_by)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the role that created pipeline \"%s\" no longer exists", cfg->name),
				 errdetail("A pipeline writes to its target with the rights of the role that created it."),
				 errhint("Drop the pipeline and create it again as a role that may use target \"%s\".",
						 cfg->target_name)));
	SPI_connect();
	ds_target_check_right(cfg->target_id, cfg->created_by, DS_TARGET_USE);
	SPI_finish();
}

/*
 * Pin this session's search_path.  Called once by the launcher and each
 * worker, right after they connect (database-level settings, which the
 * database owner controls, were applied then and are overridden here).
 */
void
ds_pin_search_path(void)
{
	SetConfigOption("search_path", DS_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_SESSION);
}

static const char *
relkind_name(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "a view";
		case RELKIND_MATVIEW:
			return "a materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "a foreign table";
		case RELKIND_SEQUENCE:
			return "a sequence";
		case RELKIND_COMPOSITE_TYPE:
			return "a composite type";
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			return "an index";
		case RELKIND_TOASTVALUE:
			return "a TOAST table";
		default:
			return "not a table";
	}
}

/*
 * A relation a worker is about to read must still be a plain or
 * partitioned table: in PostgreSQL 15 an empty table becomes a view with
 * CREATE RULE "_RETURN", whose query would run with the reader's rights.
 * what says which read it is, for the message.
 */
void
ds_check_source_table(Relation rel, const char *what)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s \"%s.%s\": it is %s now, not a table",
					what,
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel),
					relkind_name(relkind)),
			 errdetail("datasync reads only plain and partitioned tables; reading anything else could run code of its owner."),
			 errhint("Remove it from the pipeline with datasync.remove_table(), or restore the table and resume the pipeline.")));
}

/*
 * Run fn(arg) as the owner of relid, in a security-restricted operation
 * with a safe search_path, inside the caller's transaction.  The relation
 * stays locked (AccessShareLock) until the transaction ends, so it cannot
 * turn into a view between the check and the read.  An error inside fn
 * is restored from by the transaction's abort (user id, GUC nest level).
 * A dropped relation is an error, or with missing_ok returns false
 * without running fn.
 */
bool
ds_as_table_owner(Oid relid, const char *what, DsOwnerFn fn, void *arg,
				  bool missing_ok)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	if (rel == NULL && missing_ok)
		return false;
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("cannot %s the table with OID %u: it was dropped", what, relid),
				 errhint("Remove it from the pipeline with datasync.remove_table().")));
	ds_check_source_table(rel, what);
	owner = rel->rd_rel->relowner;
	relation_close(rel, NoLock);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", DS_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	fn(arg);

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return true;
}

/*
 * The relations a copy of relid reads with relation-form COPY: the table
 * itself, or every leaf partition of a partitioned table.  Each must be a
 * plain table; a foreign-table partition is refused (scanning it would
 * run its server's code with the copier's user mapping).
 */
List *
ds_copy_leaves(Oid relid, bool *rls)
{
	List	   *leaves = NIL;
	List	   *all;
	ListCell   *lc;
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("cannot copy the table with OID %u: it was dropped", relid),
				 errhint("Remove it from the pipeline with datasync.remove_table().")));
	ds_check_source_table(rel, "copy");
	*rls = false;
	if (rel->rd_rel->relkind == RELKIND_RELATION)
	{
		*rls = rel->rd_rel->relrowsecurity;
		relation_close(rel, NoLock);
		return list_make1_oid(relid);
	}
	relation_close(rel, NoLock);

	all = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, all)
	{
		Oid			child = lfirst_oid(lc);
		char		relkind = get_rel_relkind(child);

		if (relkind == RELKIND_PARTITIONED_TABLE)
			continue;
		if (relkind != RELKIND_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot copy partition \"%s.%s\" of \"%s.%s\": it is %s",
							get_namespace_name(get_rel_namespace(child)),
							get_rel_name(child),
							get_namespace_name(get_rel_namespace(relid)),
							get_rel_name(relid),
							relkind_name(relkind)),
					 errdetail("datasync copies only plain tables; reading anything else could run code of its owner."),
					 errhint("Detach the partition, or remove the table from the pipeline with datasync.remove_table().")));
		{
			/* locked by find_all_inheritors */
			Relation	leaf = relation_open(child, NoLock);

			if (leaf->rd_rel->relrowsecurity)
				*rls = true;
			relation_close(leaf, NoLock);
		}
		leaves = lappend_oid(leaves, child);
	}
	return leaves;
}

/*
 * A table with row-level security is copied only by a role that bypasses
 * it: any other role would get only the rows its policies show, and would
 * run the policies' expressions, which the table's owner wrote.  role is
 * the login role of the replication connection (datasync.source_conninfo
 * may name one that is not a superuser).
 */
void
ds_check_copy_role(const char *role, Oid relid)
{
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role));
	bool		bypass = false;

	if (HeapTupleIsValid(tup))
	{
		Form_pg_authid a = (Form_pg_authid) GETSTRUCT(tup);

		bypass = a->rolsuper || a->rolbypassrls;
		ReleaseSysCache(tup);
	}
	if (!bypass)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot copy table \"%s.%s\" with row-level security as role \"%s\"",
						get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid), role),
				 errdetail("The role of the replication connection would see only the rows its policies allow, and would run the policies' expressions."),
				 errhint("Give role \"%s\" the BYPASSRLS attribute, or leave the user out of datasync.source_conninfo.", role)));
}
