/*
 * tng_tokenize: prints CLIP token ids for each line of UTF-8 text on stdin.
 *
 * One input per line; the trailing '\n' is removed and nothing else (a '\r' before it stays
 * in the text, where cleaning turns it into whitespace and strips it, so CRLF files give the
 * same ids). Each output line is the ids separated by spaces: SOT, the text's ids, EOT,
 * truncated to the context exactly as open_clip does, without padding.
 * Lines may be any length; a NUL byte ends a line's text (the tokenizer takes C strings).
 */
#include "util/cli.h"       // defines: CliOption, CliProgram, cli_parse, CLI_* row specs
#include "util/common.h"    // defines: die
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_free, TOKEN_SOT

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int context;
    const char *vocab; /* NULL: $TNG_VOCAB, else TOKENIZER_DEFAULT_VOCAB */
} TokenizeArgs;

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define TOKENIZE_OPTIONS(X)                                                                                  \
    X(CONTEXT, 'c', "context", "N", "77", CLI_INT(context, 2, 1000000), "ids per line at most")              \
    X(VOCAB, 'v', "vocab", "PATH", NULL, CLI_STRING(vocab),                                                  \
      "BPE vocabulary; without it $TNG_VOCAB, else " TOKENIZER_DEFAULT_VOCAB)                                \
    X(HELP, 'h', "help", NULL, NULL, CLI_HELP, "show this help")

enum { TOKENIZE_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define STRINGIFY(x) #x
#define TEXT_OF(x) STRINGIFY(x)
#define CLI_ARGS TokenizeArgs
CLI_PROGRAM(TOKENIZE_OPTIONS, "tng_tokenize", "[--context N] [--vocab PATH] < lines.txt",
            "Prints one line of space-separated CLIP token ids per input line (read from stdin):\n"
            TEXT_OF(TOKEN_SOT) ", the ids, " TEXT_OF(TOKEN_EOT)
            "; cut to the context like open_clip, no padding.");

int main(int argc, char **argv) {
    TokenizeArgs args = {0};
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    int context = args.context;
    const char *vocab = args.vocab;
    Tokenizer *tok = tokenizer_load(vocab);
    int *ids = mallocCheck((size_t)context * sizeof(int));
    char *out_line = mallocCheck((size_t)context * 6); // ids are at most 5 digits, plus a separator
    static char out_buffer[1 << 16];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, stdin)) != -1) {
        if (len > 0 && line[len - 1] == '\n') line[len - 1] = 0;
        int n = tokenizer_encode(tok, line, ids, context);
        // the line is formatted by hand into one buffer: printf per id would cost more than
        // the tokenizer itself
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            char digits[12];
            int v = ids[i], k = 0;
            do digits[k++] = (char)('0' + v % 10); while ((v /= 10) > 0);
            while (k > 0) out_line[used++] = digits[--k];
            out_line[used++] = i + 1 < n ? ' ' : '\n';
        }
        fwrite(out_line, 1, used, stdout);
    }
    if (ferror(stdin)) die("tng_tokenize: error reading stdin");
    if (fflush(stdout) != 0) die("tng_tokenize: error writing stdout");
    free(line);
    free(ids);
    free(out_line);
    tokenizer_free(tok);
    return 0;
}
