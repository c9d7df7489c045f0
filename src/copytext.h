/*-------------------------------------------------------------------------
 *
 * copytext.h
 *		Rows of the stream in COPY's text format, and back.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/copytext.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_COPYTEXT_H
#define DATASYNC_COPYTEXT_H

#include "lib/stringinfo.h"
#include "replication/logicalproto.h"

extern void ds_copytext_append_row(StringInfo buf, LogicalRepTupleData *tup, int natts);
extern int	ds_copytext_next_row(const char *buf, int len, int pos, int natts,
								 char **values, char *scratch);

#endif							/* DATASYNC_COPYTEXT_H */
