/*-------------------------------------------------------------------------
 *
 * isolation.c
 *		Databases and incarnations: which pipelines exist here, and where
 *		pipelines may run.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/isolation.c
 *
 * NOTES
 *		Shared memory is one for the whole server, but a pipeline id is
 *		only unique in one database, and ids start again at 1 when the
 *		extension is dropped and created again.  Slots are therefore keyed
 *		by database, id and incarnation (DsPipelineKey, shmem.h), and what
 *		looks at them asks here which keys the current database's catalog
 *		holds: datasync.status shows only those, a worker whose key is gone
 *		exits, and the launcher stops such workers and frees their slots.
 *		The catalog is read straight from the heap under the caller's
 *		snapshot, so that the answer does not depend on the caller's rights
 *		on datasync._pipelines (datasync_monitor reads the status view) and
 *		is "none" once the extension is gone, without an error.
 *
 *		The launcher runs in one database (datasync.database) and starts
 *		workers only there.  The SQL calls that need it (creating a
 *		pipeline, resuming one, adding or copying tables, runs, waits)
 *		refuse to work anywhere else: the pipelines of another database,
 *		present after datasync.database changed or after a dump was
 *		restored there, would never run, and must never be confused with
 *		those of the launcher's database.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "isolation.h"

/*
 * The keys of the pipelines in the current database's catalog, palloc'd in
 * the caller's context; NIL when the extension is not installed.  The
 * caller has a transaction; the active snapshot (else the transaction's)
 * decides what is seen.
 */
List *
ds_catalog_keys(void)
{
	Oid			nsp = get_namespace_oid(DATASYNC_SCHEMA, true);
	Oid			relid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	AttrNumber	att_id;
	AttrNumber	att_inc;
	List	   *result = NIL;

	if (!OidIsValid(nsp))
		return NIL;
	relid = get_relname_relid("_pipelines", nsp);
	if (!OidIsValid(relid))
		return NIL;
	/* NULL if it was dropped while we waited for the lock */
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
		return NIL;
	att_id = get_attnum(relid, "id");
	att_inc = get_attnum(relid, "incarnation");
	if (att_id == InvalidAttrNumber || att_inc == InvalidAttrNumber)
		elog(ERROR, "datasync._pipelines lacks column \"id\" or \"incarnation\"");

	scan = table_beginscan(rel, ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(),
						   0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		DsPipelineKey *key = palloc(sizeof(DsPipelineKey));
		bool		isnull_id;
		bool		isnull_inc;
		Datum		id = heap_getattr(tup, att_id, RelationGetDescr(rel), &isnull_id);
		Datum		inc = heap_getattr(tup, att_inc, RelationGetDescr(rel), &isnull_inc);

		if (isnull_id || isnull_inc)
			continue;
		ds_pipeline_key(key, DatumGetInt64(id), DatumGetInt64(inc));
		result = lappend(result, key);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

bool
ds_key_list_member(List *keys, const DsPipelineKey *key)
{
	ListCell   *lc;

	foreach(lc, keys)
	{
		if (ds_key_equal((DsPipelineKey *) lfirst(lc), key))
			return true;
	}
	return false;
}

/*
 * Does the pipeline still exist: in this database, with this id and this
 * incarnation?  The caller has a transaction.
 */
bool
ds_pipeline_current(const DsPipelineKey *key)
{
	List	   *keys;
	bool		found;

	if (key->dboid != MyDatabaseId)
		return false;
	keys = ds_catalog_keys();
	found = ds_key_list_member(keys, key);
	list_free_deep(keys);
	return found;
}

/*
 * Refuse a call that needs the launcher (a worker for the pipeline) in a
 * database where the launcher does not run.  Without datasync in
 * shared_preload_libraries no launcher runs anywhere (and datasync.database
 * is not defined): the calls that need shared memory say so themselves.
 */
void
ds_require_launcher_database(void)
{
	char	   *here;

	if (datasync_database == NULL)
		return;
	here = get_database_name(MyDatabaseId);
	if (here != NULL && strcmp(here, datasync_database) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("datasync pipelines run only in database \"%s\"", datasync_database),
			 errdetail("The datasync launcher runs in the database named by datasync.database; pipelines of database \"%s\" never run.",
					   here ? here : "?"),
			 errhint("Connect to database \"%s\", or set datasync.database = '%s' and restart the server.",
					 datasync_database, here ? here : "?")));
}
