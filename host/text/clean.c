/*
 * clean.c: the text cleaning open_clip applies before tokenising (clean='lower' with ftfy 6.3
 * installed), stages 1-4 of the tokenizer (tokenizer.c holds 5 and 6), in Python's order:
 *   1. UTF-8 -> code points; invalid bytes become U+FFFD as in bytes.decode(errors='replace');
 *   2. ftfy.fix_text with its default fixers, per '\n' segment, repeated until nothing changes
 *      (html entities, C1 controls, Latin ligatures, full/half width, curly quotes, line
 *      breaks, terminal escapes, control characters, NFC);
 *   3. html.unescape twice; 4. split on str.isspace, join with ' ', str.lower().
 * Key choices:
 *  - Printable ASCII with no '&' (plus tabs) cannot be changed by stages 1-3, so such text
 *    (the common caption) skips them and is cleaned by a byte loop.
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
#include "text/clean.h"  // defines: text_clean, utf8_decode, utf8_encode, py_isspace
#include "util/common.h" // defines: die, mallocCheck, reallocCheck

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/ftfy_tables.inc"   // defines: ftfy_ligatures, ftfy_width_map, ftfy_control_chars, quotes
#include "text/html_entities.inc" // defines: html_entities, html_invalid_charrefs, html_invalid_codepoints

#define FTFY_MAX_DECODE_LENGTH 1000000 // ftfy cuts segments longer than this (code points)

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

size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *out) {
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

size_t utf8_encode(uint32_t c, uint8_t *out) {
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
bool py_isspace(uint32_t c) {
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

/* Runs one fixer over seg in place, with tmp as the other buffer. */
static void run_fixer(void (*fixer)(const CpBuf *in, CpBuf *out), CpBuf *seg, CpBuf *tmp) {
    tmp->n = 0;
    fixer(seg, tmp);
    cp_swap(seg, tmp);
}

/* ftfy.fix_and_explain on one segment: every fixer, then NFC, until the text stops changing. */
static void ftfy_fix_segment(CpBuf *seg, bool unescape_html) {
    CpBuf before = {0}, tmp = {0};
    for (;;) {
        before.n = 0;
        cp_append(&before, seg->v, seg->n);
        if (unescape_html) run_fixer(ftfy_unescape_html, seg, &tmp);
        run_fixer(ftfy_fix_characters, seg, &tmp);
        run_fixer(ftfy_remove_escapes_and_controls, seg, &tmp);
        run_fixer(nfc, seg, &tmp);
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

uint8_t *text_clean(const uint8_t *text, size_t len, uint8_t *buf, size_t buf_len, size_t *out_len) {
    if (!is_plain_ascii(text, len)) return clean_general(text, len, out_len);
    uint8_t *out = len <= buf_len ? buf : mallocCheck(len);
    *out_len = clean_plain_ascii(text, len, out);
    return out;
}
