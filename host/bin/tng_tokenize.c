/*
 * tng_tokenize: prints CLIP token ids for each line of UTF-8 text on stdin.
 *
 * One input per line; the trailing '\n' is removed and nothing else (a '\r' before it stays
 * in the text, where cleaning turns it into whitespace and strips it, so CRLF files give the
 * same ids). Each output line is the ids separated by spaces: SOT, the text's ids, EOT,
 * truncated to the context exactly as open_clip does, without padding.
 * Lines may be any length; a NUL byte ends a line's text (the tokenizer takes C strings).
 */
#include "util/common.h"    // defines: die
#include "text/tokenizer.h" // defines: tokenizer_load, tokenizer_encode, tokenizer_free

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: tng_tokenize [--context N] [--vocab PATH] < lines.txt\n"
            "Prints one line of space-separated CLIP token ids per input line:\n"
            "%d, the ids, %d; cut to the context like open_clip, no padding.\n"
            "  -c, --context N   ids per line at most, N >= 2 (default 77)\n"
            "  -v, --vocab PATH  BPE vocabulary (default $TNG_VOCAB, else %s)\n"
            "  -h, --help        show this help\n",
            TOKEN_SOT, TOKEN_EOT, TOKENIZER_DEFAULT_VOCAB);
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"context", required_argument, NULL, 'c'},
        {"vocab", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int context = 77;
    const char *vocab = NULL;
    for (int opt; (opt = getopt_long(argc, argv, "c:v:h", options, NULL)) != -1;) {
        switch (opt) {
        case 'c': {
            char *end;
            long value = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end != 0 || value < 2 || value > 1000000)
                die("tng_tokenize: --context expects an integer in [2, 1000000], got '%s'", optarg);
            context = (int)value;
            break;
        }
        case 'v':
            vocab = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tng_tokenize: unexpected argument '%s' (input is read from stdin)\n", argv[optind]);
        usage(stderr);
        return 2;
    }

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
