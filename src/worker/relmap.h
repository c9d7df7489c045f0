/*-------------------------------------------------------------------------
 *
 * relmap.h
 *		Source relations as the stream describes them, and their targets.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/relmap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_RELMAP_H
#define DATASYNC_RELMAP_H

#include "target/apply.h"

extern void ds_relmap_init(MemoryContext cxt, DsPipelineConfig *cfg);
extern void ds_relmap_set_sync_lsn(Oid relid, XLogRecPtr lsn);
extern DsRelation *ds_relmap_update(LogicalRepRelation *lrel);
extern DsRelation *ds_relmap_get(LogicalRepRelId remoteid);
extern char *ds_target_qname(DsPipelineConfig *cfg, const char *nspname,
							 const char *relname);
extern List *ds_table_columns(Oid relid, char **nspname, char **relname,
							  bool *partitioned);

#endif							/* DATASYNC_RELMAP_H */
