"""
make_tokenizer_corpus.py: writes the tokenizer parity corpus, tests/fixtures/tokenizer/,
with the ids open_clip gives for every string. tests/test_tokenizer.c checks that
host/text/tokenizer.c gives the very same ids for all of them.

    .venv/bin/python tests/ref/make_tokenizer_corpus.py [--seed 1234] [--out DIR]

The expected output of record i is open_clip.get_tokenizer('ViT-B-32')(text) with context
77, padding removed, written as one line: space-separated ids, SOT first, EOT last.
Files:
  inputs.txt.gz    the raw input bytes, one record per line; a record never holds '\\n' or NUL.
                   Some records are invalid UTF-8 on purpose: their reference text is
                   bytes.decode('utf-8', errors='replace'), the C tokenizer's documented rule.
  blocks.sha256    "<sha256> <first> <count>" per block of BLOCK records: the sha256 of the
                   block's expected lines ("ids\\n" each). This checks every record exactly.
  expected.txt.gz  "<record> <ids>" for the records outside the caption and negation families,
                   so that a failure there names the string and the ids it should give.
The full ids of every record would not fit the ~1.5 MB budget for fixtures; the captions
and negations, the easy bulk, are held by the block hashes alone (--all-expected writes
them out when a block fails).

The strings are seeded and come in families: COCO-like captions built from word lists,
negation sentences, and adversarial Unicode/markup (see the generators below). Two kinds of
candidate are dropped and counted, never silently: strings ftfy would treat as mojibake
(ftfy's fix_encoding, left out of the C port on purpose), and strings with code points that
Python 3.11's Unicode 14 does not assign (the regex module and utf8proc use other Unicode
versions there).
"""
import argparse
import gzip
import hashlib
import os
import random
import unicodedata

import ftfy
import open_clip

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTEXT = 77
BLOCK = 1000

# ---------------------------------------------------------------------------------------------
# Word lists for captions

NOUNS = ("dog cat man woman child boy girl horse cow sheep bird elephant giraffe zebra bear "
         "car truck bus train bicycle motorcycle airplane boat skateboard surfboard kite "
         "frisbee ball umbrella bench table chair sofa couch bed laptop phone television "
         "clock vase book pizza sandwich cake banana apple orange broccoli carrot donut "
         "bowl cup bottle knife fork spoon toilet sink refrigerator oven microwave "
         "teddy bear suitcase backpack handbag tie hat giraffe fire hydrant stop sign "
         "traffic light parking meter street sidewalk building tree flower field beach "
         "ocean wave mountain snow skier snowboard tennis racket baseball bat glove "
         "player crowd kitchen bathroom bedroom window door mirror plate").split()
ADJECTIVES = ("small large big little old young red blue green yellow white black brown "
              "gray pink purple orange wooden metal plastic empty full open closed wet dry "
              "tall short bright dark sunny cloudy busy quiet crowded colorful striped "
              "fluffy shiny dirty clean broken new modern vintage").split()
VERBS = ("sitting standing lying walking running riding holding eating drinking playing "
         "looking sleeping flying jumping carrying watching parked waiting resting "
         "crossing swimming surfing skiing throwing catching cutting cooking reading").split()
PREPOSITIONS = ("on in near next to under beside behind in front of on top of inside "
                "outside across along by against over").split(" ")
PLACES = ("the street", "a kitchen", "the beach", "a field", "the park", "a living room",
          "the snow", "a table", "the water", "a city", "the grass", "a parking lot",
          "an airport", "a zoo", "the sidewalk", "a bathroom", "a desk", "the sky")
COUNTS = ("two", "three", "four", "several", "many", "a few", "a group of", "a couple of",
          "2", "3", "10", "a pair of", "dozens of")


def article(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def noun_phrase(rng):
    noun = rng.choice(NOUNS)
    if rng.random() < 0.35:
        noun = rng.choice(ADJECTIVES) + " " + noun
    if rng.random() < 0.15:
        return rng.choice(COUNTS) + " " + noun + "s"
    return article(noun)


def scene(rng):
    """What one image shows: the slots its captions are written from."""
    return {"subject": noun_phrase(rng), "other": noun_phrase(rng), "verb": rng.choice(VERBS),
            "prep": rng.choice(PREPOSITIONS), "place": rng.choice(PLACES)}


def caption(rng, s=None):
    """A COCO-like caption of scene s (a fresh one if None), with COCO's mix of capitalisation
    and end punctuation."""
    s = s or scene(rng)
    form = rng.randrange(5)
    if form == 0:
        text = "%s %s %s %s" % (s["subject"], s["verb"], s["prep"], s["other"])
    elif form == 1:
        text = "%s %s in %s" % (s["subject"], s["verb"], s["place"])
    elif form == 2:
        text = "%s and %s %s %s" % (s["subject"], s["other"], s["prep"], s["place"])
    elif form == 3:
        text = "there is %s %s %s" % (s["subject"], s["prep"], s["other"])
    else:
        text = "a photo of %s" % s["subject"]
    if rng.random() < 0.6:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.5:
        text += rng.choice((".", " .", "!", "..."))
    return text


def image_captions(rng):
    """Five captions of one scene, as COCO gives five per image."""
    s = scene(rng)
    return [caption(rng, s) for _ in range(5)]


def negation(rng, s):
    """A negation sentence about scene s, in the forms TNG-CLIP trains on."""
    absent = rng.choice(NOUNS)
    form = rng.randrange(8)
    if form == 0:
        return "%s %s %s with no %s in sight" % (s["subject"], s["prep"], s["other"], absent)
    if form == 1:
        return "No %s anywhere; just %s %s in %s." % (absent, s["subject"], s["verb"], s["place"])
    if form == 2:
        return "There is no %s in the image" % caption(rng, s).rstrip(".!").lower()
    if form == 3:
        return "%s, but there are no %ss" % (caption(rng, s).rstrip(".!"), absent)
    if form == 4:
        return "a photo without any %ss" % absent
    if form == 5:
        return "This image doesn't contain %s, it's %s." % (article(absent), s["subject"])
    if form == 6:
        return "not %s but %s" % (article(absent), s["other"])
    return "%s that isn't %s" % (s["subject"], rng.choice(ADJECTIVES))


def image_negations(rng):
    """Four negations of one scene."""
    s = scene(rng)
    return [negation(rng, s) for _ in range(4)]


# ---------------------------------------------------------------------------------------------
# Adversarial pieces, inserted into captions or strung together

SCRIPTS = (
    "café naïve façade jalapeño Ångström São Paulo Zürich crème brûlée",
    "cafe\u0301 nai\u0308ve A\u030angstro\u0308m (decomposed accents)",
    "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ Σ ΑΣ. ΣΑΣ ὈΔΥΣΣΕΎΣ",  # Greek capitals: final sigma
    "İstanbul'da KIŞ ıı İİ",  # Turkish dotted/dotless i
    "一只猫坐在沙发上 猫と犬が公園で遊んでいる",
    "고양이가 소파에 앉아 있다 \u1100\u1161\u11a8",  # Hangul, plus conjoining jamo (NFC composes)
    "Собака сидит на диване без кошки",
    "قطة على الأريكة بدون كلب",
    "חתול על הספה",
    "एक बिल्ली सोफे पर बैठी है",
    "แมวนั่งอยู่บนโซฟา",
    "Straße Maße ß ẞ ŉ ǅ ǈ",
    "Ⅻ ⅻ ½ ² ³ ¹ ① ⑳ ١٢٣ ४५६ ๗",  # numbers outside 0-9: each is its own piece
    "µ ª º ÿ Ÿ K Å Ω ℃ ℉",
)
EMOJI = ("🐶", "🐱", "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "🧑🏿‍🚀",
         "🏴\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F", "👩🏻‍❤️‍💋‍👨🏼", "☕", "⚽️")
ENTITIES = ("&amp;", "&#39;", "&nbsp;", "&amp;amp;", "&amp;amp;amp;", "&lt;", "&gt;", "&quot;",
            "&eacute;", "&EACUTE;", "&Eacute;", "&#x27;", "&#X41;", "&#128;", "&#150;", "&#0;",
            "&#1;", "&#x85;", "&#13;", "&#xD800;", "&#1114112;", "&#99999999999;", "&#59;",
            "&amp", "&copy", "&notin;", "&notit;", "&ampx", "&frac12;", "&frac12", "&hellip;",
            "&rsquo;", "&ldquo;", "&NoBreak;", "&SZLIG;", "&szlig;", "&ntilde; &NTILDE; &nTILDE;",
            "&#x1F600;", "&#65;&#66;", "&;", "&#;", "&#x;", "&bogus;", "&amp;lt;b&amp;gt;",
            "&CounterClockwiseContourIntegral;", "&abcdefghijklmnopqrstuvwxyz;", "&#x2028;",
            "&#12abc;", "&fjlig;", "&NotNestedGreaterGreater;", "&amp;#39;", "&#x000041;")
MARKUP = ("<b>bold</b> &amp; co", "a < b &amp; c", "<i>&eacute;t&eacute;</i>", "x<y",
          "<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "a<end_of_text>b",
          "!<start_of_text>", "<ſtart_of_text>", "</w>", "<start_of_text", "it'ſ")
CONTRACTIONS = ("don't", "it's", "WE'LL", "I'M", "they're", "you've", "she'd", "'S", "O'Neil",
                "it’s", "don‘t", "rock 'n' roll", "''s", "'s'", "''", "can't've", "y'all'd've")
QUOTES = ("“quoted”", "‘single’", "„low“", "‚low‘", "«guillemets»", "‹single›", "ʼapostrophe",
          "‛reversed‟", "„“”‟")
LIGATURES = ("ﬁsh", "ﬂower", "oﬀ", "oﬃce", "waﬄe", "ﬅ", "ﬆop", "Ĳssel", "ĳs", "ǅ", "ǈ", "ǋ",
             "ﬀﬁﬂﬃﬄﬅﬆ")
WIDTH = ("ＬＯＵＤ　ＮＯＩＳＥＳ", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ １２３", "ｳﾙﾄﾗ", "Ｕﾀｰﾝ", "￣", "＆ａｍｐ；",
         "＜ｂ＞", "ﾟﾞ", "ￜ", "ｰ")
CONTROL = ("\x01", "\x02", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1c", "\x1d", "\x1e",
           "\x1f", "\x7f", "\x1b[31m", "\x1b[1;32mgreen\x1b[0m", "\x1b[١m", "\x1b[", "\u200b",
           "\u200c", "\u200d", "\u200e", "\u202e", "\u2066", "\u206a", "\ufeff", "\ufff9",
           "\ufffc", "\ufffd", "\u00ad", "\u034f", "\u0345", "\U000E0041", "\U0001D173")
WHITESPACE = ("\t", "  ", "   \t  ", "\r", "\r\r", "\x85", "\xa0", "\u2028", "\u2029", "\u3000",
              "\u2003", "\u202f", "\u205f", "\u1680", "\u180e", "\x0c", "\x1f")
C1_ALONE = ("\x80", "\x85", "\x91", "\x92", "\x93", "\x94", "\x96", "\x97", "\x99", "\x9f")
PUNCTUATION = ("!!!", "???", "?!?!", "...", "…", "--", "—", "–", "(", ")", "[]", "{}", "@#$%^&*",
               "~~~", "\\", "/", "|", "_", "__init__", "$5.99", "100%", "3.14", "1,000,000",
               "24/7", "#hashtag", "@user", "e-mail", "http://example.com/a?b=c&d=e", "C++",
               "¡hola!", "¿qué?", "·", "•", "§", "©", "®", "™", "°", "±", "×", "÷")
DIGITS = ("0", "7", "42", "2024", "1999", "007", "3rd", "21st", "10k", "1.5", "٣", "५", "１２")
FRAGMENTS = (SCRIPTS, EMOJI, ENTITIES, MARKUP, CONTRACTIONS, QUOTES, LIGATURES, WIDTH, CONTROL,
             WHITESPACE, C1_ALONE, PUNCTUATION, DIGITS)


def random_code_point(rng):
    """Any code point Unicode 14 assigns, except surrogates, NUL and '\\n'."""
    while True:
        plane = rng.random()
        if plane < 0.5:
            c = rng.randrange(0x20, 0x3000)
        elif plane < 0.8:
            c = rng.randrange(0x3000, 0x10000)
        else:
            c = rng.randrange(0x10000, 0x110000)
        if c not in (0, 10) and unicodedata.category(chr(c)) not in ("Cn", "Cs"):
            return chr(c)


def adversarial(rng):
    form = rng.randrange(7)
    if form == 0:  # a caption with fragments inserted between words
        words = caption(rng).split(" ")
        for _ in range(rng.randrange(1, 4)):
            fragment = rng.choice(rng.choice(FRAGMENTS))
            words.insert(rng.randrange(len(words) + 1), fragment)
        return rng.choice((" ", " ", "", "\t")).join(words)
    if form == 1:  # fragments glued together
        return "".join(rng.choice(rng.choice(FRAGMENTS)) for _ in range(rng.randrange(1, 6)))
    if form == 2:  # random assigned code points, mixed with ASCII
        return "".join(random_code_point(rng) if rng.random() < 0.5 else rng.choice("abc XYZ'&;#<>19")
                       for _ in range(rng.randrange(1, 30)))
    if form == 3:  # a caption with random case changes and doubled whitespace
        text = caption(rng)
        return "".join(ch.upper() if rng.random() < 0.3 else ch for ch in text).replace(" ", rng.choice(WHITESPACE))
    if form == 4:  # one fragment family, whole
        return rng.choice(SCRIPTS + MARKUP + ENTITIES)
    if form == 5:  # a character followed by a run of combining marks (NFC reorders them)
        base = rng.choice("aeiouAEIOUnNcCsSzZαΑωΩиИ한")
        marks = "".join(chr(rng.choice((0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x327, 0x328, 0x323,
                                         0x331, 0x345, 0x35C, 0x1AB0, 0x20D7)))
                        for _ in range(rng.randrange(1, 5)))
        return caption(rng) + " " + base + marks + rng.choice(("", "s", " ", "Σ"))
    return caption(rng).replace("a", rng.choice(("à", "á", "â", "ä", "a\u0300", "ⓐ", "ａ", "α", "а")))


def long_text(rng):
    """Several captions joined, usually well past 77 tokens."""
    return " ".join(caption(rng) if rng.random() < 0.7 else adversarial(rng) for _ in range(rng.randrange(6, 14)))


def invalid_utf8(rng):
    """Bytes that are not valid UTF-8 (truncated sequences, stray continuations, overlongs,
    surrogates, bytes above F4) mixed with text; never '\\n' or NUL."""
    pieces = [caption(rng).encode()]
    for _ in range(rng.randrange(1, 5)):
        bad = rng.choice((b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                          b"\xf5", b"\x80", b"\xbf\xbf", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\xc3(",
                          bytes([rng.randrange(0x80, 0x100)])))
        pieces.insert(rng.randrange(len(pieces) + 1), bad)
    return b" ".join(pieces)


FAMILIES = (  # (name, count, generator returning a list of str or bytes)
    ("caption", 63000, image_captions),
    ("negation", 20000, image_negations),
    ("adversarial", 15300, lambda rng: [adversarial(rng)]),
    ("long", 700, lambda rng: [long_text(rng)]),
    ("invalid-utf8", 1000, lambda rng: [invalid_utf8(rng)]),
    ("empty", 30, lambda rng: [rng.choice(("", " ", "\t", "  \t ", "\r", "\u3000", "&nbsp;", "\x01", "\u200b"))]),
)


def write_gzip(path, lines):
    data = gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (path, len(data)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures", "tokenizer"))
    parser.add_argument("--all-expected", metavar="PATH",
                        help="also write every record's ids to PATH (gzip), to debug a failing block")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    assert isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer)

    records, texts, detailed, dropped = [], [], [], {"mojibake": 0, "unassigned": 0}

    def keep(raw):
        """Adds one candidate unless it is mojibake or uses unassigned code points."""
        raw = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        assert b"\n" not in raw and b"\0" not in raw, raw
        text = raw.decode("utf-8", errors="replace")
        if any(unicodedata.category(ch) == "Cn" for ch in text):
            dropped["unassigned"] += 1
            return 0
        if ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False):
            dropped["mojibake"] += 1
            return 0
        records.append(raw)
        texts.append(text)
        return 1

    for name, count, generate in FAMILIES:
        first = len(records)
        while len(records) - first < count:
            for raw in generate(rng)[:count - (len(records) - first)]:
                keep(raw)
        if name not in ("caption", "negation"):
            detailed.extend(range(first, len(records)))
        print("%-13s %6d strings" % (name, count))

    expected = []
    for start in range(0, len(texts), 4096):
        batch = tokenizer(texts[start:start + 4096], context_length=CONTEXT).tolist()
        for row in batch:
            last = len(row) - 1 - row[::-1].index(tokenizer.eot_token_id)  # padding follows the final EOT
            expected.append(" ".join(map(str, row[:last + 1])).encode())

    os.makedirs(args.out, exist_ok=True)
    write_gzip(os.path.join(args.out, "inputs.txt.gz"), records)
    write_gzip(os.path.join(args.out, "expected.txt.gz"), [b"%d %s" % (i, expected[i]) for i in detailed])
    with open(os.path.join(args.out, "blocks.sha256"), "w") as f:
        for first in range(0, len(expected), BLOCK):
            block = b"".join(line + b"\n" for line in expected[first:first + BLOCK])
            f.write("%s %d %d\n" % (hashlib.sha256(block).hexdigest(), first, len(expected[first:first + BLOCK])))
    print("wrote blocks.sha256 (%d blocks of %d)" % ((len(expected) + BLOCK - 1) // BLOCK, BLOCK))
    if args.all_expected:
        write_gzip(args.all_expected, expected)
    truncated = sum(1 for e in expected if e.count(b" ") + 1 == CONTEXT)
    print("%d strings (%d with ids listed, %d truncated at %d); dropped %d mojibake and %d with "
          "unassigned code points" % (len(records), len(detailed), truncated, CONTEXT, dropped["mojibake"],
                                      dropped["unassigned"]))


if __name__ == "__main__":
    main()
