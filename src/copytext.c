/*-------------------------------------------------------------------------
 *
 * copytext.c
 *		Rows of the stream in COPY's text format, and back.
 *
 * Copyright (c) 2026, datasync developers
 *
 * IDENTIFICATION
 *		src/copytext.c
 *
 * NOTES
 *		Long runs of inserts go to the target as COPY ... FROM STDIN
 *		(target/apply_pg_copy.c).  The values arrive from pgoutput as text, in the
 *		form each type's output function gave; COPY's text format takes
 *		the same form, column after column, separated by a tab, a row
 *		ending with a newline, NULL written \N.  Only four bytes need an
 *		escape: the backslash itself, tab, newline and carriage return.
 *		Every other byte is passed through (the server's encodings are
 *		ASCII-safe, so no multibyte character holds one of them).
 *
 *		Example: (1, 'a<TAB>b', NULL, 'c\d') -> "1\ta\\tb\t\\N\tc\\\\d\n".
 *
 *		A chunk of such rows is kept until the target confirmed it; if the
 *		COPY failed (a key the target already holds, say), the chunk is
 *		read back here, row by row, and applied the ordinary way.  Values
 *		that were not sent (unchanged TOAST) never reach this file: only
 *		inserts take this path, and an insert sends every column.
 *
 *-------------------------------------------------------------------------
 */
#include "datasync.h"

#include "copytext.h"

/*
 * Append one row (natts columns of tup) to buf.  The caller made sure that
 * no column is LOGICALREP_COLUMN_UNCHANGED.
 */
void
ds_copytext_append_row(StringInfo buf, LogicalRepTupleData *tup, int natts)
{
	int			i;

	for (i = 0; i < natts; i++)
	{
		StringInfo	v = &tup->colvalues[i];
		const char *p;
		const char *end;
		const char *start;

		if (i > 0)
			appendStringInfoChar(buf, '\t');
		if (tup->colstatus[i] == LOGICALREP_COLUMN_NULL)
		{
			appendBinaryStringInfo(buf, "\\N", 2);
			continue;
		}
		Assert(tup->colstatus[i] == LOGICALREP_COLUMN_TEXT);

		/* runs of plain bytes are copied at once */
		start = p = v->data;
		end = v->data + v->len;
		for (; p < end; p++)
		{
			char		esc;

			switch (*p)
			{
				case '\\':
					esc = '\\';
					break;
				case '\t':
					esc = 't';
					break;
				case '\n':
					esc = 'n';
					break;
				case '\r':
					esc = 'r';
					break;
				default:
					continue;
			}
			if (p > start)
				appendBinaryStringInfo(buf, start, p - start);
			appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, esc);
			start = p + 1;
		}
		if (p > start)
			appendBinaryStringInfo(buf, start, p - start);
	}
	appendStringInfoChar(buf, '\n');
}

/*
 * Read the row that starts at buf[pos] (written by ds_copytext_append_row
 * with natts columns) back into values: values[i] points into scratch,
 * or is NULL for SQL NULL.  scratch must hold the row's bytes up to and
 * including its newline (the first unescaped one).  Returns the position
 * of the next row.
 */
int
ds_copytext_next_row(const char *buf, int len, int pos, int natts,
					 char **values, char *scratch)
{
	int			i;
	char	   *out = scratch;

	for (i = 0; i < natts; i++)
	{
		char	   *start = out;

		if (pos + 2 <= len && buf[pos] == '\\' && buf[pos + 1] == 'N' &&
			(pos + 2 == len || buf[pos + 2] == '\t' || buf[pos + 2] == '\n'))
		{
			values[i] = NULL;
			pos += 3;
			continue;
		}
		while (pos < len && buf[pos] != '\t' && buf[pos] != '\n')
		{
			if (buf[pos] == '\\' && pos + 1 < len)
			{
				switch (buf[pos + 1])
				{
					case 't':
						*out++ = '\t';
						break;
					case 'n':
						*out++ = '\n';
						break;
					case 'r':
						*out++ = '\r';
						break;
					default:
						*out++ = buf[pos + 1];
						break;
				}
				pos += 2;
				continue;
			}
			*out++ = buf[pos++];
		}
		*out++ = '\0';
		values[i] = start;
		pos++;					/* the tab or the newline */
	}
	return pos;
}
