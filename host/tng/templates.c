/*
 * templates.c: TNG's sentence templates (templates.h), written for this project. Each table
 * is sized by its lines and held to its count in templates.h, so one that gains or loses a line
 * without its count fails to compile.
 */
#include "tng/templates.h"

const char *const tng_hybrid_templates[] = {
    // the negation follows the caption
    "{c}, with no {x} in sight.",
    "{c}; no {x} can be seen.",
    "{c}, and there is no {x} anywhere.",
    "{c}, but no {x} is present.",
    "{c}, with no {x} around.",
    "{c}. There is no {x} in the scene.",
    "{c}, and not a single {x}.",
    "{c}, minus any {x}.",
    "{c}; the scene has no {x}.",
    "{c}, while no {x} appears.",
    "{c}, and no {x} is visible.",
    "{c}, with no sign of any {x}.",
    "{c}. No {x} is shown.",
    "{c}, lacking any {x}.",
    "{c}; you will not find any {x} here.",
    "{c}, and the picture contains no {x}.",
    "{c}, with no {x} to be found.",
    "{c}, though no {x} is there.",
    "{c}. Missing from the photo: any {x}.",
    "{c}, free of any {x}.",
    "{c}; not one {x} is in view.",
    "{c}, with no {x} nearby.",
    "{c}, and no {x} shows up anywhere.",
    "{c}. The image holds no {x}.",
    "{c}, entirely without any {x}.",
    // the negation comes first
    "No {x} anywhere; {c}.",
    "There is no {x}, only {p}.",
    "No {x} is visible, just {p}.",
    "With no {x} in the frame, {c}.",
    "Not a single {x} here: {c}.",
    "No {x} appears in this scene of {p}.",
    "Without any {x} around, {c}.",
    "No {x} is pictured; {c}.",
    "The photo shows no {x}, but {c}.",
    "There is no {x} to be seen. {C}.",
    "Absent any {x}, {c}.",
    "No {x} here. Instead, {c}.",
    "Free of any {x}: {c}.",
    "Although no {x} is present, the image shows {p}.",
    "Not one {x} in view; {c}.",
    "No {x} is in the picture, which shows {p}.",
    "Lacking any {x}, the scene shows {p}.",
    "There is no {x} in this picture; {c}.",
};

const char *const tng_full_templates[] = {
    "This image has no {n}.",
    "This picture does not show {p}.",
    "No {n} can be seen here.",
    "Nothing here resembles {p}.",
    "The scene does not contain {p}.",
    "You will not find {p} in this photo.",
    "This is not a photo of {p}.",
    "There is no sign of {p}.",
    "Not pictured: {p}.",
    "The image lacks {p}.",
    "This photo has nothing to do with {p}.",
    "What is shown here is not {p}.",
    "You will see no {n} in this picture.",
    "Absent from this image: {p}.",
    "Missing from this scene: {p}.",
    "The photo contains no {n}.",
    "Do not expect {p} here.",
};
// Affirmations: the caption plus {x} stated as present. Image i's hybrids deny {x}; these
// same-words-without-"no" twins are contradictions, so "no" must be what tells them apart.
const char *const tng_affirm_templates[] = {
    "{c}, and {x} too.",
    "{c}, with {x} as well.",
    "{c}, plus {x}.",
    "{c}; {x} can be seen too.",
    "{c}, and there is {x}.",
    "{c}. There is also {x} in the scene.",
    "{c}, next to {x}.",
    "{C}, and {x} is visible.",
};
// Standalone negations: the absence of {x} and nothing else, true of every image without it.
// Each takes {x} after "no", "any", "a single" or "one", so the singular lemma always agrees.
const char *const tng_standalone_templates[] = {
    "There is no {x}.",
    "No {x} in this picture.",
    "Not a single {x} can be seen.",
    "There isn't any {x} here.",
    "This scene has no {x} in it.",
    "No {x} appears anywhere in the image.",
    "The picture shows no {x}.",
    "Not one {x} is in this photo.",
    "You cannot see any {x} here.",
    "A scene without any {x}.",
    "No {x} to be seen.",
    "The image is free of any {x}.",
    "Nowhere in this photo is there a single {x}.",
    "This is a picture with no {x}.",
    "There is not one {x} in view.",
    "No sign of any {x} here.",
};

#define TEMPLATE_COUNT(table) (sizeof(table) / sizeof((table)[0]))
_Static_assert(TEMPLATE_COUNT(tng_hybrid_templates) == TNG_N_HYBRID_TEMPLATES, "TNG_N_HYBRID_TEMPLATES");
_Static_assert(TEMPLATE_COUNT(tng_full_templates) == TNG_N_FULL_TEMPLATES, "TNG_N_FULL_TEMPLATES");
_Static_assert(TEMPLATE_COUNT(tng_affirm_templates) == TNG_N_AFFIRM_TEMPLATES, "TNG_N_AFFIRM_TEMPLATES");
_Static_assert(TEMPLATE_COUNT(tng_standalone_templates) == TNG_N_STANDALONE_TEMPLATES, "TNG_N_STANDALONE_TEMPLATES");
