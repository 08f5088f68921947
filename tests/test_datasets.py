"""The packaged corpora (Skymere and the look-alike ones): their files, their question sets, and
the facts they agree on."""

from __future__ import annotations

import re

import polars as pl
import pytest

from ragnb import datasets
from ragnb.errors import InputError
from ragnb.evaluate import abstains, matches_reference


def _files(folder):
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.md"))}


def test_manual_and_new_facts_are_separate_markdown_folders():
    manual, new = _files(datasets.manual_dir()), _files(datasets.new_facts_dir())
    assert len(manual) == 13 and len(new) == 2
    assert not set(manual) & set(new)
    for text in [*manual.values(), *new.values()]:
        assert text.startswith("# ") and "\n## " in text


def test_questions_have_the_documented_columns_and_sizes():
    frame = datasets.questions()
    assert frame.columns == ["question", "answer", "response", "split", "doc_id"]
    sizes = dict(frame.group_by("split").len().iter_rows())
    assert sizes == {"train": 24, "paraphrase": 24, "heldout": 8, "new_facts": 6, "absent": 6}
    assert frame["question"].n_unique() == frame.height
    assert frame["response"].str.starts_with(datasets.STYLE_PREFIX).all()


@pytest.mark.parametrize("split", ["train", "paraphrase", "heldout", "new_facts"])
def test_every_answer_is_in_exactly_one_file_and_that_is_its_doc_id(split):
    folder = datasets.new_facts_dir() if split == "new_facts" else datasets.manual_dir()
    files = _files(folder)
    for question, answer, doc_id in (
        datasets.questions(split).select("question", "answer", "doc_id").iter_rows()
    ):
        holders = [name for name, text in files.items() if matches_reference(text, answer)]
        assert holders == [doc_id], (question, answer, holders)


def test_new_facts_are_not_in_the_manual():
    manual = "\n".join(_files(datasets.manual_dir()).values())
    for answer in datasets.questions("new_facts")["answer"]:
        assert not matches_reference(manual, answer), answer


def test_paraphrases_line_up_with_train_and_heldout_facts_are_new():
    train, para = datasets.questions("train"), datasets.questions("paraphrase")
    assert train["answer"].to_list() == para["answer"].to_list()
    assert (train["question"] != para["question"]).all()
    heldout = set(datasets.questions("heldout")["answer"])
    assert not heldout & set(train["answer"])


def test_absent_questions_have_no_answer_and_no_document():
    absent = datasets.questions("absent")
    assert absent["answer"].null_count() == absent["doc_id"].null_count() == absent.height
    assert all(abstains(r) for r in absent["response"])


def test_every_manual_file_is_the_source_of_some_question():
    used = set(pl.concat([datasets.questions(s) for s in ("train", "heldout")])["doc_id"])
    assert used == set(_files(datasets.manual_dir()))


def test_the_datasets_hold_data_and_the_judge_lives_in_evaluate():
    # one judge for every number ragnb reports (tests/test_judge.py covers its rules)
    assert not hasattr(datasets, "contains_answer") and not hasattr(datasets, "says_unknown")


def test_bad_names_are_input_errors():
    with pytest.raises(InputError, match="unknown split 'test'"):
        datasets.questions("test")
    with pytest.raises(InputError, match="unknown dataset 'nope'"):
        datasets.manual_dir("nope")


# --- Look-alike corpora: Brightwater's layout, two near-identical products each ---------------
# brightwater, ostara, harrowby and selwick are the unseen corpora grounded answers are reported
# on; larkspur, fenwick, tamsin, pellam, corrin and brindle are tuned on. The same checks hold for
# all ten.


def _mentions(text: str, value: str) -> bool:
    """`value` in `text` as a whole token (case- and spacing-insensitive): "1.2" is not inside
    "11.2" or "1.25", "E47" not inside "E470"."""
    flat = " ".join(text.lower().split())
    pattern = r"(?<![\w.,])" + re.escape(" ".join(value.lower().split())) + r"(?![\w]|[.,]\d)"
    return re.search(pattern, flat) is not None


LOOKALIKE = pytest.mark.parametrize("name", datasets.LOOKALIKE)
DOCS = {name: _files(datasets.docs_dir(name)) for name in datasets.LOOKALIKE}
# (answerable, absent) questions per corpus.
SIZES = {
    "brightwater": (37, 8),
    "larkspur": (36, 8),
    "ostara": (36, 8),
    "fenwick": (36, 16),
    "tamsin": (36, 16),
    "pellam": (36, 16),
    "corrin": (36, 16),
    "brindle": (36, 16),
    "harrowby": (36, 16),
    "selwick": (36, 16),
}

# Per corpus, per absent question (file order): a word that shows what it asks, and what a
# document would have to mention to answer it.
ABSENT_TOPICS = {
    "brightwater": [
        ("colours", r"\bcolou?rs?\b"),
        ("price", r"cartridges?\s+(?:costs?|prices?)|(?:price|cost) of [^.]*cartridge"),
        ("founded", r"\bfound(?:ed|er|ers)\b|\bceo\b"),
        ("altitude", r"\baltitude\b|\belevation\b|above sea"),
        ("decibels", r"\bdecibels?\b|\bdb\b|\bnoise\b|\bloud"),
        ("year", r"\b(?:19|20)\d\d\b|\b(?:launched|released|on sale) in\b"),
        ("United States", r"\bunited states\b|\busa\b|\bamerica\b"),
        ("Android", r"android\s+\d|\bandroid version"),
    ],
    "larkspur": [
        ("colours", r"\bcolou?r(?:s|ways)?\b|\bfinish(?:es)?\b"),
        ("KR-2", r"(?:kr-2|mount)[^.]*(?:euros?|€|\bprice|\bcost)|(?:price|cost)[^.]*mount"),
        ("founded", r"\bfound(?:ed|er|ers)\b|\bceo\b|\bestablished\b"),
        ("metres", r"\bmet(?:re|er)s?\b|\d\s*m\b|\bbeam (?:reach|distance)"),
        ("lux", r"\blux\b|\bstvzo\b|\billuminance\b"),
        ("Canada", r"\bcanad(?:a|ian)\b|\bshipping\b|\bdelivery times?\b"),
        ("macOS", r"\bmac\s?os\b|\bmac\b|\bos x\b|\boperating system"),
        ("charge cycles", r"\bcycles?\b"),
    ],
    "ostara": [
        ("colours", r"\bcolou?r(?:s|ways)?\b|\bfinish(?:es)?\b"),
        ("Bridge", r"bridge[^.]*(?:euros?|€|\bprice|\bcost)|(?:price|cost)[^.]*bridge"),
        ("founded", r"\bfound(?:ed|er|ers)\b|\bceo\b|\bestablished\b"),
        ("decibels", r"\bdecibels?\b|\bdb\b|\bnois[ey]\b|\bloud|\bquiet|\bsilent"),
        ("year", r"\b(?:19|20)\d\d\b|\b(?:launched|released|on sale) in\b"),
        ("United States", r"\bunited states\b|\busa\b|\bu\.s\.|\bamerica\b|\bshipping\b"),
        ("iOS", r"\bios\b|\biphone\b|\bapple\b"),
        ("underfloor", r"\bunderfloor\b|\bfloor heating\b|\bradiant floor"),
    ],
    "fenwick": [
        (
            "blades",
            r"blades?[^.]*(?:euros?|€|\bprices?\b|\bcosts?\b)|(?:euros?|€|\bcosts?\b)[^.]*blade",
        ),
        ("roll", r"\brolls?\b|wire[^.]*(?:euros?|€|\bprices?\b|\bcosts?\b)|(?:euros?|€)[^.]*wire"),
        ("revolutions", r"\brpm\b|revolutions|\bturns? per\b|\bspins? at\b|\b(?:disc|blade) speed"),
        (
            "amp-hours",
            r"\bamp[- ]?hours?\b|\d\s*ah\b|\bmah\b|\bwh\b|\bwatt[- ]?hours?\b|\bcapacity of",
        ),
        ("shipping box", r"\bbox(?:es)?\b|\bpackag|\bcarton\b|\bshipping\b|\bparcel\b|\bpacked\b"),
        ("wheels", r"\bwheels?\b[^.]*\d\s*(?:mm|cm|inch)|\bdiameter\b|\btyres?\b|\btires?\b"),
        ("fee", r"\bsubscri|\bfees?\b|\bannual|\bper (?:year|month)\b|\bmonthly\b|\byearly\b"),
        ("on sale", r"\bon sale\b|\blaunch|\bintroduc|\bfirst (?:sold|available)|\breleased in\b"),
        (
            "manufactured",
            r"\bmade in\b|\bmanufactured\b|\bfactor(?:y|ies) in\b|\bassembled\b|\borigin\b",
        ),
        ("Alexa", r"\balexa\b|\bgoogle\b|\bvoice\b|\bsmart speakers?\b|\bhomekit\b|\bsiri\b"),
        ("Windows", r"\bwindows\b|\bbrowser\b|\bweb\b|\bcomputer\b|\bpc\b|\blaptop\b|\bdesktop\b"),
        ("chief executive", r"\bchief executive\b|\bceo\b|\bfound(?:ed|er|ers)\b|\bdirector\b"),
        ("certification", r"\bcertifi|\bce\b|\bul\b|\bt[üu]v\b|\bapproved\b|\biec\b|\ben \d"),
        ("GPS", r"\bgps\b|\btrack(?:er|ing)\b|\btheft\b|\bstolen\b|\bsatellite\b"),
        ("recycle", r"\brecycl|\bdispos|\btrade[- ]in\b|\btake[- ]back\b|\bwaste\b"),
        ("refurbished", r"\brefurbish|\bsecond[- ]hand\b|\bpre-owned\b|\brenewed\b|\brecondition"),
    ],
    "tamsin": [
        ("cost", r"filters?[^.]*(?:euros?|€|\bprices?\b|\bcosts?\b)|(?:euros?|€)[^.]*filter"),
        ("cord", r"\bcords?\b|\bcables?\b|\bplugs? lead\b|\bmains lead\b"),
        ("castors", r"\bcastors?\b|\bcasters?\b|\bwheels?\b|\brollers?\b"),
        ("defrost", r"\bdefrost|\bfrost\b|\bicing\b|\bice\b|\bde-ic"),
        ("on sale", r"\bon sale\b|\blaunch|\bintroduc|\bfirst (?:sold|available)|\breleased in\b"),
        (
            "account",
            r"\baccounts?\b|\bup to \d+ (?:units|devices|dehumidifiers)\b|\bper (?:app|user)\b",
        ),
        ("timer", r"\btimers?\b|\bdelay|\bschedul|\bswitch(?:es)? off after\b"),
        ("exhaust", r"\bexhaust|\boutlet air\b|\bwarm(?:er|s)?\b[^.]*\bair\b|\bair\b[^.]*\bwarm"),
        ("manufactured", r"\bmade in\b|\bmanufactur|\bfactor(?:y|ies)\b|\bassembled\b|\borigin\b"),
        ("Android", r"\bandroid\b|\bios\b|\biphone\b|\bipad\b|\btablets?\b|\bapp store\b"),
        ("Google", r"\bgoogle\b|\balexa\b|\bvoice\b|\bhomekit\b|\bsiri\b|\bsmart speakers?\b"),
        ("colours", r"\bcolou?r(?:s|ways)?\b|\bfinish(?:es)?\b|\bwhite\b|\bblack\b|\bgr[ae]y\b"),
        (
            "Energy Star",
            r"\bcertifi|\benergy star\b|\bce\b|\bul\b|\bt[üu]v\b|\benergy (?:label|class)",
        ),
        ("founded", r"\bfound(?:ed|er|ers)\b|\bceo\b|\bestablished\b|\bchief executive\b"),
        ("refrigerant", r"\brefrigerants?\b|\br-?\d{3}a?\b|\bgas\b|\bcoolant\b"),
        ("Matter", r"\bmatter\b|\bhome assistant\b|\bzigbee\b|\bthread\b|\bifttt\b|\bz-wave\b"),
    ],
    "pellam": [
        ("colours", r"\bcolou?rs?\b"),
        ("founded", r"\bfounded\b|\bestablished\b|\bsince \d{4}\b"),
        ("Android", r"\b(android|ios|iphone)\b"),
        ("car", r"\bcar\b|\bcigarette\b"),
        ("certifications", r"\bcertif\w*|\bUL\b|\bCE\b"),
        ("country", r"\bcountry\b|\bmade in\b|\bmanufactur\w*|\bassembled\b"),
        ("wireless", r"\bwireless\w*|\bqi\b"),
        ("tall", r"\b(height|tall|dimensions?|size)\b|\d\s?(mm|cm)\b"),
        ("frequency", r"\bfrequency\b|\bhz\b|\bhertz\b"),
        ("Wi-Fi", r"\bwi-?fi\b|\bwlan\b"),
        ("bag", r"\bbags?\b|\bcases?\b|\bpouch\w*"),
        ("altitude", r"\baltitude\b|\belevation\b|\babove sea level\b"),
        ("trolley", r"\btrolley\b|\bwheel\w*|\bcart\b"),
        ("email", r"\be-?mail\b|@"),
        ("IP", r"\bip\s?\d{2}\b|\bwaterproof\b|\bwater[- ]resistan\w*|\bsplash\w*"),
        ("flashlight", r"\bflashlight\b|\btorch\b|\blamp\b|\bleds?\b"),
    ],
    "corrin": [
        ("bracket", r"\bbrackets?\b|\bwall[- ]?mount"),
        ("cord", r"\bcords?\b|\bcables?\b|\bflex\b"),
        ("founded", r"\bfounded\b|\bestablished\b|\bsince (19|20)\d\d\b"),
        ("certification", r"\bcertif|\bAHAM\b|\benergy star\b|\bCE mark"),
        ("country", r"\bmade in\b|\bmanufactur|\bassembled\b|\bcountry\b"),
        ("colours", r"\bcolou?rs?\b|\bfinish(es)?\b"),
        ("Android", r"\bandroid\b|\bios\b|\biphone\b|\bapp store\b"),
        ("voice", r"\bvoice\b|\balexa\b|\bgoogle\b|\bsiri\b|\bhomekit\b"),
        ("tall", r"\btall\b|\bheight\b|\bdimensions?\b|\b\d+\s*mm\b"),
        ("class", r"\bH1[0-4]\b|\bclass\b|\bgrade\b|\b99\.\d+"),
        ("battery", r"\bbatter(y|ies)\b|\bcordless\b"),
        ("remote", r"\bremote\b"),
        ("band", r"\bghz\b|\bbands?\b|\bfrequenc"),
        ("shipping", r"\bship(s|ping|ped)?\b|\bdispatch|\bpostage\b|\bcouriers?\b|\bdelivered\b"),
        ("standby", r"\bstand-?by\b|\bidle power\b"),
        ("email", r"@|\be-?mail\b"),
    ],
    "brindle": [
        ("colours", r"\bcolou?rs?\b|\bfinish(es)?\b"),
        ("catcher", r"\bcatch(er|ers)?\b|\bgrounds (bin|container|cup)\b|\bbin\b"),
        ("founded", r"\bfounded\b|\bestablished\b|\bsince (19|20)\d\d\b"),
        ("Android", r"\b(ios|android|iphone|ipad)\b|\boperating systems?\b"),
        ("dosing", r"\bdosing cups?\b|\bcups?\b"),
        ("cord", r"\b(cord|cable|lead)\b"),
        ("certification", r"\bcertif\w*|\b(ul|ce|etl|tüv|tuv)\b"),
        ("voltage", r"\bvolts?\b|\bvoltage\b|\b\d+\s?v\b"),
        ("wide", r"\bwidth\b|\bwide\b|\bfootprint\b|\bdepth\b|\bdeep\b"),
        ("dishwasher", r"\bdishwasher\b"),
        ("bellows", r"\bbellows\b"),
        ("metal", r"\b(steel|ceramic|titanium|carbide|hardened|metal)\b"),
        ("standby", r"\bstandby\b|\bpower (draw|consumption)\b|\bidle power\b"),
        ("scale", r"\bscales?\b|\bweigh(s|ing|ed)?\b"),
        ("chief", r"\bceo\b|\bchief executive\b|\bfounders?\b|\bmanaging director\b"),
        ("microns", r"\bmicrons?\b|\bµm\b|\bparticle size\b"),
    ],
    "harrowby": [
        ("roof", r"\b(roof|garage|canopy|shelters?)\b"),
        ("founded", r"\b(founded|established)\b|\bsince (19|20)\d\d\b"),
        ("colour", r"\bcolou?r(s|ed)?\b"),
        ("operating", r"\b(android|ios|iphone|ipad|operating systems?)\b"),
        ("IP", r"\bIP ?\d{2}\b|\bingress\b|\bdust\b"),
        ("assembled", r"\b(country|assembled|made in|manufactured|factory)\b"),
        ("length", r"\b(length|dimensions?|measures?)\b|\b\d+ ?x ?\d+\b"),
        (
            "wire",
            r"\b\d+ ?(m|metres) of (the )?(boundary )?wire\b|\bwire\b[^.]*\b(length|metres long)\b",
        ),
        ("router", r"\b(wi-?fi|wlan|router|ghz|bluetooth|lora|4g|lte)\b"),
        ("voice", r"\b(alexa|siri|google assistant|voice)\b"),
        (
            "spare",
            r"\b(spare|replacement) battery\b|\bbattery\b[^.]*\beuros\b|\beuros\b[^.]*\bbattery\b",
        ),
        ("revolutions", r"\b(rpm|revolutions?|rotations?)\b"),
        ("watts", r"\bwatts?\b|\b\d+(\.\d+)? ?W\b|\bpower (draw|consumption)\b"),
        ("spiked", r"\b(spiked?|spikes|traction)\b"),
        ("GPS", r"\b(gps|rtk|satellite)\b"),
        ("executive", r"\b(ceo|chief executive|founder|managing director)\b"),
    ],
    "selwick": [
        ("colours", r"\bcolou?rs?\b"),
        ("operating", r"\b(ios|android|iphone|ipad|operating systems?)\b"),
        ("founded", r"\b(founded|established|since \d{4})\b"),
        ("case", r"\b(carry(ing)? case|case|pouch|bag)\b"),
        (
            "country",
            r"\b(countr(y|ies)|made in|manufactured in|assembled in|factory in|factories)\b",
        ),
        ("certifications", r"\b(certifi\w*|fcc|ce[- ]mark\w*|rohs)\b"),
        ("tall", r"\b(tall|height|dimensions?|\d+\s*x\s*\d+)\b"),
        ("Bluetooth", r"\bbluetooth\s+(version\s+)?\d|\bble\b"),
        ("loud", r"\b(db|decibels?|noise|noisy|loud\w*|quiet\w*)\b"),
        ("wattage", r"\b\d+(\.\d+)?\s*(w|watts?)\b|\bwatt\w*\b"),
        ("email", r"@|\be-?mail\b"),
        ("fonts", r"\b(fonts?|typefaces?)\b"),
        ("IP", r"\b(ip\s?\d{2}|ipx\d|waterproof|water[- ]?resist\w*|splash\w*)\b"),
        ("barcode", r"\b(bar ?codes?|qr)\b"),
        ("languages", r"\blanguages?\b"),
        (
            "replacement",
            r"\b(replac\w*|spare|swap\w*)\b[^.\n]*\bbatter(y|ies)\b|\bbatter(y|ies)\b[^.\n]*\b(replac\w*|swap\w*)\b",
        ),
    ],
}


@LOOKALIKE
def test_lookalike_corpus_has_six_documents_kb_names_by_file_name(name):
    from ragnb.kb import KnowledgeBase

    docs = DOCS[name]
    assert len(docs) == 6
    for text in docs.values():
        assert text.startswith("# ") and "\n## " in text
    kb = KnowledgeBase(embedder=None, disk_cache=False).add(datasets.docs_dir(name))
    assert set(kb.chunks["doc_id"]) == set(docs)
    # every document is asked about
    assert set(datasets.questions("answerable", name=name)["doc_id"]) == set(docs)


@LOOKALIKE
def test_lookalike_questions_have_the_documented_columns_and_sizes(name):
    both = datasets.questions(name=name)
    assert both.columns == ["question", "answer", "doc_id", "wrong", "split"]
    assert both.schema["wrong"] == pl.List(pl.String)
    assert dict(both.group_by("split").len().iter_rows()) == dict(
        zip(("answerable", "absent"), SIZES[name], strict=True)
    )
    assert both["question"].n_unique() == both.height
    answerable = both.filter(pl.col("split") == "answerable")
    assert answerable["answer"].null_count() == answerable["doc_id"].null_count() == 0


@LOOKALIKE
def test_every_lookalike_answer_is_in_exactly_its_document(name):
    docs = DOCS[name]
    answerable = datasets.questions("answerable", name=name)
    for question, answer, doc_id in answerable.select("question", "answer", "doc_id").iter_rows():
        holders = [n for n, text in docs.items() if _mentions(text, answer)]
        assert holders == [doc_id], (question, answer, holders)
        judged = [n for n, text in docs.items() if matches_reference(text, answer)]
        assert judged == [doc_id], (question, answer, judged)


@LOOKALIKE
def test_lookalike_distractors_are_in_the_corpus_and_never_the_answer(name):
    corpus = "\n".join(DOCS[name].values())
    answerable = datasets.questions("answerable", name=name)
    look_alikes = 0
    for question, answer, wrong in answerable.select("question", "answer", "wrong").iter_rows():
        for value in wrong:
            assert _mentions(corpus, value), (question, value)
            assert not _mentions(value, answer) and not _mentions(answer, value), (question, value)
        look_alikes += bool(wrong)
    assert look_alikes >= 30


@LOOKALIKE
def test_lookalike_questions_are_paraphrased_not_copied(name):
    # No question shares a run of five words with any document.
    texts = [" ".join(re.findall(r"[\w'-]+", t.lower())) for t in DOCS[name].values()]
    for question in datasets.questions(name=name)["question"]:
        words = re.findall(r"[\w'-]+", question.lower())
        for i in range(len(words) - 4):
            run = " ".join(words[i : i + 5])
            assert not any(run in text for text in texts), (question, run)


@LOOKALIKE
def test_no_lookalike_document_answers_an_absent_question(name):
    absent = datasets.questions("absent", name=name)
    assert absent["answer"].null_count() == absent["doc_id"].null_count() == absent.height
    assert absent["wrong"].list.len().sum() == 0
    for question, (asked, topic) in zip(absent["question"], ABSENT_TOPICS[name], strict=True):
        assert asked in question
        for doc, text in DOCS[name].items():
            assert not re.search(topic, text, re.IGNORECASE), (question, doc)


def test_brightwater_splits_and_skymere_defaults():
    with pytest.raises(InputError, match="unknown split 'train'.*answerable, absent"):
        datasets.questions("train", name="brightwater")
    assert datasets.docs_dir("skymere") == datasets.manual_dir()
    with pytest.raises(InputError, match="unknown dataset"):
        datasets.docs_dir("nope")


def test_every_corpus_has_one_role_tuned_on_or_reported_on():
    roles = datasets.DEVELOPMENT + datasets.REPORT
    assert sorted(roles) == sorted(("skymere", *datasets.LOOKALIKE))  # each once, none left out
