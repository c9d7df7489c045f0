/*-------------------------------------------------------------------------
 *
 * capacity.h
 *		Whether this server can carry one more pipeline.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/capacity.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_CAPACITY_H
#define DATASYNC_CAPACITY_H

extern void ds_check_capacity(const char *name, bool realtime);

#endif							/* DATASYNC_CAPACITY_H */
