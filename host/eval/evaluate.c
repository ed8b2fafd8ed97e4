/*
 * evaluate.c: embedding the evaluation sets and scoring them (evaluate.h). Images of a
 * set are embedded once per item; texts in batches through the encoder.
 */
#include "eval/evaluate.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset/dataset.h" // defines: Dataset, dataset_load, DATASET_CSV
#include "eval/probe.h"       // defines: probe_fit, probe_score, probe_auc
#include "util/common.h"      // defines: die, mallocCheck

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static Dataset load_or_die(const char *path, DatasetFormat format, const char *image_root) {
    Dataset ds = {0};
    DatasetOptions opt = {.format = format, .image_root = image_root};
    char err[1024];
    if (dataset_load(path, &opt, &ds, err, sizeof err) != 0) die("%s", err);
    if (ds.count == 0) die("%s: no items", path);
    return ds;
}

/* Where a row whose image failed is reported: the file, its items, and which to keep. */
typedef struct {
    const char *path, *what;
    const Dataset *ds;
    int *keep;
} Skipping;

static int skip_item(void *ctx, int index, const char *why) {
    Skipping *sk = ctx;
    int line = sk->ds->items[index].line;
    if (line) fprintf(stderr, "warning: %s:%d: %s skipped: %s\n", sk->path, line, sk->what, why);
    else fprintf(stderr, "warning: %s: %s %d skipped: %s\n", sk->path, sk->what, index + 1, why);
    sk->keep[index] = 0;
    return 0;
}

/* Embeds each item's image into *out [ds->count, D] (malloc'd). An item whose image cannot be
 * read is dropped from ds, with a warning naming its CSV line, and the scores are over the
 * rest: one missing file costs its row, not the evaluation. Returns the number dropped; none
 * readable ends the program. what names an item in messages ("question", ...). */
static int embed_readable_items(Encoder *enc, const char *path, const char *what, Dataset *ds, float **out,
                                int progress) {
    int n = ds->count, D = enc->dim;
    const char **paths = mallocCheck(sizeof(char *) * (size_t)n);
    int *keep = mallocCheck(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) paths[i] = ds->items[i].image_path, keep[i] = 1;
    float *emb = mallocCheck(sizeof(float) * (size_t)n * D);
    Skipping sk = {.path = path, .what = what, .ds = ds, .keep = keep};
    int skipped = encoder_images_skipping(enc, paths, n, emb, progress, skip_item, &sk);
    if (skipped == n) die("%s: no %s has a readable image (see the warnings above)", path, what);
    if (skipped) {
        fprintf(stderr, "warning: %s: %d of %d %ss skipped (their image cannot be read); the scores are over the "
                "other %d\n", path, skipped, n, what, n - skipped);
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (keep[i]) memmove(emb + (size_t)kept++ * D, emb + (size_t)i * D, sizeof(float) * D);
        dataset_keep(ds, keep);
    }
    free(paths), free(keep);
    *out = emb;
    return skipped;
}

void evaluate_mcq(Encoder *enc, const char *path, const char *image_root, int progress,
                  TieRule ties, McqResult *out) {
    Dataset ds = load_or_die(path, DATASET_NEGBENCH_MCQ, image_root);
    float *image_emb;
    int skipped = embed_readable_items(enc, path, "question", &ds, &image_emb, progress);
    int n = ds.count, D = enc->dim, n_options = ds.items[0].n_captions;
    float *option_emb = mallocCheck(sizeof(float) * (size_t)n * n_options * D);
    const char **texts = mallocCheck(sizeof(char *) * (size_t)n * n_options);
    int *correct = mallocCheck(sizeof(int) * (size_t)n);
    McqType *type = mallocCheck(sizeof(McqType) * (size_t)n);
    for (int q = 0; q < n; q++) {
        const DatasetItem *it = &ds.items[q];
        if (it->n_captions != n_options)
            die("%s: question %d has %d options, the first has %d", path, q, it->n_captions, n_options);
        int t = it->mcq_template ? mcq_type_from_name(it->mcq_template) : -1;
        if (t < 0) die("%s: question %d has template '%s', expected positive, negative or hybrid",
                       path, q, it->mcq_template ? it->mcq_template : "");
        type[q] = (McqType)t;
        correct[q] = it->answer;
        for (int o = 0; o < n_options; o++) texts[(size_t)q * n_options + o] = it->captions[o];
    }
    encoder_texts(enc, texts, n * n_options, option_emb, progress);
    metrics_mcq(image_emb, option_emb, n, n_options, D, correct, type, ties, out);
    out->n_skipped = skipped;
    free(image_emb), free(option_emb), free(texts), free(correct), free(type);
    dataset_free(&ds);
}

void evaluate_retrieval(Encoder *enc, const char *path, const char *image_root, int progress,
                        TieRule ties, RetrievalResult *out) {
    Dataset ds = load_or_die(path, DATASET_NEGBENCH_RETRIEVAL, image_root);
    float *image_emb;
    int skipped = embed_readable_items(enc, path, "image", &ds, &image_emb, progress);
    int n_images = ds.count, D = enc->dim;
    long n_texts = dataset_caption_count(&ds);
    const char **texts = mallocCheck(sizeof(char *) * (size_t)n_texts);
    int *text_image = mallocCheck(sizeof(int) * (size_t)n_texts);
    long t = 0;
    for (int i = 0; i < n_images; i++)
        for (int c = 0; c < ds.items[i].n_captions; c++, t++) {
            texts[t] = ds.items[i].captions[c];
            text_image[t] = i;
        }
    float *text_emb = mallocCheck(sizeof(float) * (size_t)n_texts * D);
    encoder_texts(enc, texts, (int)n_texts, text_emb, progress);
    metrics_retrieval(image_emb, n_images, text_emb, (int)n_texts, text_image, D, ties, out);
    out->n_skipped = skipped;
    free(texts), free(text_image), free(image_emb), free(text_emb);
    dataset_free(&ds);
}

double evaluate_ccneg(Encoder *enc, const char *path, const char *image_root, int progress,
                      TieRule ties) {
    Dataset ds = load_or_die(path, DATASET_CCNEG, image_root);
    float *image_emb;
    embed_readable_items(enc, path, "pair", &ds, &image_emb, progress);
    int n = ds.count, D = enc->dim;
    const char **captions = mallocCheck(sizeof(char *) * (size_t)n * 2);
    for (int i = 0; i < n; i++) {
        if (ds.items[i].n_captions != 2) die("%s: item %d lacks a caption pair", path, i);
        captions[i] = ds.items[i].captions[0];
        captions[n + i] = ds.items[i].captions[1];
    }
    float *text_emb = mallocCheck(sizeof(float) * (size_t)n * 2 * D);
    encoder_texts(enc, captions, 2 * n, text_emb, progress);
    double accuracy = metrics_ccneg(image_emb, text_emb, text_emb + (size_t)n * D, n, D, ties);
    free(captions), free(image_emb), free(text_emb);
    dataset_free(&ds);
    return accuracy;
}

/* ---- zero-shot classification over DIR/<class>/<image> ---- */

/* Kind k's position among the sorted kinds, adding it (in order) when new. */
static int probe_kind(ProbeResult *out, const char *path, const char *name) {
    int k = 0;
    while (k < out->n_kinds && strcmp(out->kind[k], name) < 0) k++;
    if (k < out->n_kinds && strcmp(out->kind[k], name) == 0) return k;
    if (out->n_kinds == PROBE_MAX_KINDS) die("%s: more than %d object kinds", path, PROBE_MAX_KINDS);
    if (strlen(name) >= PROBE_KIND_NAME) die("%s: object name \"%s\" is too long", path, name);
    memmove(out->kind[k + 1], out->kind[k], sizeof out->kind[0] * (size_t)(out->n_kinds - k));
    snprintf(out->kind[k], PROBE_KIND_NAME, "%s", name);
    out->n_kinds++;
    return k;
}

void evaluate_probe(Encoder *enc, const char *path, const char *image_root, int progress, ProbeResult *out) {
    Dataset ds = load_or_die(path, DATASET_CSV, image_root);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < ds.count; i++)
        for (int o = 0; o < ds.items[i].n_objects; o++) probe_kind(out, path, ds.items[i].objects[o]);
    if (!out->n_kinds) die("%s: no objects column (filepath,caption,objects) to probe", path);
    float *emb;
    embed_readable_items(enc, path, "image", &ds, &emb, progress);
    int n = ds.count, D = enc->dim, n_fit = (n + 1) / 2, n_scored = n / 2;
    /* even items fit, odd items are scored */
    size_t row_bytes = sizeof(float) * (size_t)D;
    float *fit_x = mallocCheck(row_bytes * (size_t)n_fit), *scored_x = mallocCheck(row_bytes * (size_t)(n_scored + 1));
    probe_alternate(emb, n, row_bytes, fit_x, scored_x);
    unsigned char *holds = mallocCheck((size_t)n), *fit_y = mallocCheck((size_t)n_fit), *scored_y = mallocCheck((size_t)n_scored + 1);
    double *w = mallocCheck(sizeof(double) * (size_t)(D + 1));
    for (int k = 0; k < out->n_kinds; k++) {
        for (int i = 0; i < n; i++) {
            holds[i] = 0;
            for (int o = 0; o < ds.items[i].n_objects && !holds[i]; o++) holds[i] = strcmp(ds.items[i].objects[o], out->kind[k]) == 0;
        }
        probe_alternate(holds, n, 1, fit_y, scored_y);
        int fit_pos = 0;
        for (int i = 0; i < n_fit; i++) fit_pos += fit_y[i];
        out->auc[k] = NAN;
        if (fit_pos == 0 || fit_pos == n_fit) continue; /* nothing to fit: the AUC stays unknown */
        probe_fit_validated(fit_x, fit_y, n_fit, D, w);
        out->auc[k] = probe_scored_auc(w, scored_x, scored_y, n_scored, D);
    }
    out->n_fit = n_fit, out->n_scored = n_scored;
    free(fit_x), free(scored_x), free(holds), free(fit_y), free(scored_y), free(w), free(emb);
    dataset_free(&ds);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of a directory (skipping dot files); dirs_only selects folders. */
static char **list_dir(const char *dir, int dirs_only, int *count) {
    DIR *d = opendir(dir);
    if (!d) die("%s: cannot open folder", dir);
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || (dirs_only ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) continue;
        names = reallocCheck(names, sizeof(char *) * (size_t)(n + 1));
        names[n++] = strdupCheck(path);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof(char *), compare_strings);
    *count = n;
    return names;
}

static void free_list(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void evaluate_zeroshot(Encoder *enc, const char *dir, const char *templates_path, double *top1_out,
                       double *top5_out) {
    size_t size;
    char *text = read_file(templates_path, &size);
    if (!text) die("%s: cannot read the prompt templates", templates_path);
    char *templates[256];
    int n_templates = 0;
    for (char *line = strtok(text, "\n"); line && n_templates < 256; line = strtok(NULL, "\n"))
        if (strstr(line, "{}")) templates[n_templates++] = line;
    if (n_templates == 0) die("%s: no template line contains {}", templates_path);
    int n_classes;
    char **classes = list_dir(dir, 1, &n_classes);
    if (n_classes < 2) die("%s: need at least two class folders", dir);
    int D = enc->dim;
    /* class embedding: mean of its prompts' normalised embeddings, normalised again */
    float *class_emb = callocCheck((size_t)n_classes * D, sizeof(float));
    float *prompt_emb = mallocCheck(sizeof(float) * (size_t)n_templates * D);
    char **prompts = mallocCheck(sizeof(char *) * (size_t)n_templates);
    for (int c = 0; c < n_classes; c++) {
        char label[512];
        snprintf(label, sizeof label, "%s", base_name(classes[c]));
        for (char *p = label; *p; p++) if (*p == '_') *p = ' ';
        for (int k = 0; k < n_templates; k++) {
            const char *hole = strstr(templates[k], "{}");
            size_t len = strlen(templates[k]) + strlen(label);
            prompts[k] = mallocCheck(len);
            snprintf(prompts[k], len, "%.*s%s%s", (int)(hole - templates[k]), templates[k], label, hole + 2);
        }
        encoder_texts(enc, (const char *const *)prompts, n_templates, prompt_emb, 0);
        double norm = 0;
        float *e = class_emb + (size_t)c * D;
        for (int k = 0; k < n_templates; k++) {
            for (int d = 0; d < D; d++) e[d] += prompt_emb[(size_t)k * D + d];
            free(prompts[k]);
        }
        for (int d = 0; d < D; d++) norm += (double)e[d] * e[d];
        for (int d = 0; d < D; d++) e[d] = (float)(e[d] / sqrt(norm));
    }
    int total = 0, top1 = 0, top5 = 0;
    float *image_emb = mallocCheck(sizeof(float) * D);
    for (int c = 0; c < n_classes; c++) {
        int n_images;
        char **images = list_dir(classes[c], 0, &n_images);
        char err[1024];
        for (int i = 0; i < n_images; i++) {
            if (encoder_images(enc, (const char *const *)&images[i], 1, image_emb, 0, err, sizeof err) != 0)
                die("%s", err);
            double own = 0;
            for (int d = 0; d < D; d++) own += (double)image_emb[d] * class_emb[(size_t)c * D + d];
            int better = 0; /* classes scoring at least as high as the true one: ties count against */
            for (int o = 0; o < n_classes; o++) {
                if (o == c) continue;
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)image_emb[d] * class_emb[(size_t)o * D + d];
                better += s >= own;
            }
            total++;
            top1 += better < 1;
            top5 += better < 5;
        }
        free_list(images, n_images);
    }
    if (total == 0) die("%s: no images in the class folders", dir);
    *top1_out = (double)top1 / total;
    *top5_out = (double)top5 / total;
    free(image_emb), free(prompt_emb), free(prompts), free(class_emb), free(text);
    free_list(classes, n_classes);
}

