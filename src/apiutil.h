/*-------------------------------------------------------------------------
 *
 * apiutil.h
 *		Argument checks shared by the SQL-callable functions.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/apiutil.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_APIUTIL_H
#define DATASYNC_APIUTIL_H

#include "fmgr.h"
#include "utils/jsonb.h"

extern char *ds_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname);
extern Jsonb *ds_arg_jsonb(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void ds_check_name(const char *what, const char *name);
extern void ds_spi_exec(const char *sql, int nargs, Oid *argtypes, Datum *args,
						int expected);
extern void ds_require_preload(void);
#define DS_TIMEOUT_MAX_MS INT64CONST(31536000000)	/* a year */

extern int64 ds_arg_timeout_ms(FunctionCallInfo fcinfo, int argno);

#endif							/* DATASYNC_APIUTIL_H */
