/*-------------------------------------------------------------------------
 *
 * stream.h
 *		The replication connection: slots, START_REPLICATION, feedback.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/stream.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_STREAM_H
#define DATASYNC_STREAM_H

#include "access/xlogdefs.h"
#include "libpq-fe.h"
#include "utils/timestamp.h"

typedef struct DsStream
{
	PGconn	   *conn;
	bool		streaming;		/* in COPY BOTH */
	XLogRecPtr	received_lsn;	/* highest WAL position seen */
	XLogRecPtr	flushed_lsn;	/* what we told the server is durable */
	TimestampTz last_feedback;
} DsStream;

extern DsStream *ds_stream_connect(const char *appname);
extern void ds_stream_close(DsStream *s);
extern bool ds_stream_slot_exists(DsStream *s, const char *slot);
extern void ds_stream_drop_slot(DsStream *s, const char *slot);
extern XLogRecPtr ds_stream_create_slot(DsStream *s, const char *slot, bool temporary);
extern void ds_stream_start(DsStream *s, const char *slot, const char *publication,
							XLogRecPtr start);
extern int	ds_stream_receive(DsStream *s, char **buf);
extern void ds_stream_feedback(DsStream *s, XLogRecPtr flush, bool force);

#endif							/* DATASYNC_STREAM_H */
