/*
 * lexicon.c: loads data/cache/lexicon.tsv into a hash table from surface form to lemma.
 *
 * The file is read whole and its tabs, commas and newlines are overwritten with NULs, so every
 * string the table points at lives in one allocation and loading is a single pass.
 */
#include "text/lexicon.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: die, read_file, mallocCheck, callocCheck, reallocCheck

#define LEXICON_FIELDS 5 /* lemma, category, forms, noun_tags, flags */

static uint64_t fnv1a(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int is_lower_word(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < 'a' || *s > 'z') return 0;
    return 1;
}

/* Splits s in place at every `sep` and returns the number of pieces (at most max). */
static int split_in_place(char *s, char sep, char **pieces, int max) {
    int n = 0;
    for (;;) {
        if (n == max) return max + 1;
        pieces[n++] = s;
        char *next = strchr(s, sep);
        if (!next) return n;
        *next = '\0';
        s = next + 1;
    }
}

/* The flags field: "-" or a comma-separated list of "required" and "scene". Returns 1 when
 * "scene" is among them. */
static int parse_flags(const char *path, int line_no, char *flags) {
    if (strcmp(flags, "-") == 0) return 0;
    int scene = 0;
    for (char *save = NULL, *flag = strtok_r(flags, ",", &save); flag; flag = strtok_r(NULL, ",", &save)) {
        if (strcmp(flag, "scene") == 0) scene = 1;
        else if (strcmp(flag, "required") != 0)
            die("%s:%d: unknown flag '%s' (expected '-' or a comma-separated list of required, scene; "
                "rebuild with python3 data/build_lexicon.py)", path, line_no, flag);
    }
    return scene;
}

static void table_insert(Lexicon *lex, const char *path, int line_no, const char *form,
                         int lemma) {
    uint64_t h = fnv1a(form, strlen(form));
    for (uint64_t at = h & lex->table_mask;; at = (at + 1) & lex->table_mask) {
        LexiconSlot *slot = &lex->table[at];
        if (!slot->form) {
            *slot = (LexiconSlot){h, form, lemma};
            return;
        }
        if (slot->hash == h && strcmp(slot->form, form) == 0)
            die("%s:%d: surface form '%s' already belongs to lemma '%s' (each form must have one "
                "lemma; rebuild with python3 data/build_lexicon.py)",
                path, line_no, form, lex->lemma[slot->lemma]);
    }
}

Lexicon *lexicon_load(const char *path) {
    if (!path) path = getenv("TNG_LEXICON");
    if (!path) path = LEXICON_DEFAULT_PATH;
    size_t size;
    char *text = read_file(path, &size);
    if (!text)
        die("cannot read the lexicon %s (build it with: python3 data/build_lexicon.py)", path);
    if (strlen(text) != size) die("%s: unexpected NUL byte in a text file", path);

    // One pass to size the arrays: lines bound lemmas, lines + commas bound surface forms.
    size_t max_lines = 1, max_forms = 1;
    for (const char *p = text; *p; p++) {
        max_lines += *p == '\n';
        max_forms += *p == '\n' || *p == ',';
    }
    Lexicon *lex = callocCheck(1, sizeof(Lexicon));
    lex->text = text;
    lex->lemma = mallocCheck(max_lines * sizeof(char *));
    lex->category = mallocCheck(max_lines * sizeof(char *));
    lex->noun_tags = mallocCheck(max_lines * sizeof(int));
    lex->scene = callocCheck(max_lines, 1);
    lex->common = mallocCheck(max_lines * sizeof(int));
    uint64_t table_size = 16;
    while (table_size < 2 * max_forms) table_size *= 2; // load factor <= 1/2
    lex->table_mask = table_size - 1;
    lex->table = callocCheck(table_size, sizeof(LexiconSlot));

    char *line = text;
    for (int line_no = 1; line && *line; line_no++) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0') {
            line = next;
            continue;
        }
        char *field[LEXICON_FIELDS];
        int n_fields = split_in_place(line, '\t', field, LEXICON_FIELDS);
        if (n_fields != LEXICON_FIELDS)
            die("%s:%d: expected %d tab-separated fields (lemma, category, forms, noun_tags, "
                "flags), found %s",
                path, line_no, LEXICON_FIELDS, n_fields > LEXICON_FIELDS ? "more" : "fewer");
        if (!is_lower_word(field[0]))
            die("%s:%d: expected a lemma of letters a-z, found '%s'", path, line_no, field[0]);
        char *end;
        long tags = strtol(field[3], &end, 10);
        if (*end || end == field[3] || tags < 0 || tags > 1000000000)
            die("%s:%d: expected a non-negative noun tag count, found '%s'", path, line_no,
                field[3]);
        int id = lex->n_lemmas++;
        lex->lemma[id] = field[0];
        lex->category[id] = field[1];
        lex->noun_tags[id] = (int)tags;
        if (tags >= LEXICON_COMMON_MIN_TAGS) lex->common[lex->n_common++] = id;

        char *forms = field[2];
        for (;;) {
            char *comma = strchr(forms, ',');
            if (comma) *comma = '\0';
            if (!is_lower_word(forms))
                die("%s:%d: expected surface forms of letters a-z, found '%s'", path, line_no,
                    forms);
            table_insert(lex, path, line_no, forms, id);
            if (!comma) break;
            forms = comma + 1;
        }
        lex->scene[id] = parse_flags(path, line_no, field[4]);
        if (strcmp(field[2], field[0]) != 0)
            die("%s:%d: the first surface form must be the lemma '%s', found '%s'", path, line_no,
                field[0], field[2]);
        line = next;
    }
    if (lex->n_lemmas == 0 || lex->n_common == 0)
        die("%s: expected lemmas (and some with >= %d noun tags), found %d lemmas", path,
            LEXICON_COMMON_MIN_TAGS, lex->n_lemmas);
    return lex;
}

void lexicon_free(Lexicon *lex) {
    if (!lex) return;
    free(lex->text);
    free(lex->lemma);
    free(lex->category);
    free(lex->noun_tags);
    free(lex->scene);
    free(lex->common);
    free(lex->table);
    free(lex);
}

int lexicon_lookup(const Lexicon *lex, const char *word, size_t len) {
    uint64_t h = fnv1a(word, len);
    for (uint64_t at = h & lex->table_mask;; at = (at + 1) & lex->table_mask) {
        const LexiconSlot *slot = &lex->table[at];
        if (!slot->form) return -1;
        if (slot->hash == h && strncmp(slot->form, word, len) == 0 && slot->form[len] == '\0')
            return slot->lemma;
    }
}
