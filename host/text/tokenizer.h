/*
 * tokenizer.h: CLIP's byte-level BPE tokenizer, giving the same ids as open_clip 3.x
 * (SimpleTokenizer with ftfy installed, clean='lower').
 *
 * The vocabulary is bpe_simple_vocab_16e6.txt.gz, fetched at set-up by
 * data/get_vocab.sh into data/cache/ (never committed) and read with zlib.
 * A loaded Tokenizer is immutable, so one instance may be shared by many threads.
 */
#ifndef TNG_TOKENIZER_H
#define TNG_TOKENIZER_H

#define TOKEN_SOT 49406
#define TOKEN_EOT 49407
#define TOKENIZER_DEFAULT_VOCAB "data/cache/bpe_simple_vocab_16e6.txt.gz"

typedef struct Tokenizer Tokenizer;

/* Loads the vocabulary. path NULL means $TNG_VOCAB, else TOKENIZER_DEFAULT_VOCAB.
 * Dies with a message naming the file (and telling how to fetch it) on failure. */
Tokenizer *tokenizer_load(const char *path);
void tokenizer_free(Tokenizer *tok);

/* Encodes one UTF-8 string (invalid UTF-8 is tolerated) as SOT, ids..., EOT, cut to
 * `context` ids with EOT forced into the last slot, exactly like open_clip. Writes no
 * padding. Returns the number of ids written (2..context). context >= 2. */
int tokenizer_encode(const Tokenizer *tok, const char *text, int *ids, int context);

/* The BPE ids of the cleaned text with no SOT/EOT and no truncation. Writes at most
 * max_ids ids but returns the full count, so a caller can measure a text's length. */
int tokenizer_encode_raw(const Tokenizer *tok, const char *text, int *ids, int max_ids);

#endif
