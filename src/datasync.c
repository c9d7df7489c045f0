/*-------------------------------------------------------------------------
 *
 * datasync.c
 *		Module load: parameters, shared memory, the launcher and the metrics
 *		worker.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/datasync.c
 *
 * NOTES
 *		datasync must be in shared_preload_libraries: it needs shared memory
 *		and a launcher background worker.  Loading it any other way (for
 *		CREATE EXTENSION in a server that does not preload it) is allowed so
 *		that the catalog can be created, but no pipeline will run; the SQL
 *		functions that need the workers say so.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	/* nothing to do in pg_upgrade's binary-upgrade server */
	if (IsBinaryUpgrade)
		return;

	ds_guc_init();
	ds_shmem_init();
	ds_launcher_register();
	ds_httpd_register();
}
