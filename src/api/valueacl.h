/*-------------------------------------------------------------------------
 *
 * valueacl.h
 *		Who may see row values of a table (the C side of
 *		datasync.can_read_values).
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/valueacl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_VALUEACL_H
#define DATASYNC_VALUEACL_H

extern bool ds_role_can_read_values(Oid relid, Oid roleid);
extern char *ds_reveal_job_error(char *json, int64 job_id, Oid caller);

#endif							/* DATASYNC_VALUEACL_H */
