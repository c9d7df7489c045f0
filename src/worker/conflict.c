/*-------------------------------------------------------------------------
 *
 * conflict.c
 *		The worker's side of conflicts: recording what the target's
 *		checking path found, parking the keys of manual conflicts, and
 *		joining later changes of a parked key to its conflict.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/conflict.c
 *
 * NOTES
 *		The target decides each change in one statement (target/apply_pg_check.c) and
 *		reports the conflicts among the results (on_conflict).  Before the
 *		target commits a batch, its conflicts are written to
 *		datasync.conflicts in a local transaction, keyed by the change
 *		(commit LSN of its transaction, place in it): a crash before the
 *		target commit replays the batch and finds the row instead of adding
 *		a second one; a crash after it finds everything written.
 *
 *		manual: the key of an open conflict is parked.  A later change of a
 *		parked key is not sent; it joins the conflict (its source_row
 *		becomes the latest version), so it never overtakes it.  A change
 *		of a key whose earlier change is still in flight waits for that
 *		result first (settle), since the result may park the key.  Joining
 *		a conflict written in an earlier batch holds an advisory lock on it
 *		until the batch is written, which resolve_conflict takes first, so
 *		a change either joins an open conflict or, once resolved, flows.
 *
 *		A conflict written just before a crash, in a batch the target never
 *		committed, and resolved by hand before the worker came back, has its
 *		changes replayed: they are skipped (the resolution settled them).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "catalog.h"
#include "stats.h"
#include "worker/conflict.h"
#include "worker/relmap.h"
#include "trust.h"

/* a conflict of this session: found in this batch, or an open one */
typedef struct Conflict
{
	int64		id;				/* 0 until written */
	DsConflictHit *hit;			/* found in this batch */
	bool		open;			/* manual: its keys are parked */
	bool		locked;			/* we hold its advisory lock */
	/* changes joined in this batch (before it was written) */
	int			changes;
	char	  **vals;			/* the latest source version */
	bool	   *sent;
	bool		has_new;
	XLogRecPtr	last_lsn;
	int			last_seq;
	List	   *extra_keys;		/* key texts besides the first, to store */
	List	   *parked_as;		/* of ParkItem, to unpark */
} Conflict;

/* no padding: hashed as bytes */
typedef struct KeyHash
{
	uint64		hash;
	Oid			relid;
	uint32		zero;
} KeyHash;

typedef struct ParkItem
{
	char	   *keytext;
	Conflict   *c;
} ParkItem;

typedef struct ParkEntry
{
	KeyHash		key;
	List	   *items;			/* of ParkItem */
} ParkEntry;

/* a change joined to a conflict written in an earlier batch */
typedef struct JoinedChange
{
	Conflict   *c;
	DsRelation *rel;
	char	  **vals;
	bool	   *sent;
	bool		has_new;
	XLogRecPtr	lsn;
	int			seq;
	char	   *newkeytext;
} JoinedChange;

/*
 * A conflict that was written before a crash, in a batch the target never
 * committed, and that a person resolved before the batch came round again:
 * its changes are settled, the replay skips them.
 */
typedef struct SettledReplay
{
	Oid			relid;
	List	   *keys;			/* key texts */
	XLogRecPtr	last_lsn;		/* changes up to this one are settled */
	int			last_seq;
} SettledReplay;

#define INFLIGHT_MAX 4096

static MemoryContext sess_cxt = NULL;
static MemoryContext batch_cxt = NULL;
static HTAB *parked = NULL;
static HTAB *inflight = NULL;
static int	inflight_n = 0;
static List *batch_hits = NIL;	/* of Conflict, in the order found */
static List *batch_joins = NIL; /* of JoinedChange */
static uint64 batch_found = 0;
static List *held_locks = NIL;	/* int64 ids (in TopMemoryContext) */
static List *settled = NIL;		/* of SettledReplay */
static int64 cur_pipeline = 0;
static const char *cur_pipeline_name = NULL;

const char *
ds_conflict_kind_name(const char *kind)
{
	static const char *const kinds[] = {
		"insert_exists", "update_missing", "update_differs",
		"delete_missing", "delete_differs", NULL
	};
	int			i;

	for (i = 0; kinds[i]; i++)
		if (strcmp(kind, kinds[i]) == 0)
			return kinds[i];
	elog(ERROR, "unknown conflict kind \"%s\"", kind);
	return NULL;				/* keep compiler quiet */
}

/* the advisory lock resolve_conflict and a joining worker share */
void
ds_conflict_lock_tag(LOCKTAG *tag, int64 id)
{
	uint64		key = ((uint64) 0x6473 << 48) | (uint64) id;

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, 1);
}

static void
release_locks(void)
{
	ListCell   *lc;

	foreach(lc, held_locks)
	{
		LOCKTAG		tag;
		int64	   *id = lfirst(lc);

		ds_conflict_lock_tag(&tag, *id);
		LockRelease(&tag, ExclusiveLock, true);
		pfree(id);
	}
	list_free(held_locks);
	held_locks = NIL;
}

/*
 * The worker's form of a key: each value with its length, so that no two
 * keys read the same.
 */
static char *
key_text(DsRelation *rel, char **keyvals)
{
	StringInfoData buf;
	int			k;

	initStringInfo(&buf);
	for (k = 0; k < rel->nkeys; k++)
	{
		if (keyvals[k] == NULL)
			appendStringInfoString(&buf, "N;");
		else
			appendStringInfo(&buf, "%zu:%s;", strlen(keyvals[k]), keyvals[k]);
	}
	return buf.data;
}

static char *
change_key_text(DsRelation *rel, LogicalRepTupleData *tup)
{
	char	  **vals = palloc(sizeof(char *) * Max(rel->nkeys, 1));
	int			k;

	for (k = 0; k < rel->nkeys; k++)
	{
		int			a = rel->keyatts[k];

		vals[k] = tup->colstatus[a] == LOGICALREP_COLUMN_TEXT ? tup->colvalues[a].data : NULL;
	}
	return key_text(rel, vals);
}

static KeyHash
key_hash(Oid relid, const char *keytext)
{
	KeyHash		h;

	h.zero = 0;
	h.relid = relid;
	h.hash = hash_bytes_extended((const unsigned char *) keytext, strlen(keytext), relid);
	return h;
}

static Conflict *
find_parked(Oid relid, const char *keytext)
{
	KeyHash		h = key_hash(relid, keytext);
	ParkEntry  *e = hash_search(parked, &h, HASH_FIND, NULL);
	ListCell   *lc;

	if (e == NULL)
		return NULL;
	foreach(lc, e->items)
	{
		ParkItem   *it = lfirst(lc);

		if (strcmp(it->keytext, keytext) == 0)
			return it->c;
	}
	return NULL;
}

static void
park(Oid relid, const char *keytext, Conflict *c)
{
	KeyHash		h = key_hash(relid, keytext);
	bool		found;
	ParkEntry  *e;
	ParkItem   *it;
	MemoryContext old = MemoryContextSwitchTo(sess_cxt);

	if (find_parked(relid, keytext) == c)
	{
		MemoryContextSwitchTo(old);
		return;
	}
	e = hash_search(parked, &h, HASH_ENTER, &found);
	if (!found)
		e->items = NIL;
	it = palloc(sizeof(ParkItem));
	it->keytext = pstrdup(keytext);
	it->c = c;
	e->items = lappend(e->items, it);
	c->parked_as = lappend(c->parked_as, it);
	MemoryContextSwitchTo(old);
}

/* forget a conflict's keys: it was resolved */
static void
unpark(Oid relid, Conflict *c)
{
	ListCell   *lc;

	foreach(lc, c->parked_as)
	{
		ParkItem   *it = lfirst(lc);
		KeyHash		h = key_hash(relid, it->keytext);
		ParkEntry  *e = hash_search(parked, &h, HASH_FIND, NULL);

		if (e)
		{
			e->items = list_delete_ptr(e->items, it);
			if (e->items == NIL)
				hash_search(parked, &h, HASH_REMOVE, NULL);
		}
	}
	c->parked_as = NIL;
	c->open = false;
}

static void
inflight_clear(void)
{
	HASH_SEQ_STATUS st;
	KeyHash    *k;

	if (inflight_n == 0)
		return;
	hash_seq_init(&st, inflight);
	while ((k = hash_seq_search(&st)) != NULL)
		hash_search(inflight, k, HASH_REMOVE, NULL);
	inflight_n = 0;
}

/* the target found a conflict (called while its results are read) */
static void
on_conflict(DsConflictHit *hit, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(sess_cxt);
	Conflict   *c = palloc0(sizeof(Conflict));
	DsRelation *rel = hit->rel;

	/* rows_inserted/updated/deleted count what the target applied */
	if (!hit->applied)
		ds_batch_uncount((DsDecoder *) arg, hit->change);

	c->hit = hit;
	c->open = rel->strategy == DS_MANUAL && !hit->applied;
	c->changes = 1;
	c->vals = hit->newvals;
	c->sent = hit->newsent;
	c->has_new = hit->has_new;
	c->last_lsn = hit->change_lsn;
	c->last_seq = hit->change_seq;
	batch_hits = lappend(batch_hits, c);
	batch_found++;
	MemoryContextSwitchTo(old);

	if (c->open)
	{
		char	   *k = key_text(rel, hit->keyvals);
		char	   *nk = key_text(rel, hit->newkeyvals);

		park(rel->remoteid, k, c);
		if (strcmp(k, nk) != 0)
		{
			park(rel->remoteid, nk, c);
			c->extra_keys = lappend(c->extra_keys, MemoryContextStrdup(sess_cxt, nk));
		}
	}
}

/* Set up for a session: load the keys of the pipeline's open conflicts. */
void
ds_conflict_session_start(DsDecoder *d, MemoryContext sesscxt)
{
	HASHCTL		ctl;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		started;
	uint64		i;

	release_locks();
	sess_cxt = AllocSetContextCreate(sesscxt, "datasync conflicts", ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(sesscxt, "datasync conflict batch", ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(KeyHash);
	ctl.entrysize = sizeof(ParkEntry);
	ctl.hcxt = sess_cxt;
	parked = hash_create("datasync parked keys", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(KeyHash);
	inflight = hash_create("datasync keys in flight", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	inflight_n = 0;
	batch_hits = batch_joins = NIL;
	batch_found = 0;
	cur_pipeline = d->cfg->id;
	cur_pipeline_name = d->cfg->name;
	d->target->on_conflict = on_conflict;
	d->target->on_conflict_arg = d;
	d->target->counted_conflicts = 0;

	started = ds_xact_start();
	SPI_connect();
	args[0] = Int64GetDatum(cur_pipeline);
	if (SPI_execute_with_args("SELECT id, \"table\"::oid, key_texts FROM datasync.conflicts"
							  " WHERE pipeline_id = $1 AND status = 'open' ORDER BY id",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the open conflicts of pipeline \"%s\"", cur_pipeline_name);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Conflict   *c = MemoryContextAllocZero(sess_cxt, sizeof(Conflict));
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		ArrayType  *keys = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull));
		Datum	   *elems;
		int			n;
		int			j;

		c->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		c->open = true;
		deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
		for (j = 0; j < n; j++)
			park(relid, TextDatumGetCString(elems[j]), c);
	}

	/* resolved by hand while the batch that found them is to be replayed */
	settled = NIL;
	{
		Oid			types[2] = {INT8OID, LSNOID};
		Datum		vals[2];

		vals[0] = Int64GetDatum(cur_pipeline);
		vals[1] = LSNGetDatum(d->skip_before);
		if (SPI_execute_with_args("SELECT \"table\"::oid, key_texts, last_change_lsn, last_change_seq"
								  " FROM datasync.conflicts WHERE pipeline_id = $1 AND status = 'resolved'"
								  " AND resolved_by IS NOT NULL AND change_lsn >= $2",
								  2, types, vals, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the conflicts of pipeline \"%s\"", cur_pipeline_name);
	}
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(sess_cxt);
		SettledReplay *r = palloc0(sizeof(SettledReplay));
		Datum	   *elems;
		int			n;
		int			j;

		r->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
		for (j = 0; j < n; j++)
			r->keys = lappend(r->keys, TextDatumGetCString(elems[j]));
		r->last_lsn = DatumGetLSN(SPI_getbinval(tup, desc, 3, &isnull));
		r->last_seq = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		settled = lappend(settled, r);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	ds_xact_commit(started);
}

/* is this change one a person settled already (see SettledReplay)? */
static bool
is_settled(DsChange *ch, const char *k, const char *nk)
{
	ListCell   *lc;

	foreach(lc, settled)
	{
		SettledReplay *r = lfirst(lc);
		ListCell   *kc;

		if (r->relid != ch->rel->remoteid ||
			ch->change_lsn > r->last_lsn ||
			(ch->change_lsn == r->last_lsn && ch->change_seq > r->last_seq))
			continue;
		foreach(kc, r->keys)
			if (strcmp(lfirst(kc), k) == 0 || (nk && strcmp(lfirst(kc), nk) == 0))
				return true;
	}
	return false;
}

static void
copy_new(MemoryContext cxt, DsRelation *rel, LogicalRepTupleData *tup,
		 char ***vals, bool **sent, bool *has_new)
{
	int			i;

	*has_new = tup != NULL;
	*vals = NULL;
	*sent = NULL;
	if (tup == NULL)
		return;
	*vals = MemoryContextAllocZero(cxt, sizeof(char *) * Max(rel->natts, 1));
	*sent = MemoryContextAllocZero(cxt, sizeof(bool) * Max(rel->natts, 1));
	for (i = 0; i < rel->natts; i++)
	{
		(*sent)[i] = tup->colstatus[i] != LOGICALREP_COLUMN_UNCHANGED;
		if (tup->colstatus[i] == LOGICALREP_COLUMN_TEXT)
			(*vals)[i] = MemoryContextStrdup(cxt, tup->colvalues[i].data);
	}
}

/* is the written conflict c still open?  Locks it first (see NOTES) */
static bool
still_open(Conflict *c)
{
	LOCKTAG		tag;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		started;
	bool		open = false;
	int64	   *id;

	ds_conflict_lock_tag(&tag, c->id);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	{
		/* kept outside the session's memory: an error must not lose them */
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		id = palloc(sizeof(int64));
		*id = c->id;
		held_locks = lappend(held_locks, id);
		MemoryContextSwitchTo(old);
	}
	c->locked = true;

	started = ds_xact_start();
	SPI_connect();
	args[0] = Int64GetDatum(c->id);
	if (SPI_execute_with_args("SELECT status = 'open' FROM datasync.conflicts WHERE id = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read conflict " INT64_FORMAT, c->id);
	if (SPI_processed == 1)
	{
		bool		isnull;

		open = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	ds_xact_commit(started);
	return open;
}

/*
 * Called before a change of a manual table goes to the target: true when
 * it joined an open conflict instead (and must not be sent).
 */
bool
ds_conflict_route(DsDecoder *d, DsChange *ch)
{
	DsRelation *rel = ch->rel;
	char	   *k;
	char	   *nk = NULL;
	Conflict   *c;
	KeyHash		h;
	bool		found;

	if (!rel->detect || (rel->strategy != DS_MANUAL && settled == NIL))
		return false;
	k = change_key_text(rel, ch->oldtup ? ch->oldtup : ch->newtup);
	if (ch->kind == DS_CHANGE_UPDATE && ch->oldtup)
	{
		nk = change_key_text(rel, ch->newtup);
		if (strcmp(nk, k) == 0)
			nk = NULL;
	}
	if (settled != NIL && is_settled(ch, k, nk))
		return true;
	if (rel->strategy != DS_MANUAL)
		return false;

	/* an earlier change of the key awaits its result, which may park it */
	if (inflight_n > 0)
	{
		h = key_hash(rel->remoteid, k);
		found = hash_search(inflight, &h, HASH_FIND, NULL) != NULL;
		if (!found && nk)
		{
			h = key_hash(rel->remoteid, nk);
			found = hash_search(inflight, &h, HASH_FIND, NULL) != NULL;
		}
		if (found)
		{
			d->target->settle(d->target);
			inflight_clear();
		}
	}

	c = find_parked(rel->remoteid, k);
	if (c == NULL && nk)
		c = find_parked(rel->remoteid, nk);
	if (c && c->id != 0 && !c->locked && !still_open(c))
	{
		/* resolved meanwhile: the key flows again */
		unpark(rel->remoteid, c);
		c = NULL;
	}
	if (c == NULL)
	{
		if (inflight_n >= INFLIGHT_MAX)
		{
			d->target->settle(d->target);
			inflight_clear();
		}
		h = key_hash(rel->remoteid, k);
		(void) hash_search(inflight, &h, HASH_ENTER, &found);
		inflight_n += !found;
		if (nk)
		{
			h = key_hash(rel->remoteid, nk);
			(void) hash_search(inflight, &h, HASH_ENTER, &found);
			inflight_n += !found;
		}
		return false;
	}

	/* join: the conflict's source version becomes this change's */
	if (nk)
	{
		park(rel->remoteid, nk, c);
		c->extra_keys = lappend(c->extra_keys, MemoryContextStrdup(sess_cxt, nk));
	}
	if (c->id == 0)
	{
		copy_new(batch_cxt, rel, ch->newtup, &c->vals, &c->sent, &c->has_new);
		c->changes++;
		c->last_lsn = ch->change_lsn;
		c->last_seq = ch->change_seq;
	}
	else
	{
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);
		JoinedChange	   *j = palloc0(sizeof(JoinedChange));

		j->c = c;
		j->rel = rel;
		copy_new(batch_cxt, rel, ch->newtup, &j->vals, &j->sent, &j->has_new);
		j->lsn = ch->change_lsn;
		j->seq = ch->change_seq;
		j->newkeytext = nk ? pstrdup(nk) : NULL;
		batch_joins = lappend(batch_joins, j);
		MemoryContextSwitchTo(old);
	}
	return true;
}

typedef struct RowJson
{
	DsRelation *rel;
	char	  **vals;
	bool	   *sent;
	int		   *atts;
	int			natts;
	bool		as_text;		/* the table is gone: every value a string */
	bool		isnull;
	Datum		result;
} RowJson;

/* row_json's statement; run as the table's owner unless as_text (trust.c) */
static void
row_json_read(void *arg)
{
	RowJson    *rj = arg;
	DsRelation *rel = rj->rel;
	StringInfoData sql;
	Oid		   *types = palloc(sizeof(Oid) * Max(rj->natts, 1));
	Datum	   *args = palloc(sizeof(Datum) * Max(rj->natts, 1));
	char	   *nulls = palloc(Max(rj->natts, 1) + 1);
	int			n = 0;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT pg_catalog.to_jsonb(r) FROM (SELECT ");
	for (i = 0; i < rj->natts; i++)
	{
		int			a = rj->atts ? rj->atts[i] : i;

		if (rj->sent && !rj->sent[a])
			continue;
		appendStringInfo(&sql, "%s$%d::pg_catalog.text", n > 0 ? ", " : "", n + 1);
		if (!rj->as_text)
			appendStringInfo(&sql, "::%s",
							 format_type_extended(getBaseType(rel->atttyps[a]), -1,
												  FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfo(&sql, " AS %s", quote_identifier(rel->attnames[a]));
		types[n] = TEXTOID;
		args[n] = rj->vals[a] ? CStringGetTextDatum(rj->vals[a]) : (Datum) 0;
		nulls[n] = rj->vals[a] ? ' ' : 'n';
		n++;
	}
	appendStringInfoString(&sql, ") r");
	if (n == 0)
	{
		rj->isnull = true;
		rj->result = (Datum) 0;
		return;
	}
	if (SPI_execute_with_args(sql.data, n, types, args, nulls, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not build a row of table \"%s.%s\" as JSON", rel->nspname, rel->relname);
	rj->result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &rj->isnull);
	if (!rj->isnull)
		rj->result = SPI_datumTransfer(rj->result, false, -1);
}

/*
 * A row of a source table as JSON, typed as the source column (its base
 * type): the values as the stream sent them (text), cast back, as the
 * table's owner, since a cast to json of a user's type is the user's code.
 * Only the columns in atts whose value was sent.  NULL when there is
 * nothing.  A table dropped since gets its values as strings.
 */
static Datum
row_json(DsRelation *rel, char **vals, bool *sent, int *atts, int natts, bool *isnull)
{
	RowJson		rj;

	rj.rel = rel;
	rj.vals = vals;
	rj.sent = sent;
	rj.atts = atts;
	rj.natts = natts;
	rj.as_text = false;
	rj.isnull = true;
	rj.result = (Datum) 0;
	if (!ds_as_table_owner(rel->remoteid, "read the values of", row_json_read, &rj, true))
	{
		rj.as_text = true;
		row_json_read(&rj);
	}
	*isnull = rj.isnull;
	return rj.result;
}

static Datum
text_array(List *strings)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, strings)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static void
write_hit(Conflict *c)
{
	DsConflictHit *hit = c->hit;
	DsRelation *rel = hit->rel;
	Oid			types[18] = {TEXTOID, OIDOID, JSONBOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTARRAYOID, LSNOID, INT4OID, LSNOID,
	INT4OID, TIMESTAMPTZOID};
	Datum		args[18];
	char		nulls[18];
	bool		isnull;
	char	   *keys = key_text(rel, hit->keyvals);
	List	   *keylist = list_make1(keys);
	char	  **keyvals = palloc(sizeof(char *) * Max(rel->natts, 1));
	int			k;

	memset(nulls, ' ', sizeof(nulls));
	for (k = 0; k < rel->nkeys; k++)
		keyvals[rel->keyatts[k]] = hit->keyvals[k];

	args[0] = CStringGetTextDatum(cur_pipeline_name);
	args[1] = ObjectIdGetDatum(rel->remoteid);
	args[2] = row_json(rel, keyvals, NULL, rel->keyatts, rel->nkeys, &isnull);
	args[3] = CStringGetTextDatum(hit->kind);
	if (c->has_new)
		args[4] = row_json(rel, c->vals, c->sent, NULL, rel->natts, &isnull);
	else
		isnull = true;
	nulls[4] = isnull ? 'n' : ' ';
	if (hit->target_row)
		args[5] = CStringGetTextDatum(hit->target_row);
	nulls[5] = hit->target_row ? ' ' : 'n';
	args[6] = CStringGetTextDatum(ds_strategy_word(rel->strategy));
	args[7] = CStringGetTextDatum(c->open ? "open" : "resolved");
	args[8] = CStringGetTextDatum(hit->applied ? "source" : "target");
	nulls[8] = c->open ? 'n' : ' ';
	args[9] = Int32GetDatum(c->changes);
	args[10] = Int64GetDatum(cur_pipeline);
	args[11] = CStringGetTextDatum(rel->target_qname);
	keylist = list_concat(keylist, c->extra_keys);
	args[12] = text_array(keylist);
	args[13] = LSNGetDatum(hit->change_lsn);
	args[14] = Int32GetDatum(hit->change_seq);
	args[15] = LSNGetDatum(c->last_lsn);
	args[16] = Int32GetDatum(c->last_seq);
	args[17] = TimestampTzGetDatum(hit->commit_time);

	if (SPI_execute_with_args("INSERT INTO datasync.conflicts (pipeline, \"table\", key, kind, source_row,"
							  " target_row, strategy, status, resolution, resolved_at, changes, pipeline_id,"
							  " target_table, key_texts, change_lsn, change_seq, last_change_lsn,"
							  " last_change_seq, source_commit_at)"
							  " VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.jsonb, $7, $8, $9,"
							  " CASE WHEN $8 = 'resolved' THEN pg_catalog.now() END, $10, $11, $12, $13,"
							  " $14, $15, $16, $17, $18)"
							  " ON CONFLICT (pipeline_id, change_lsn, change_seq) DO NOTHING RETURNING id",
							  18, types, args, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record a conflict of pipeline \"%s\"", cur_pipeline_name);
	if (SPI_processed == 1)
	{
		c->id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		return;
	}

	/* written before a crash: the replay found it again */
	if (SPI_execute_with_args("SELECT id, status = 'open' FROM datasync.conflicts"
							  " WHERE pipeline_id = $11 AND change_lsn = $14 AND change_seq = $15",
							  18, types, args, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not find a conflict of pipeline \"%s\"", cur_pipeline_name);
	c->id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (c->open && !DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		unpark(rel->remoteid, c);
}

static void
write_join(JoinedChange *j)
{
	Oid			types[5] = {INT8OID, JSONBOID, LSNOID, INT4OID, TEXTOID};
	Datum		args[5];
	char		nulls[5];
	bool		isnull = true;

	memset(nulls, ' ', sizeof(nulls));

	args[0] = Int64GetDatum(j->c->id);
	if (j->has_new)
		args[1] = row_json(j->rel, j->vals, j->sent, NULL, j->rel->natts, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	args[2] = LSNGetDatum(j->lsn);
	args[3] = Int32GetDatum(j->seq);
	if (j->newkeytext)
		args[4] = CStringGetTextDatum(j->newkeytext);
	nulls[4] = j->newkeytext ? ' ' : 'n';
	/* a replay after a crash may bring a change it holds already */
	if (SPI_execute_with_args("UPDATE datasync.conflicts SET source_row = $2, changes = changes + 1,"
							  " last_change_lsn = $3, last_change_seq = $4,"
							  " key_texts = CASE WHEN $5 IS NULL OR $5 = ANY (key_texts) THEN key_texts"
							  " ELSE key_texts || $5 END"
							  " WHERE id = $1 AND status = 'open'"
							  " AND (last_change_lsn, last_change_seq) < ($3, $4)",
							  5, types, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update conflict " INT64_FORMAT, j->c->id);
}

/*
 * Before the target commits the batch: collect the results still out and
 * write the batch's conflicts (see NOTES).
 */
void
ds_conflict_before_commit(DsDecoder *d)
{
	ListCell   *lc;
	bool		started;

	if (!d->b.checked)
		return;
	d->target->settle(d->target);
	inflight_clear();
	if (batch_hits == NIL && batch_joins == NIL)
		return;

	started = ds_xact_start();
	SPI_connect();
	foreach(lc, batch_hits)
		write_hit(lfirst(lc));
	foreach(lc, batch_joins)
		write_join(lfirst(lc));
	SPI_finish();
	ds_xact_commit(started);
}

/*
 * After the batch went to the target (committed, for a batch that checked
 * conflicts): counters, locks, memory.  What the fast path counted is
 * published with the batch's confirmation (batch.c).
 */
void
ds_conflict_after_commit(DsDecoder *d)
{
	ListCell   *lc;

	ds_stats_add(d->slot, DS_STAT_CONFLICTS, batch_found);
	batch_found = 0;
	release_locks();

	foreach(lc, batch_hits)
	{
		Conflict   *c = lfirst(lc);

		if (c->hit->target_row)
			pfree(c->hit->target_row);
		pfree(c->hit);
		c->hit = NULL;
		c->vals = NULL;
		c->sent = NULL;
		if (!c->open)
			pfree(c);
	}
	foreach(lc, batch_joins)
		((JoinedChange *) lfirst(lc))->c->locked = false;
	list_free(batch_hits);
	batch_hits = NIL;
	batch_joins = NIL;
	MemoryContextReset(batch_cxt);
}
