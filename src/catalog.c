/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Typed access to datasync's configuration tables and options.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/catalog.c
 *
 * NOTES
 *		The SQL API (pipeline.c, target.c) writes datasync._targets,
 *		_pipelines and _pipeline_tables; the launcher and the workers read
 *		them here, through SPI, inside a transaction the caller started.
 *		Option documents are parsed and checked in one place,
 *		ds_options_parse, used both when a user sets options and when a
 *		worker reads them.  So are the words of sync modes and conflict
 *		strategies: one table each, one function that reads a word and
 *		raises the one error with the one hint (ds_mode_parse,
 *		ds_strategy_parse).
 *
 *		Every SPI statement of the SQL functions (src/api) and of this
 *		file goes through ds_spi_execute: values as parameters, never in
 *		the SQL text; read_only only where the caller's snapshot answers
 *		the question (see there).
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"

#include "access.h"
#include "catalog.h"
#include "sendlimit.h"
#include "rowchange.h"

/* options of the contract that later issues implement */
static const char *const future_options[] = {
	"row_filter", "columns", "mask_columns",
	"create_target_tables", "on_invalid", "track_history",
	"history_retention", "max_retries", NULL
};

static int
option_int(JsonbValue *v, const char *key, int min, int max)
{
	bool		overflow = false;
	int32		val = 0;
	Numeric		num;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline option \"%s\" must be a number", key)));
	num = v->val.numeric;
	val = numeric_int4_opt_error(num, &overflow);
	/* out of range, or not an integer (1.5 rounds to 2) */
	if (overflow || val < min || val > max ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(num),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(val)))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value %s for pipeline option \"%s\"",
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num))), key),
				 errdetail("It must be an integer between %d and %d.", min, max)));
	return (int) val;
}

static char *
option_string(JsonbValue *v, const char *key)
{
	if (v->type != jbvString || v->val.string.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline option \"%s\" must be a non-empty string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * An option that maps tables to strings: {"schema.table": "value", ...}.
 * With allow_string, a plain string applies to every table (source "*").
 */
static List *
option_table_object(JsonbValue *v, const char *key, bool allow_string)
{
	JsonbIterator *it;
	JsonbValue	v2;
	JsonbIteratorToken tok;
	char	   *src = NULL;
	List	   *result = NIL;

	if (allow_string && v->type == jbvString)
	{
		DsTableMapEntry *e = palloc(sizeof(DsTableMapEntry));

		e->source = "*";
		e->target = option_string(v, key);
		return list_make1(e);
	}
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline option \"%s\" must be %sa JSON object of %s",
						key, allow_string ? "a string or " : "",
						strcmp(key, "table_map") == 0 ? "source to target table names" : "table names to strings")));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v2, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			src = pnstrdup(v2.val.string.val, v2.val.string.len);
		else if (tok == WJB_VALUE)
		{
			DsTableMapEntry *e = palloc(sizeof(DsTableMapEntry));

			if (v2.type != jbvString || v2.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s entry \"%s\" must be a non-empty string", key, src)));
			e->source = src;
			e->target = pnstrdup(v2.val.string.val, v2.val.string.len);
			result = lappend(result, e);
		}
	}
	return result;
}

/*
 * The value a per-table option (table_map, timestamp_column, ...) gives a
 * table named "schema.table", or "table" when the schema is public; "*"
 * entries apply to every table.  NULL when none does.
 */
const char *
ds_table_option(List *entries, const char *nspname, const char *relname)
{
	ListCell   *lc;
	const char *any = NULL;
	char	   *srcname = psprintf("%s.%s", nspname, relname);

	foreach(lc, entries)
	{
		DsTableMapEntry *e = lfirst(lc);

		if (strcmp(e->source, srcname) == 0 ||
			(strcmp(nspname, "public") == 0 && strcmp(e->source, relname) == 0))
			return e->target;
		if (strcmp(e->source, "*") == 0)
			any = e->target;
	}
	return any;
}

/*
 * The words of sync modes and conflict strategies, one table each.  A
 * word is read in any case and with '_' for '-' ("source_wins", as the
 * configuration document may write it); each entry has the word the
 * catalog stores and at most one other spelling.  The SQL script reads
 * the same words the same way (datasync._config_word, _config_mode and
 * _config_strategy) and gives the same hints: change both together.
 */
typedef struct DsWord
{
	int			value;			/* DsSyncMode or DsStrategy */
	const char *name;			/* as the catalog stores it */
	const char *alias;			/* another accepted spelling, or NULL */
} DsWord;

static const DsWord mode_words[] = {
	{DS_MODE_REALTIME, "realtime", "real-time"},
	{DS_MODE_SCHEDULED, "scheduled", NULL},
	{DS_MODE_MANUAL, "manual", NULL},
	{0, NULL, NULL}
};

#define MODE_HINT "Valid modes are \"real-time\" (or \"realtime\"), \"scheduled\" and \"manual\"."

static const DsWord strategy_words[] = {
	{DS_SOURCE_WINS, "source-wins", NULL},
	{DS_TARGET_WINS, "target-wins", NULL},
	{DS_LATEST_TIMESTAMP, "latest-timestamp", NULL},
	{DS_MANUAL, "manual", NULL},
	{0, NULL, NULL}
};

#define STRATEGY_HINT "Valid strategies are \"source-wins\", \"target-wins\", \"latest-timestamp\" and \"manual\"."

/* the entry of word in words, or NULL */
static const DsWord *
word_lookup(const DsWord *words, const char *word)
{
	char	   *w = pstrdup(word);
	char	   *p;
	int			i;

	for (p = w; *p; p++)
		*p = (*p == '_') ? '-' : pg_ascii_tolower((unsigned char) *p);
	for (i = 0; words[i].name; i++)
		if (strcmp(w, words[i].name) == 0 ||
			(words[i].alias && strcmp(w, words[i].alias) == 0))
			break;
	pfree(w);
	return words[i].name ? &words[i] : NULL;
}

/* The stored word of a sync mode, or NULL when word is none. */
const char *
ds_mode_name(const char *word)
{
	const DsWord *w = word_lookup(mode_words, word);

	return w ? w->name : NULL;
}

/* The stored word of a sync mode; an error when word is none. */
const char *
ds_mode_parse(const char *word)
{
	const char *name = ds_mode_name(word);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\"", word),
				 errhint(MODE_HINT)));
	return name;
}

/* Whether word spells mode (false when it spells no mode at all). */
bool
ds_mode_is(const char *word, DsSyncMode mode)
{
	const DsWord *w = word_lookup(mode_words, word);

	return w != NULL && w->value == (int) mode;
}

/* The stored word of a conflict strategy, or NULL when word is none. */
const char *
ds_strategy_name(const char *word)
{
	const DsWord *w = word_lookup(strategy_words, word);

	return w ? w->name : NULL;
}

/*
 * The stored word of a conflict strategy; an error when word is none.
 * table: the table a per-table strategy is for (table_conflict_strategy),
 * named in the message; NULL for a pipeline's strategy.
 */
const char *
ds_strategy_parse(const char *word, const char *table)
{
	const char *name = ds_strategy_name(word);

	if (name == NULL && table != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conflict strategy \"%s\" for table \"%s\" in pipeline option \"table_conflict_strategy\"",
						word, table),
				 errhint(STRATEGY_HINT)));
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conflict strategy \"%s\"", word),
				 errhint(STRATEGY_HINT)));
	return name;
}

/*
 * The DsStrategy (rowchange.h) a conflict strategy word spells; an error
 * when it spells none.
 */
DsStrategy
ds_strategy_value(const char *word)
{
	(void) ds_strategy_parse(word, NULL);
	return (DsStrategy) word_lookup(strategy_words, word)->value;
}

/* The stored word of a DsStrategy. */
const char *
ds_strategy_word(DsStrategy s)
{
	int			i;

	for (i = 0; strategy_words[i].name; i++)
		if (strategy_words[i].value == (int) s)
			return strategy_words[i].name;
	elog(ERROR, "unknown conflict strategy %d", (int) s);
	return NULL;				/* keep compiler quiet */
}

/*
 * Parse a pipeline's options document into *out, filling defaults.
 * Raises an error naming the offending option; callers that write the
 * catalog call it first, so a bad document never lands there.
 */
void
ds_options_parse(Jsonb *options, DsPipelineOptions *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	memset(out, 0, sizeof(*out));
	out->batch_size = 10000;
	out->batch_timeout_ms = 1000;
	out->batch_max_bytes = DS_BATCH_MAX_BYTES_DEFAULT;
	out->retry_base_ms = 500;
	out->retry_max_ms = 60000;
	out->initial_sync = true;
	out->synchronous_commit = "off";

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;

		if (strcmp(key, "batch_size") == 0)
			out->batch_size = option_int(&v, key, 1, 1000000);
		else if (strcmp(key, "batch_timeout_ms") == 0)
			out->batch_timeout_ms = option_int(&v, key, 0, 3600000);
		else if (strcmp(key, "batch_max_bytes") == 0)
			out->batch_max_bytes = option_int(&v, key, 1024, 1073741823);
		else if (strcmp(key, "retry_base_ms") == 0)
			out->retry_base_ms = option_int(&v, key, 1, 3600000);
		else if (strcmp(key, "retry_max_ms") == 0)
			out->retry_max_ms = option_int(&v, key, 1, 86400000);
		else if (strcmp(key, "initial_sync") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("pipeline option \"%s\" must be true or false", key)));
			out->initial_sync = v.val.boolean;
		}
		else if (strcmp(key, "synchronous_commit") == 0)
		{
			char	   *val = option_string(&v, key);

			if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0 &&
				strcmp(val, "local") != 0 && strcmp(val, "remote_write") != 0 &&
				strcmp(val, "remote_apply") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value \"%s\" for pipeline option \"synchronous_commit\"", val),
						 errhint("Valid values are \"off\", \"local\", \"remote_write\", \"remote_apply\" and \"on\".")));
			out->synchronous_commit = val;
		}
		else if (strcmp(key, "target_schema") == 0)
			out->target_schema = option_string(&v, key);
		else if (strcmp(key, "timestamp_column") == 0)
			out->timestamp_columns = option_table_object(&v, key, true);
		else if (strcmp(key, "table_conflict_strategy") == 0)
		{
			ListCell   *lc;

			out->table_strategies = option_table_object(&v, key, false);
			foreach(lc, out->table_strategies)
			{
				DsTableMapEntry *e = lfirst(lc);

				e->target = (char *) ds_strategy_parse(e->target, e->source);
			}
		}
		else if (strcmp(key, "log_conflicts") == 0 ||
				 strcmp(key, "replica_identity_full") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("pipeline option \"%s\" must be true or false", key)));
			if (key[0] == 'l')
				out->log_conflicts = v.val.boolean;
			else
				out->replica_identity_full = v.val.boolean;
		}
		else if (strcmp(key, "table_map") == 0)
			out->table_map = option_table_object(&v, key, false);
		else
		{
			int			i;

			for (i = 0; future_options[i]; i++)
				if (strcmp(key, future_options[i]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("pipeline option \"%s\" is not supported yet", key)));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized pipeline option \"%s\"", key),
					 errhint("Valid options are batch_size, batch_timeout_ms, batch_max_bytes, retry_base_ms, retry_max_ms, initial_sync, synchronous_commit, target_schema, table_map, timestamp_column, table_conflict_strategy, log_conflicts and replica_identity_full.")));
		}
	}
	if (out->retry_max_ms < out->retry_base_ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline option \"retry_max_ms\" (%d) must not be less than \"retry_base_ms\" (%d)",
						out->retry_max_ms, out->retry_base_ms)));
}

/* Check a PostgreSQL target's options document. */
void
ds_target_options_check(Jsonb *options, const char *target)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of target \"%s\" must be a JSON object", target)));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "password_env") == 0 || strcmp(key, "description") == 0)
		{
			if (v.type != jbvString || v.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("target option \"%s\" must be a non-empty string", key)));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized target option \"%s\"", key),
					 errhint("Valid options of a PostgreSQL target are password_env and description; the DSN itself is changed with {\"dsn\": ...}.")));
	}
}

/* A top-level string member of a jsonb object, or NULL. */
char *
ds_jsonb_get_text(Jsonb *jb, const char *key)
{
	JsonbValue *v;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NULL;
	v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Run one SQL statement through SPI, its values as parameters (nulls as
 * SPI takes them, NULL when none is null), and raise unless SPI returns
 * expected.  The caller is connected to SPI.  Every SPI statement of the
 * SQL functions and of this file goes through here; only DDL, which takes
 * no parameters, is built as text (with quote_identifier).
 *
 * read_only runs the statement on the caller's snapshot as it is: right
 * for a read that the calling statement's snapshot answers.  SPI then
 * neither takes a new snapshot nor advances the command counter, so a
 * read after a LOCK or a FOR UPDATE, after the caller's own writes, or of
 * what another process commits while the caller waits must not be
 * read_only.
 */
void
ds_spi_execute(const char *sql, int nargs, Oid *argtypes, Datum *args,
			   const char *nulls, bool read_only, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, args, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed (%s): %s", SPI_result_code_string(rc), sql);
}

/*
 * A statement that writes, or a read that needs a snapshot of its own (see
 * above), with no NULL parameter.
 */
void
ds_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args, int expected)
{
	ds_spi_execute(sql, nargs, argtypes, args, NULL, false, expected);
}

/* A SELECT that the caller's snapshot answers (read_only). */
void
ds_spi_read(const char *sql, int nargs, Oid *argtypes, Datum *args,
			const char *nulls)
{
	ds_spi_execute(sql, nargs, argtypes, args, nulls, true, SPI_OK_SELECT);
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

static Datum
spi_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/*
 * Load one pipeline with its target and tables, or return NULL when it is
 * gone.  The caller has a transaction with an active snapshot; the result
 * is allocated in the caller's memory context.
 */
DsPipelineConfig *
ds_catalog_load(int64 pipeline_id)
{
	MemoryContext caller = CurrentMemoryContext;
	DsPipelineConfig *cfg;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	bool		isnull;
	uint64		i;
	Jsonb	   *opts;
	Jsonb	   *topts;

	args[0] = Int64GetDatum(pipeline_id);
	SPI_connect();
	ds_spi_read(ds_catalog_has_column("_pipelines", "created_by") ?
				"SELECT p.id, p.name, p.slot_name, p.mode, p.enabled, p.error, "
				"p.incarnation, t.name, t.kind, t.dsn, p.options, t.options, t.owner, "
				"p.conflict_strategy, p.target_id, p.created_by "
				"FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id "
				"WHERE p.id = $1" :
				"SELECT p.id, p.name, p.slot_name, p.mode, p.enabled, p.error, "
				"p.incarnation, t.name, t.kind, t.dsn, p.options, t.options, t.owner, "
				"p.conflict_strategy, p.target_id, NULL::pg_catalog.oid "
				"FROM datasync._pipelines p JOIN datasync._targets t ON t.id = p.target_id "
				"WHERE p.id = $1",
				1, argtypes, args, NULL);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return NULL;
	}

	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		cfg = palloc0(sizeof(DsPipelineConfig));
		cfg->id = pipeline_id;
		cfg->name = spi_text(0, 2);
		cfg->slot_name = spi_text(0, 3);
		cfg->mode = spi_text(0, 4);
		cfg->enabled = DatumGetBool(spi_datum(0, 5, &isnull));
		cfg->error = spi_text(0, 6);
		cfg->incarnation = DatumGetInt64(spi_datum(0, 7, &isnull));
		cfg->target_name = spi_text(0, 8);
		cfg->target_kind = spi_text(0, 9);
		cfg->dsn = spi_text(0, 10);
		opts = DatumGetJsonbPCopy(spi_datum(0, 11, &isnull));
		topts = DatumGetJsonbPCopy(spi_datum(0, 12, &isnull));
		ds_options_parse(opts, &cfg->options);
		cfg->password_env = ds_jsonb_get_text(topts, "password_env");
		cfg->target_owner = DatumGetObjectId(spi_datum(0, 13, &isnull));
		cfg->strategy = ds_strategy_name(spi_text(0, 14));
		cfg->target_id = DatumGetInt64(spi_datum(0, 15, &isnull));
		cfg->created_by = DatumGetObjectId(spi_datum(0, 16, &isnull));
		if (isnull)
			cfg->created_by = InvalidOid;
		if (cfg->strategy == NULL)
			elog(ERROR, "pipeline " INT64_FORMAT " has an invalid conflict strategy", pipeline_id);
		MemoryContextSwitchTo(spi);
	}

	/* a transaction to skip (skip_transaction; 0.2) */
	cfg->skip_lsn = InvalidXLogRecPtr;
	if (ds_catalog_has_column("_pipelines", "skip_lsn"))
	{
		ds_spi_read("SELECT skip_lsn FROM datasync._pipelines WHERE id = $1",
					1, argtypes, args, NULL);
		if (SPI_processed == 1)
		{
			Datum		d = spi_datum(0, 1, &isnull);

			if (!isnull)
				cfg->skip_lsn = DatumGetLSN(d);
		}
	}

	ds_spi_read(ds_catalog_has_column("_pipeline_tables", "added_by") ?
				"SELECT relid, sync_state, added_by FROM datasync._pipeline_tables "
				"WHERE pipeline_id = $1 ORDER BY relid" :
				"SELECT relid, sync_state, NULL::pg_catalog.oid FROM datasync._pipeline_tables "
				"WHERE pipeline_id = $1 ORDER BY relid",
				1, argtypes, args, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		DsPipelineTable *t = palloc(sizeof(DsPipelineTable));

		t->relid = DatumGetObjectId(spi_datum(i, 1, &isnull));
		t->sync_state = DatumGetChar(spi_datum(i, 2, &isnull));
		t->added_by = DatumGetObjectId(spi_datum(i, 3, &isnull));
		if (isnull)
			t->added_by = InvalidOid;
		cfg->tables = lappend(cfg->tables, t);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return cfg;
}

/* All pipelines, for the launcher.  Caller has a transaction and snapshot. */
List *
ds_catalog_list(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	uint64		i;

	SPI_connect();
	ds_spi_read("SELECT id, enabled AND error IS NULL, mode, name, enabled, incarnation "
				"FROM datasync._pipelines ORDER BY id", 0, NULL, NULL, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		DsPipelineBrief *b = palloc(sizeof(DsPipelineBrief));
		bool		isnull;

		b->id = DatumGetInt64(spi_datum(i, 1, &isnull));
		b->active = DatumGetBool(spi_datum(i, 2, &isnull));
		b->realtime = ds_mode_is(spi_text(i, 3), DS_MODE_REALTIME);
		b->name = spi_text(i, 4);
		b->enabled = DatumGetBool(spi_datum(i, 5, &isnull));
		b->incarnation = DatumGetInt64(spi_datum(i, 6, &isnull));
		result = lappend(result, b);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return result;
}

/* Record a permanent error: the launcher leaves the pipeline stopped. */
void
ds_catalog_set_error(int64 pipeline_id, const char *msg)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];

	args[0] = Int64GetDatum(pipeline_id);
	args[1] = CStringGetTextDatum(msg);
	SPI_connect();
	ds_spi_exec("UPDATE datasync._pipelines SET error = $2 WHERE id = $1",
				2, argtypes, args, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * The transaction skip_transaction asked to skip (at lsn) was skipped and
 * a later one is on the target: the request is done.
 */
void
ds_catalog_clear_skip(int64 pipeline_id, XLogRecPtr lsn)
{
	Oid			argtypes[2] = {INT8OID, PG_LSNOID};
	Datum		args[2];

	args[0] = Int64GetDatum(pipeline_id);
	args[1] = LSNGetDatum(lsn);
	SPI_connect();
	ds_spi_exec("UPDATE datasync._pipelines SET skip_lsn = NULL WHERE id = $1 AND skip_lsn = $2",
				2, argtypes, args, SPI_OK_UPDATE);
	SPI_finish();
}

/* Mark tables copied (their rows on the target hold the copy's LSN). */
void
ds_catalog_set_tables_ready(int64 pipeline_id, List *relids)
{
	Oid			argtypes[2] = {INT8OID, OIDOID};
	Datum		args[2];
	ListCell   *lc;

	SPI_connect();
	foreach(lc, relids)
	{
		args[0] = Int64GetDatum(pipeline_id);
		args[1] = ObjectIdGetDatum(lfirst_oid(lc));
		ds_spi_exec("UPDATE datasync._pipeline_tables SET sync_state = 'r' "
					"WHERE pipeline_id = $1 AND relid = $2",
					2, argtypes, args, SPI_OK_UPDATE);
	}
	SPI_finish();
}

/*
 * Start a transaction with a snapshot when there is none (returns whether
 * it did), keeping the caller's memory context current: what the caller
 * allocates meanwhile outlives the transaction.
 */
bool
ds_xact_start(void)
{
	MemoryContext caller = CurrentMemoryContext;

	if (IsTransactionState())
		return false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(caller);
	return true;
}

/* Commit what ds_xact_start started, back in the caller's context. */
void
ds_xact_commit(bool started)
{
	MemoryContext caller = CurrentMemoryContext;

	if (!started)
		return;
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
}
