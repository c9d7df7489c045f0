/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Target batches: which source transactions share a target
 *		transaction, the batches in flight, and what is recorded on the
 *		source before the target commits one.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/worker/batch.c
 *
 * NOTES
 *		Source transactions are grouped into one target transaction (a
 *		batch) that the worker closes at a commit boundary when the stream
 *		has nothing more pending, or when batch_size rows, batch_max_bytes
 *		of values or batch_timeout_ms are reached (ds_batch_full).  The
 *		batch's last end LSN is written on the target in the same
 *		transaction (exactly once across restarts).
 *
 *		Example: B(t1) I I C(t1) B(t2) U C(t2) <nothing pending>
 *		-> target: upsert (2 rows); upsert; progress=end(t2); Sync.
 *
 *		A batch is committed without waiting for the target (unless it
 *		checked conflicts): its progress (counters, applied LSN, markers,
 *		done_lsn) is published when the target confirms it
 *		(batch_committed), in order, while the worker reads on.  This file
 *		is the one place that numbers batches, keeps the ring of those in
 *		flight and holds them to DS_MAX_INFLIGHT; a target only says which
 *		numbered batch its results confirmed (on_committed).
 *
 *		Recorders: what datasync keeps on the source about a batch (today
 *		its conflicts) is written in a local transaction before the target
 *		commits it, keyed by each change's identity (commit LSN of its
 *		source transaction, place in it).  A crash before the target commit
 *		replays the batch and finds the rows instead of adding them twice;
 *		a crash after it finds everything written.  Each recorder is one
 *		entry of the list below, called in order before the target commit
 *		and again once the commit returned; a batch that a recorder needs
 *		the results of (checked) is committed waiting.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "common/pg_prng.h"
#include "storage/condition_variable.h"
#include "utils/timestamp.h"

#include "sendlimit.h"
#include "stats.h"
#include "worker/batch.h"
#include "worker/conflict.h"
#include "worker/decode.h"

/* what is recorded on the source around a target commit, in this order */
typedef struct DsRecorder
{
	const char *name;
	void		(*before_commit) (DsDecoder *d);
	void		(*after_commit) (DsDecoder *d);
} DsRecorder;

static const DsRecorder recorders[] = {
	{"conflicts", ds_conflict_before_commit, ds_conflict_after_commit},
};

/* make wait_for_sync callers whose ticket is <= seq return */
void
ds_batch_publish_marker(DsPipelineSlot *slot, uint64 seq)
{
	if (seq == 0 || pg_atomic_read_u64(&slot->marker_seq) >= seq)
		return;
	pg_atomic_write_u64(&slot->marker_seq, seq);
	ConditionVariableBroadcast(&DsShmem->progress_cv);
}

/*
 * Everything that committed before lsn is on the target: remember it and
 * tell wait_for_sync callers (their marker may precede the slot).
 */
static void
publish_done(DsDecoder *d, XLogRecPtr lsn)
{
	DsPipelineSlot *slot = d->slot;

	if (lsn <= d->b.done_lsn)
		return;
	d->b.done_lsn = lsn;
	SpinLockAcquire(&slot->mutex);
	slot->done_lsn = lsn;
	SpinLockRelease(&slot->mutex);
	ConditionVariableBroadcast(&DsShmem->progress_cv);
}

/*
 * Nothing up to lsn is for the target (and the marker seq, if any, passed):
 * done now, or with the newest batch in flight, which the stream sent
 * before it.
 */
static void
idle_done(DsDecoder *d, XLogRecPtr lsn, uint64 marker)
{
	DsBatches  *b = &d->b;

	if (b->inflight > 0)
	{
		DsBatchSent *s = &b->fly[(b->fly_head + b->inflight - 1) % lengthof(b->fly)];

		s->marker_lsn = Max(s->marker_lsn, lsn);
		s->marker = Max(s->marker, marker);
		return;
	}
	ds_batch_publish_marker(d->slot, marker);
	publish_done(d, lsn);
}

void
ds_batch_set_done(DsDecoder *d, XLogRecPtr lsn)
{
	idle_done(d, lsn, 0);
}

/* a change goes to the target: open a batch unless one is open */
void
ds_batch_open(DsDecoder *d)
{
	DsBatches  *b = &d->b;

	if (b->open)
		return;
	d->target->begin(d->target);
	b->open = true;
	b->rows = 0;
	b->bytes = 0;
	b->txns = 0;
	b->ins = b->upd = b->del = 0;
	b->started = GetCurrentTimestamp();
	b->first_commit = d->commit_time;
	b->nsamples = 0;
	/* the oldest change received and not on the target (status lag_ms) */
	if (pg_atomic_read_u64(&d->slot->oldest_pending) == 0)
		pg_atomic_write_u64(&d->slot->oldest_pending, (uint64) d->commit_time);
}

/* a change joins the open batch (it counts toward batch_size and batch_max_bytes) */
void
ds_batch_add(DsDecoder *d, DsChange *ch)
{
	d->b.rows++;
	d->b.bytes += ds_tuple_bytes(ch->oldtup) + ds_tuple_bytes(ch->newtup);
}

/* a change was given to the target (the counters its confirmation publishes) */
void
ds_batch_count(DsDecoder *d, DsChangeKind kind)
{
	if (kind == DS_CHANGE_INSERT)
		d->b.ins++;
	else if (kind == DS_CHANGE_UPDATE)
		d->b.upd++;
	else
		d->b.del++;
}

/*
 * A change given to the target was not applied after all (its conflict
 * strategy kept the target's row): it leaves the batch's counters, which
 * count what the target applied.
 */
void
ds_batch_uncount(DsDecoder *d, DsChangeKind kind)
{
	uint64	   *n = kind == DS_CHANGE_INSERT ? &d->b.ins :
		kind == DS_CHANGE_UPDATE ? &d->b.upd : &d->b.del;

	if (*n > 0)
		(*n)--;
}

/* should a batch close at this commit boundary although more is pending? */
bool
ds_batch_full(DsDecoder *d)
{
	DsBatches  *b = &d->b;

	if (!b->open || d->in_txn)
		return false;
	if (b->rows >= d->cfg->options.batch_size ||
		b->bytes >= (Size) d->cfg->options.batch_max_bytes)
		return true;
	return TimestampDifferenceExceeds(b->started, GetCurrentTimestamp(),
									  d->cfg->options.batch_timeout_ms);
}

/*
 * A batch's transactions are on the target: their commit-to-target
 * latencies, each sampled commit time standing for its share of them.
 */
static void
observe_latency(DsPipelineSlot *slot, DsBatchSent *s)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		left = s->txns;
	int			i;

	for (i = 0; i < s->nsamples && left > 0; i++)
	{
		uint64		n = (s->txns - (s->txns * i) / s->nsamples) -
			(s->txns - (s->txns * (i + 1)) / s->nsamples);

		n = Min(Max(n, 1), left);
		left -= n;
		ds_stats_latency(slot, (now - s->samples[i]) / 1000.0, n);
	}
}

/*
 * The target confirmed the oldest batch in flight: publish its progress
 * (counters, applied LSN, wait_for_sync markers, done).  Called from
 * inside the target's result reading: touches no target.
 */
static void
batch_committed(void *arg, uint64 batch_no)
{
	DsDecoder  *d = arg;
	DsBatches  *b = &d->b;
	DsPipelineSlot *slot = d->slot;
	DsBatchSent *s;
	uint64		counted;

	if (b->inflight == 0)
		elog(ERROR, "target confirmed batch " UINT64_FORMAT ", but none is in flight", batch_no);
	s = &b->fly[b->fly_head];
	if (s->no != batch_no)
		elog(ERROR, "target confirmed batch " UINT64_FORMAT ", expected " UINT64_FORMAT,
			 batch_no, s->no);
	b->fly_head = (b->fly_head + 1) % lengthof(b->fly);
	b->inflight--;

	ds_stats_add(slot, DS_STAT_ROWS_INSERTED, s->ins);
	ds_stats_add(slot, DS_STAT_ROWS_UPDATED, s->upd);
	ds_stats_add(slot, DS_STAT_ROWS_DELETED, s->del);
	ds_stats_add(slot, DS_STAT_TRANSACTIONS, s->txns);
	/* conflicts its statements counted (their results came before) */
	counted = d->target->counted_conflicts;
	d->target->counted_conflicts = 0;
	ds_stats_add(slot, DS_STAT_CONFLICTS, counted);
	SpinLockAcquire(&slot->mutex);
	slot->applied_lsn = s->end_lsn;
	slot->last_sync_at = GetCurrentTimestamp();
	/* progress: an earlier failure is over (worker.c) */
	slot->retry_attempt = 0;
	slot->last_error[0] = '\0';
	if (slot->state == DS_STATE_RETRYING)
		slot->state = DS_STATE_STREAMING;
	SpinLockRelease(&slot->mutex);
	observe_latency(slot, s);
	/* the oldest change received and not on the target is further on now */
	pg_atomic_write_u64(&slot->oldest_pending,
						b->inflight > 0 ? (uint64) b->fly[b->fly_head].first_commit :
						b->open ? (uint64) b->first_commit : 0);
	ds_batch_publish_marker(slot, s->marker);
	publish_done(d, Max(s->end_lsn, s->marker_lsn));
	/* the target's progress passed a transaction skipped as asked */
	if (!XLogRecPtrIsInvalid(d->skipped_lsn) && s->end_lsn > d->skipped_lsn)
		d->skip_done = true;
}

/* Set the batches up for a streaming session on d->target. */
void
ds_batch_start(DsDecoder *d)
{
	d->target->on_committed = batch_committed;
	d->target->on_committed_arg = d;
	pg_atomic_write_u64(&d->slot->oldest_pending, 0);
}

/*
 * Is anything waiting for the confirmation of a batch in flight?  The open
 * batch, once its last transaction is complete (it commits only after the
 * batches before it), and a wait_for_sync ticket riding on a batch.  The
 * rest a confirmation publishes (counters, applied LSN, feedback) can wait
 * for the worker's next wake-up: the target committed the data already.
 */
bool
ds_batch_awaits_confirmation(DsDecoder *d)
{
	DsBatches  *b = &d->b;
	int			i;

	if (b->inflight == 0)
		return false;
	if (b->open && !d->in_txn)
		return true;
	for (i = 0; i < b->inflight; i++)
	{
		if (b->fly[(b->fly_head + i) % lengthof(b->fly)].marker > 0)
			return true;
	}
	return false;
}

/* Wait until the target confirmed every batch in flight. */
void
ds_batch_settle(DsDecoder *d)
{
	if (d->b.inflight > 0)
		d->target->settle(d->target);
	Assert(d->b.inflight == 0);
}

/*
 * Commit the open batch on the target; its progress is published when the
 * target confirms it (batch_committed).  A batch that checked conflicts
 * waits for that: its recorders need the results before the commit.  Any
 * other is committed without waiting, so the worker reads on while the
 * target applies it.
 */
void
ds_batch_close(DsDecoder *d)
{
	DsBatches  *b = &d->b;
	DsBatchSent *s;
	bool		wait = b->checked;
	size_t		i;

	Assert(b->open && !d->in_txn);
	for (i = 0; i < lengthof(recorders); i++)
		recorders[i].before_commit(d);

	/* at most DS_MAX_INFLIGHT are unconfirmed (below): there is room */
	Assert(b->inflight < lengthof(b->fly));
	s = &b->fly[(b->fly_head + b->inflight) % lengthof(b->fly)];
	s->no = ++b->next_no;
	s->end_lsn = b->end_lsn;
	s->marker = b->marker;
	s->marker_lsn = b->marker_lsn;
	s->ins = b->ins;
	s->upd = b->upd;
	s->del = b->del;
	s->txns = b->txns;
	s->first_commit = b->first_commit;
	s->nsamples = b->nsamples;
	memcpy(s->samples, b->samples, sizeof(TimestampTz) * b->nsamples);
	b->inflight++;
	b->marker = 0;
	b->marker_lsn = InvalidXLogRecPtr;
	b->open = false;

	d->target->commit(d->target, s->no, b->end_lsn, wait);

	/*
	 * The one limit of batches in flight: with this one sent, wait for the
	 * oldest while more than DS_MAX_INFLIGHT are unconfirmed (the target
	 * works on the newest meanwhile).
	 */
	while (b->inflight > DS_MAX_INFLIGHT)
		d->target->wait_confirmed(d->target);
	for (i = 0; i < lengthof(recorders); i++)
		recorders[i].after_commit(d);
	b->checked = false;
}

/* the source transaction being received ends at end_lsn */
void
ds_batch_txn_end(DsDecoder *d, XLogRecPtr end_lsn)
{
	DsBatches  *b = &d->b;

	if (b->open)
	{
		b->end_lsn = end_lsn;
		b->txns++;
		/* a uniform sample of its transactions' commit times (reservoir) */
		if (b->nsamples < DS_LAT_SAMPLES)
			b->samples[b->nsamples++] = d->commit_time;
		else
		{
			uint32		j = pg_prng_uint64_range(&pg_global_prng_state, 0, b->txns - 1);

			if (j < DS_LAT_SAMPLES)
				b->samples[j] = d->commit_time;
		}
	}
	else
	{
		/* nothing of it went to the target: done already */
		idle_done(d, Max(end_lsn, b->marker_lsn), b->marker);
		b->marker = 0;
		b->marker_lsn = InvalidXLogRecPtr;
	}
}

/*
 * A wait_for_sync marker at lsn: everything that committed before it came
 * before it in the stream, so once that is on the target, so is
 * everything up to it.
 */
void
ds_batch_marker(DsDecoder *d, XLogRecPtr lsn, uint64 seq)
{
	DsBatches  *b = &d->b;

	if (b->open || d->in_txn)
	{
		b->marker = Max(b->marker, seq);
		b->marker_lsn = Max(b->marker_lsn, lsn);
	}
	else
		idle_done(d, lsn, seq);
}
