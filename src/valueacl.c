/*-------------------------------------------------------------------------
 *
 * valueacl.c
 *		Who may see row values of a table.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/valueacl.c
 *
 * NOTES
 *		datasync keeps row values of source tables in its own tables
 *		(conflicts, the audit log's row values) and in error texts.  They
 *		reach a role only when it may read the table itself: it is a
 *		superuser, or it holds SELECT on the table and the table's
 *		row-level security does not apply to it (owner, BYPASSRLS, or no
 *		RLS enabled).  A role that may read only some columns, or only
 *		some rows, sees no values.  A table that no longer exists is
 *		readable by superusers only.
 *
 *		The SQL function datasync.can_read_values(regclass) states the
 *		same rule for the current role (row-level security policies and
 *		views use it); this is the form for C code that runs as the
 *		extension's owner on behalf of another role.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "valueacl.h"

bool
ds_role_can_read_values(Oid relid, Oid roleid)
{
	if (superuser_arg(roleid))
		return true;
	if (!OidIsValid(relid) ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		return false;
	if (pg_class_aclcheck(relid, roleid, ACL_SELECT) != ACLCHECK_OK)
		return false;
	return check_enable_rls(relid, roleid, true) != RLS_ENABLED;
}
