/*-------------------------------------------------------------------------
 *
 * isolation.h
 *		Databases and incarnations: which pipelines exist here, and where
 *		pipelines may run.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/isolation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_ISOLATION_H
#define DATASYNC_ISOLATION_H

#include "nodes/pg_list.h"

#include "shmem.h"

extern List *ds_catalog_keys(void);
extern bool ds_key_list_member(List *keys, const DsPipelineKey *key);
extern bool ds_pipeline_current(const DsPipelineKey *key);
extern void ds_require_launcher_database(void);

#endif							/* DATASYNC_ISOLATION_H */
