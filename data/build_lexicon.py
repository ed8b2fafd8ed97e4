#!/usr/bin/env python3
"""build_lexicon.py: the concrete-noun lexicon of the TNG generator, built from WordNet.

Writes data/cache/lexicon.tsv (python3 stdlib only; reads Debian's wordnet-base files in
/usr/share/wordnet, or $WNHOME/dict, or --wordnet DIR). One line per lemma:

    lemma <TAB> category <TAB> surface forms (comma-separated; the lemma first) <TAB> noun tags
          <TAB> flags (comma-separated, "-" for none: "required", "scene")

Key design choice: a word enters only if its *dominant* use is a concrete noun, judged with
WordNet's own sense-tagged frequencies (cntlist.rev, SemCor counts), so a caption word such as
"riding" (a verb/act) or "light" (mostly radiation, an adjective or a verb) is never taken as
an object. The rules, in order:

  1. Candidates: single-word lemmas of index.noun, letters a-z only, 3+ letters, and written in
     lower case in at least one noun synset (drops proper nouns, symbols and acronyms such as
     "He" for helium or "IBM").
  2. Part of speech: the lemma's noun tag count is at least its verb, its adjective (satellites
     included) and its adverb tag count, so "cross" (a verb 55 times, a noun 4), "back" (an
     adverb) and "white" (an adjective) stay out. Ties, including all-zero counts, go to the noun.
  3. Sense: the first noun sense (index.noun lists senses by frequency) lies in a concrete
     lexicographer file, or the concrete senses together carry at least a quarter of the noun
     tag count. The second clause admits "table" (a furniture sense 30 of 82 tags, the data-table
     sense is first) and "heart" (the organ, 25 of 84) but not "light" (22 of 117).
  4. Concrete lexicographer files: noun.animal, noun.artifact, noun.body, noun.food, noun.object,
     noun.person, noun.plant, noun.substance. Left out as not depictable objects: noun.location
     ("field", "side", "top"), noun.group ("people", "crowd"; a known loss for COCO captions),
     noun.shape, noun.Tops and every abstract file.
  5. The synthetic test world names 22 objects (REQUIRED below). Its captions use each one as a
     noun by construction, so each is admitted when WordNet has *any* concrete noun sense for it,
     even where rule 2 or 3 would drop it (cross, ring: verbs in SemCor); such lines carry the
     flag "required". The build fails if one of them has no concrete sense at all.

Scenes. A lemma is flagged "scene" when every one of its senses in its category's lexicographer
file lies under one of the SCENE_ROOTS below (following hypernym and instance-of pointers): a
road or path, a room, a facility, a place of business, a geological formation, a body of water,
land, the sky. Such a noun names where a photo was taken ("street", "kitchen", "zoo", "beach")
rather than a thing in it, so the TNG generator never negates it as an absent object ("A giraffe
at the zoo, with no street in sight"); it still counts as present in a caption. A lemma with one
sense outside the roots keeps its object reading: "toilet" (a room, and the bowl), "bar".

Plural folding follows WordNet's morphy for nouns: the irregular plurals of noun.exc, and the
inverse of morphy's suffix rules (s, ses->s, xes->x, zes->z, ches->ch, shes->sh, men->man,
ies->y). A regular plural is dropped when verb morphy reads it as an inflection of a different,
more frequent verb ("does" is "do", not the plural of "doe"); a lemma is dropped when verb.exc
reads it as an irregular form of a more frequent verb ("felt" is "feel", "saw" is "see"). Every
surface form belongs to exactly one lemma: a lemma owns its own spelling, otherwise the lemma
with more noun tags wins, then the alphabetically first.

Usage: python3 data/build_lexicon.py [--wordnet DIR] [--out data/cache/lexicon.tsv]
"""
import argparse
import collections
import os
import re
import sys

# lexicographer file numbers (WordNet lexnames) of the concrete noun categories
CONCRETE_LEXFILES = {
    5: "animal", 6: "artifact", 8: "body", 13: "food",
    17: "object", 18: "person", 20: "plant", 27: "substance",
}
REQUIRED = ("ball star heart moon cross ring key leaf house tree cup car fish bird flower hat "
            "boat dog cat sofa chair umbrella").split()
MIN_CONCRETE_SHARE = 0.25
# the synsets, named by their first word (any synset of that name), whose hyponyms are settings
# rather than objects; see "Scenes" above
SCENE_ROOTS = {"road", "path", "room", "facility", "place_of_business", "geological_formation",
               "body_of_water", "land", "atmosphere"}
VERB_SUFFIX_RULES = [("s", ""), ("ies", "y"), ("es", "e"), ("es", "")]
# sense-key ss_type digits of cntlist.rev: 1 noun, 2 verb, 3 adjective, 4 adverb, 5 satellite
POS_OF_SS_TYPE = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
WORD_RE = re.compile(r"^[a-z]{3,}$")


def die(msg):
    sys.exit("build_lexicon.py: " + msg)


def wordnet_dir(arg):
    candidates = [arg] if arg else ["/usr/share/wordnet"]
    if not arg and os.environ.get("WNHOME"):
        candidates.insert(0, os.path.join(os.environ["WNHOME"], "dict"))
    for d in candidates:
        if os.path.isfile(os.path.join(d, "index.noun")):
            return d
    die("no WordNet index.noun in %s (install Debian's wordnet-base)" % " or ".join(candidates))


def data_lines(path):
    """The lines of a WordNet file minus its licence header (lines starting with a space)."""
    if not os.path.isfile(path):
        die("missing WordNet file %s" % path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith(" ") and line.strip():
                yield line.rstrip("\n")


def read_index(path):
    """lemma -> synset offsets in sense order (most frequent first)."""
    senses = {}
    for line in data_lines(path):
        f = line.split()
        lemma, n_synsets, n_pointers = f[0], int(f[2]), int(f[3])
        first_offset = 4 + n_pointers + 2  # skip pointer symbols, sense_cnt, tagsense_cnt
        senses[lemma] = f[first_offset:first_offset + n_synsets]
    return senses


def read_noun_synsets(path):
    """offset -> (lexfile number, words as written, offsets of its noun hypernyms and classes)."""
    synsets = {}
    for line in data_lines(path):
        f = line.split()
        n_words = int(f[3], 16)
        at = 4 + 2 * n_words
        parents = []
        for k in range(int(f[at])):
            symbol, offset, pos = f[at + 1 + 4 * k:at + 4 + 4 * k]
            if symbol in ("@", "@i") and pos == "n":
                parents.append(offset)
        synsets[f[0]] = (int(f[1]), [f[4 + 2 * k] for k in range(n_words)], parents)
    return synsets


def under_scene_root(offset, synsets):
    """Whether the synset or one of its ancestors is a SCENE_ROOTS synset."""
    seen, todo = set(), [offset]
    while todo:
        o = todo.pop()
        if o in seen:
            continue
        seen.add(o)
        if synsets[o][1][0].lower() in SCENE_ROOTS:
            return True
        todo.extend(synsets[o][2])
    return False


def is_scene(lemma, category, offsets, synsets):
    """Every sense of lemma in its category's lexicographer file is a setting (see Scenes)."""
    lexfile = next(lf for lf, name in CONCRETE_LEXFILES.items() if name == category)
    senses = [o for o in offsets if synsets[o][0] == lexfile]
    return bool(senses) and all(under_scene_root(o, synsets) for o in senses)


def read_tag_counts(path):
    """(lemma, pos) -> total tag count, and (lemma, noun lexfile) -> tag count."""
    by_pos, by_lexfile = collections.Counter(), collections.Counter()
    for line in data_lines(path):
        key, _, count = line.split()
        lemma, lex_sense = key.split("%", 1)
        ss_type, lexfile = lex_sense.split(":")[0:2]
        by_pos[(lemma, POS_OF_SS_TYPE[ss_type])] += int(count)
        if ss_type == "1":
            by_lexfile[(lemma, int(lexfile))] += int(count)
    return by_pos, by_lexfile


def read_exceptions(path):
    """inflected form -> list of base forms."""
    exc = {}
    for line in data_lines(path):
        f = line.split()
        exc[f[0]] = f[1:]
    return exc


def judge(lemma, offsets, synsets, by_pos, by_lexfile):
    """(category, admitted by the dominance rules, has any concrete sense) for one noun lemma."""
    lexfiles = [synsets[o][0] for o in offsets]
    concrete = [lf for lf in lexfiles if lf in CONCRETE_LEXFILES]
    if not concrete:
        return None, False, False
    # the category is the concrete sense with the most tags (the first one on ties)
    category_lf = max(concrete, key=lambda lf: (by_lexfile[(lemma, lf)], -concrete.index(lf)))
    noun = by_pos[(lemma, "n")]
    pos_ok = all(noun >= by_pos[(lemma, p)] for p in "var")
    concrete_tags = sum(by_lexfile[(lemma, lf)] for lf in set(concrete))
    sense_ok = lexfiles[0] in CONCRETE_LEXFILES or (
        noun > 0 and concrete_tags >= MIN_CONCRETE_SHARE * noun)
    return CONCRETE_LEXFILES[category_lf], pos_ok and sense_ok, True


def regular_plurals(lemma):
    """The regular English plural(s) of lemma, each one that noun morphy's suffix rules fold
    back to lemma (so "boxes", "ladies", "women", but never "boxs" or "boies")."""
    if lemma.endswith(("s", "x", "z", "ch", "sh")):
        return [lemma + "es"]
    if lemma.endswith("y") and lemma[-2] not in "aeiou":
        return [lemma[:-1] + "ies"]
    if lemma.endswith("man"):
        return [lemma[:-3] + "men", lemma + "s"]  # "women", and "humans", "caymans"
    return [lemma + "s"]


def verb_readings(form, verbs, verb_exc):
    """Verb lemmas that verb morphy finds for a spelling."""
    found = set(b for b in verb_exc.get(form, []) if b in verbs)
    for suffix, base_end in VERB_SUFFIX_RULES:
        if form.endswith(suffix):
            base = form[:len(form) - len(suffix)] + base_end
            if base in verbs:
                found.add(base)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wordnet", help="WordNet dict directory (default /usr/share/wordnet)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "cache", "lexicon.tsv"))
    args = ap.parse_args()
    wn = wordnet_dir(args.wordnet)

    noun_index = read_index(os.path.join(wn, "index.noun"))
    verbs = set(read_index(os.path.join(wn, "index.verb")))
    synsets = read_noun_synsets(os.path.join(wn, "data.noun"))
    by_pos, by_lexfile = read_tag_counts(os.path.join(wn, "cntlist.rev"))
    noun_exc = read_exceptions(os.path.join(wn, "noun.exc"))
    verb_exc = read_exceptions(os.path.join(wn, "verb.exc"))

    def beaten_by_verb(form, lemma):
        return any(v != lemma and by_pos[(v, "v")] > by_pos[(lemma, "n")]
                   for v in verb_readings(form, verbs, verb_exc))

    lexicon = {}  # lemma -> (category, flags)
    for lemma, offsets in noun_index.items():
        if not WORD_RE.match(lemma):
            continue
        if not any(w == lemma for o in offsets for w in synsets[o][1]):
            continue  # only capitalised spellings: a proper noun or a symbol
        category, admitted, has_concrete = judge(lemma, offsets, synsets, by_pos, by_lexfile)
        required = lemma in REQUIRED
        if required and not has_concrete:
            die("required word %r has no concrete noun sense in %s" % (lemma, wn))
        if required and not admitted:
            lexicon[lemma] = (category, "required")
        elif admitted and not any(b != lemma and by_pos[(b, "v")] > by_pos[(lemma, "n")]
                                  for b in verb_exc.get(lemma, [])):
            lexicon[lemma] = (category, "-")
    missing = [w for w in REQUIRED if w not in lexicon]
    if missing:
        die("required words missing from index.noun: %s" % " ".join(missing))

    # surface form -> the lemmas it may be a plural of
    plural_of = collections.defaultdict(set)
    irregular = set()
    for form, bases in noun_exc.items():
        for b in bases:
            if b in lexicon and WORD_RE.match(form):
                plural_of[form].add(b)
                irregular.add(b)
    for lemma in lexicon:
        if lemma in irregular:
            continue  # "children" only, never "childs"
        for form in regular_plurals(lemma):
            if not beaten_by_verb(form, lemma):
                plural_of[form].add(lemma)
    # A lemma that is also the plural of another ("glasses", "rings", "waters") folds into the
    # singular: treating both as one object can only make the absence test stricter.
    for form in plural_of:
        lexicon.pop(form, None)
    forms = {lemma: [lemma] for lemma in lexicon}
    for form in sorted(plural_of):
        owners = [b for b in plural_of[form] if b in lexicon]
        if owners:
            forms[min(owners, key=lambda b: (-by_pos[(b, "n")], b))].append(form)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("# lexicon.tsv: concrete nouns from WordNet (%s), built by data/build_lexicon.py\n"
                % wn)
        f.write("# lemma\tcategory\tforms\tnoun_tags\tflags\n")
        for lemma in sorted(lexicon):
            category, flags = lexicon[lemma]
            if is_scene(lemma, category, noun_index[lemma], synsets):
                flags = "scene" if flags == "-" else flags + ",scene"
            f.write("%s\t%s\t%s\t%d\t%s\n" % (lemma, category, ",".join(forms[lemma]),
                                                by_pos[(lemma, "n")], flags))
    os.replace(tmp, args.out)
    counts = collections.Counter(c for c, _ in lexicon.values())
    print("build_lexicon.py: wrote %s: %d lemmas (%s)" % (
        args.out, len(lexicon), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


if __name__ == "__main__":
    main()
