/*-------------------------------------------------------------------------
 *
 * relmap.c
 *		Source relations as the stream describes them, and their targets.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/relmap.c
 *
 * NOTES
 *		pgoutput sends a RELATION message before the first change of a
 *		relation in a session and after every schema change; each one
 *		replaces the entry (with a new version, so the target prepares new
 *		statements).  The key is the replica identity the stream marks; for
 *		REPLICA IDENTITY FULL it is the table's primary key when it has
 *		one, else every column (a "full" match).  Since the source is this
 *		very database, the worker looks such details up in its own catalog.
 *
 *		The map lives in a context of the worker's streaming session.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "access.h"
#include "worker/relmap.h"
#include "trust.h"

typedef struct RelSyncLsn
{
	Oid			relid;
	XLogRecPtr	lsn;
} RelSyncLsn;

/*
 * The map points to the current version of each relation.  A RELATION
 * message makes a new one and leaves the old in place: changes still in
 * flight on the target (and conflicts found for them) describe themselves
 * with the shape they were sent with.
 */
typedef struct RelMapEntry
{
	LogicalRepRelId remoteid;
	DsRelation *rel;
} RelMapEntry;

static HTAB *relmap = NULL;
static MemoryContext relmap_cxt = NULL;
static DsPipelineConfig *relmap_cfg = NULL;
static List *sync_lsns = NIL;

void
ds_relmap_init(MemoryContext cxt, DsPipelineConfig *cfg)
{
	HASHCTL		ctl;

	relmap_cxt = cxt;
	relmap_cfg = cfg;
	sync_lsns = NIL;
	ctl.keysize = sizeof(LogicalRepRelId);
	ctl.entrysize = sizeof(RelMapEntry);
	ctl.hcxt = cxt;
	relmap = hash_create("datasync relations", 64, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Changes of relid committed before lsn are in its copy: skip them. */
void
ds_relmap_set_sync_lsn(Oid relid, XLogRecPtr lsn)
{
	MemoryContext old = MemoryContextSwitchTo(relmap_cxt);
	RelSyncLsn *r = palloc(sizeof(RelSyncLsn));
	RelMapEntry *e;

	r->relid = relid;
	r->lsn = lsn;
	sync_lsns = lappend(sync_lsns, r);
	MemoryContextSwitchTo(old);

	e = hash_search(relmap, &relid, HASH_FIND, NULL);
	if (e)
		e->rel->sync_lsn = lsn;
}

/*
 * The quoted target name of a source table: table_map wins, else
 * target_schema (or the source schema) and the source name.  A name in a
 * system schema of the target, or the progress table, is refused here,
 * where every user of the name gets it.
 */
char *
ds_target_qname(DsPipelineConfig *cfg, const char *nspname, const char *relname)
{
	const char *target = ds_table_option(cfg->options.table_map, nspname, relname);
	const char *schema = cfg->options.target_schema ? cfg->options.target_schema : nspname;
	char	   *tschema = NULL;
	char	   *trel = NULL;

	if (target == NULL)
		trel = pstrdup(relname);
	else if (!ds_split_table_name(target, &tschema, &trel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("table_map target \"%s\" is not a table name", target)));
	if (tschema == NULL)
		tschema = pstrdup(schema);
	ds_check_target_table(psprintf("%s.%s", nspname, relname), tschema, trel);
	return quote_qualified_identifier(tschema, trel);
}

/*
 * Columns of a source table that the stream carries (not dropped, not
 * generated), in attribute order, as a List of String.  Also returns its
 * names.  Needs a transaction.
 */
List *
ds_table_columns(Oid relid, char **nspname, char **relname, bool *partitioned)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	TupleDesc	desc;
	List	   *cols = NIL;
	int			i;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u of the pipeline does not exist", relid)));
	desc = RelationGetDescr(rel);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		cols = lappend(cols, makeString(pstrdup(NameStr(att->attname))));
	}
	*nspname = get_namespace_name(RelationGetNamespace(rel));
	*relname = pstrdup(RelationGetRelationName(rel));
	*partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
	relation_close(rel, AccessShareLock);
	return cols;
}

/* key columns of a REPLICA IDENTITY FULL table: its primary key, if any */
static void
full_identity_key(DsRelation *rel)
{
	Relation	r = try_relation_open(rel->remoteid, AccessShareLock);
	Oid			pkoid;
	int			i;
	int			j;

	rel->nkeys = 0;
	if (r == NULL)
		return;
	pkoid = RelationGetPrimaryKeyIndex(r);
	if (OidIsValid(pkoid))
	{
		Relation	idx = index_open(pkoid, AccessShareLock);
		int			nkeys = idx->rd_index->indnkeyatts;

		rel->keyatts = palloc(sizeof(int) * nkeys);
		for (i = 0; i < nkeys; i++)
		{
			AttrNumber	attnum = idx->rd_index->indkey.values[i];
			char	   *attname = get_attname(rel->remoteid, attnum, false);

			for (j = 0; j < rel->natts; j++)
				if (strcmp(rel->attnames[j], attname) == 0)
					break;
			if (j == rel->natts)
			{
				rel->nkeys = 0;
				break;
			}
			rel->keyatts[rel->nkeys++] = j;
		}
		index_close(idx, AccessShareLock);
	}
	relation_close(r, AccessShareLock);
}

/*
 * The table's conflict strategy (table_conflict_strategy, else the
 * pipeline's) and whether its changes take the checking path: every
 * strategy but source-wins, and source-wins with log_conflicts.  Tables
 * without a key cannot tell a changed row from another one and keep the
 * plain path.
 */
static void
set_strategy(DsRelation *rel)
{
	DsPipelineOptions *o = &relmap_cfg->options;
	const char *s = ds_table_option(o->table_strategies, rel->nspname, rel->relname);
	const char *tscol;
	int			i;

	if (s == NULL)
		s = relmap_cfg->strategy;
	rel->strategy = ds_strategy_value(s);
	rel->detect = (rel->strategy != DS_SOURCE_WINS || o->log_conflicts) &&
		rel->nkeys > 0 && !rel->full_identity;

	rel->ts_att = -1;
	tscol = ds_table_option(o->timestamp_columns, rel->nspname, rel->relname);
	if (rel->strategy == DS_LATEST_TIMESTAMP && tscol != NULL)
	{
		for (i = 0; i < rel->natts; i++)
			if (strcmp(rel->attnames[i], tscol) == 0)
				rel->ts_att = i;
		if (rel->ts_att < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("timestamp_column \"%s\" is not a synced column of table \"%s.%s\"",
							tscol, rel->nspname, rel->relname)));
	}
}

/*
 * Replace the entry of a relation from its RELATION message.  Opens a
 * transaction of its own when the caller has none.
 */
DsRelation *
ds_relmap_update(LogicalRepRelation *lrel)
{
	DsRelation *rel;
	bool		found;
	uint32		version = 0;
	MemoryContext old;
	bool		started = false;
	int			i;
	ListCell   *lc;
	RelMapEntry *e = hash_search(relmap, &lrel->remoteid, HASH_ENTER, &found);

	if (found)
		version = e->rel->version + 1;

	old = MemoryContextSwitchTo(relmap_cxt);
	rel = palloc0(sizeof(DsRelation));
	e->rel = rel;
	rel->remoteid = lrel->remoteid;
	rel->version = version;
	rel->nspname = pstrdup(lrel->nspname);
	rel->relname = pstrdup(lrel->relname);
	rel->natts = lrel->natts;
	rel->attnames = palloc(sizeof(char *) * Max(lrel->natts, 1));
	rel->atttyps = palloc(sizeof(Oid) * Max(lrel->natts, 1));
	rel->attcast = palloc0(sizeof(bool) * Max(lrel->natts, 1));
	rel->keyatts = palloc(sizeof(int) * Max(lrel->natts, 1));
	for (i = 0; i < lrel->natts; i++)
	{
		rel->attnames[i] = pstrdup(lrel->attnames[i]);
		rel->atttyps[i] = lrel->atttyps[i];
	}

	started = ds_xact_start();

	/* types without equality are compared as text */
	for (i = 0; i < rel->natts; i++)
	{
		TypeCacheEntry *tc = lookup_type_cache(rel->atttyps[i], TYPECACHE_EQ_OPR);

		rel->attcast[i] = !OidIsValid(tc->eq_opr);
	}
	rel->old_full = lrel->replident == REPLICA_IDENTITY_FULL;
	if (lrel->replident == REPLICA_IDENTITY_FULL)
	{
		full_identity_key(rel);
		if (rel->nkeys == 0)
			rel->full_identity = true;
	}
	else
	{
		for (i = 0; i < rel->natts; i++)
			if (bms_is_member(i, lrel->attkeys))
				rel->keyatts[rel->nkeys++] = i;
	}
	rel->target_qname = ds_target_qname(relmap_cfg, rel->nspname, rel->relname);
	set_strategy(rel);

	ds_xact_commit(started);

	rel->in_pipeline = false;
	foreach(lc, relmap_cfg->tables)
	{
		DsPipelineTable *t = lfirst(lc);

		if (t->relid == rel->remoteid)
			rel->in_pipeline = true;
	}
	/* the checks of add_table, again where the table is used (trust.c) */
	if (rel->in_pipeline)
	{
		started = ds_xact_start();
		ds_recheck_table(relmap_cfg, rel->remoteid);
		ds_xact_commit(started);
	}
	rel->sync_lsn = InvalidXLogRecPtr;
	foreach(lc, sync_lsns)
	{
		RelSyncLsn *r = lfirst(lc);

		if (r->relid == rel->remoteid)
			rel->sync_lsn = r->lsn;
	}
	MemoryContextSwitchTo(old);
	return rel;
}

DsRelation *
ds_relmap_get(LogicalRepRelId remoteid)
{
	RelMapEntry *e = hash_search(relmap, &remoteid, HASH_FIND, NULL);

	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("change for relation %u arrived before its RELATION message", remoteid)));
	return e->rel;
}
