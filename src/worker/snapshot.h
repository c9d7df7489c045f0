/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *		Initial copy of a pipeline's tables, and copies of single tables.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_SNAPSHOT_H
#define DATASYNC_SNAPSHOT_H

#include "target/apply.h"
#include "worker/stream.h"

extern XLogRecPtr ds_snapshot_initial(DsStream *s, DsApplyTarget *t,
									  DsPipelineConfig *cfg, List *relids,
									  bool copy);
extern uint64 ds_snapshot_take_rows(void);
extern XLogRecPtr ds_snapshot_tables(DsApplyTarget *t, DsPipelineConfig *cfg,
									 List *relids);

#endif							/* DATASYNC_SNAPSHOT_H */
