/*
 * fuzz_tokenizer.c: libFuzzer target for tokenizer_encode and tokenizer_encode_raw on
 * arbitrary bytes (invalid UTF-8 included).
 *
 * The first input byte picks the context (2..257), the rest is the text, cut at its first
 * NUL as a C string is. Invariants checked (a broken one is __builtin_trap):
 *   - encode writes 2..context ids, SOT first, EOT last, every id in the vocabulary;
 *   - encode_raw counts at least the ids encode kept, and its first ids are encode's middle;
 *   - encode_raw's count does not depend on max_ids.
 * The vocabulary is loaded once, from data/cache/ relative to the repository root (run from
 * there, or set TNG_VOCAB). Run: make fuzz && build-fuzz/fuzz/fuzz_tokenizer -max_total_time=600
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_encode_raw

#define MAX_CONTEXT 257

static Tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) tok = tokenizer_load(NULL); // kept for the whole run: one load, never a leak
    if (size == 0) return 0;
    int context = 2 + data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;

    int ids[MAX_CONTEXT], raw[MAX_CONTEXT];
    int n = tokenizer_encode(tok, text, ids, context);
    if (n < 2 || n > context || ids[0] != TOKEN_SOT || ids[n - 1] != TOKEN_EOT) __builtin_trap();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > TOKEN_EOT) __builtin_trap();
    int n_raw = tokenizer_encode_raw(tok, text, raw, MAX_CONTEXT);
    if (n_raw < n - 2 || (n_raw > n - 2 && n != context)) __builtin_trap();
    for (int i = 1; i < n - 1; i++)
        if (raw[i - 1] != ids[i]) __builtin_trap();
    if (tokenizer_encode_raw(tok, text, NULL, 0) != n_raw) __builtin_trap();
    free(text);
    return 0;
}
