"""SMS's clinical vocabulary, sound-alikes, per-tier margins, and the spell-check baseline.

The Hunspell reader runs on a small dictionary written here; the system dictionaries (Debian
``hunspell-en-us``, ``hunspell-en-med``, installed by ``.ci/run``) are read where present. The refiner is
the bundled reference model's, with the bundle's settings.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytest
from helpers import REPO

from monai_imc.model_vocabulary import Vocabulary
from monai_imc.refine import SMSRefiner
from monai_imc.text_candidates import filler_spans, is_correct, propose, sound_alikes
from monai_imc.vocabulary import ClinicalVocabulary, read_hunspell, read_word_list, sounds_alike, system_words

BUNDLE = REPO / "bundles" / "monai_imc_vqa"
MED = Path("/usr/share/hunspell/en_med_glut.dic")


def test_hunspell_reader_expands_prefix_and_suffix_flags(tmp_path: Path) -> None:
    (tmp_path / "x.aff").write_text(
        "SET UTF-8\nPFX U Y 1\nPFX U 0 un .\n\nSFX S Y 2\nSFX S y ies [^aeiou]y\nSFX S 0 s [^y]\n"
        "SFX D N 1\nSFX D 0 ed [^e]\n"
    )
    (tmp_path / "x.dic").write_text("4\nnodule/S\nopacity/S\nhealth/U\nNL\nclear/USD\n   a comment line\n")
    words = read_hunspell(tmp_path / "x.dic", tmp_path / "x.aff")
    assert {
        "nodule",
        "nodules",
        "opacity",
        "opacities",
        "health",
        "unhealth",
        "clear",
        "clears",
        "cleared",
        "unclear",
        "unclears",
    } <= words
    assert "uncleared" not in words, "D does not combine with prefixes"
    assert "nl" not in words and "NL" not in words, "acronyms are not common words"
    with pytest.raises(FileNotFoundError, match="missing.dic"):
        read_hunspell(tmp_path / "missing.dic")


def test_absent_dictionaries_degrade_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    system_words.cache_clear()
    with caplog.at_level(logging.WARNING, logger="monai_imc.vocabulary"):
        first = system_words((str(tmp_path),), ("en_US",))
        second = system_words((str(tmp_path),), ("en_US",))
    assert first == second == frozenset()
    assert sum("not found" in r.getMessage() for r in caplog.records) == 1, "logged once"
    site = tmp_path / "site.txt"
    site.write_text("# our terms\nGadoxetate\nhypoattenuating  # a comment\n")
    vocab = ClinicalVocabulary.system(site, dirs=(str(tmp_path),))
    assert "gadoxetate" in vocab and "Hypoattenuating" in vocab and len(vocab) == 2
    assert read_word_list(site) == {"gadoxetate", "hypoattenuating"}


@pytest.mark.skipif(
    not MED.is_file() and os.environ.get("CI") != "true",
    reason="hunspell-en-med is not installed (apt-get install hunspell-en-med)",
)
def test_system_dictionaries_know_clinical_words() -> None:
    vocab = ClinicalVocabulary.system()
    assert {"nerve", "flat", "wedge", "hemidiaphragms", "pneumothorax", "effusions"} <= vocab.words
    assert "pnuemothorax" not in vocab and "verterbral" not in vocab and "brian" not in vocab
    assert len(vocab) > 100_000 and any("en_med" in s for s in vocab.sources)


def test_sound_alikes() -> None:
    assert (
        sounds_alike("plural", "pleural") and sounds_alike("long", "lung") and sounds_alike("hart", "heart")
    )
    assert sounds_alike("lever", "liver"), "one key and one letter"
    assert sounds_alike("chess", "chest") and sounds_alike("imagine", "image"), "a final sound heard or lost"
    assert not sounds_alike("large", "larger") and not sounds_alike("scan", "span"), "an ending; another start"
    assert (
        not sounds_alike("nerve", "were")
        and not sounds_alike("flat", "fluid")
        and not sounds_alike("safe", "same")
    )
    vocab = Vocabulary(["pleural", "lung", "pneumonia", "effusion"])
    assert "pleural" in vocab.sounds_like("plural") and "lung" in vocab.sounds_like("long")
    found = {
        (c.before, c.after, c.tier) for c in propose("Does the new monia spread?", vocab, ["recognition"])
    }
    assert ("new monia", "pneumonia", "sound-alike") in found, "split terms are joined by their sound"
    vocab = Vocabulary(["chest", "image", "larger", "in", "this"])
    found = {(c.before, c.after, c.tier) for c in propose("Is chess larger in this imagine?", vocab, ["recognition"], {"chess", "imagine"})}
    assert {("chess", "chest", "sound-alike"), ("imagine", "image", "sound-alike")} <= found
    assert sound_alikes("imagine", vocab) == ["image"] and sound_alikes("large", vocab) == []


def test_one_sound_heard_otherwise() -> None:
    """A sound swapped, dropped or heard otherwise inside a word (speech recognition's real-word errors)."""
    for misheard, meant in (("pitcher", "picture"), ("content", "contain"), ("mortality", "modality")):
        assert sounds_alike(misheard, meant) and sounds_alike(meant, misheard), (misheard, meant)
    for a, b in (("scan", "span"), ("clot", "clean"), ("skull", "small"), ("trunk", "tram")):
        assert not sounds_alike(a, b), "short keys are too coarse to say so"
    for a, b in (("special", "spinal"), ("major", "matter"), ("better", "bigger")):
        assert not sounds_alike(a, b), "a sound replaced makes another word"
    vocab = Vocabulary(["picture", "pitch", "contain", "content", "spinal"])
    assert vocab.sounds_near("pitcher") == ["picture"], "same first letter, three edits at most"
    assert vocab.sounds_near("content") == ["contain"] and vocab.sounds_near("special") == []
    assert sound_alikes("pitcher", vocab) == ["picture"]


def test_protected_and_correct_words_get_the_right_candidates() -> None:
    vocab = Vocabulary(["the", "nodules", "nerve", "were", "lung", "fat", "pleural", "effusion"])
    clinical = {"nerve", "flat", "plural", "three"}
    cands = propose("Are there three nodules near the nerve?", vocab, ["spelling", "recognition"], clinical)
    assert not any(c.before.lower() == "three" for c in cands), "a number word is never edited"
    assert not any(c.before == "nerve" and c.after == "were" for c in cands), (
        "nerve is correct: only one edit or a sound-alike"
    )
    tiers = {
        (c.before, c.after): c.tier for c in propose("Is the lesion flat?", vocab, ["recognition"], clinical)
    }
    assert tiers.get(("flat", "fat")) == "known", (
        "a correct word into another word needs the overwhelming margin"
    )
    tiers = {
        (c.before, c.after): c.tier
        for c in propose("Is there a plural effusion?", vocab, ["recognition"], clinical)
    }
    assert tiers.get(("plural", "pleural")) == "sound-alike"
    tiers = {
        (c.before, c.after): c.tier for c in propose("Is the lugn clear?", vocab, ["spelling"], clinical)
    }
    assert tiers.get(("lugn", "lung")) == "unknown"


@pytest.fixture(scope="module")
def refiner() -> SMSRefiner:
    from monai_imc.bench.model_spec import bundle_settings
    from monai_imc.models import load_model

    model_path, _bank, options = bundle_settings(BUNDLE)
    assert Path(options["site_words"]).is_file(), "the bundle ships a site word list"
    return SMSRefiner(load_model(model_path, device="cpu"), **options)


def test_correct_words_the_model_lacks_are_kept(refiner: SMSRefiner) -> None:
    assert refiner.known_margin >= max(refiner.accept_margin, refiner.sound_alike_margin)
    for text in (
        "Is the nerve damaged?",
        "Is the lesion flat?",
        "Is there a wedge-shaped opacity?",
        "Are there three nodules?",
        "Are both hemidiaphragms flat?",
        "Rule out pneumothorax in the left lung.",  # "out": no training question holds it
    ):
        result = refiner.refine(text)
        assert not result.changed, (text, result.text, result.trace)


def test_short_function_words_are_correct_and_sound_alike_noise_is_not(refiner: SMSRefiner) -> None:
    assert "out" not in refiner.vocabulary, "the case this guards: a function word the model's questions lack"
    assert all(refiner.is_correct(w) for w in ("out", "off", "per", "nor", "the"))
    assert not any(refiner.is_correct(w) for w in ("buy", "bee", "sea", "pt", "nl", "abd"))


def test_overwhelming_margin_only(refiner: SMSRefiner) -> None:
    """With every margin at zero except a correct word's, a correct word stays and an unknown one is fixed.

    Every word is a suspect (``max_suspects`` = the word count), so what is tested is the margins, not which
    words this model finds most surprising (the bundled model ranks ``damaged`` and ``nerve`` first)."""
    eager = SMSRefiner(
        refiner.model,
        vocabulary=refiner.vocabulary,
        clinical=refiner.clinical,
        suspicion=-math.inf,
        accept_margin=0.0,
        sound_alike_margin=1e9,
        known_margin=1e9,
        max_suspects=8,
    )
    result = eager.refine("Is the nerve in the lfet lugn damaged?")
    words = result.text.rstrip("?").split()
    assert "nerve" in words and "damaged" in words, result.trace  # correct words stay
    assert "lugn" not in words, result.trace  # the unknown word is fixed, into a word the vocabularies know
    fixed = words[words.index("lfet") + 1] if "lfet" in words else words[-2]
    assert fixed in refiner.vocabulary or fixed in refiner.clinical, (fixed, result.trace)


def test_a_question_misheard_in_several_words_is_read_again(refiner: SMSRefiner) -> None:
    """Each misheard word alone gains less than a sound-alike's margin; read together, the sentence gains the
    reading's margin, and each word's reading is chosen among the others read again (``lever`` alone
    would become ``level``). The bundle hears them (since 0.3.1, ``sound_alike_suspicion`` and
    ``reading_suspicion`` calibrated with ``--sound-alike-flag-rate 0.2``); a refiner with the readings off
    (both thresholds at ``suspicion``, as the bundle had them) leaves the question as it is."""
    text = "Does the pitcher content lever?"
    surprisal = dict(refiner.assess(text).surprisal)
    assert max(surprisal["pitcher"], surprisal["lever"]) < refiner.suspicion, "not suspects of an unknown word"
    assert min(surprisal["pitcher"], surprisal["lever"]) >= refiner.reading_suspicion, "the bundle hears them"

    def hearing(threshold: float, reading_margin: float) -> SMSRefiner:
        return SMSRefiner(
            refiner.model,
            vocabulary=refiner.vocabulary,
            clinical=refiner.clinical,
            suspicion=refiner.suspicion,
            sound_alike_suspicion=threshold,
            reading_suspicion=threshold,
            accept_margin=refiner.accept_margin,
            sound_alike_margin=refiner.sound_alike_margin,
            known_margin=refiner.known_margin,
            reading_margin=reading_margin,
        )

    heard = [text[a:b] for a, b in refiner.misheard(text, refiner.assess(text))]
    assert heard == ["pitcher", "content", "lever"]
    result = refiner.refine(text)
    # the 0.5.0 model reads all three again (0.3.1-0.4.1's kept "content": it gained too little alone)
    assert result.text == "Does the picture contain liver?", result.trace
    accepted = [s for s in result.trace if s.verdict.startswith("accepted")]
    assert [s.agent.startswith("specialist:recognition:reading") for s in accepted] == [True]
    assert result.calls <= 3 and result.original == text
    assert not hearing(refiner.reading_suspicion, 1e9).refine(text).changed, "the reading's margin decides"
    assert not hearing(refiner.suspicion, refiner.reading_margin).refine(text).changed, "readings off"
    for clean in ("Does the picture contain liver?", "Is there small bowel in this image?"):
        assert not refiner.refine(clean).changed, clean


def test_readings_compose_the_words_heard_again(refiner: SMSRefiner) -> None:
    from monai_imc.text_candidates import Candidate

    text = "Is uh their bowl in this imagine?"

    def at(before: str, after: str, tier: str = "sound-alike", kind: str = "recognition") -> Candidate:
        start = text.index(before)
        return Candidate(kind, start, start + len(before), before, after, tier)

    filler = at("uh ", "", "unknown")
    low = refiner.accept_margin  # a word heard again gains alone at least this
    scored = [
        (low + 9.0, at("imagine", "image")),
        (low + 4.0, at("imagine", "imaging")),
        (low + 3.0, at("their", "there")),
        (low - 1.0, at("bowl", "bowel")),  # gains, but too little alone: not read again
        (30.0, at("in this", "inthis")),  # a join of several words is judged alone
        (refiner.accept_margin + 1.0, filler),  # a filler that reaches its own margin rides along
        (50.0, at("their", "theirs", "known")),  # a correct word into another: judged alone
    ]
    readings = refiner.readings(text, scored)
    assert readings[0] == ("Is there bowl in this image?", refiner.accept_margin + 1.0)
    assert readings[1:] == [("Is there bowl in this imaging?", refiner.accept_margin + 1.0)], "runner-up"
    assert refiner.readings(text, scored[:2] + scored[3:]) == [], "one word heard again is judged alone"


def test_spellcheck_baseline(refiner: SMSRefiner) -> None:
    from monai_imc.bench.spellcheck import SpellCheckBaseline

    checker = SpellCheckBaseline.like(refiner)
    assert (
        checker.correct("Is there a pnuemothorax in the left lugn?")
        == "Is there a pneumothorax in the left lung?"
    )
    assert checker.correct("Is the nerve damaged?") == "Is the nerve damaged?", "correct words are kept"
    out = checker.correct("Are there thre nodules in the lfet lung?").lower().rstrip("?").split()
    assert "three" not in out and "left" not in out, "a correction that adds a number or a side is refused"
    assert checker.correct("Is the 3cm mass in the CT?") == "Is the 3cm mass in the CT?"


class _PieceTokenizer:
    """A tokenizer's vocabulary as transformers gives it: byte-level word-initial pieces (``Ġimag``) beside
    whole words; only ``get_vocab`` is read."""

    def get_vocab(self) -> dict[str, int]:
        pieces = ["Ġimage", "Ġimag", "Ġabdom", "Ġlung", "Ġpt", "Ġthe", "Ġis", "ing", "Ġuh"]
        return {p: i for i, p in enumerate(pieces)}


def test_tokenizer_pieces_are_words_only_when_a_dictionary_confirms_them() -> None:
    dictionary = {"image", "lung", "pt", "the", "is", "uh"}
    everything = Vocabulary.from_tokenizer(_PieceTokenizer())
    assert {"imag", "abdom", "pt"} <= everything.words, "without a dictionary every word-initial piece counts"
    confirmed = Vocabulary.from_tokenizer(_PieceTokenizer(), dictionary=dictionary)
    assert "imag" not in confirmed and "abdom" not in confirmed, "word pieces are not words"
    assert {"image", "lung", "pt", "the"} <= confirmed.words, (
        "with no word list, short dictionary words count"
    )
    listed = Vocabulary.from_tokenizer(
        _PieceTokenizer(), extra_words=["the", "is", "chest"], dictionary=dictionary
    )
    assert {"image", "lung", "the", "is", "chest"} <= listed.words
    assert "pt" not in listed and "uh" not in listed, (
        "a short piece (shorthand in clinical text) counts only when the model's own word list holds it"
    )


def test_fillers_are_never_correct_and_are_only_dropped() -> None:
    vocab = Vocabulary(["is", "the", "um", "uh", "trunk", "patent", "celiac", "up"])
    assert not is_correct("um", vocab, {"um"}), "a filler is not a word of clinical text"
    cands = propose("Is the celiac um trunk patent?", vocab, ["spelling", "recognition"], None)
    at_filler = [c for c in cands if c.before == "um"]
    assert at_filler and all(c.after == "" and c.tier == "unknown" for c in at_filler), at_filler
    assert filler_spans("Is the liver you know enlarged?") == [(13, 21)]
    assert filler_spans("Do you know the answer?") == [], "'do you know' asks something: not a filler"
    dropped = [
        c for c in propose("Is celiac trunk you know patent?", vocab, ["recognition"]) if c.after == ""
    ]
    assert [c.apply("Is celiac trunk you know patent?") for c in dropped] == ["Is celiac trunk patent?"]


def test_a_word_never_becomes_a_single_letter() -> None:
    vocab = Vocabulary(["x", "is", "where", "contrast"])
    assert not any(c.after == "x" for c in propose("Where is cx?", vocab, ["spelling"])), (
        "cx -> x deletes a word"
    )


def test_an_unknown_word_is_a_suspect_whatever_its_surprisal(refiner: SMSRefiner) -> None:
    """The assessor's threshold is for correct words; a word no vocabulary knows (or a filler) always counts."""
    strict = SMSRefiner(
        refiner.model, vocabulary=refiner.vocabulary, clinical=refiner.clinical, suspicion=1e9, max_suspects=3
    )
    assert not strict.assess("Is the liver normal?").noisy, "correct words alone never reach 1e9 nats"
    unknown = strict.assess("Is the lievr normal?")
    assert unknown.noisy and "spelling" in unknown.kinds, unknown
    assert unknown.suspects and "Is the lievr normal?"[slice(*unknown.suspects[0])] == "lievr"
    filler = strict.assess("Is the uh liver normal?")
    assert filler.noisy and filler.kinds == ("recognition",), filler
    assert strict.assess("Is the MRCP normal?").noisy is False, (
        "an unknown acronym is not editable: no suspect"
    )
