/*-------------------------------------------------------------------------
 *
 * valueacl.h
 *		Who may see row values of a table (the C side of
 *		datasync.can_read_values).
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/valueacl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_VALUEACL_H
#define DATASYNC_VALUEACL_H

extern bool ds_role_can_read_values(Oid relid, Oid roleid);

#endif							/* DATASYNC_VALUEACL_H */
