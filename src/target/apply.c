/*-------------------------------------------------------------------------
 *
 * apply.c
 *		The kinds of target: which implementation serves a target kind,
 *		and what it can do.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/target/apply.c
 *
 * NOTES
 *		The sync worker and resolve_conflict create a target with
 *		ds_apply_create(cfg), never a given implementation, so a new kind
 *		(HTTP) is one row of the table below.  The SQL functions ask
 *		ds_apply_kind_caps() whether a kind can carry a pipeline's
 *		conflict strategy before anything is created.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "target/apply.h"

typedef struct DsTargetKind
{
	const char *kind;			/* datasync.targets.kind */
	uint32		caps;			/* DS_TARGET_CAN_* */
	DsApplyTarget *(*create) (DsPipelineConfig *cfg);
} DsTargetKind;

static const DsTargetKind kinds[] = {
	{"postgresql", DS_TARGET_CAN_DETECT_CONFLICTS | DS_TARGET_CAN_PUT_ROW, ds_apply_pg_create},
};

static const DsTargetKind *
find_kind(const char *kind)
{
	size_t		i;

	for (i = 0; i < lengthof(kinds); i++)
	{
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	}
	return NULL;
}

static const DsTargetKind *
get_kind(const char *kind, const char *target)
{
	const DsTargetKind *k = find_kind(kind);

	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("target \"%s\" is of kind \"%s\", which this version of datasync cannot deliver to",
						target, kind),
				 errhint("Supported target kinds: postgresql.")));
	return k;
}

/* What a target of this kind can do (DS_TARGET_CAN_*); 0 for an unknown kind. */
uint32
ds_apply_kind_caps(const char *kind)
{
	const DsTargetKind *k = find_kind(kind);

	return k ? k->caps : 0;
}

/* A target for cfg's target, not connected yet. */
DsApplyTarget *
ds_apply_create(DsPipelineConfig *cfg)
{
	const DsTargetKind *k = get_kind(cfg->target_kind, cfg->target_name);
	DsApplyTarget *t = k->create(cfg);

	t->caps = k->caps;
	return t;
}
