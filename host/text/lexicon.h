/*
 * lexicon.h: the concrete-noun lexicon the TNG generator picks absent objects from.
 *
 * The lexicon is built from WordNet at set-up by data/build_lexicon.py (see its header for
 * which nouns count as concrete) into data/cache/lexicon.tsv. Loading it builds one hash table
 * from every surface form (lemma and plurals: "mice", "dogs") to its lemma, so plural folding
 * at run time is a single lookup. A loaded Lexicon is immutable and may be shared by threads.
 */
#ifndef TNG_LEXICON_H
#define TNG_LEXICON_H

#include <stddef.h>
#include <stdint.h>

#define LEXICON_DEFAULT_PATH "data/cache/lexicon.tsv"
/* Lemmas with at least this many WordNet noun tags form the common set that the last-resort
 * fallback draws from, so a random object is "bucket", not "aardwolf". */
#define LEXICON_COMMON_MIN_TAGS 5

typedef struct {
    uint64_t hash;
    const char *form; /* NUL-terminated, inside Lexicon.text */
    int lemma;
} LexiconSlot;

typedef struct {
    char *text;             /* the file contents, cut into NUL-terminated fields in place */
    int n_lemmas;
    const char **lemma;     /* [n_lemmas] */
    const char **category;  /* [n_lemmas] e.g. "animal", "artifact" */
    int *noun_tags;         /* [n_lemmas] WordNet sense-tagged noun frequency */
    unsigned char *scene;   /* [n_lemmas] 1: flagged "scene": a place or setting (a road, a room,
                               a beach, the sky), not a thing in a picture (build_lexicon.py) */
    int n_common;
    int *common;            /* [n_common] lemma ids with noun_tags >= LEXICON_COMMON_MIN_TAGS */
    uint64_t table_mask;    /* hash table size - 1 (a power of two) */
    LexiconSlot *table;     /* open addressing, linear probing; form NULL = empty */
} Lexicon;

/* Loads a lexicon.tsv. path NULL means $TNG_LEXICON, else LEXICON_DEFAULT_PATH. Dies with a
 * message naming the file, the line and what was expected (and how to build it) on failure. */
Lexicon *lexicon_load(const char *path);
void lexicon_free(Lexicon *lex);

/* The lemma id of a lower-case word (len bytes, not necessarily NUL-terminated), or -1 when
 * the word is no concrete noun. Plurals fold to their singular: "mice" gives mouse's id. */
int lexicon_lookup(const Lexicon *lex, const char *word, size_t len);

#endif
