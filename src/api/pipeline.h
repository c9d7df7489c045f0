/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *		What pipeline.c shares with pipetables.c.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/pipeline.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_PIPELINE_H
#define DATASYNC_PIPELINE_H

#include "utils/jsonb.h"

#include "access.h"
#include "catalog.h"

/* a table joins a pipeline: who added it (not on the 0.1 catalog) */
#define PIPELINE_TABLES_INSERT \
	(ds_catalog_has_column("_pipeline_tables", "added_by") ? \
	 "INSERT INTO datasync._pipeline_tables (pipeline_id, relid, added_by) VALUES ($1, $2, $3)" : \
	 "INSERT INTO datasync._pipeline_tables (pipeline_id, relid) VALUES ($1, $2)")

typedef struct PipelineRow
{
	int64		id;
	int64		incarnation;
	int64		target_id;
	char	   *slot_name;
	bool		enabled;
	bool		has_error;
	char	   *mode;
	char	   *schedule;		/* NULL unless scheduled */
	char	   *strategy;
	Jsonb	   *options;
} PipelineRow;

extern PipelineRow pipeline_row(const char *name, bool lock);
extern char *table_display(Oid relid);
extern char *table_sql(Oid relid);
extern char *publication_member(Oid relid);
extern void check_conflict_tables(List *relids, const char *strategy,
								  DsPipelineOptions *opts, Oid caller,
								  int64 target_id);
extern void pipeline_audit(Oid caller, const char *action, const char *name,
						   const char *details);

#endif							/* DATASYNC_PIPELINE_H */
