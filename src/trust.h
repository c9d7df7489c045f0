/*-------------------------------------------------------------------------
 *
 * trust.h
 *		What runs as whom in datasync's background workers.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/trust.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_TRUST_H
#define DATASYNC_TRUST_H

#include "utils/relcache.h"

#include "catalog.h"

/* the search_path of every datasync session and of owner code it runs */
#define DS_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

typedef void (*DsOwnerFn) (void *arg);

extern void ds_pin_search_path(void);
extern void ds_recheck_table(DsPipelineConfig *cfg, Oid relid);
extern void ds_recheck_target(DsPipelineConfig *cfg);
extern void ds_check_source_table(Relation rel, const char *what);
extern bool ds_as_table_owner(Oid relid, const char *what, DsOwnerFn fn, void *arg,
							  bool missing_ok);
extern List *ds_copy_leaves(Oid relid, bool *rls);
extern void ds_check_copy_role(const char *role, Oid relid);

#endif							/* DATASYNC_TRUST_H */
