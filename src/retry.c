/*-------------------------------------------------------------------------
 *
 * retry.c
 *		Transient or permanent: error classification and backoff.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/retry.c
 *
 * NOTES
 *		A transient error (the target or source went away, a serialization
 *		failure or deadlock, a lock or statement timeout, a server shutting
 *		down, too many connections, out of resources) is retried with
 *		exponential backoff and full jitter:
 *			delay = random(0, min(retry_max_ms, retry_base_ms * 2^attempt)).
 *		Anything else (a missing table or column, bad data, a constraint)
 *		will fail the same way again, so the pipeline stops in state
 *		"error" instead of looping.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "common/pg_prng.h"
#include "utils/elog.h"

#include "retry.h"

bool
ds_retry_is_transient(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57: admin shutdown, cancel, crash */
		case ERRCODE_SYSTEM_ERROR:	/* 58: I/O errors */
			return true;
		default:
			break;
	}
	switch (sqlerrcode)
	{
		case ERRCODE_T_R_SERIALIZATION_FAILURE: /* 40001 */
		case ERRCODE_T_R_DEADLOCK_DETECTED: /* 40P01 */
		case ERRCODE_LOCK_NOT_AVAILABLE:	/* 55P03 */
		case ERRCODE_OBJECT_IN_USE: /* 55006: slot still held */
		case ERRCODE_CANNOT_CONNECT_NOW:	/* 57P03 */
		case ERRCODE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT:	/* 25P03 */
		case ERRCODE_INVALID_PASSWORD:	/* 28P01: may be fixed in place */
			return true;
		default:
			return false;
	}
}

/* Full-jitter exponential backoff, in milliseconds. */
long
ds_retry_next_delay(int attempt, int base_ms, int max_ms)
{
	double		cap = base_ms;
	int			i;

	for (i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return (long) (pg_prng_double(&pg_global_prng_state) * cap);
}
