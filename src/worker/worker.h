/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The sync worker of one pipeline.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_WORKER_H
#define DATASYNC_WORKER_H

#include "storage/lock.h"

extern void ds_pipeline_locktag(LOCKTAG *tag, int64 pipeline_id);

#endif							/* DATASYNC_WORKER_H */
