/*
 * grammar.h: the little English the TNG generator needs to read a caption: which of its
 * nouns name things in the picture (objects to deny or affirm), and the caption as a noun
 * phrase for the templates that embed it as one ("The photo contains no {n}.").
 *
 * Words are words.h's, nouns the lexicon's (text/lexicon.h), verbs a table of the verbs
 * captions use (grammar.c). Every rule is local: a word, its neighbours, and whether a
 * finite verb came before.
 *
 * Objects. Every lexicon noun of a caption counts as present in it (the generator never calls
 * absent what the caption names in any role), but one is an OBJECT only when it names a thing
 * in the picture. It is not when
 *   - the lexicon flags it scene ("street", "kitchen", "zoo": where the photo was taken);
 *   - it is a body part after a possessive ("in its mouth", "his teeth": a part of someone in
 *     the picture, which every person or animal has; a heart drawn as a shape stays one);
 *   - it modifies the noun right after it, joined by a space or a hyphen: a compound's first
 *     part ("decker" of "double decker bus", "tile" of "tile floor"); not across a comma or
 *     an apostrophe ("a man's hat" keeps "man");
 *   - it is a frame, a portion or a part followed by "of" ("a photo of", "a slice of", "the
 *     corner of");
 *   - it is read as a verb: an -ing word right after a noun ("a player serving the ball"), or
 *     a finite verb (below).
 *
 * Clauses. Most captions are noun phrases ("a man riding a horse"), some are clauses ("a man
 * rides a horse", "a man is riding a horse", "there is a dog on a sofa"), which read badly
 * where a template expects a noun phrase ("The photo contains no man rides a horse"). A
 * finite verb is
 *   - is/are/was/were after a word other than there, here, this, that, it, what, who, which;
 *   - has/have after a noun or a subject pronoun;
 *   - a table verb in its -s form after a noun or he/she/it/someone, or in its base form after
 *     a plural noun or people/they, that noun not right after a preposition (so "a market
 *     with fruit stands" holds no verb);
 *   - a table verb right after "and" once a finite verb came ("sits and reads").
 * The noun phrase drops a leading there/here/this/it + is/are; drops is/are before an -ing
 * word, a past participle or a preposition ("a man riding", "a bus parked", "a cat on") and
 * makes it "that is" before anything else ("a bus that is red"); makes has/have "with" and a
 * table verb its -ing form ("a woman holding an umbrella walking down a street").
 */
#ifndef TNG_GRAMMAR_H
#define TNG_GRAMMAR_H

#include <stddef.h>

#include "text/lexicon.h" // defines: Lexicon, lexicon_lookup
#include "text/words.h"   // defines: Word, word_next

typedef struct {
    Word word;
    int lemma;        /* lexicon id, -1: no lexicon noun */
    int verb;         /* index in the verb table, -1: none */
    int finite;       /* 1: a finite verb (is/are, has/have or a table verb) */
    int participle;   /* 1: an -ing word read as a verb after a noun */
    int object;       /* 1: a lexicon noun naming a thing in the picture (see above) */
} CaptionWord;

/* One caption read; reused from caption to caption (start from a zeroed one). */
typedef struct {
    CaptionWord *words;
    int n, capacity;
    int clause; /* 1: a clause: it holds a finite verb or starts "there is" and the like */
} CaptionReading;

/* Reads text[0, len) into r. */
void caption_read(CaptionReading *r, const Lexicon *lex, const char *text, size_t len);
void caption_reading_free(CaptionReading *r);

/* Whether a lemma can be an object in any caption: not a scene noun. */
int lexicon_object(const Lexicon *lex, int lemma);

/* The bytes caption_noun_phrase may write for a text of len bytes. */
size_t caption_phrase_capacity(size_t len);
/* The caption r was read from (text, len) as a noun phrase, into out; returns its length.
 * A caption that is no clause comes out as it is. */
size_t caption_noun_phrase(const CaptionReading *r, const char *text, size_t len, char *out);

#endif
