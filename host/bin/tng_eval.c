/*
 * tng_eval: measure negation understanding. For each model given, embeds the evaluation
 * sets and prints one Markdown table (models x metrics), optionally also as JSON:
 *   --mcq        NegBench multiple choice: accuracy overall and per type
 *   --retrieval  text->image and image->text Recall@1/5/10 (also negated retrieval files)
 *   --ccneg      CC-Neg: the true caption must outscore its negation
 *   --zeroshot   a folder of class folders, prompts from --templates: top-1 / top-5
 *   --probe      per object kind, the AUC of a linear probe of the image embeddings: does the
 *                image tower see the objects the questions are about (eval/probe.h)
 * Embeddings are cosine similarities of L2-normalised features, as NegBench scores them.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cli.h"      // defines: CliOption, CliProgram, cli_parse, cli_fail, CLI_* row specs
#include "util/common.h"   // defines: die, mallocCheck
#include "engine/backend.h" // defines: backend_select, BACKEND_OPTION_ROW
#include "eval/encoder.h"  // defines: Encoder, encoder_open, encoder_close
#include "eval/evaluate.h" // defines: evaluate_mcq, evaluate_retrieval, evaluate_ccneg, evaluate_zeroshot

#define MAX_INPUTS 32

typedef struct {
    const char *path[MAX_INPUTS];
    int count;
} PathList;

typedef struct {
    PathList models, mcq, retrieval, ccneg, probe;
    const char *names[MAX_INPUTS];
    const char *zeroshot, *templates, *image_root, *json;
    int batch, quiet;
    int ties;    /* TieRule */
    int precision; /* Precision */
    int backend; /* BackendChoice */
} EvalArgs;

/* A repeatable option: one more path in its list. */
static void push_path(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    PathList *list = cli_field(opt, args);
    if (list->count == MAX_INPUTS) cli_fail(prog, "at most %d --%s arguments", MAX_INPUTS, opt->name);
    list->path[list->count++] = value;
}

/* --name labels the --model before it. */
static void name_model(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    EvalArgs *a = args;
    if (a->models.count == 0) cli_fail(prog, "--%s must follow a --model", opt->name);
    a->names[a->models.count - 1] = value;
}

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define EVAL_OPTIONS(X)                                                                                      \
    X(MODEL, 0, "model", "DIR", NULL, CLI_CUSTOM(models, PathList, push_path),                               \
      "model to evaluate: HF/tng model dir or tng run dir (repeatable)")                                     \
    X(NAME, 0, "name", "NAME", NULL, CLI_CUSTOM(names, const char **, name_model),                           \
      "column label of the preceding --model (its path when not given)")                                     \
    X(MCQ, 0, "mcq", "CSV", NULL, CLI_CUSTOM(mcq, PathList, push_path),                                      \
      "NegBench multiple-choice CSV (repeatable)")                                                           \
    X(RETRIEVAL, 0, "retrieval", "CSV", NULL, CLI_CUSTOM(retrieval, PathList, push_path),                    \
      "NegBench retrieval CSV: filepath,captions (repeatable)")                                              \
    X(CCNEG, 0, "ccneg", "CSV", NULL, CLI_CUSTOM(ccneg, PathList, push_path),                                \
      "CC-Neg CSV: image_path,caption,negated_caption (repeatable)")                                         \
    X(PROBE, 0, "probe", "CSV", NULL, CLI_CUSTOM(probe, PathList, push_path),                                \
      "linear probe AUC per object kind: filepath,caption,objects CSV (repeatable)")                         \
    X(ZEROSHOT, 0, "zeroshot", "DIR", NULL, CLI_STRING(zeroshot),                                            \
      "zero-shot classification: one folder of images per class")                                            \
    X(TEMPLATES, 0, "templates", "FILE", NULL, CLI_STRING(templates),                                        \
      "prompt templates for --zeroshot, one per line, {} = class name")                                      \
    X(IMAGE_ROOT, 0, "image-root", "DIR", NULL, CLI_STRING(image_root),                                      \
      "re-root the image paths inside the CSV files")                                                        \
    X(JSON, 0, "json", "FILE", NULL, CLI_STRING(json), "also write the results as JSON")                     \
    X(TIES, 0, "ties", "RULE", "strict", CLI_CHOICE(ties, tie_rule_names),                                   \
      "a tie between scores: strict (counts against the model) or first-index (NegBench: the lower "       \
      "index wins, as torch.argmax and a stable top-k)")                                                     \
    X(BATCH, 0, "batch", "N", "64", CLI_INT(batch, 1, 4096), "images or texts per forward pass")             \
    BACKEND_OPTION_ROWS(X, CLI_AS_IS, backend, precision)                                                    \
    X(QUIET, 0, "quiet", NULL, NULL, CLI_FLAG(quiet, 1), "no progress lines")                                \
    X(HELP, 0, "help", NULL, NULL, CLI_HELP, "show this help")

enum { EVAL_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define CLI_ARGS EvalArgs
CLI_PROGRAM(EVAL_OPTIONS, "tng_eval",
            "--model DIR [--model DIR]... [--mcq CSV] [--retrieval CSV] [--ccneg CSV] [--probe CSV] ...",
            "Evaluates CLIP models on negation benchmarks and prints a Markdown table.");

/* One row of the results table: a metric name and its value per model. */
typedef struct {
    char name[160];
    double value[MAX_INPUTS];
} MetricRow;

typedef struct {
    MetricRow *rows;
    int count;
} MetricTable;

static void record(MetricTable *t, int model, const char *name, double value) {
    int r = 0;
    while (r < t->count && strcmp(t->rows[r].name, name) != 0) r++;
    if (r == t->count) {
        t->rows = reallocCheck(t->rows, sizeof(MetricRow) * (size_t)(t->count + 1));
        memset(&t->rows[r], 0, sizeof(MetricRow));
        snprintf(t->rows[r].name, sizeof t->rows[r].name, "%s", name);
        for (int m = 0; m < MAX_INPUTS; m++) t->rows[r].value[m] = NAN;
        t->count++;
    }
    t->rows[r].value[model] = value;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void eval_mcq(Encoder *enc, int model, const char *path, const EvalArgs *args,
                     MetricTable *table) {
    McqResult r;
    evaluate_mcq(enc, path, args->image_root, !args->quiet, (TieRule)args->ties, &r);
    char name[160];
    snprintf(name, sizeof name, "%s MCQ", base_name(path));
    record(table, model, name, 100 * r.accuracy);
    for (int t = 0; t < MCQ_N_TYPES; t++) {
        snprintf(name, sizeof name, "%s MCQ %s", base_name(path), mcq_type_name((McqType)t));
        record(table, model, name, 100 * r.accuracy_by_type[t]);
    }
}

static void eval_retrieval(Encoder *enc, int model, const char *path, const EvalArgs *args,
                           MetricTable *table) {
    RetrievalResult r;
    evaluate_retrieval(enc, path, args->image_root, !args->quiet, (TieRule)args->ties, &r);
    char name[160];
    for (int k = 0; k < METRICS_N_RECALL; k++) {
        snprintf(name, sizeof name, "%s T2I R@%d", base_name(path), metrics_recall_k[k]);
        record(table, model, name, 100 * r.t2i[k]);
    }
    for (int k = 0; k < METRICS_N_RECALL; k++) {
        snprintf(name, sizeof name, "%s I2T R@%d", base_name(path), metrics_recall_k[k]);
        record(table, model, name, 100 * r.i2t[k]);
    }
}

static void eval_ccneg(Encoder *enc, int model, const char *path, const EvalArgs *args,
                       MetricTable *table) {
    char name[160];
    snprintf(name, sizeof name, "%s CC-Neg acc", base_name(path));
    record(table, model, name, 100 * evaluate_ccneg(enc, path, args->image_root, !args->quiet, (TieRule)args->ties));
}

static void eval_probe(Encoder *enc, int model, const char *path, const EvalArgs *args, MetricTable *table) {
    ProbeResult r;
    evaluate_probe(enc, path, args->image_root, !args->quiet, &r);
    char name[160];
    double worst = INFINITY;
    for (int k = 0; k < r.n_kinds; k++) {
        snprintf(name, sizeof name, "%s probe AUC %s", base_name(path), r.kind[k]);
        record(table, model, name, 100 * r.auc[k]);
        if (!isnan(r.auc[k])) worst = fmin(worst, r.auc[k]);
    }
    snprintf(name, sizeof name, "%s probe AUC min", base_name(path));
    record(table, model, name, isinf(worst) ? NAN : 100 * worst);
}

static void eval_zeroshot(Encoder *enc, int model, const EvalArgs *args, MetricTable *table) {
    double top1, top5;
    evaluate_zeroshot(enc, args->zeroshot, args->templates, &top1, &top5);
    record(table, model, "zero-shot top-1", 100 * top1);
    record(table, model, "zero-shot top-5", 100 * top5);
}

static void print_table(const MetricTable *t, const EvalArgs *args) {
    printf("| metric |");
    for (int m = 0; m < args->models.count; m++) printf(" %s |", args->names[m]);
    printf("\n|---|");
    for (int m = 0; m < args->models.count; m++) printf("---:|");
    printf("\n");
    for (int r = 0; r < t->count; r++) {
        printf("| %s |", t->rows[r].name);
        for (int m = 0; m < args->models.count; m++) {
            double v = t->rows[r].value[m];
            if (isnan(v)) printf(" - |");
            else printf(" %.1f |", v);
        }
        printf("\n");
    }
}

static void write_json(const MetricTable *t, const EvalArgs *args) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "ties", tie_rule_names[args->ties]);
    for (int m = 0; m < args->models.count; m++) {
        cJSON *model = cJSON_AddObjectToObject(root, args->names[m]);
        cJSON_AddStringToObject(model, "path", args->models.path[m]);
        for (int r = 0; r < t->count; r++) {
            double v = t->rows[r].value[m];
            if (isnan(v)) cJSON_AddNullToObject(model, t->rows[r].name);
            else cJSON_AddNumberToObject(model, t->rows[r].name, v);
        }
    }
    char *text = cJSON_Print(root);
    if (write_file_atomic(args->json, text, strlen(text)) != 0) die("%s: cannot write", args->json);
    free(text);
    cJSON_Delete(root);
}

int main(int argc, char **argv) {
    EvalArgs args = {0};
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    if (args.models.count == 0) cli_fail(&PROGRAM, "give at least one --model");
    if (!args.mcq.count && !args.retrieval.count && !args.ccneg.count && !args.probe.count && !args.zeroshot)
        cli_fail(&PROGRAM, "nothing to evaluate: give --mcq, --retrieval, --ccneg, --probe or --zeroshot");
    if (!args.zeroshot != !args.templates) cli_fail(&PROGRAM, "--zeroshot and --templates go together");
    for (int m = 0; m < args.models.count; m++)
        if (!args.names[m]) args.names[m] = args.models.path[m];
    /* an unwritable --json is found now, not after the whole evaluation */
    if (args.json) {
        char probe[4096];
        snprintf(probe, sizeof probe, "%s.probe%ld", args.json, (long)getpid());
        if (write_file_atomic(probe, "", 0) != 0) die("--json %s: cannot write there: %s", args.json, strerror(errno));
        unlink(probe);
    }

    char backend[256];
    const Backend *be =
        backend_select((BackendChoice)args.backend, (Precision)args.precision, 0, backend, sizeof backend);
    if (!args.quiet) fprintf(stderr, "backend %s\n", backend);
    MetricTable results = {0};
    for (int m = 0; m < args.models.count; m++) {
        Encoder enc;
        char err[1024];
        if (encoder_open(&enc, args.models.path[m], args.batch, be, err, sizeof err) != 0) die("%s", err);
        if (!args.quiet) fprintf(stderr, "model %s\n", args.names[m]);
        for (int i = 0; i < args.mcq.count; i++) eval_mcq(&enc, m, args.mcq.path[i], &args, &results);
        for (int i = 0; i < args.retrieval.count; i++)
            eval_retrieval(&enc, m, args.retrieval.path[i], &args, &results);
        for (int i = 0; i < args.ccneg.count; i++) eval_ccneg(&enc, m, args.ccneg.path[i], &args, &results);
        for (int i = 0; i < args.probe.count; i++) eval_probe(&enc, m, args.probe.path[i], &args, &results);
        if (args.zeroshot) eval_zeroshot(&enc, m, &args, &results);
        encoder_close(&enc);
    }
    fprintf(stderr, "scores in %%, ties scored %s (--ties)\n", tie_rule_names[args.ties]);
    print_table(&results, &args);
    if (args.json) write_json(&results, &args);
    free(results.rows);
    return 0;
}
