/*
 * tokenizer.c: CLIP's byte-level BPE tokenizer, id-for-id equal to open_clip 3.x
 * (SimpleTokenizer with clean='lower' and ftfy 6.3 installed).
 *
 * A text passes the same stages as in Python, in the same order:
 *   1. UTF-8 -> code points; invalid bytes become U+FFFD as in bytes.decode(errors='replace');
 *   2. ftfy.fix_text with its default fixers, per '\n' segment, repeated until nothing changes
 *      (html entities, C1 controls, Latin ligatures, full/half width, curly quotes, line
 *      breaks, terminal escapes, control characters, NFC);
 *   3. html.unescape twice; 4. split on str.isspace, join with ' ', str.lower();
 *   5. the pre-token regex <specials>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
 *      (IGNORECASE, so "'ſ" counts as "'s"); 6. BPE per piece, lowest merge rank first.
 * Key choices:
 *  - Printable ASCII with no '&' (plus tabs) cannot be changed by stages 1-3, so such text
 *    (the common caption) skips them and is cleaned by a byte loop.
 *  - The BPE of every whole-word vocabulary entry ("...</w>") is computed once at load into
 *    a read-only hash table: most words cost one lookup, and a loaded Tokenizer is never
 *    written again, so threads may share it. Other words run a heap-ordered BPE, O(n log n).
 *  - Unicode properties, case mapping and NFC come from utf8proc. ftfy's and Python's own
 *    tables are generated into html_entities.inc and ftfy_tables.inc by
 *    tests/ref/make_text_tables.py.
 *
 * Left out on purpose (absent from normal captions; tests/fixtures/tokenizer holds the proof
 * for everything else):
 *  - ftfy's fix_encoding, the mojibake repair ("cafÃ©" -> "café", with restore_byte_a0,
 *    replace_lossy_sequences, decode_inconsistent_utf8): it needs ftfy's badness regex and
 *    its sloppy codecs. Text that triggers it gets ids different from open_clip. Lone C1
 *    controls are still mapped to windows-1252, as fix_c1_controls does.
 *  - fix_surrogates: UTF-8 input cannot hold surrogates.
 *  - Unicode versions: Python 3.11 uses Unicode 14.0, utf8proc 2.8 Unicode 15.0 and the
 *    regex module a newer one, so code points that Unicode 14 leaves unassigned may get other
 *    ids (tests/ref/sweep_tokenizer_code_points.py: every code point Unicode 14 assigns agrees).
 *  - A NUL byte ends the text (a C string); Python keeps reading and ftfy deletes U+0000.
 *  - html.unescape of a numeric reference longer than 4300 digits raises in Python (int()
 *    limit); here it gives U+FFFD like any other out-of-range reference.
 */
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_free, tokenizer_encode, tokenizer_encode_raw
#include "util/common.h"    // defines: die, mallocCheck, callocCheck, reallocCheck

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

#include "text/ftfy_tables.inc"   // defines: ftfy_ligatures, ftfy_width_map, ftfy_control_chars, quotes
#include "text/html_entities.inc" // defines: html_entities, html_invalid_charrefs, html_invalid_codepoints

#define NUM_MERGES 48894 // open_clip reads vocab lines 1 .. 49152-256-2
#define NUM_BASE_TOKENS 512
#define FTFY_MAX_DECODE_LENGTH 1000000 // ftfy cuts segments longer than this (code points)
#define END_OF_WORD "</w>"

// ----------------------------------------------------------------------------
// Code point buffers and UTF-8

typedef struct {
    uint32_t *v;
    size_t n, cap;
} CpBuf;

static void cp_reserve(CpBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    b->v = reallocCheck(b->v, cap * sizeof(uint32_t));
    b->cap = cap;
}

static inline void cp_push(CpBuf *b, uint32_t c) {
    if (b->n == b->cap) cp_reserve(b, 1);
    b->v[b->n++] = c;
}

static void cp_append(CpBuf *b, const uint32_t *src, size_t n) {
    if (n == 0) return; // src may be NULL then, which memcpy does not allow
    cp_reserve(b, n);
    memcpy(b->v + b->n, src, n * sizeof(uint32_t));
    b->n += n;
}

static void cp_swap(CpBuf *a, CpBuf *b) {
    CpBuf t = *a;
    *a = *b;
    *b = t;
}

/* Decodes one code point from s[0..n), n >= 1. Ill-formed input yields U+FFFD and consumes
 * the maximal ill-formed prefix (at least one byte): the rule CPython's errors='replace'
 * follows. Returns the bytes consumed. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *out) {
    uint8_t lead = s[0];
    if (lead < 0x80) {
        *out = lead;
        return 1;
    }
    size_t len;
    uint32_t cp;
    uint8_t lo = 0x80, hi = 0xBF; // allowed range of the next continuation byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2, cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3, cp = lead & 0x0F;
        if (lead == 0xE0) lo = 0xA0; // no overlong forms
        if (lead == 0xED) hi = 0x9F; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4, cp = lead & 0x07;
        if (lead == 0xF0) lo = 0x90; // no overlong forms
        if (lead == 0xF4) hi = 0x8F; // nothing above U+10FFFF
    } else {
        *out = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *out = 0xFFFD;
            return i;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
        lo = 0x80, hi = 0xBF;
    }
    *out = cp;
    return len;
}

static size_t utf8_encode(uint32_t c, uint8_t *out) {
    if (c < 0x80) {
        out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (uint8_t)(0xC0 | (c >> 6));
        out[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (c >> 12));
        out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (c >> 18));
    out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

static void cp_append_utf8(CpBuf *b, const uint8_t *s, size_t n) {
    cp_reserve(b, n);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += utf8_decode(s + i, n - i, &c);
        b->v[b->n++] = c;
    }
}

/* Encodes code points as UTF-8 into a fresh buffer (4 bytes per code point reserved). */
static uint8_t *cp_to_utf8(const uint32_t *v, size_t n, size_t *out_len) {
    uint8_t *out = mallocCheck(4 * n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += utf8_encode(v[i], out + len);
    out[len] = 0;
    *out_len = len;
    return out;
}

// ----------------------------------------------------------------------------
// Character properties (Python's definitions, computed from utf8proc)

static int compare_first_u32(const void *key, const void *element) {
    uint32_t a = *(const uint32_t *)key, b = *(const uint32_t *)element;
    return (a > b) - (a < b);
}

/* Binary search in a sorted table whose elements start with a uint32_t code point. */
#define TABLE_FIND(table, c) \
    ((const void *)bsearch(&(c), (table), sizeof(table) / sizeof((table)[0]), sizeof((table)[0]), \
                           compare_first_u32))

/* str.isspace(): category Zs or bidirectional class WS, B or S. */
static bool py_isspace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

/* Unicode "Cased" (Lowercase, Uppercase or Lt) as the final-sigma rule needs it: letters of
 * Lu/Ll/Lt, anything with a case mapping, and the Other_Lowercase/Other_Uppercase code points
 * (PropList.txt) that have neither and are not Lm (Lm is case-ignorable, so never asked):
 * ª, º and the squared/negative squared Latin capitals. Checked against Python for every
 * code point assigned in Unicode 14. */
static bool is_cased(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
        return true;
    if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return true;
    return utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
           utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c;
}

/* Unicode "Case_Ignorable": categories Mn Me Cf Lm Sk, plus the Word_Break classes MidLetter,
 * MidNumLet and Single_Quote, which are these 17 code points (UAX #29). */
static bool is_case_ignorable(uint32_t c) {
    static const uint32_t word_break_mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                              0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                              0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
        return true;
    default:
        return TABLE_FIND(word_break_mid, c) != NULL;
    }
}

/* The pre-token regex's view of a character. SKIP: matched by no alternative (whitespace,
 * and U+0345, which IGNORECASE folds to a letter and so leaves out of [^\s\p{L}\p{N}]). */
enum { CLASS_SKIP, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER };

static int char_class(uint32_t c) {
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CLASS_LETTER;
        if (c >= '0' && c <= '9') return CLASS_NUMBER;
        if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CLASS_SKIP;
        return CLASS_OTHER;
    }
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return CLASS_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CLASS_NUMBER;
    default:
        return (c == 0x345 || py_isspace(c)) ? CLASS_SKIP : CLASS_OTHER;
    }
}

// ----------------------------------------------------------------------------
// HTML entities: ftfy's unescape_html and Python's html.unescape

static const HtmlEntity *entity_find(const uint32_t *name, size_t n, unsigned flag) {
    char key[HTML_ENTITY_MAX_NAME + 1];
    if (n == 0 || n > HTML_ENTITY_MAX_NAME) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == 0 || name[i] >= 0x80) return NULL; // every entity name is ASCII
        key[i] = (char)name[i];
    }
    key[n] = 0;
    size_t lo = 0, hi = sizeof(html_entities) / sizeof(html_entities[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(key, html_entities[mid].name);
        if (cmp == 0) return (html_entities[mid].flags & flag) ? &html_entities[mid] : NULL;
        if (cmp < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

static void cp_append_entity(CpBuf *out, const HtmlEntity *e) {
    cp_append_utf8(out, (const uint8_t *)e->value, strlen(e->value));
}

static bool is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_ascii_hex(uint32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static bool is_ascii_alnum(uint32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* fix_c1_controls: a C1 control as the windows-1252 character of the same byte. HTML5's table
 * for numeric references is that very map (undefined bytes map to themselves). */
static uint32_t windows_1252_c1(uint32_t c) {
    const struct { uint32_t code, replacement; } *remap = TABLE_FIND(html_invalid_charrefs, c);
    return remap ? remap->replacement : c;
}

/* The character html.unescape gives for numeric reference `num` (saturated at 0x110000). */
static void html_numeric_ref(uint32_t num, CpBuf *out) {
    const struct { uint32_t code, replacement; } *remap = TABLE_FIND(html_invalid_charrefs, num);
    if (remap) cp_push(out, remap->replacement);
    else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) cp_push(out, 0xFFFD);
    else if (!TABLE_FIND(html_invalid_codepoints, num)) cp_push(out, num);
}

/* Python's html.unescape on s[0..n), appended to out. Its regex, tried at each '&':
 * &(#[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?), where a named reference
 * that is not an html5 name falls back to its longest html5 prefix (those without ';'). */
static void html_unescape(const uint32_t *s, size_t n, CpBuf *out) {
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') {
            cp_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            bool hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t digits = j + 1 + hex, k = digits;
            uint32_t num = 0;
            while (k < n && (hex ? is_ascii_hex(s[k]) : is_ascii_digit(s[k]))) {
                uint32_t d = is_ascii_digit(s[k]) ? s[k] - '0' : (s[k] | 0x20) - 'a' + 10;
                num = num > 0x10FFFF ? 0x110000 : num * (hex ? 16 : 10) + d;
                k++;
            }
            if (k == digits) { // "&#" with no digits: no alternative matches here
                cp_push(out, s[i++]);
                continue;
            }
            if (k < n && s[k] == ';') k++;
            html_numeric_ref(num, out);
            i = k;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' &&
               s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) {
            cp_push(out, s[i++]);
            continue;
        }
        if (k < n && s[k] == ';') k++;
        const HtmlEntity *e = entity_find(s + j, k - j, HTML_ENTITY_HTML5);
        size_t name_len = k - j;
        for (size_t x = k - j - 1; !e && x >= 2; x--) {
            e = entity_find(s + j, x, HTML_ENTITY_HTML5);
            name_len = x;
        }
        if (e) {
            cp_append_entity(out, e);
            cp_append(out, s + j + name_len, k - j - name_len);
        } else {
            cp_append(out, s + i, k - i);
        }
        i = k;
    }
}

/* ftfy.fixes.unescape_html: replaces matches of &#?[0-9A-Za-z]{1,24}; that are ftfy entity
 * names, and numeric references that html.unescape decodes completely (no ';' left). */
static void ftfy_unescape_html(const CpBuf *in, CpBuf *out) {
    const uint32_t *s = in->v;
    size_t n = in->n, i = 0;
    CpBuf numeric = {0};
    while (i < n) {
        if (s[i] != '&') {
            cp_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        bool is_numeric = j < n && s[j] == '#';
        size_t k = j + is_numeric;
        while (k < n && is_ascii_alnum(s[k])) k++;
        size_t run = k - (j + is_numeric);
        if (run < 1 || run > 24 || k >= n || s[k] != ';') {
            cp_push(out, s[i++]);
            continue;
        }
        k++; // the match is s[i..k)
        if (is_numeric) {
            numeric.n = 0;
            html_unescape(s + i, k - i, &numeric);
            bool has_semicolon = false;
            for (size_t m = 0; m < numeric.n; m++) has_semicolon |= numeric.v[m] == ';';
            if (has_semicolon) cp_append(out, s + i, k - i);
            else cp_append(out, numeric.v, numeric.n);
        } else {
            const HtmlEntity *e = entity_find(s + j, k - j, HTML_ENTITY_FTFY);
            if (e) cp_append_entity(out, e);
            else cp_append(out, s + i, k - i);
        }
        i = k;
    }
    free(numeric.v);
}

// ----------------------------------------------------------------------------
// ftfy.fix_text with its default configuration (fix_encoding aside, see the top comment)

/* fix_c1_controls, fix_latin_ligatures, fix_character_width and uncurl_quotes, in that
 * order, applied to one character: each maps characters independently, so chaining them per
 * character equals running them one after the other over the text. */
static void ftfy_map_char(uint32_t c, CpBuf *out) {
    if (c < 0x80) { // no ASCII character is in any of these maps
        cp_push(out, c);
        return;
    }
    if (c <= 0x9F && c <= 0x9F) c = windows_1252_c1(c);
    uint32_t expanded[FTFY_LIGATURE_MAX];
    size_t count = 1;
    expanded[0] = c;
    const struct { uint32_t code; uint32_t to[FTFY_LIGATURE_MAX]; } *lig = TABLE_FIND(ftfy_ligatures, c);
    if (lig) {
        for (count = 0; count < FTFY_LIGATURE_MAX && lig->to[count]; count++) expanded[count] = lig->to[count];
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t d = expanded[i];
        uint32_t widened[FTFY_WIDTH_MAX] = {d};
        size_t wide_count = 1;
        const struct { uint32_t code; uint32_t to[FTFY_WIDTH_MAX]; } *width = TABLE_FIND(ftfy_width_map, d);
        if (width) {
            for (wide_count = 0; wide_count < FTFY_WIDTH_MAX && width->to[wide_count]; wide_count++)
                widened[wide_count] = width->to[wide_count];
        }
        for (size_t w = 0; w < wide_count; w++) {
            uint32_t e = widened[w];
            if (TABLE_FIND(ftfy_single_quotes, e)) e = '\'';
            else if (TABLE_FIND(ftfy_double_quotes, e)) e = '"';
            cp_push(out, e);
        }
    }
}

/* The per-character fixers, then fix_line_breaks (\r\n, \r, U+2028, U+2029, U+0085 -> \n).
 * The per-character fixers never make or take a \r or \n, so one pass does both. */
static void ftfy_fix_characters(const CpBuf *in, CpBuf *out) {
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == '\r' && i + 1 < in->n && in->v[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029) {
            cp_push(out, '\n');
            continue;
        }
        // U+0085 never reaches fix_line_breaks: fix_c1_controls already made it U+2026.
        ftfy_map_char(c, out);
    }
}

/* Length of an ANSI escape ESC '[' (\d|;)* [A-Za-z] at s[0..n), 0 if none (\d is any Nd). */
static size_t terminal_escape_length(const uint32_t *s, size_t n) {
    if (n < 3 || s[0] != 0x1B || s[1] != '[') return 0;
    size_t k = 2;
    while (k < n && (s[k] == ';' || utf8proc_category((utf8proc_int32_t)s[k]) == UTF8PROC_CATEGORY_ND)) k++;
    if (k < n && s[k] < 0x80 && (s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z') return k + 1;
    return 0;
}

/* remove_terminal_escapes, then remove_control_chars. The escape search looks at the text
 * before any control character is deleted, as in Python where it runs first. */
static void ftfy_remove_escapes_and_controls(const CpBuf *in, CpBuf *out) {
    for (size_t i = 0; i < in->n;) {
        size_t escape = terminal_escape_length(in->v + i, in->n - i);
        if (escape) {
            i += escape;
            continue;
        }
        uint32_t c = in->v[i];
        bool maybe_control = c < 0x20 || c == 0x7F || c >= 0x206A; // the table's ranges, for speed
        if (!maybe_control || !TABLE_FIND(ftfy_control_chars, c)) cp_push(out, c);
        i++;
    }
}

/* Unicode NFC. Text below U+0300 is always in NFC, which skips utf8proc for most text. */
static void nfc(const CpBuf *in, CpBuf *out) {
    bool simple = true;
    for (size_t i = 0; i < in->n && simple; i++) simple = in->v[i] < 0x300;
    if (simple) {
        cp_append(out, in->v, in->n);
        return;
    }
    size_t len;
    uint8_t *utf8 = cp_to_utf8(in->v, in->n, &len);
    utf8proc_uint8_t *normalized = NULL;
    utf8proc_ssize_t nlen = utf8proc_map(utf8, (utf8proc_ssize_t)len, &normalized,
                                         UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (nlen < 0) die("tokenizer: utf8proc NFC failed: %s", utf8proc_errmsg(nlen));
    cp_append_utf8(out, normalized, (size_t)nlen);
    free(normalized);
    free(utf8);
}

/* ftfy.fix_and_explain on one segment: every fixer, then NFC, until the text stops changing. */
static void ftfy_fix_segment(CpBuf *seg, bool unescape_html) {
    CpBuf before = {0}, tmp = {0};
    for (;;) {
        before.n = 0;
        cp_append(&before, seg->v, seg->n);
        if (unescape_html) {
            tmp.n = 0;
            ftfy_unescape_html(seg, &tmp);
            cp_swap(seg, &tmp);
        }
        tmp.n = 0;
        ftfy_fix_characters(seg, &tmp);
        cp_swap(seg, &tmp);
        tmp.n = 0;
        ftfy_remove_escapes_and_controls(seg, &tmp);
        cp_swap(seg, &tmp);
        tmp.n = 0;
        nfc(seg, &tmp);
        cp_swap(seg, &tmp);
        if (seg->n == before.n && (seg->n == 0 || memcmp(seg->v, before.v, seg->n * sizeof(uint32_t)) == 0)) break;
    }
    free(before.v);
    free(tmp.v);
}

/* ftfy.fix_text: segments end after each '\n' (or every FTFY_MAX_DECODE_LENGTH code points).
 * Once a segment holds a '<' (the text may be HTML), entity decoding stays off for it and
 * for every later segment, as ftfy's "auto" setting does. */
static void ftfy_fix_text(const CpBuf *text, CpBuf *out) {
    bool unescape_html = true;
    CpBuf seg = {0};
    for (size_t pos = 0; pos < text->n;) {
        size_t end = pos;
        while (end < text->n && text->v[end] != '\n') end++;
        if (end < text->n) end++;
        if (end - pos > FTFY_MAX_DECODE_LENGTH) end = pos + FTFY_MAX_DECODE_LENGTH;
        for (size_t i = pos; i < end && unescape_html; i++) unescape_html = text->v[i] != '<';
        seg.n = 0;
        cp_append(&seg, text->v + pos, end - pos);
        ftfy_fix_segment(&seg, unescape_html);
        cp_append(out, seg.v, seg.n);
        pos = end;
    }
    free(seg.v);
}

// ----------------------------------------------------------------------------
// Whitespace and str.lower()

/* " ".join(text.split()): words split on str.isspace, joined by one space. */
static void collapse_whitespace(const CpBuf *in, CpBuf *out) {
    for (size_t i = 0; i < in->n;) {
        while (i < in->n && py_isspace(in->v[i])) i++;
        if (i == in->n) break;
        if (out->n) cp_push(out, ' ');
        while (i < in->n && !py_isspace(in->v[i])) cp_push(out, in->v[i++]);
    }
}

/* Python's Final_Sigma rule for the capital sigma at s[i]: a cased letter before it and none
 * after it, skipping case-ignorable characters both ways. */
static uint32_t lower_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return 0x3C3;
    j = i + 1;
    while (j < n && is_case_ignorable(s[j])) j++;
    return (j == n || !is_cased(s[j])) ? 0x3C2 : 0x3C3;
}

/* str.lower(): simple lowercase mappings, plus SpecialCasing's only unconditional lowercase
 * entry (U+0130 -> "i\u0307") and the final sigma. */
static void py_lower(const CpBuf *in, CpBuf *out) {
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == 0x130) {
            cp_push(out, 'i');
            cp_push(out, 0x307);
        } else if (c == 0x3A3) {
            cp_push(out, lower_sigma(in->v, in->n, i));
        } else {
            cp_push(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
        }
    }
}

/* The whole cleaning for any text: returns the cleaned UTF-8 (caller frees). */
static uint8_t *clean_general(const uint8_t *text, size_t len, size_t *out_len) {
    CpBuf a = {0}, b = {0};
    cp_append_utf8(&a, text, len);
    ftfy_fix_text(&a, &b);
    a.n = 0;
    html_unescape(b.v, b.n, &a);
    b.n = 0;
    html_unescape(a.v, a.n, &b);
    a.n = 0;
    collapse_whitespace(&b, &a);
    b.n = 0;
    py_lower(&a, &b);
    uint8_t *clean = cp_to_utf8(b.v, b.n, out_len);
    free(a.v);
    free(b.v);
    return clean;
}

/* Printable ASCII and tabs, with no '&': ftfy and html.unescape leave it as it is. */
static bool is_plain_ascii(const uint8_t *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7F || c == '&') return false;
    }
    return true;
}

/* The cleaning for plain ASCII: collapse spaces and tabs, lowercase. out holds >= len bytes. */
static size_t clean_plain_ascii(const uint8_t *text, size_t len, uint8_t *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        if (i == len) break;
        if (n) out[n++] = ' ';
        for (; i < len && text[i] != ' ' && text[i] != '\t'; i++) {
            uint8_t c = text[i];
            out[n++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
        }
    }
    return n;
}

// ----------------------------------------------------------------------------
// The loaded vocabulary

typedef struct {
    uint32_t key_offset, ids_offset; // into word_bytes / word_ids
    uint16_t key_len, num_ids;       // key_len 0: empty slot
} WordSlot;

struct Tokenizer {
    int32_t byte_id[256];     // id of the symbol for byte b inside a word
    int32_t byte_end_id[256]; // id of the symbol for byte b ending a word ("...</w>")
    // merges: (left id << 16 | right id) -> rank and merged id; open addressing
    uint32_t *pair_keys; // PAIR_EMPTY marks a free slot
    int32_t *pair_rank, *pair_merged;
    uint32_t pair_bits;
    // precomputed BPE of whole-word vocabulary entries, keyed by the word's raw bytes
    WordSlot *words;
    uint32_t words_mask;
    uint8_t *word_bytes;
    int32_t *word_ids;
};

#define PAIR_EMPTY UINT32_MAX // never a real key: right ids stay below 0xFFFF

static inline uint32_t pair_slot(uint32_t key, uint32_t bits) { return (key * 0x9E3779B1u) >> (32 - bits); }

static int32_t pair_find(const Tokenizer *tok, int32_t left, int32_t right) {
    uint32_t key = ((uint32_t)left << 16) | (uint32_t)right, mask = (1u << tok->pair_bits) - 1;
    for (uint32_t slot = pair_slot(key, tok->pair_bits);; slot = (slot + 1) & mask) {
        if (tok->pair_keys[slot] == key) return (int32_t)slot;
        if (tok->pair_keys[slot] == PAIR_EMPTY) return -1;
    }
}

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static const WordSlot *word_find(const Tokenizer *tok, const uint8_t *key, size_t n, uint64_t hash) {
    for (uint32_t slot = (uint32_t)hash & tok->words_mask;; slot = (slot + 1) & tok->words_mask) {
        const WordSlot *w = &tok->words[slot];
        if (w->key_len == 0) return NULL;
        if (w->key_len == n && memcmp(tok->word_bytes + w->key_offset, key, n) == 0) return w;
    }
}

// ----------------------------------------------------------------------------
// BPE

/* Scratch space for one word of up to `cap` bytes: the symbol list and the merge heap. */
typedef struct {
    uint64_t *heap; // (rank << 32 | left position), min-heap; also the start of the one block
    int32_t *sym, *next, *prev, *out;
    size_t cap;
} BpeScratch;

static void bpe_scratch_reserve(BpeScratch *s, size_t n) {
    if (n <= s->cap) return;
    free(s->heap);
    s->cap = n < 64 ? 64 : n;
    // one block: a heap of 3*cap (n-1 pairs + 2 per merge), then four int32 arrays of cap
    size_t heap_bytes = 3 * s->cap * sizeof(uint64_t);
    char *block = mallocCheck(heap_bytes + 4 * s->cap * sizeof(int32_t));
    s->heap = (uint64_t *)block;
    s->sym = (int32_t *)(block + heap_bytes);
    s->next = s->sym + s->cap;
    s->prev = s->next + s->cap;
    s->out = s->prev + s->cap;
}

static void heap_push(uint64_t *heap, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0 && heap[(i - 1) / 2] > v) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = v;
}

static uint64_t heap_pop(uint64_t *heap, size_t *n) {
    uint64_t top = heap[0], last = heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= last) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n) heap[i] = last;
    return top;
}

static void bpe_push_pair(const Tokenizer *tok, BpeScratch *s, size_t *heap_n, int32_t left) {
    int32_t right = s->next[left];
    if (right < 0) return;
    int32_t slot = pair_find(tok, s->sym[left], s->sym[right]);
    if (slot >= 0) heap_push(s->heap, heap_n, ((uint64_t)tok->pair_rank[slot] << 32) | (uint32_t)left);
}

/* BPE of one piece of n >= 1 bytes into s->out; returns the number of ids. Always merges the
 * lowest-ranked adjacent pair, leftmost first, which equals open_clip's loop (merge every
 * occurrence of the best pair left to right) because tokenizer_load checks that every merge
 * only uses symbols made by earlier merges: a merge never creates a pair ranked below it. */
static int bpe_word(const Tokenizer *tok, const uint8_t *bytes, size_t n, BpeScratch *s) {
    bpe_scratch_reserve(s, n);
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = i + 1 == n ? tok->byte_end_id[bytes[i]] : tok->byte_id[bytes[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) bpe_push_pair(tok, s, &heap_n, (int32_t)i);
    while (heap_n) {
        uint64_t top = heap_pop(s->heap, &heap_n);
        int32_t left = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        int32_t right = s->next[left];
        if (s->sym[left] < 0 || right < 0) continue; // stale: the pair was merged away
        int32_t slot = pair_find(tok, s->sym[left], s->sym[right]);
        if (slot < 0 || tok->pair_rank[slot] != rank) continue; // stale: a symbol changed
        s->sym[left] = tok->pair_merged[slot];
        s->sym[right] = -1;
        s->next[left] = s->next[right];
        if (s->next[right] >= 0) s->prev[s->next[right]] = left;
        if (s->prev[left] >= 0) bpe_push_pair(tok, s, &heap_n, s->prev[left]);
        bpe_push_pair(tok, s, &heap_n, left);
    }
    int count = 0;
    for (int32_t i = 0; i >= 0; i = s->next[i]) s->out[count++] = s->sym[i];
    return count;
}

// ----------------------------------------------------------------------------
// Pre-tokenising and encoding

/* Where ids go: the first max_ids are stored, all are counted. */
typedef struct {
    int *ids;
    int max_ids, count;
    bool stop_when_full; // tokenizer_encode needs no count past its context
    BpeScratch bpe;
} Emitter;

static void emit_ids(Emitter *em, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        if (em->count < em->max_ids) em->ids[em->count] = ids[i];
        em->count++;
    }
}

static void emit_piece(const Tokenizer *tok, Emitter *em, const uint8_t *piece, size_t n) {
    const WordSlot *w = word_find(tok, piece, n, hash_bytes(piece, n));
    if (w) {
        emit_ids(em, tok->word_ids + w->ids_offset, w->num_ids);
        return;
    }
    int count = bpe_word(tok, piece, n, &em->bpe);
    emit_ids(em, em->bpe.out, count);
}

/* Length of a special-token match at s (IGNORECASE lets 'ſ' stand for 's'), 0 if none;
 * *exact says it is the very token, which open_clip maps straight to its id. */
static size_t match_special(const uint8_t *s, size_t n, const char *name, bool *exact) {
    size_t i = 0;
    *exact = true;
    for (const char *p = name; *p; p++) {
        if (i < n && s[i] == (uint8_t)*p) {
            i++;
        } else if (*p == 's' && i + 1 < n && s[i] == 0xC5 && s[i + 1] == 0xBF) { // U+017F ſ
            i += 2;
            *exact = false;
        } else {
            return 0;
        }
    }
    return i;
}

/* Length of a contraction 's 't 're 've 'm 'll 'd at s (s[0] == '\''), 0 if none. */
static size_t match_contraction(const uint8_t *s, size_t n) {
    if (n < 2) return 0;
    uint8_t c = s[1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
    if (c == 0xC5 && n >= 3 && s[2] == 0xBF) return 3; // 'ſ
    if (n >= 3 && ((c == 'r' && s[2] == 'e') || (c == 'v' && s[2] == 'e') || (c == 'l' && s[2] == 'l')))
        return 3;
    return 0;
}

/* Splits cleaned UTF-8 text into the regex's pieces and emits each piece's ids. */
static void pretokenize_and_emit(const Tokenizer *tok, Emitter *em, const uint8_t *s, size_t n) {
    static const char *const specials[2] = {"<start_of_text>", "<end_of_text>"};
    static const int32_t special_ids[2] = {TOKEN_SOT, TOKEN_EOT};
    size_t pos = 0;
    while (pos < n) {
        if (em->stop_when_full && em->count >= em->max_ids) return;
        size_t len = 0;
        if (s[pos] == '<') {
            bool exact = false;
            for (int k = 0; k < 2 && !len; k++) {
                len = match_special(s + pos, n - pos, specials[k], &exact);
                if (len && exact) emit_ids(em, &special_ids[k], 1);
            }
            if (len && exact) {
                pos += len;
                continue;
            }
        } else if (s[pos] == '\'') {
            len = match_contraction(s + pos, n - pos);
        }
        if (!len) {
            uint32_t c;
            len = utf8_decode(s + pos, n - pos, &c);
            int cls = char_class(c);
            if (cls == CLASS_SKIP) {
                pos += len;
                continue;
            }
            while (cls != CLASS_NUMBER && pos + len < n) { // letters and "other" run on
                uint32_t d;
                size_t dlen = utf8_decode(s + pos + len, n - pos - len, &d);
                if (char_class(d) != cls) break;
                len += dlen;
            }
        }
        emit_piece(tok, em, s + pos, len);
        pos += len;
    }
}

static int encode(const Tokenizer *tok, const char *text, int *ids, int max_ids, bool stop_when_full) {
    const uint8_t *bytes = (const uint8_t *)text;
    size_t len = strlen(text);
    Emitter em = {.ids = ids, .max_ids = max_ids, .stop_when_full = stop_when_full};
    uint8_t stack_clean[512];
    uint8_t *clean;
    size_t clean_len;
    if (is_plain_ascii(bytes, len)) {
        clean = len <= sizeof(stack_clean) ? stack_clean : mallocCheck(len);
        clean_len = clean_plain_ascii(bytes, len, clean);
    } else {
        clean = clean_general(bytes, len, &clean_len);
    }
    pretokenize_and_emit(tok, &em, clean, clean_len);
    if (clean != stack_clean) free(clean);
    free(em.bpe.heap);
    return em.count;
}

int tokenizer_encode_raw(const Tokenizer *tok, const char *text, int *ids, int max_ids) {
    return encode(tok, text, ids, max_ids < 0 ? 0 : max_ids, false);
}

int tokenizer_encode(const Tokenizer *tok, const char *text, int *ids, int context) {
    if (context < 2) die("tokenizer_encode: context must be >= 2 (SOT and EOT), got %d", context);
    int n = encode(tok, text, ids + 1, context - 2, true);
    int kept = n < context - 2 ? n : context - 2; // open_clip cuts and forces EOT last
    ids[0] = TOKEN_SOT;
    ids[kept + 1] = TOKEN_EOT;
    return kept + 2;
}

// ----------------------------------------------------------------------------
// Loading

/* A string -> id map used only while loading: vocabulary strings are GPT-2 byte-unicode
 * text, and the same string always means the same id (the last one, like a Python dict). */
typedef struct {
    char **strings; // id -> string (owned)
    int32_t *slots; // open addressing over ids, -1 empty
    uint32_t mask;
} VocabMap;

static int32_t vocab_lookup(const VocabMap *m, const char *s) {
    size_t n = strlen(s);
    for (uint32_t slot = (uint32_t)hash_bytes((const uint8_t *)s, n) & m->mask;; slot = (slot + 1) & m->mask) {
        if (m->slots[slot] < 0) return -1;
        if (strcmp(m->strings[m->slots[slot]], s) == 0) return m->slots[slot];
    }
}

static void vocab_insert(VocabMap *m, int32_t id, char *s) {
    m->strings[id] = s;
    size_t n = strlen(s);
    for (uint32_t slot = (uint32_t)hash_bytes((const uint8_t *)s, n) & m->mask;; slot = (slot + 1) & m->mask) {
        if (m->slots[slot] < 0 || strcmp(m->strings[m->slots[slot]], s) == 0) {
            m->slots[slot] = id;
            return;
        }
    }
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. The vocabulary lists the printable ones first, then the others. */
static void bytes_to_unicode(uint32_t byte_cp[256], int byte_order[256]) {
    int n = 0, shifted = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < 256; b++) {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            if (printable != (pass == 0)) continue;
            byte_cp[b] = printable ? (uint32_t)b : 256u + (uint32_t)shifted++;
            byte_order[n++] = b;
        }
    }
}

static char *concat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = mallocCheck(na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

static void pair_insert(Tokenizer *tok, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint32_t key = ((uint32_t)left << 16) | (uint32_t)right, mask = (1u << tok->pair_bits) - 1;
    uint32_t slot = pair_slot(key, tok->pair_bits);
    while (tok->pair_keys[slot] != PAIR_EMPTY && tok->pair_keys[slot] != key) slot = (slot + 1) & mask;
    tok->pair_keys[slot] = key; // a repeated pair keeps its last rank, like dict(zip(...))
    tok->pair_rank[slot] = rank;
    tok->pair_merged[slot] = merged;
}

/* Reads the merges (lines 1..NUM_MERGES) and fills strings/ids and the pair table. */
static void load_merges(Tokenizer *tok, const char *path, VocabMap *vocab, int32_t *created_by) {
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        die("tokenizer: cannot open vocabulary %s (%s); fetch it with: bash data/get_vocab.sh", path,
            errno ? strerror(errno) : "zlib error");
    char line[1024];
    for (int lineno = 0; lineno <= NUM_MERGES; lineno++) {
        if (!gzgets(gz, line, sizeof line))
            die("tokenizer: %s: expected %d merge lines after the header, found %d", path, NUM_MERGES,
                lineno > 0 ? lineno - 1 : 0);
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') die("tokenizer: %s: line %d is too long or unterminated", path, lineno + 1);
        if (lineno == 0) continue; // header: "#version: 0.2"
        char *save = NULL, *left = strtok_r(line, " \t\r\n", &save), *right = strtok_r(NULL, " \t\r\n", &save);
        if (!left || !right || strtok_r(NULL, " \t\r\n", &save))
            die("tokenizer: %s: line %d should hold two BPE symbols (is this CLIP's %s?)", path, lineno + 1,
                TOKENIZER_DEFAULT_VOCAB);
        int32_t rank = lineno - 1, id = NUM_BASE_TOKENS + rank;
        int32_t left_id = vocab_lookup(vocab, left), right_id = vocab_lookup(vocab, right);
        if (left_id < 0 || right_id < 0 || created_by[left_id] >= rank || created_by[right_id] >= rank)
            die("tokenizer: %s: merge on line %d uses a symbol no earlier merge made", path, lineno + 1);
        vocab_insert(vocab, id, concat(left, right));
        int32_t merged = vocab_lookup(vocab, vocab->strings[id]);
        created_by[merged] = rank;
        pair_insert(tok, left_id, right_id, rank, merged);
    }
    gzclose(gz);
}

/* Precomputes the BPE of every whole-word entry "w</w>", keyed by w's raw bytes. */
static void build_word_table(Tokenizer *tok, const VocabMap *vocab, int32_t num_ids, const int cp_byte[512]) {
    uint32_t size = 1;
    while (size < 2u * (uint32_t)num_ids) size *= 2;
    tok->words = callocCheck(size, sizeof(WordSlot));
    tok->words_mask = size - 1;
    size_t bytes_cap = 1 << 16, ids_cap = 1 << 16, bytes_n = 0, ids_n = 0;
    tok->word_bytes = mallocCheck(bytes_cap);
    tok->word_ids = mallocCheck(ids_cap * sizeof(int32_t));
    BpeScratch scratch = {0};
    uint8_t word[256];
    const size_t end_len = strlen(END_OF_WORD);
    for (int32_t id = 0; id < num_ids; id++) {
        const char *s = vocab->strings[id];
        size_t n = strlen(s);
        if (n <= end_len || strcmp(s + n - end_len, END_OF_WORD) != 0) continue;
        CpBuf cps = {0};
        cp_append_utf8(&cps, (const uint8_t *)s, n - end_len);
        size_t len = 0;
        for (size_t i = 0; i < cps.n && len < sizeof word; i++) word[len++] = (uint8_t)cp_byte[cps.v[i]];
        free(cps.v);
        uint64_t hash = hash_bytes(word, len);
        if (word_find(tok, word, len, hash)) continue;
        int count = bpe_word(tok, word, len, &scratch);
        while (bytes_n + len > bytes_cap) tok->word_bytes = reallocCheck(tok->word_bytes, bytes_cap *= 2);
        while (ids_n + (size_t)count > ids_cap)
            tok->word_ids = reallocCheck(tok->word_ids, (ids_cap *= 2) * sizeof(int32_t));
        uint32_t slot = (uint32_t)hash & tok->words_mask;
        while (tok->words[slot].key_len) slot = (slot + 1) & tok->words_mask;
        tok->words[slot] = (WordSlot){(uint32_t)bytes_n, (uint32_t)ids_n, (uint16_t)len, (uint16_t)count};
        memcpy(tok->word_bytes + bytes_n, word, len);
        memcpy(tok->word_ids + ids_n, scratch.out, (size_t)count * sizeof(int32_t));
        bytes_n += len;
        ids_n += (size_t)count;
    }
    free(scratch.heap);
}

Tokenizer *tokenizer_load(const char *path) {
    if (!path) path = getenv("TNG_VOCAB");
    if (!path || !*path) path = TOKENIZER_DEFAULT_VOCAB;
    Tokenizer *tok = callocCheck(1, sizeof(Tokenizer));
    tok->pair_bits = 17; // 131072 slots for 48894 merges
    size_t pair_slots = (size_t)1 << tok->pair_bits;
    tok->pair_keys = mallocCheck(pair_slots * sizeof(uint32_t));
    for (size_t i = 0; i < pair_slots; i++) tok->pair_keys[i] = PAIR_EMPTY;
    tok->pair_rank = mallocCheck(pair_slots * sizeof(int32_t));
    tok->pair_merged = mallocCheck(pair_slots * sizeof(int32_t));

    const int32_t num_ids = NUM_BASE_TOKENS + NUM_MERGES;
    VocabMap vocab = {callocCheck((size_t)num_ids, sizeof(char *)), mallocCheck(pair_slots * sizeof(int32_t)),
                      (uint32_t)pair_slots - 1};
    for (size_t i = 0; i < pair_slots; i++) vocab.slots[i] = -1;
    int32_t *created_by = mallocCheck((size_t)num_ids * sizeof(int32_t));
    for (int32_t i = 0; i < num_ids; i++) created_by[i] = -1;

    uint32_t byte_cp[256];
    int byte_order[256], cp_byte[512];
    bytes_to_unicode(byte_cp, byte_order);
    for (int i = 0; i < 256; i++) {
        int b = byte_order[i];
        cp_byte[byte_cp[b]] = b;
        uint8_t utf8[8];
        size_t n = utf8_encode(byte_cp[b], utf8);
        utf8[n] = 0;
        vocab_insert(&vocab, i, strdupCheck((const char *)utf8));
        vocab_insert(&vocab, 256 + i, concat((const char *)utf8, END_OF_WORD));
    }
    load_merges(tok, path, &vocab, created_by);
    for (int i = 0; i < 256; i++) {
        // looked up, not assumed: a later merge spelling the same string would own the id
        tok->byte_id[byte_order[i]] = vocab_lookup(&vocab, vocab.strings[i]);
        tok->byte_end_id[byte_order[i]] = vocab_lookup(&vocab, vocab.strings[256 + i]);
    }
    build_word_table(tok, &vocab, num_ids, cp_byte);

    for (int32_t i = 0; i < num_ids; i++) free(vocab.strings[i]);
    free(vocab.strings);
    free(vocab.slots);
    free(created_by);
    return tok;
}

void tokenizer_free(Tokenizer *tok) {
    if (!tok) return;
    free(tok->pair_keys);
    free(tok->pair_rank);
    free(tok->pair_merged);
    free(tok->words);
    free(tok->word_bytes);
    free(tok->word_ids);
    free(tok);
}
