/*-------------------------------------------------------------------------
 *
 * apiutil.h
 *		Argument checks shared by the SQL-callable functions.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/apiutil.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_APIUTIL_H
#define DATASYNC_APIUTIL_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "catalog.h"			/* ds_spi_exec and the other SPI helpers */

extern void ds_arg_required(FunctionCallInfo fcinfo, int argno, const char *argname);
extern char *ds_arg_text(FunctionCallInfo fcinfo, int argno, const char *argname);
extern Jsonb *ds_arg_jsonb(FunctionCallInfo fcinfo, int argno, const char *argname);
extern void ds_check_name(const char *what, const char *name);
extern void ds_require_preload(void);
#define DS_TIMEOUT_MAX_MS INT64CONST(31536000000)	/* a year */

extern int64 ds_arg_timeout_ms(FunctionCallInfo fcinfo, int argno);

/*
 * A call of a SQL API function: the role that called it, and the switch to
 * the function's owner (the extension's) for the catalog work.
 */
typedef struct DsApiCall
{
	Oid			caller;			/* current_user when the function was entered */
	Oid			save_userid;
	int			save_sec_context;
	bool		switched;
} DsApiCall;

extern Oid	ds_api_enter(FunctionCallInfo fcinfo, DsApiCall *call);
extern void ds_api_leave(DsApiCall *call);
extern void ds_audit(Oid actor, const char *action, const char *object,
					 const char *details);
extern void ds_json_add(StringInfo buf, const char *key, const char *val);

extern Datum ds_call_hiding_statement(PGFunction fn, FunctionCallInfo fcinfo,
									  const char *quiet_prefix);

#endif							/* DATASYNC_APIUTIL_H */
