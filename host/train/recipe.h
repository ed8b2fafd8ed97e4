/*
 * recipe.h: tng_train's named recipes (--recipe NAME): a whole training set-up behind one
 * name, so that "the paper's recipe" is one flag and cannot drift.
 *
 * A recipe is data: a list of settings written as they are typed (option name, value). The
 * same list is applied (through each option's own parser, with its checks), shown by --help
 * and printed in the settings block, so the three cannot disagree. The one choice to know: a
 * recipe only supplies defaults; an option given on the command line wins wherever it stands
 * (train/options.c applies the recipe after the command line is parsed).
 */
#ifndef TNG_RECIPE_H
#define TNG_RECIPE_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *group;  /* the line it is printed on: "adamw", "data", ... */
    const char *option; /* the long name, without the dashes */
    const char *value;  /* as typed */
} RecipeSetting;

typedef struct {
    const char *name; /* as --recipe takes it */
    const char *about;
    const RecipeSetting *settings;
    int count; /* at most 64: a run records the overridden ones as bits */
} Recipe;

enum { N_RECIPES = 3 };
/* tng-released (the authors' released training script), tng (the same, its defects fixed) and
 * tng-ours (tng with the texts make ablate found best). */
extern const Recipe train_recipes[N_RECIPES];

/* The recipe called name, or NULL. */
const Recipe *recipe_find(const char *name);

/* Prints the settings of r one group per line, each line starting with indent and the group's
 * name; a setting whose bit k is set in overridden gets " (overridden)" after its value. */
void recipe_print(const Recipe *r, uint64_t overridden, const char *indent, FILE *out);

#endif
