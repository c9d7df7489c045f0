/*-------------------------------------------------------------------------
 *
 * access.h
 *		Who may do what: the users of a target, the tables a role may
 *		sync, the names a table may be mapped to on a target.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/access.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_ACCESS_H
#define DATASYNC_ACCESS_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

#include "catalog.h"

typedef enum DsTargetRight
{
	DS_TARGET_USE,				/* pipelines to it, test_target */
	DS_TARGET_OWN				/* alter, drop, grant, revoke */
} DsTargetRight;

extern bool ds_catalog_has_column(const char *table, const char *column);
extern void ds_target_check_right(int64 target_id, Oid caller, DsTargetRight right);
extern bool ds_target_has_right(Oid role, Oid owner, Datum grantees, bool grantees_null,
								 DsTargetRight right);
extern void ds_check_sync_table(Oid relid, Oid role);
extern bool ds_is_system_schema(const char *nspname);
extern bool ds_split_table_name(const char *name, char **schema, char **relname);
extern void ds_check_target_table(const char *source, const char *schema,
								  const char *relname);
extern void ds_check_table_map_value(const char *source, const char *value);
extern void ds_check_mapped_tables(List *relids, DsPipelineOptions *opts);
extern void ds_target_refuse_system(PGconn *conn, DsPipelineConfig *cfg);

#endif							/* DATASYNC_ACCESS_H */
