/*
 * tokenizer.c: CLIP's byte-level BPE tokenizer, id-for-id equal to open_clip 3.x
 * (SimpleTokenizer with clean='lower' and ftfy 6.3 installed).
 *
 * A text passes the same stages as in Python, in the same order: stages 1-4 clean it
 * (clean.c: UTF-8 decoding, ftfy.fix_text, html.unescape twice, whitespace and str.lower()),
 * then, here:
 *   5. the pre-token regex <specials>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
 *      (IGNORECASE, so "'ſ" counts as "'s"); 6. BPE per piece, lowest merge rank first.
 * Key choice: the BPE of every whole-word vocabulary entry ("...</w>") is computed once at
 * load into a read-only hash table: most words cost one lookup, and a loaded Tokenizer is
 * never written again, so threads may share it. Other words run a heap-ordered BPE,
 * O(n log n). Character classes come from utf8proc, so code points that Unicode 14 (Python
 * 3.11's) leaves unassigned may be classed differently (see clean.c).
 */
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_free, tokenizer_encode, tokenizer_encode_raw
#include "text/clean.h"     // defines: text_clean, utf8_decode, utf8_encode, py_isspace
#include "util/common.h"    // defines: die, mallocCheck, callocCheck, reallocCheck

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

#define NUM_MERGES 48894 // open_clip reads vocab lines 1 .. 49152-256-2
#define NUM_BASE_TOKENS 512
#define END_OF_WORD "</w>"

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
    size_t clean_len;
    uint8_t *clean = text_clean(bytes, len, stack_clean, sizeof stack_clean, &clean_len);
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
        size_t len = 0; /* the symbols' code points back to the bytes they stand for */
        for (size_t i = 0; i < n - end_len && len < sizeof word; len++) {
            uint32_t c;
            i += utf8_decode((const uint8_t *)s + i, n - end_len - i, &c);
            word[len] = (uint8_t)cp_byte[c];
        }
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
