/*-------------------------------------------------------------------------
 *
 * retry.h
 *		Transient or permanent: error classification and backoff.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/retry.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DATASYNC_RETRY_H
#define DATASYNC_RETRY_H

extern bool ds_retry_is_transient(int sqlerrcode);
extern long ds_retry_next_delay(int attempt, int base_ms, int max_ms);

#endif							/* DATASYNC_RETRY_H */
