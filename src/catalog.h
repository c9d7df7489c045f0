/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		Typed access to datasync's configuration tables and options.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_CATALOG_H
#define DATASYNC_CATALOG_H

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "rowchange.h"

/*
 * How a pipeline runs (datasync._pipelines.mode; catalog.c has the words):
 * streaming all the time, or only for runs (jobs) that pg_cron or a user
 * queues.
 */
typedef enum DsSyncMode
{
	DS_MODE_REALTIME,
	DS_MODE_SCHEDULED,
	DS_MODE_MANUAL
} DsSyncMode;

/* pipeline options, parsed and checked (see ds_options_parse) */
typedef struct DsPipelineOptions
{
	int			batch_size;		/* rows a target transaction may hold */
	int			batch_timeout_ms;	/* longest a busy stream keeps a batch open */
	int			batch_max_bytes;	/* bytes of changes a target transaction may hold */
	int			retry_base_ms;
	int			retry_max_ms;
	bool		initial_sync;
	char	   *synchronous_commit;	/* of the target session; "off" default */
	char	   *target_schema;	/* NULL: same schema as the source */
	List	   *table_map;		/* of DsTableMapEntry */
	List	   *timestamp_columns;	/* of DsTableMapEntry; "*": every table */
	List	   *table_strategies;	/* of DsTableMapEntry, canonical names */
	bool		log_conflicts;	/* source-wins records its conflicts too */
	bool		replica_identity_full;	/* may set REPLICA IDENTITY FULL */
} DsPipelineOptions;

typedef struct DsTableMapEntry
{
	char	   *source;			/* "schema.table" as the user wrote it */
	char	   *target;			/* ditto */
} DsTableMapEntry;

typedef struct DsPipelineTable
{
	Oid			relid;
	char		sync_state;		/* 'i' init, 's' resync requested, 'r' ready */
	Oid			added_by;		/* role that added it; InvalidOid before 0.2 */
} DsPipelineTable;

typedef struct DsPipelineConfig
{
	int64		id;
	char	   *name;
	char	   *slot_name;		/* also the publication's name */
	char	   *mode;			/* as stored: ds_mode_is() tells which */
	bool		enabled;
	char	   *error;			/* not NULL: stopped on a permanent error */
	int64		incarnation;
	char	   *target_name;
	char	   *target_kind;
	char	   *dsn;
	char	   *password_env;	/* name of an environment variable, or NULL */
	Oid			target_owner;	/* role that set the DSN */
	int64		target_id;
	Oid			created_by;		/* role that created the pipeline;
								 * InvalidOid before 0.2 */
	const char *strategy;		/* canonical conflict strategy */
	XLogRecPtr	skip_lsn;		/* skip the transaction committed here
								 * (skip_transaction); Invalid: none */
	DsPipelineOptions options;
	List	   *tables;			/* of DsPipelineTable */
} DsPipelineConfig;

/* the launcher's view of a pipeline */
typedef struct DsPipelineBrief
{
	int64		id;
	int64		incarnation;
	char	   *name;
	bool		enabled;		/* not paused */
	bool		active;			/* enabled and not stopped by an error */
	bool		realtime;		/* else it runs only for queued jobs */
} DsPipelineBrief;

extern void ds_options_parse(Jsonb *options, DsPipelineOptions *out);
extern void ds_target_options_check(Jsonb *options, const char *target);
extern DsPipelineConfig *ds_catalog_load(int64 pipeline_id);
extern List *ds_catalog_list(void);
extern void ds_catalog_set_error(int64 pipeline_id, const char *msg);
extern void ds_catalog_clear_skip(int64 pipeline_id, XLogRecPtr lsn);
extern void ds_catalog_set_tables_ready(int64 pipeline_id, List *relids);
extern char *ds_jsonb_get_text(Jsonb *jb, const char *key);
extern const char *ds_table_option(List *entries, const char *nspname,
								   const char *relname);
extern const char *ds_mode_name(const char *word);
extern const char *ds_mode_parse(const char *word);
extern bool ds_mode_is(const char *word, DsSyncMode mode);
extern const char *ds_strategy_name(const char *word);
extern const char *ds_strategy_parse(const char *word, const char *table);
extern DsStrategy ds_strategy_value(const char *word);
extern const char *ds_strategy_word(DsStrategy s);
extern void ds_spi_execute(const char *sql, int nargs, Oid *argtypes, Datum *args,
						   const char *nulls, bool read_only, int expected);
extern void ds_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args,
						int expected);
extern void ds_spi_read(const char *sql, int nargs, Oid *argtypes, Datum *args,
						const char *nulls);
extern bool ds_xact_start(void);
extern void ds_xact_commit(bool started);

#endif							/* DATASYNC_CATALOG_H */
