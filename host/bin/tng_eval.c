/*
 * tng_eval: measure negation understanding. For each model given, embeds the evaluation
 * sets and prints one Markdown table (models x metrics), optionally also as JSON:
 *   --mcq        NegBench multiple choice: accuracy overall and per type
 *   --retrieval  text->image and image->text Recall@1/5/10 (also negated retrieval files)
 *   --ccneg      CC-Neg: the true caption must outscore its negation
 *   --zeroshot   a folder of class folders, prompts from --templates: top-1 / top-5
 * Embeddings are cosine similarities of L2-normalised features, as NegBench scores them.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/cli.h"      // defines: CliOption, cli_getopt_table, cli_usage
#include "util/common.h"   // defines: die, mallocCheck
#include "eval/encoder.h"  // defines: Encoder, encoder_open, encoder_close
#include "eval/evaluate.h" // defines: evaluate_mcq, evaluate_retrieval, evaluate_ccneg, evaluate_zeroshot

static const CliOption OPTIONS[] = {
    {"model", "DIR", "model to evaluate: HF/tng model dir or tng run dir (repeatable)"},
    {"name", "NAME", "column label of the preceding --model (default: its path)"},
    {"mcq", "CSV", "NegBench multiple-choice CSV (repeatable)"},
    {"retrieval", "CSV", "NegBench retrieval CSV: filepath,captions (repeatable)"},
    {"ccneg", "CSV", "CC-Neg CSV: image_path,caption,negated_caption (repeatable)"},
    {"zeroshot", "DIR", "zero-shot classification: one folder of images per class"},
    {"templates", "FILE", "prompt templates for --zeroshot, one per line, {} = class name"},
    {"image-root", "DIR", "re-root the image paths inside the CSV files"},
    {"json", "FILE", "also write the results as JSON"},
    {"batch", "N", "images or texts per forward pass (default 64)"},
    {"quiet", NULL, "no progress lines"},
    {"help", NULL, "show this help"},
};
enum { OPT_MODEL, OPT_NAME, OPT_MCQ, OPT_RETRIEVAL, OPT_CCNEG, OPT_ZEROSHOT, OPT_TEMPLATES,
       OPT_IMAGE_ROOT, OPT_JSON, OPT_BATCH, OPT_QUIET, OPT_HELP, N_OPTIONS };

#define MAX_INPUTS 32

typedef struct {
    const char *path[MAX_INPUTS];
    int count;
} PathList;

static void push_path(PathList *list, const char *what, const char *path) {
    if (list->count == MAX_INPUTS) die("at most %d %s arguments", MAX_INPUTS, what);
    list->path[list->count++] = path;
}

typedef struct {
    PathList models, mcq, retrieval, ccneg;
    const char *names[MAX_INPUTS];
    const char *zeroshot, *templates, *image_root, *json;
    int batch, progress;
} EvalArgs;

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
    evaluate_mcq(enc, path, args->image_root, args->progress, TIES_STRICT, &r);
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
    evaluate_retrieval(enc, path, args->image_root, args->progress, TIES_STRICT, &r);
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
    record(table, model, name, 100 * evaluate_ccneg(enc, path, args->image_root, args->progress, TIES_STRICT));
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

static void usage(FILE *out) {
    cli_usage(out, "tng_eval", "--model DIR [--model DIR]... [--mcq CSV] [--retrieval CSV] [--ccneg CSV] ...",
              "Evaluates CLIP models on negation benchmarks and prints a Markdown table.", OPTIONS,
              N_OPTIONS);
}

int main(int argc, char **argv) {
    EvalArgs args = {.batch = 64, .progress = 1};
    struct option *table = cli_getopt_table(OPTIONS, N_OPTIONS);
    for (int opt; (opt = getopt_long(argc, argv, "", table, NULL)) != -1;) {
        switch (opt - CLI_OPTION_BASE) {
        case OPT_MODEL: push_path(&args.models, "--model", optarg); break;
        case OPT_NAME:
            if (args.models.count == 0) { fprintf(stderr, "tng: --name must follow a --model\n"); exit(2); }
            args.names[args.models.count - 1] = optarg;
            break;
        case OPT_MCQ: push_path(&args.mcq, "--mcq", optarg); break;
        case OPT_RETRIEVAL: push_path(&args.retrieval, "--retrieval", optarg); break;
        case OPT_CCNEG: push_path(&args.ccneg, "--ccneg", optarg); break;
        case OPT_ZEROSHOT: args.zeroshot = optarg; break;
        case OPT_TEMPLATES: args.templates = optarg; break;
        case OPT_IMAGE_ROOT: args.image_root = optarg; break;
        case OPT_JSON: args.json = optarg; break;
        case OPT_BATCH: args.batch = (int)cli_long("batch", optarg, 1, 4096); break;
        case OPT_QUIET: args.progress = 0; break;
        case OPT_HELP: usage(stdout); exit(0); /* exit, not return: the table is still held */
        default: usage(stderr); exit(2);
        }
    }
    free(table);
    if (optind < argc) { fprintf(stderr, "tng: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (args.models.count == 0) { fprintf(stderr, "tng: give at least one --model\n"); usage(stderr); return 2; }
    if (!args.mcq.count && !args.retrieval.count && !args.ccneg.count && !args.zeroshot) {
        fprintf(stderr, "tng: nothing to evaluate: give --mcq, --retrieval, --ccneg or --zeroshot\n");
        return 2;
    }
    if (!args.zeroshot != !args.templates) {
        fprintf(stderr, "tng: --zeroshot and --templates go together\n");
        return 2;
    }
    for (int m = 0; m < args.models.count; m++)
        if (!args.names[m]) args.names[m] = args.models.path[m];

    MetricTable results = {0};
    for (int m = 0; m < args.models.count; m++) {
        Encoder enc;
        char err[1024];
        if (encoder_open(&enc, args.models.path[m], args.batch, err, sizeof err) != 0) die("%s", err);
        if (args.progress) fprintf(stderr, "model %s\n", args.names[m]);
        for (int i = 0; i < args.mcq.count; i++) eval_mcq(&enc, m, args.mcq.path[i], &args, &results);
        for (int i = 0; i < args.retrieval.count; i++)
            eval_retrieval(&enc, m, args.retrieval.path[i], &args, &results);
        for (int i = 0; i < args.ccneg.count; i++) eval_ccneg(&enc, m, args.ccneg.path[i], &args, &results);
        if (args.zeroshot) eval_zeroshot(&enc, m, &args, &results);
        encoder_close(&enc);
    }
    print_table(&results, &args);
    if (args.json) write_json(&results, &args);
    free(results.rows);
    return 0;
}
