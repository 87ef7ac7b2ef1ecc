"""The lexical specialists' candidate edits: distances, the vocabulary index, kinds, protected words."""

from __future__ import annotations

import pytest

from monai_imc.guards import check_repair
from monai_imc.model_vocabulary import Vocabulary, damerau_distance
from monai_imc.text_candidates import Candidate, apply_candidates, propose

WORDS = [
    "is",
    "there",
    "a",
    "in",
    "the",
    "left",
    "lung",
    "liver",
    "image",
    "abnormal",
    "normal",
    "organ",
    "organs",
    "pneumothorax",
    "healthy",
    "unhealthy",
    "which",
    "this",
    "of",
    "ct",
    "effusion",
    "pleural",
]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(WORDS)


def test_damerau_distance() -> None:
    assert damerau_distance("lnug", "lung") == 1  # a transposition is one edit
    assert damerau_distance("imae", "image") == 1
    assert damerau_distance("otgaj", "organ") == 2
    assert damerau_distance("liver", "liver") == 0
    assert damerau_distance("a", "abnormal", limit=3) == 3  # capped


def test_near_and_expansions(vocabulary: Vocabulary) -> None:
    assert vocabulary.near("lnug", 2) == ["lung"]
    assert "pneumothorax" in vocabulary.near("pnuemothorax", 2)
    assert vocabulary.near("lung", 1) == []  # the word itself is not a neighbour
    assert vocabulary.expansions("abnl") == ["abnormal"]
    assert "organ" in vocabulary.expansions("org") and "liver" not in vocabulary.expansions("org")
    assert "Lung" in vocabulary and "lnug" not in vocabulary and len(vocabulary) == len(set(WORDS))


def test_propose_kinds(vocabulary: Vocabulary) -> None:
    text = "Is there a pnuemothorax in the lt lnug? uh"
    found = {(c.kind, c.before, c.after) for c in propose(text, vocabulary)}
    assert ("spelling", "pnuemothorax", "pneumothorax") in found and ("spelling", "lnug", "lung") in found
    assert not any(c[1] == "lt" for c in found), "laterality shorthand is protected"
    assert ("recognition", "uh", "") in found, "a filler may go"
    assert not any(c.before == "IMC" for c in propose("IMC sample stdy", vocabulary)), "unknown acronyms stay"
    distractor = propose(
        "The scan was late. Is there a pleural effusion? Family waits.", vocabulary, ["distractor"]
    )
    assert [c.after for c in distractor] == ["Is there a pleural effusion?"]
    assert propose("Is there a lung? Is there a liver?", vocabulary, ["distractor"]) == []  # two questions


def test_meaning_inverting_prefixes_are_never_proposed(vocabulary: Vocabulary) -> None:
    hyper = Vocabulary([*WORDS, "hyperinflation", "hypoinflation"])
    assert not any(c.after.lower() == "hyperinflation" for c in propose("Is there hypoinflation?", hyper))
    for text in ("Is the lung unhealthy?", "Is the liver abnormal?", "Is the liver normal?"):
        afters = {c.after.lower() for c in propose(text, vocabulary)}
        assert not afters & {"healthy", "normal", "abnormal", "unhealthy"} - {
            w.lower() for w in text[:-1].split()
        }


def test_apply_candidates_skips_overlaps() -> None:
    text = "Is teh lnug ok?"
    edits = [
        Candidate("spelling", 3, 6, "teh", "the"),
        Candidate("spelling", 7, 11, "lnug", "lung"),
        Candidate("spelling", 3, 11, "teh lnug", "x"),
    ]
    assert apply_candidates(text, edits) == "Is the lung ok?"
    assert edits[0].apply(text) == "Is the lnug ok?"
    assert check_repair(text, apply_candidates(text, edits)) == []


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one word"):
        Vocabulary(["", "12"])
    with pytest.raises(ValueError, match="unknown specialist"):
        propose("Is it?", Vocabulary(WORDS), ["grammar"])


def test_letters_misread_as_digits_are_read_back_and_numbers_are_not(vocabulary: Vocabulary) -> None:
    from monai_imc.lexicon import is_protected_word, looks_misread, numbers
    from monai_imc.misreading import ocr_readings
    from monai_imc.text_candidates import is_editable

    for misread in ("1ung", "th1s", "D0es", "n0rmaI", "5pleen", "hea1thv", "cy5t5"):
        assert looks_misread(misread) and not is_protected_word(misread), misread
    for fact in ("3cm", "50%", "2nd", "T2", "L4", "C5", "B12", "I5", "12", "3"):
        assert not looks_misread(fact) and is_protected_word(fact), fact
    assert not looks_misread("lung") and not looks_misread("x7"), "7 looks like no letter"
    assert ocr_readings("1ung", vocabulary) == ["lung"] and ocr_readings("th1s", vocabulary) == ["this"]
    assert ocr_readings("0rgan", vocabulary) == ["organ"] and ocr_readings("n0rmaI", vocabulary) == ["normal"]
    assert ocr_readings("hea1thv", vocabulary) == ["healthy"], "one edit from a reading of 5+ letters"
    assert ocr_readings("x2", vocabulary) == []
    text = "Is th1s 1ung on T2 3cm or 1.5T in the L4 image?"
    found = {(c.before, c.after) for c in propose(text, vocabulary)}
    assert ("th1s", "this") in found and ("1ung", "lung") in found
    assert not any(any(ch.isdigit() for ch in c.after) for c in propose(text, vocabulary))
    assert not any(c.before in ("T2", "3cm", "L4", "5T", "T") for c in propose(text, vocabulary)), (
        "facts stay"
    )
    for c in propose(text, vocabulary):
        if any(ch.isdigit() for ch in c.before):  # a misread word becomes only what it reads as
            assert (c.kind, c.tier) == ("spelling", "unknown") and c.after.lower() in ocr_readings(
                c.before, vocabulary
            )
    repaired = apply_candidates(text, [c for c in propose(text, vocabulary) if c.before in ("th1s", "1ung")])
    assert repaired == "Is this lung on T2 3cm or 1.5T in the L4 image?"
    assert numbers(repaired) == numbers(text) and check_repair(text, repaired) == []
    import re

    t2 = next(m for m in re.finditer(r"\S+", text) if m.group() == "T2")
    assert not is_editable(text, t2, vocabulary)


def test_look_alike_glyphs_are_read_back_in_unknown_words_only(vocabulary: Vocabulary) -> None:
    from monai_imc.misreading import ocr_readings

    assert ocr_readings("tlie", vocabulary) == ["the"], "li read as h: two edits from a 4-letter word"
    assert ocr_readings("Wliat", Vocabulary([*WORDS, "what"])) == ["what"]
    assert ocr_readings("Iung", vocabulary) == ["lung"], "a capital I for an l"
    assert ocr_readings("norrnal", vocabulary) == ["normal"] and ocr_readings("abnorrnal", vocabulary) == [
        "abnormal"
    ]
    assert ocr_readings("unliealthy", vocabulary) == ["unhealthy"], "never healthy: no prefix is dropped"
    found = {(c.before, c.after) for c in propose("Is tlie Iung normal?", vocabulary)}
    assert ("tlie", "the") in found and ("Iung", "lung") in found, "a misread l capitalises nothing"
    assert ("Iung", "Lung") in {(c.before, c.after) for c in propose("Iung is normal?", vocabulary)}
    assert not any(c.before == "normal" for c in propose("Is tlie Iung normal?", vocabulary)), (
        "known words stay"
    )


def test_a_repair_adds_no_plural(vocabulary: Vocabulary) -> None:
    spelled = {c.after for c in propose("Is the orqan normal?", vocabulary) if c.before == "orqan"}
    assert "organ" in spelled and "organs" not in spelled, "how many is the text's fact"
    expanded = {
        c.after for c in propose("Is the org normal?", vocabulary, ["terminology"]) if c.before == "org"
    }
    assert "organ" in expanded and "organs" not in expanded
    plural = {c.after for c in propose("Are the orqans normal?", vocabulary) if c.before == "orqans"}
    assert "organs" in plural, "a word that ends in s may be a plural"


def test_a_misspelling_is_read_as_its_nearest_words(vocabulary: Vocabulary) -> None:
    words = Vocabulary([*WORDS, "patent", "patient", "where", "when", "here", "kidney"])
    spelled = {c.after for c in propose("Is the trunk patentt?", words) if c.before == "patentt"}
    assert spelled == {"patent"}, "one edit away; patient is two"
    spelled = {c.after for c in propose("Is the right kidney ahnormal here?", words) if c.before == "ahnormal"}
    assert spelled == {"abnormal"}, "never normal (two edits): the nearest reading keeps what it says"
    spelled = {c.after.lower() for c in propose("Wherc is the liver?", words) if c.before == "Wherc"}
    assert spelled == {"where"}, "not when nor here"
    spelled = {c.after.lower() for c in propose("Is tlie liver normal?", words) if c.before == "tlie"}
    assert spelled == {"the"}, "a misreading (li for h) counts one edit"
    spelled = {c.after for c in propose("Is the lvng normal?", Vocabulary([*WORDS, "long"])) if c.before == "lvng"}
    assert spelled == {"lung", "long"}, "equally near readings are all kept: the model chooses"


def test_shorthand_is_not_read_against_a_nearer_question_word(vocabulary: Vocabulary) -> None:
    words = Vocabulary([*WORDS, "lesion", "lungs", "patient"])
    first = {c.after.lower() for c in propose("ls the liver normal?", words) if c.before == "ls"}
    assert "is" in first and not first & {"lesion", "lungs"}, "the word that opens the question asks it"
    assert "patient" in {c.after for c in propose("Is the pt normal?", words, ["terminology"])}


def test_words_run_together_are_read_apart(vocabulary: Vocabulary) -> None:
    from monai_imc.misreading import run_together

    words = Vocabulary([*WORDS, "used", "how", "many", "kidneys", "damage", "lesion", "located", "heart"])
    assert run_together("Istheredamage", words) == ([("is", "there", "damage")], 0)
    assert run_together("Howmanykidneys", words) == ([("how", "many", "kidneys")], 0)
    assert run_together("tbisimage", words) == ([("this", "image")], 1), "a misspelt piece, one edit"
    assert run_together("Iesionlocated", words) == ([("lesion", "located")], 1), "a capital I read as an l"
    assert run_together("thehcart", words) == ([("the", "heart")], 1)
    assert run_together("lung", words) == ([], 0)
    assert run_together("isthelivernormal" * 12, words) == ([], 0), "a run-on line is not two or three words"
    assert run_together("oberes", Vocabulary([*WORDS, "red"])) == ([], 0), "not be + red: two edits in 6 letters"
    found = {(c.before, c.after) for c in propose("What modality isused in tbisimage?", words)}
    assert ("isused", "is used") in found and ("tbisimage", "this image") in found
    assert ("isused", "used") not in found, "reading it as one of its words would delete the other"
    assert check_repair("Is this lung isused?", "Is this lung is used?") == []
