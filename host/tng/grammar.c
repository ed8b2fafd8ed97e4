/*
 * grammar.c: reading captions for the TNG generator (grammar.h).
 *
 * The one design choice: closed word lists, written out, instead of a tagger. Captions use a
 * small vocabulary of verbs and function words, the lists say exactly what is recognised, and
 * a word outside them is left as it is: a miss keeps the old behaviour, never invents a text.
 */
#include "tng/grammar.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: reallocCheck

/* Verbs captions use, as base, -s form, -ing form. Left out on purpose: verbs whose -s form
 * is a common plural noun after another noun ("bus stops", "ocean waves", "tree leaves",
 * "cinnamon rolls", "book covers", "baseball bats", "car races"). */
static const char *const VERBS[][3] = {
    {"sit", "sits", "sitting"},        {"stand", "stands", "standing"},    {"walk", "walks", "walking"},
    {"run", "runs", "running"},        {"ride", "rides", "riding"},        {"hold", "holds", "holding"},
    {"eat", "eats", "eating"},         {"drink", "drinks", "drinking"},    {"play", "plays", "playing"},
    {"look", "looks", "looking"},      {"fly", "flies", "flying"},         {"lie", "lies", "lying"},
    {"lay", "lays", "laying"},         {"rest", "rests", "resting"},       {"wait", "waits", "waiting"},
    {"carry", "carries", "carrying"},  {"watch", "watches", "watching"},   {"throw", "throws", "throwing"},
    {"catch", "catches", "catching"},  {"hit", "hits", "hitting"},         {"swing", "swings", "swinging"},
    {"drive", "drives", "driving"},    {"cross", "crosses", "crossing"},   {"pull", "pulls", "pulling"},
    {"push", "pushes", "pushing"},     {"graze", "grazes", "grazing"},     {"cut", "cuts", "cutting"},
    {"prepare", "prepares", "preparing"}, {"wear", "wears", "wearing"},    {"jump", "jumps", "jumping"},
    {"sleep", "sleeps", "sleeping"},   {"hang", "hangs", "hanging"},       {"lean", "leans", "leaning"},
    {"float", "floats", "floating"},   {"travel", "travels", "traveling"}, {"pass", "passes", "passing"},
    {"move", "moves", "moving"},       {"talk", "talks", "talking"},       {"read", "reads", "reading"},
    {"use", "uses", "using"},          {"take", "takes", "taking"},        {"make", "makes", "making"},
    {"cook", "cooks", "cooking"},      {"smile", "smiles", "smiling"},     {"pose", "poses", "posing"},
    {"skate", "skates", "skating"},    {"ski", "skis", "skiing"},          {"surf", "surfs", "surfing"},
    {"climb", "climbs", "climbing"},   {"reach", "reaches", "reaching"},   {"feed", "feeds", "feeding"},
    {"pet", "pets", "petting"},        {"hug", "hugs", "hugging"},         {"kick", "kicks", "kicking"},
    {"serve", "serves", "serving"},    {"swim", "swims", "swimming"},      {"dive", "dives", "diving"},
    {"chase", "chases", "chasing"},    {"bite", "bites", "biting"},        {"lick", "licks", "licking"},
    {"stare", "stares", "staring"},    {"perch", "perches", "perching"},   {"land", "lands", "landing"},
    {"sail", "sails", "sailing"},      {"wash", "washes", "washing"},      {"paint", "paints", "painting"},
    {"show", "shows", "showing"},      {"display", "displays", "displaying"}, {"contain", "contains", "containing"},
    {"sell", "sells", "selling"},      {"fill", "fills", "filling"},       {"point", "points", "pointing"},
    {"blow", "blows", "blowing"},      {"grab", "grabs", "grabbing"},      {"gather", "gathers", "gathering"},
    {"go", "goes", "going"},           {"come", "comes", "coming"},        {"pour", "pours", "pouring"},
    {"turn", "turns", "turning"},      {"kneel", "kneels", "kneeling"},    {"bend", "bends", "bending"},
    {"fix", "fixes", "fixing"},        {"open", "opens", "opening"},       {"herd", "herds", "herding"},
    {"follow", "follows", "following"}, {"approach", "approaches", "approaching"}, {"enter", "enters", "entering"},
    {"share", "shares", "sharing"},    {"pick", "picks", "picking"},       {"appear", "appears", "appearing"},
    {"remain", "remains", "remaining"}, {"overlook", "overlooks", "overlooking"}, {"cuddle", "cuddles", "cuddling"},
    {"sniff", "sniffs", "sniffing"},   {"hop", "hops", "hopping"},         {"trot", "trots", "trotting"},
    {"roam", "roams", "roaming"},      {"drag", "drags", "dragging"},      {"tow", "tows", "towing"},
    {"chew", "chews", "chewing"},      {"wade", "wades", "wading"},        {"splash", "splashes", "splashing"},
    {"check", "checks", "checking"},   {"pitch", "pitches", "pitching"},
};
enum { N_VERBS = sizeof VERBS / sizeof VERBS[0], BASE = 0, S_FORM = 1, ING = 2 };

/* Function words, each list NULL-terminated. */
static const char *const PREPOSITIONS[] = {
    "on", "in", "at", "near", "next", "under", "by", "behind", "inside", "outside", "above", "over",
    "beside", "between", "with", "from", "against", "along", "across", "around", "into", "onto",
    "through", "up", "down", "off", "out", "underneath", "beneath", "below", "atop", "among", "upon",
    "toward", "towards", "alongside", "within", "without", "past", "of", "for", "to", "like", NULL};
static const char *const BE[] = {"is", "are", "was", "were", NULL};
static const char *const HAVE[] = {"has", "have", NULL};
/* before is/are: no subject of a main clause ("there is", "a man who is") */
static const char *const NOT_SUBJECTS[] = {"there", "here", "this", "that", "it", "what", "who", "which", "where", NULL};
static const char *const EXPLETIVES[] = {"there", "here", "this", "it", NULL};
static const char *const SINGULAR_SUBJECTS[] = {"he", "she", "it", "someone", "somebody", "everyone", "nobody", NULL};
static const char *const PLURAL_SUBJECTS[] = {"people", "they", NULL};
static const char *const POSSESSIVES[] = {"his", "her", "its", "their", "my", "your", "our", NULL};
/* "a photo of", "a slice of", "the corner of": the noun frames, measures or locates what
 * follows, and is no thing of its own */
static const char *const FRAMES_AND_PORTIONS[] = {
    "photo", "photograph", "picture", "image", "snapshot", "shot", "view", "closeup", "drawing", "painting",
    "slice", "piece", "serving", "portion", "helping", "bite", "scoop", "chunk", "strip", "bit",
    "corner", "edge", "end", "side", "top", "bottom", "front", "back", "middle", "center", "part", NULL};
/* past participles that do not end in -ed ("is made of", "are seen") */
static const char *const IRREGULAR_PARTICIPLES[] = {
    "made", "seen", "shown", "taken", "left", "set", "built", "held", "lit", "hung", "laid", "spread",
    "done", "worn", "sewn", "broken", "frozen", "fallen", "stuck", "cut", "shot", "caught", "bought",
    "sold", "found", "kept", "sent", "put", "sat", "stood", "gone", "drawn", "grown", "thrown", "blown",
    "driven", "ridden", "eaten", "written", "hidden", "given", "known", "being", NULL};

static int in_list(const char *word, const char *const *list) {
    for (; *list; list++)
        if (strcmp(word, *list) == 0) return 1;
    return 0;
}

static int ends_with(const char *word, const char *suffix) {
    size_t n = strlen(word), k = strlen(suffix);
    return n > k && strcmp(word + n - k, suffix) == 0;
}

int lexicon_object(const Lexicon *lex, int lemma) { return !lex->scene[lemma]; }

/* The verb table's entry whose `form` (BASE or S_FORM) is word, or -1. */
static int verb_with_form(const char *word, int form) {
    for (int v = 0; v < N_VERBS; v++)
        if (strcmp(VERBS[v][form], word) == 0) return v;
    return -1;
}

static const char *lower(const CaptionReading *r, int i) { return r->words[i].word.lower; }

/* Word i is a noun that may be a clause's subject: a lexicon noun not right after a
 * preposition ("with fruit" is an object of "with", not a subject). */
static int subject_noun(const CaptionReading *r, int i) {
    return r->words[i].lemma >= 0 && r->words[i].finite == 0 && (i == 0 || !in_list(lower(r, i - 1), PREPOSITIONS));
}

/* Whether word i is a finite verb, given the words before it (see grammar.h); sets verb.
 * after_verb: a table verb was the last finite verb (so "and" may join another). */
static int finite_verb(CaptionReading *r, const Lexicon *lex, int i, int after_verb) {
    CaptionWord *w = &r->words[i];
    const char *word = w->word.lower, *prev = i > 0 ? lower(r, i - 1) : "";
    if (i == 0 || !w->word.plain) return 0;
    if (in_list(word, BE)) return !in_list(prev, NOT_SUBJECTS);
    /* the cheap tests on the word before come first: most words fail them */
    int after_and = after_verb && strcmp(prev, "and") == 0, noun_before = subject_noun(r, i - 1);
    int plural_noun = noun_before && strcmp(prev, lex->lemma[r->words[i - 1].lemma]) != 0;
    int singular_subject = noun_before || in_list(prev, SINGULAR_SUBJECTS);
    int plural_subject = plural_noun || in_list(prev, PLURAL_SUBJECTS);
    if (in_list(word, HAVE)) return singular_subject || plural_subject;
    if (!after_and && !singular_subject && !plural_subject) return 0;
    int s_form = verb_with_form(word, S_FORM), base = verb_with_form(word, BASE);
    if (after_and && (s_form >= 0 || base >= 0)) w->verb = s_form >= 0 ? s_form : base;
    else if (s_form >= 0 && singular_subject) w->verb = s_form;
    else if (base >= 0 && plural_subject) w->verb = base;
    return w->verb >= 0;
}

void caption_read(CaptionReading *r, const Lexicon *lex, const char *text, size_t len) {
    r->n = 0;
    r->clause = 0;
    Word w;
    for (size_t at = 0; word_next(text, len, &at, &w);) {
        if (r->n == r->capacity) {
            r->capacity = r->capacity ? 2 * r->capacity : 32;
            r->words = reallocCheck(r->words, sizeof(CaptionWord) * (size_t)r->capacity);
        }
        CaptionWord *c = &r->words[r->n++];
        *c = (CaptionWord){.word = w, .lemma = -1, .verb = -1};
        if (w.plain) c->lemma = lexicon_lookup(lex, w.lower, w.end - w.start);
    }
    /* verbs first: whether a noun is a compound's first part depends on what follows it */
    r->clause = r->n > 2 && in_list(lower(r, 0), EXPLETIVES) && in_list(lower(r, 1), BE);
    for (int i = 0, after_verb = 0; i < r->n; i++) {
        CaptionWord *c = &r->words[i];
        c->finite = finite_verb(r, lex, i, after_verb);
        if (c->finite) after_verb = c->verb >= 0;
        r->clause |= c->finite;
        c->participle = !c->finite && i > 0 && r->words[i - 1].lemma >= 0 && !r->words[i - 1].finite &&
                        c->word.plain && ends_with(c->word.lower, "ing") &&
                        words_adjacent(text, r->words[i - 1].word.end, c->word.start);
    }
    for (int i = 0; i < r->n; i++) {
        CaptionWord *c = &r->words[i];
        if (c->lemma < 0 || c->finite || c->participle) continue;
        const CaptionWord *next = i + 1 < r->n ? &r->words[i + 1] : NULL;
        int compound = next && next->lemma >= 0 && !next->finite && !next->participle &&
                       words_adjacent(text, c->word.end, next->word.start);
        int framing = next && strcmp(next->word.lower, "of") == 0 && in_list(c->word.lower, FRAMES_AND_PORTIONS);
        int own_body_part = i > 0 && in_list(lower(r, i - 1), POSSESSIVES) && strcmp(lex->category[c->lemma], "body") == 0;
        c->object = lexicon_object(lex, c->lemma) && !compound && !framing && !own_body_part;
    }
}

void caption_reading_free(CaptionReading *r) {
    free(r->words);
    *r = (CaptionReading){0};
}

size_t caption_phrase_capacity(size_t len) { return 3 * len + 16; }

/* After is/are: the word that lets the auxiliary go ("riding", "parked", "on"). */
static int drops_be(const Word *next) {
    const char *w = next->lower;
    return ends_with(w, "ing") || (ends_with(w, "ed") && strlen(w) >= 5) || in_list(w, IRREGULAR_PARTICIPLES) ||
           in_list(w, PREPOSITIONS);
}

size_t caption_noun_phrase(const CaptionReading *r, const char *text, size_t len, char *out) {
    size_t o = 0, copied = 0; /* text[0, copied) is in out already (or dropped) */
    int first = 0;
    /* "there is a dog ...", "this is a photo of ...": the noun phrase is what follows */
    if (r->n > 2 && in_list(lower(r, 0), EXPLETIVES) && in_list(lower(r, 1), BE)) {
        first = 2;
        copied = r->words[2].word.start;
    }
    for (int i = first; i < r->n; i++) {
        const CaptionWord *c = &r->words[i];
        if (!c->finite) continue;
        /* everything up to the verb as it is, then the verb's replacement */
        memcpy(out + o, text + copied, c->word.start - copied);
        o += c->word.start - copied;
        copied = c->word.end;
        const char *replace;
        if (in_list(c->word.lower, BE) && i + 1 < r->n && drops_be(&r->words[i + 1].word)) {
            replace = "";
            copied = r->words[i + 1].word.start; /* the space after it goes too */
        } else if (in_list(c->word.lower, BE)) {
            replace = "that ";
            copied = c->word.start; /* "that is", "that were" */
        } else if (in_list(c->word.lower, HAVE)) {
            replace = "with";
        } else {
            replace = VERBS[c->verb][ING];
        }
        memcpy(out + o, replace, strlen(replace));
        o += strlen(replace);
    }
    memcpy(out + o, text + copied, len - copied);
    return o + len - copied;
}
