/*
 * text_groups.c: the length groups of a text batch (text_groups.h).
 */
#include "engine/text_groups.h"

#include <stdlib.h>

#include "util/common.h" // defines: mallocCheck, callocCheck

/* The split of `count` texts with lengths of `distinct` values (len_of[i] ascending, texts[i]
 * of each) into at most `groups` runs of consecutive values that pads least: a run's texts all
 * take its longest length. Minimises sum over runs of (texts in it) x (its longest) by dynamic
 * programming over the distinct lengths (at most the context's 77); ties to the earliest
 * split. Writes each run's last value index to last[] and returns the run count. */
static int split_lengths(const int *len_of, const int *texts, int distinct, int groups, int *last) {
    if (groups > distinct) groups = distinct;
    long *prefix = mallocCheck(sizeof(long) * ((size_t)distinct + 1));
    prefix[0] = 0;
    for (int i = 0; i < distinct; i++) prefix[i + 1] = prefix[i] + texts[i];
    /* best[k][j]: values 0..j in at most k + 1 runs; from[k][j]: where its last run starts, or
     * -1 where k runs already do as well */
    long *best = mallocCheck(sizeof(long) * (size_t)groups * distinct);
    int *from = mallocCheck(sizeof(int) * (size_t)groups * distinct);
    for (int j = 0; j < distinct; j++) best[j] = prefix[j + 1] * len_of[j], from[j] = 0;
    for (int k = 1; k < groups; k++)
        for (int j = 0; j < distinct; j++) {
            long *b = &best[(size_t)k * distinct + j];
            int *f = &from[(size_t)k * distinct + j];
            *b = best[(size_t)(k - 1) * distinct + j], *f = -1;
            for (int i = 1; i <= j; i++) {
                long cost = best[(size_t)(k - 1) * distinct + i - 1] + (prefix[j + 1] - prefix[i]) * len_of[j];
                if (cost < *b) *b = cost, *f = i;
            }
        }
    int runs = 0, stack[CLIP_MAX_TEXT_GROUPS];
    for (int k = groups - 1, j = distinct - 1; j >= 0;) {
        while (k > 0 && from[(size_t)k * distinct + j] < 0) k--;
        stack[runs++] = j;
        j = k == 0 ? -1 : from[(size_t)k * distinct + j] - 1;
        k--;
    }
    for (int r = 0; r < runs; r++) last[r] = stack[runs - 1 - r];
    free(prefix), free(best), free(from);
    return runs;
}

void seq_groups_plan(const int *length, int B, int ctx, int max_groups, SeqGroups *sg, int *order) {
    /* texts_of[len]: texts of each length; len_of/texts: the distinct lengths, ascending, and
     * how many texts have each */
    int *texts_of = callocCheck((size_t)ctx + 2, sizeof(int));
    int *len_of = mallocCheck(sizeof(int) * (size_t)ctx), *texts = mallocCheck(sizeof(int) * (size_t)ctx);
    for (int b = 0; b < B; b++) texts_of[length[b]]++;
    int distinct = 0;
    for (int len = 1; len <= ctx; len++)
        if (texts_of[len]) len_of[distinct] = len, texts[distinct++] = texts_of[len];
    int last[CLIP_MAX_TEXT_GROUPS], groups = 1;
    last[0] = distinct - 1;
    if (max_groups > 1) {
        groups = split_lengths(len_of, texts, distinct, max_groups, last);
        /* a counting sort, stable: texts_of becomes each length's next slot */
        for (int len = 1, slot = 0; len <= ctx; len++) {
            int here = texts_of[len];
            texts_of[len] = slot, slot += here;
        }
        for (int b = 0; b < B; b++) order[texts_of[length[b]]++] = b;
    } else {
        for (int b = 0; b < B; b++) order[b] = b;
    }
    *sg = (SeqGroups){.count = groups};
    for (int g = 0, value = 0; g < groups; g++) {
        int n = 0;
        for (; value <= last[g]; value++) n += texts[value];
        sg->n[g] = n, sg->T[g] = len_of[last[g]], sg->row0[g] = sg->rows;
        sg->rows += n * sg->T[g];
    }
    free(texts_of), free(len_of), free(texts);
}
