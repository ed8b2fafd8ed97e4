/*
 * test_tokenizer.c: host/text/tokenizer.c (with text/clean.c) against open_clip's own ids.
 *
 * The main check runs the parity corpus (tests/fixtures/tokenizer, written by
 * tests/ref/make_tokenizer_corpus.py from open_clip 3.3 + ftfy 6.3): every record's ids must
 * equal open_clip's exactly. Block sha256s cover all records; records outside the caption
 * and negation families are also compared id by id so a failure names its string. Besides:
 * the known answers of docs/REFERENCE.md §4 (tokenizer), truncation, tokenizer_encode_raw
 * counts, threads sharing one Tokenizer, and the tng_tokenize program end to end (found in
 * $TNG_BIN_DIR, default ".").
 * Run from the repository root, after `bash data/get_vocab.sh`.
 */
#include "util/common.h"    // defines: die, mallocCheck, callocCheck, reallocCheck, read_file
#include "harness.h"   // defines: RUN_TEST, CHECK, test_summary
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_encode_raw

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CORPUS_DIR "tests/fixtures/tokenizer"
#define POISON (-12345) // written into id buffers first: no valid id, so stray writes show

static Tokenizer *tok;

// ----------------------------------------------------------------------------
// Helpers

/* Ids as the text form the corpus and tng_tokenize use: "49406 320 ... 49407". */
static void ids_to_text(const int *ids, int n, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len < cap; i++) len += (size_t)snprintf(out + len, cap - len, i ? " %d" : "%d", ids[i]);
}

static int encode_text(const char *text, int context, char *out, size_t cap) {
    int ids[1024];
    for (int i = 0; i < 1024; i++) ids[i] = POISON;
    int n = tokenizer_encode(tok, text, ids, context);
    ids_to_text(ids, n, out, cap);
    return n;
}

static char *read_gzip(const char *path, size_t *out_len) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) die("%s: cannot open; regenerate with .venv/bin/python tests/ref/make_tokenizer_corpus.py", path);
    size_t cap = 1 << 20, len = 0;
    char *data = mallocCheck(cap);
    for (int got; (got = gzread(gz, data + len, (unsigned)(cap - len - 1))) > 0;) {
        len += (size_t)got;
        if (cap - len < 2) data = reallocCheck(data, cap *= 2);
    }
    int err;
    const char *msg = gzerror(gz, &err);
    if (err != Z_OK && err != Z_STREAM_END) die("%s: gzip error: %s", path, msg);
    gzclose(gz);
    data[len] = 0;
    *out_len = len;
    return data;
}

/* Splits data into '\n'-terminated lines in place; returns the line starts. */
static char **split_lines(char *data, size_t len, size_t *count) {
    size_t n = 0, cap = 1024;
    char **lines = mallocCheck(cap * sizeof(char *));
    for (size_t start = 0; start < len;) {
        char *end = memchr(data + start, '\n', len - start);
        if (!end) die("corpus: last line is not terminated");
        *end = 0;
        if (n == cap) lines = reallocCheck(lines, (cap *= 2) * sizeof(char *));
        lines[n++] = data + start;
        start = (size_t)(end - data) + 1;
    }
    *count = n;
    return lines;
}

// ----------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), for the corpus block hashes

typedef struct {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} Sha256;

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_compress(Sha256 *h, const uint8_t *p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64], s[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, h->state, sizeof s);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = s[7] + (rotr(s[4], 6) ^ rotr(s[4], 11) ^ rotr(s[4], 25)) + ((s[4] & s[5]) ^ (~s[4] & s[6])) +
                      k[i] + w[i];
        uint32_t t2 = (rotr(s[0], 2) ^ rotr(s[0], 13) ^ rotr(s[0], 22)) + ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof(uint32_t));
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) h->state[i] += s[i];
}

static void sha256_init(Sha256 *h) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h->state, iv, sizeof iv);
    h->bytes = 0;
    h->used = 0;
}

static void sha256_update(Sha256 *h, const void *data, size_t n) {
    const uint8_t *p = data;
    h->bytes += n;
    while (n--) {
        h->block[h->used++] = *p++;
        if (h->used == 64) {
            sha256_compress(h, h->block);
            h->used = 0;
        }
    }
}

static void sha256_hex(Sha256 *h, char out[65]) {
    uint64_t bits = h->bytes * 8;
    uint8_t pad = 0x80, zero = 0, length[8];
    sha256_update(h, &pad, 1);
    while (h->used != 56) sha256_update(h, &zero, 1);
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(h, length, 8);
    for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", h->state[i]);
}

static void test_sha256_known_answer(void) {
    Sha256 h;
    char hex[65];
    sha256_init(&h);
    sha256_update(&h, "abc", 3);
    sha256_hex(&h, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "sha256(abc) = %s", hex);
}

// ----------------------------------------------------------------------------
// Tests

static void test_reference_vectors(void) {
    char got[4096];
    encode_text("a photo of a cat", 77, got, sizeof got);
    CHECK(strcmp(got, "49406 320 1125 539 320 2368 49407") == 0, "got %s", got);
    encode_text("Hello World!! 2024", 77, got, sizeof got);
    CHECK(strcmp(got, "49406 3306 1002 748 273 271 273 275 49407") == 0, "got %s", got);
    encode_text("", 77, got, sizeof got);
    CHECK(strcmp(got, "49406 49407") == 0, "empty input gave %s", got);
    encode_text(" \t \xe3\x80\x80 ", 77, got, sizeof got); // only whitespace (incl. U+3000)
    CHECK(strcmp(got, "49406 49407") == 0, "whitespace-only input gave %s", got);
}

static const char *long_text =
    "A man in a red shirt is riding a brown horse along the beach while two dogs run beside him, "
    "and in the background several people are flying colorful kites over the dunes; there is no "
    "boat on the water, no bird in the sky, and nobody is swimming even though the sun is out "
    "and the sea looks calm and warm on this bright summer afternoon near the old lighthouse. "
    "Further up the shore a child builds a sandcastle with a green bucket, a woman reads a book "
    "under a striped umbrella, and a black cat sleeps on a wooden bench beside the parking lot.";

static void test_truncation(void) {
    int raw[256];
    int n_raw = tokenizer_encode_raw(tok, long_text, raw, 256);
    CHECK(n_raw > 100, "the long text should exceed the context, has %d ids", n_raw);
    const int contexts[] = {77, 10, 3, 2};
    for (int c = 0; c < 4; c++) {
        int context = contexts[c], ids[80];
        for (int i = 0; i < 80; i++) ids[i] = POISON;
        int n = tokenizer_encode(tok, long_text, ids, context);
        CHECK(n == context, "context %d: wrote %d ids", context, n);
        CHECK(ids[0] == TOKEN_SOT && ids[n - 1] == TOKEN_EOT, "context %d: ends %d .. %d", context, ids[0], ids[n - 1]);
        CHECK(ids[n] == POISON, "context %d: wrote past the context", context);
        for (int i = 1; i < n - 1; i++) CHECK(ids[i] == raw[i - 1], "context %d: id %d is %d, raw %d", context, i, ids[i], raw[i - 1]);
    }
    // a text that fits exactly (raw ids + 2 == context) keeps every id
    int ids[80];
    int n_short = tokenizer_encode_raw(tok, "a photo of a cat", NULL, 0);
    for (int i = 0; i < 80; i++) ids[i] = POISON;
    int n = tokenizer_encode(tok, "a photo of a cat", ids, n_short + 2);
    CHECK(n == n_short + 2 && ids[n - 2] == 2368 && ids[n - 1] == TOKEN_EOT && ids[n] == POISON,
          "exact fit: %d ids, last two %d %d", n, ids[n - 2], ids[n - 1]);
}

static void test_encode_raw_counts(void) {
    int ids[16];
    for (int i = 0; i < 16; i++) ids[i] = POISON;
    int n = tokenizer_encode_raw(tok, "a photo of a cat", ids, 16);
    CHECK(n == 5 && ids[0] == 320 && ids[4] == 2368 && ids[5] == POISON, "raw count %d", n);
    for (int i = 0; i < 16; i++) ids[i] = POISON;
    n = tokenizer_encode_raw(tok, "a photo of a cat", ids, 3); // full count, only 3 written
    CHECK(n == 5 && ids[2] == 539 && ids[3] == POISON, "raw count %d with max_ids 3, ids[3]=%d", n, ids[3]);
    int full = tokenizer_encode_raw(tok, long_text, NULL, 0);
    int some[8];
    CHECK(tokenizer_encode_raw(tok, long_text, some, 8) == full, "count must not depend on max_ids");
    CHECK(tokenizer_encode_raw(tok, "", ids, 16) == 0, "empty text has no raw ids");
    CHECK(tokenizer_encode_raw(tok, "Hello World!! 2024", NULL, 0) == 7,
          "the docs/REFERENCE.md §4 vector has 7 raw ids");
}

/* Every corpus record must give open_clip's ids: each block's sha256 must match, and each
 * record listed in expected.txt.gz must match id for id. */
static void test_parity_corpus(void) {
    size_t inputs_len, expected_len, blocks_len;
    char *inputs_data = read_gzip(CORPUS_DIR "/inputs.txt.gz", &inputs_len);
    char *expected_data = read_gzip(CORPUS_DIR "/expected.txt.gz", &expected_len);
    char *blocks_data = read_file(CORPUS_DIR "/blocks.sha256", &blocks_len);
    if (!blocks_data) die(CORPUS_DIR "/blocks.sha256: cannot read");
    size_t n_inputs, n_expected, n_blocks;
    char **inputs = split_lines(inputs_data, inputs_len, &n_inputs);
    char **expected = split_lines(expected_data, expected_len, &n_expected);
    char **blocks = split_lines(blocks_data, blocks_len, &n_blocks);
    CHECK(n_inputs >= 100000, "the corpus should hold >= 100000 strings, has %zu", n_inputs);

    // records with listed ids: "<index> <ids>"
    char **listed = callocCheck(n_inputs, sizeof(char *));
    for (size_t i = 0; i < n_expected; i++) {
        char *rest;
        unsigned long index = strtoul(expected[i], &rest, 10);
        if (index >= n_inputs || *rest != ' ') die(CORPUS_DIR "/expected.txt.gz: bad line %zu", i + 1);
        listed[index] = rest + 1;
    }

    static char got[16384];
    size_t covered = 0, listed_ok = 0, listed_total = 0, blocks_ok = 0, bad_shown = 0;
    for (size_t b = 0; b < n_blocks; b++) {
        char want_hex[65], got_hex[65];
        size_t first, count;
        if (sscanf(blocks[b], "%64s %zu %zu", want_hex, &first, &count) != 3 || first + count > n_inputs)
            die(CORPUS_DIR "/blocks.sha256: bad line %zu", b + 1);
        Sha256 h;
        sha256_init(&h);
        for (size_t i = first; i < first + count; i++) {
            encode_text(inputs[i], 77, got, sizeof got);
            sha256_update(&h, got, strlen(got));
            sha256_update(&h, "\n", 1);
            if (!listed[i]) continue;
            listed_total++;
            if (strcmp(got, listed[i]) == 0) listed_ok++;
            else if (bad_shown++ < 10)
                fprintf(stderr, "  record %zu: input '%s'\n    want %s\n    got  %s\n", i, inputs[i], listed[i], got);
        }
        covered += count;
        sha256_hex(&h, got_hex);
        if (strcmp(got_hex, want_hex) == 0) blocks_ok++;
        else fprintf(stderr, "  block %zu (records %zu..%zu) differs; see make_tokenizer_corpus.py --all-expected\n", b,
                     first, first + count - 1);
    }
    CHECK(covered == n_inputs, "blocks cover %zu of %zu records", covered, n_inputs);
    CHECK(blocks_ok == n_blocks, "%zu of %zu blocks match", blocks_ok, n_blocks);
    CHECK(listed_ok == listed_total && listed_total == n_expected, "%zu of %zu listed records match", listed_ok,
          listed_total);
    printf("  parity: %zu strings, %zu/%zu blocks of exact ids match (all records), %zu/%zu listed records "
           "match id by id\n",
           n_inputs, blocks_ok, n_blocks, listed_ok, listed_total);
    free(listed);
    free(inputs);
    free(expected);
    free(blocks);
    free(inputs_data);
    free(expected_data);
    free(blocks_data);
}

/* One shared Tokenizer used by several threads must give the serial results. */
static void test_threads_share_tokenizer(void) {
    static const char *texts[] = {"a photo of a cat", "No dog anywhere; just a sofa.", "caf\xc3\xa9 na\xc3\xafve",
                                  "\xf0\x9f\x90\xb6 &amp; \xe7\x8c\xab", "unusualwordzzqx supercalifragilistic"};
    enum { N_TEXTS = 5, REPEATS = 400 };
    int serial[N_TEXTS][77], serial_n[N_TEXTS];
    for (int t = 0; t < N_TEXTS; t++) serial_n[t] = tokenizer_encode(tok, texts[t], serial[t], 77);
    int mismatches = 0;
#pragma omp parallel for num_threads(4) reduction(+ : mismatches)
    for (int r = 0; r < REPEATS * N_TEXTS; r++) {
        int ids[77], t = r % N_TEXTS;
        int n = tokenizer_encode(tok, texts[t], ids, 77);
        mismatches += n != serial_n[t] || memcmp(ids, serial[t], (size_t)n * sizeof(int)) != 0;
    }
    CHECK(mismatches == 0, "%d threaded encodes differ from the serial ones", mismatches);
}

/* tng_tokenize end to end: one output line per input line, --context honoured, a CRLF
 * line like its LF twin, and --help that names the flags. */
static void test_tng_tokenize_program(void) {
    const char *bin_dir = getenv("TNG_BIN_DIR");
    if (!bin_dir || !*bin_dir) bin_dir = ".";
    char input_path[] = "/tmp/tng_tokenize_test_XXXXXX";
    int fd = mkstemp(input_path);
    if (fd < 0) die("mkstemp failed");
    FILE *f = fdopen(fd, "w");
    fputs("a photo of a cat\nHello World!! 2024\n\nHello World!! 2024\r\n", f);
    fputs(long_text, f); // last line without '\n'
    fclose(f);

    char command[1024], line[4096], want[4096];
    snprintf(command, sizeof command, "%s/tng_tokenize --context 12 < %s", bin_dir, input_path);
    FILE *p = popen(command, "r");
    CHECK(p != NULL, "cannot run %s", command);
    const char *texts[] = {"a photo of a cat", "Hello World!! 2024", "", "Hello World!! 2024", long_text};
    int lines = 0;
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (lines < 5) {
            encode_text(texts[lines], 12, want, sizeof want);
            CHECK(strcmp(line, want) == 0, "line %d: got '%s', want '%s'", lines + 1, line, want);
        }
        lines++;
    }
    int status = p ? pclose(p) : -1;
    CHECK(status == 0 && lines == 5, "tng_tokenize (from TNG_BIN_DIR=%s) exited %d after %d lines", bin_dir, status, lines);
    remove(input_path);

    snprintf(command, sizeof command, "%s/tng_tokenize --help", bin_dir);
    p = popen(command, "r");
    size_t help_len = p ? fread(line, 1, sizeof line - 1, p) : 0;
    line[help_len] = 0;
    status = p ? pclose(p) : -1;
    CHECK(status == 0 && strstr(line, "--context") && strstr(line, "--vocab") && strstr(line, "--help"),
          "--help exited %d with '%s'", status, line);
    snprintf(command, sizeof command, "%s/tng_tokenize --context 1 < /dev/null 2>/dev/null", bin_dir);
    p = popen(command, "r");
    status = p ? pclose(p) : 0;
    CHECK(status != 0, "--context 1 must be refused");
}

int main(void) {
    tok = tokenizer_load(NULL);
    RUN_TEST(test_sha256_known_answer);
    RUN_TEST(test_reference_vectors);
    RUN_TEST(test_truncation);
    RUN_TEST(test_encode_raw_counts);
    RUN_TEST(test_threads_share_tokenizer);
    RUN_TEST(test_tng_tokenize_program);
    RUN_TEST(test_parity_corpus);
    tokenizer_free(tok);
    return test_summary();
}
