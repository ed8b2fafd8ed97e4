/*
 * text_groups.h: how a tower's sequences sit in its rows, and the split of a text batch into
 * length groups (ClipTrainConfig.text_groups, engine/model.h).
 *
 * Every op of a tower but attention treats rows alone, so texts of different lengths can share
 * the rows as long as attention runs per group of equal length. Cutting each group to its own
 * longest text computes the same thing per text with fewer padded positions.
 */
#ifndef TNG_TEXT_GROUPS_H
#define TNG_TEXT_GROUPS_H

/* `count` groups, group g of n[g] sequences of T[g] positions from row row0[g] on, rows in all.
 * The vision tower is one group; a text batch one group cut to its longest EOT, or its texts
 * sorted by length into groups. */
enum { CLIP_MAX_TEXT_GROUPS = 8 };
typedef struct {
    int count, rows;
    int n[CLIP_MAX_TEXT_GROUPS], T[CLIP_MAX_TEXT_GROUPS], row0[CLIP_MAX_TEXT_GROUPS];
} SeqGroups;

/* The layout of B texts of length[b] positions (1..ctx): with max_groups <= 1 one group in
 * batch order at the longest length; otherwise the texts sorted by length (stable) into the at
 * most max_groups groups that pad least. order[B] receives the texts in row order. */
void seq_groups_plan(const int *length, int B, int ctx, int max_groups, SeqGroups *sg, int *order);

#endif
