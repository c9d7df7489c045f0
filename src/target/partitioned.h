/*-------------------------------------------------------------------------
 *
 * partitioned.h
 *		Upserts into target tables that cannot return xmax: partitioned
 *		and foreign tables.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/partitioned.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_PARTITIONED_H
#define DATASYNC_PARTITIONED_H

#include "lib/stringinfo.h"

#include "target/apply.h"

extern void ds_append_existing_keys(StringInfo sql, const DsRelation *rel, int nrows);
extern void ds_append_returning_existed(StringInfo sql, const DsRelation *rel);

#endif							/* DATASYNC_PARTITIONED_H */
