/*-------------------------------------------------------------------------
 *
 * cron.c
 *		Schedules of scheduled pipelines, kept as pg_cron jobs.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/api/cron.c
 *
 * NOTES
 *		A scheduled pipeline owns one pg_cron job, named "datasync_" and
 *		the pipeline's name, that runs SELECT datasync._scheduled_run(id)
 *		(jobs_api.c).  pg_cron's functions are called through SPI in the
 *		caller's transaction, so a refused schedule, or any later error,
 *		leaves no job behind.  pg_cron must be installed in this database
 *		(its cron.database_name); pg_cron itself validates the expression.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "api/apiutil.h"
#include "api/cron.h"

#define DS_CRON_JOB_PREFIX "datasync_"

/* pg_cron must be installed here */
void
ds_cron_require(void)
{
	if (!OidIsValid(get_extension_oid("pg_cron", true)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("mode \"scheduled\" needs the pg_cron extension in this database"),
				 errhint("Add pg_cron to shared_preload_libraries, set cron.database_name = '%s', restart, and run CREATE EXTENSION pg_cron; or use mode \"manual\" with datasync.sync_now().",
						 get_database_name(MyDatabaseId))));
}

/* the checks datasync makes itself; pg_cron parses the expression */
char *
ds_cron_check_schedule(const char *schedule)
{
	const char *p;

	if (schedule == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode \"scheduled\" needs a schedule"),
				 errhint("Pass a pg_cron expression, for example schedule => '*/5 * * * *'.")));
	if (schedule[0] == '\0' || strlen(schedule) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\"", schedule),
				 errhint("Pass a pg_cron expression, for example '*/5 * * * *'.")));
	for (p = schedule; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schedule must not contain control characters")));
	return pstrdup(schedule);
}

/* create or change the pg_cron job of a pipeline */
void
ds_cron_schedule(int64 pipeline_id, const char *pipeline, const char *schedule)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];

	ds_cron_require();
	args[0] = CStringGetTextDatum(psprintf("%s%s", DS_CRON_JOB_PREFIX, pipeline));
	args[1] = CStringGetTextDatum(schedule);
	args[2] = CStringGetTextDatum(psprintf("SELECT datasync._scheduled_run(" INT64_FORMAT ")", pipeline_id));
	SPI_connect();
	ds_spi_exec("SELECT cron.schedule($1, $2, $3)", 3, argtypes, args, SPI_OK_SELECT);
	SPI_finish();
}

/* remove the pg_cron job of a pipeline, if pg_cron and the job exist */
void
ds_cron_unschedule(const char *pipeline)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	if (!OidIsValid(get_extension_oid("pg_cron", true)))
		return;
	args[0] = CStringGetTextDatum(psprintf("%s%s", DS_CRON_JOB_PREFIX, pipeline));
	SPI_connect();
	ds_spi_exec("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1",
				1, argtypes, args, SPI_OK_SELECT);
	SPI_finish();
}
