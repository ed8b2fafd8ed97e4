/*
 * test_recipe.c: tng_train's named recipes (--recipe, train/recipe.h) through the real parser
 * (train_options_parse), in process.
 *
 * Each recipe is checked field by field against the set-up written out here from the released
 * script (docs/REFERENCE.md §7), not against recipe.c's table, so a wrong value in the table
 * fails. Then: an option given on the command line wins before and after --recipe, the
 * options it settles indirectly (--steps, --tng-compat, --tng off) too, and the settings
 * block marks exactly those as overridden. tng_train --help listing the recipes is checked in
 * test_train_cli (it exits, so it runs as a subprocess there).
 *
 * Every field of TrainOptions is compared: a field no recipe sets must keep its default.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/options.h" // defines: TrainOptions, train_options_parse, train_options_print
#include "train/recipe.h"  // defines: train_recipes, recipe_find
#include "util/common.h"   // defines: die

enum { MAX_ARGS = 32 };

/* Parses the NULL-terminated arguments as tng_train's command line. */
static TrainOptions parse(const char *first, ...) {
    char *argv[MAX_ARGS + 1] = {"tng_train"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        if (argc == MAX_ARGS) die("too many arguments");
        argv[argc++] = (char *)a; /* getopt may reorder argv, never writes the strings */
    }
    va_end(ap);
    argv[argc] = NULL;
    optind = 0; /* glibc: start getopt afresh for each command line */
    TrainOptions o;
    train_options_parse(&o, argc, argv);
    return o;
}

/* ----------------------------------------------------------------------------
 * Field-by-field comparison */

static int same_text(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

#define SAME(field) CHECK(got->field == want->field, "%s: " #field " differs", what)
#define SAME_TEXT(field) CHECK(same_text(got->field, want->field), "%s: " #field " differs", what)

static void check_options(const char *what, const TrainOptions *got, const TrainOptions *want) {
    SAME(recipe); SAME(recipe_overridden);
    SAME_TEXT(config); SAME_TEXT(init); SAME_TEXT(data); SAME_TEXT(format); SAME_TEXT(image_root);
    SAME(captions_all); SAME(fast_decode);
    SAME(tng); SAME(neg_per_image); SAME(tng_ratio); SAME(contradictions); SAME(contradiction_weight);
    SAME(released); SAME(tng_global); SAME(i2t);
    SAME(temperature); SAME(freeze); SAME(train_vision); SAME(train_text);
    SAME(optim.lr); SAME(optim.beta1); SAME(optim.beta2); SAME(optim.eps); SAME(optim.weight_decay);
    SAME(optim.grad_clip); SAME(optim.warmup_steps); SAME(optim.total_steps); SAME(optim.schedule);
    SAME(optim.decay_set);
    SAME(batch); SAME(accum); SAME(epochs); SAME(steps); SAME(seed);
    SAME_TEXT(out); SAME_TEXT(val_mcq);
    SAME(checkpoint_every); SAME(eval_every); SAME(log_every);
    SAME(resume); SAME(threads); SAME(max_nonfinite); SAME(check_sync); SAME(hang_timeout);
}

/* ----------------------------------------------------------------------------
 * The recipes as the released script has them */

static int recipe_index(const char *name) {
    const Recipe *r = recipe_find(name);
    if (!r) die("no recipe %s", name);
    return (int)(r - train_recipes);
}

/* The bit of option `name` in recipe `recipe`'s overridden mask. */
static uint64_t bit(const char *recipe, const char *name) {
    const Recipe *r = &train_recipes[recipe_index(recipe)];
    for (int k = 0; k < r->count; k++)
        if (strcmp(r->settings[k].option, name) == 0) return 1ULL << k;
    die("recipe %s has no --%s", recipe, name);
}

/* The defaults with the released script's set-up (both recipes share it). */
static TrainOptions released_setup(void) {
    TrainOptions want = parse(NULL);
    want.freeze = 0, want.train_vision = 0, want.train_text = 1; /* vision frozen */
    want.temperature = 0.07f;
    /* torch.optim.AdamW(model.parameters(), lr=5e-6) */
    want.optim.lr = 5e-6f, want.optim.weight_decay = 0.01f, want.optim.decay_set = DECAY_ALL;
    want.optim.beta1 = 0.9f, want.optim.beta2 = 0.999f, want.optim.eps = 1e-8f;
    want.optim.schedule = SCHEDULE_CONSTANT, want.optim.warmup_steps = 0, want.optim.grad_clip = 0;
    want.batch = 128, want.accum = 1, want.epochs = 10, want.captions_all = 1;
    want.tng = 1, want.neg_per_image = 2, want.contradictions = 0, want.tng_ratio = 1, want.tng_global = 0;
    return want;
}

static TrainOptions tng_released(void) {
    TrainOptions want = released_setup();
    want.recipe = recipe_index("tng-released");
    want.released = 1, want.i2t = TNG_I2T_RELEASED_RANDOM;
    return want;
}

static TrainOptions tng_fixed(void) {
    TrainOptions want = released_setup();
    want.recipe = recipe_index("tng");
    want.released = 0, want.i2t = TNG_I2T_OWN;
    return want;
}

/* tng with make ablate's best texts: one hybrid, four contradictions, `each` targets */
static TrainOptions tng_ours(void) {
    TrainOptions want = tng_fixed();
    want.recipe = recipe_index("tng-ours");
    want.neg_per_image = 1, want.contradictions = 4, want.i2t = TNG_I2T_EACH;
    return want;
}

/* ----------------------------------------------------------------------------
 * Tests */

/* Without --recipe nothing changes: open_clip's AdamW settings, tng's own defaults. */
static void test_no_recipe_keeps_the_defaults(void) {
    TrainOptions o = parse(NULL);
    CHECK(o.recipe == -1 && o.recipe_overridden == 0, "recipe %d", o.recipe);
    CHECK(o.optim.beta1 == 0.9f && o.optim.beta2 == 0.98f && o.optim.eps == 1e-6f, "betas/eps changed");
    CHECK(o.optim.decay_set == DECAY_MATRICES && o.optim.weight_decay == 0.01f && o.optim.lr == 5e-6f,
          "decay %d wd %g lr %g", o.optim.decay_set, o.optim.weight_decay, o.optim.lr);
    CHECK(o.epochs == 1 && o.captions_all == 0 && o.released == 0 && o.i2t == TNG_I2T_OWN,
          "epochs %d captions %d released %d i2t %d", o.epochs, o.captions_all, o.released, o.i2t);
    TrainOptions none = parse("--recipe", "none", NULL);
    check_options("--recipe none", &none, &o);
    TrainOptions released = parse("--tng-compat", "released", NULL);
    CHECK(released.released == 1 && released.i2t == TNG_I2T_RELEASED_RANDOM,
          "--tng-compat released alone still brings released-random (i2t %d)", released.i2t);
    TrainOptions all = parse("--wd-on", "all", NULL);
    CHECK(all.optim.decay_set == DECAY_ALL, "--wd-on all");
}

static void test_each_recipe_field_by_field(void) {
    TrainOptions got = parse("--recipe", "tng-released", NULL), want = tng_released();
    check_options("tng-released", &got, &want);
    got = parse("--recipe", "tng", NULL), want = tng_fixed();
    check_options("tng", &got, &want);
    got = parse("--recipe", "tng-ours", NULL), want = tng_ours();
    check_options("tng-ours", &got, &want);
}

/* An option given wins whatever its position, and is marked overridden. */
static void test_command_line_wins_anywhere(void) {
    TrainOptions want = tng_released();
    want.optim.lr = 1e-5f;
    want.recipe_overridden = bit("tng-released", "lr");
    TrainOptions before = parse("--lr", "1e-5", "--recipe", "tng-released", NULL);
    TrainOptions after = parse("--recipe", "tng-released", "--lr", "1e-5", NULL);
    check_options("--lr before --recipe", &before, &want);
    check_options("--lr after --recipe", &after, &want);

    want = tng_fixed();
    want.i2t = TNG_I2T_MEAN, want.optim.decay_set = DECAY_MATRICES, want.optim.beta2 = 0.98f, want.batch = 4;
    want.recipe_overridden =
        bit("tng", "i2t-target") | bit("tng", "wd-on") | bit("tng", "beta2") | bit("tng", "batch");
    TrainOptions several = parse("--i2t-target", "mean", "--recipe", "tng", "--wd-on", "matrices", "--beta2",
                                 "0.98", "--batch", "4", NULL);
    check_options("several overrides", &several, &want);
}

/* Options that settle a recipe's setting without naming it. */
static void test_indirect_overrides(void) {
    /* --steps replaces --epochs: the recipe's 10 is not applied */
    TrainOptions want = tng_released();
    want.steps = 7, want.epochs = parse(NULL).epochs;
    want.recipe_overridden = bit("tng-released", "epochs");
    TrainOptions got = parse("--recipe", "tng-released", "--steps", "7", NULL);
    check_options("--steps", &got, &want);

    /* --tng-compat ours on the released recipe brings our target too */
    want = tng_released();
    want.released = 0, want.i2t = TNG_I2T_OWN;
    want.recipe_overridden = bit("tng-released", "tng-compat") | bit("tng-released", "i2t-target");
    got = parse("--recipe", "tng-released", "--tng-compat", "ours", NULL);
    check_options("--tng-compat ours", &got, &want);

    /* --tng off: a plain baseline with the recipe's optimizer; its TNG options are moot (and
     * --tng-compat released would be refused with --tng off) */
    want = tng_released();
    TrainOptions defaults = parse(NULL);
    want.tng = 0, want.released = 0, want.i2t = defaults.i2t, want.neg_per_image = defaults.neg_per_image;
    want.recipe_overridden = 0;
    static const char *const moot[] = {"tng", "neg-per-image", "contradictions", "tng-ratio", "tng-scope",
                                       "tng-compat", "i2t-target"};
    for (size_t k = 0; k < sizeof moot / sizeof *moot; k++) want.recipe_overridden |= bit("tng-released", moot[k]);
    got = parse("--tng", "off", "--recipe", "tng-released", NULL);
    check_options("--tng off", &got, &want);
}

/* The settings block prints every setting of the recipe, marks the overridden ones, and its
 * other lines show the values in force. */
static void test_settings_block(void) {
    TrainOptions o = parse("--recipe", "tng-released", "--lr", "1e-5", "--steps", "3", NULL);
    Dist *one = dist_init(NULL, NULL); /* started alone: a world of one, never MPI */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    train_options_print(&o, one, out);
    fclose(out);
    const Recipe *r = &train_recipes[o.recipe];
    CHECK(strstr(text, "  recipe     tng-released: ") != NULL, "no recipe line:\n%s", text);
    for (int k = 0; k < r->count; k++) {
        char setting[128];
        const char *name = r->settings[k].option;
        int overridden = strcmp(name, "lr") == 0 || strcmp(name, "epochs") == 0;
        snprintf(setting, sizeof setting, " --%s %s%s", name, r->settings[k].value,
                 overridden ? " (overridden)" : "");
        const char *at = strstr(text, setting);
        CHECK(at && (overridden || strncmp(at + strlen(setting), " (overridden)", 13) != 0),
              "the block lacks '%s' (or marks it wrongly):\n%s", setting, text);
    }
    CHECK(strstr(text, "AdamW lr 1e-05 wd 0.01 on all, betas (0.9, 0.999) eps 1e-08, constant schedule") != NULL,
          "the optimizer line does not show the values in force:\n%s", text);
    CHECK(strstr(text, "batch      128 x accum 1, steps 3") != NULL, "batch line:\n%s", text);
    free(text);

    o = parse(NULL);
    out = open_memstream(&text, &len);
    train_options_print(&o, one, out);
    dist_finalize(one);
    fclose(out);
    CHECK(strstr(text, "  recipe     none\n") && strstr(text, "wd 0.01 on matrices, betas (0.9, 0.98) eps 1e-06"),
          "the block without a recipe:\n%s", text);
    free(text);
}

int main(void) {
    RUN_TEST(test_no_recipe_keeps_the_defaults);
    RUN_TEST(test_each_recipe_field_by_field);
    RUN_TEST(test_command_line_wins_anywhere);
    RUN_TEST(test_indirect_overrides);
    RUN_TEST(test_settings_block);
    return test_summary();
}
