"""The desk page's strings: every key in both languages, every key the page uses defined.

Read from the shipped files (no browser): ``stagectl/desk/static/i18n.js`` holds both tables,
``index.html`` names keys in ``data-i18n``/``data-i18n-attr``, ``app.js`` calls ``t("key")``.
The Chinese follows docs/i18n-glossary.md (terms and full-width punctuation).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "stagectl" / "desk" / "static"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _tables() -> dict[str, dict[str, str]]:
    text = (STATIC / "i18n.js").read_text(encoding="utf-8")
    tables: dict[str, dict[str, str]] = {}
    for lang in ("en", "zh"):
        block = re.search(rf"\n  {lang}: \{{\n(.*?)\n  \}},", text, re.S)
        assert block is not None, f"no {lang} table in i18n.js"
        pairs = re.findall(r'^\s+"([\w.]+)": "((?:[^"\\]|\\.)*)",\s*$', block.group(1), re.M)
        lines = [ln for ln in block.group(1).splitlines() if ln.strip() and
                 not ln.strip().startswith("//")]
        assert len(pairs) == len(lines), f"{lang}: a line i18n.js's test cannot read"
        table = dict(pairs)
        assert len(table) == len(pairs), f"{lang}: a key is defined twice"
        tables[lang] = table
    return tables


TABLES = _tables()


def test_both_languages_have_the_same_keys() -> None:
    en, zh = TABLES["en"], TABLES["zh"]
    assert sorted(set(en) - set(zh)) == []
    assert sorted(set(zh) - set(en)) == []
    assert len(en) > 100


@pytest.mark.parametrize("key", sorted(TABLES["en"]))
def test_placeholders_match(key: str) -> None:
    names = re.compile(r"\{(\w+)\}")
    assert sorted(names.findall(TABLES["en"][key])) == sorted(
        names.findall(TABLES["zh"][key])), key


# Latin words a Chinese string may keep (docs/i18n-glossary.md, "What stays English").
LATIN_OK = {"stagectl", "English", "GPU"}


def test_chinese_is_chinese_with_full_width_punctuation() -> None:
    for key, text in TABLES["zh"].items():
        words = set(re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", "", text)))
        assert words <= LATIN_OK, f"{key}: {text!r} has English words {sorted(words)}"
        # glossary: after Chinese text use full-width punctuation, no space between words
        assert not re.search(r"[\u4e00-\u9fff][,:;()]", text), f"{key}: {text!r}"
        assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", text), f"{key}: {text!r}"
    for key, text in TABLES["en"].items():
        if key != "lang.switch":
            assert not CJK.search(text), f"en {key}: {text!r}"
    assert sum(1 for text in TABLES["zh"].values() if CJK.search(text)) > 100


def test_glossary_terms() -> None:
    zh = TABLES["zh"]
    assert zh["role.producer"] == "制片"
    assert zh["role.engineer"] == "工程师"
    assert zh["role.viewer"] == "访客"
    assert zh["status.rejected"] == "已拒绝"
    assert zh["err.title"] == "被拒绝"


def _used_keys() -> set[str]:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n="([\w.]+)"', html))
    for attr in re.findall(r'data-i18n-attr="([^"]+)"', html):
        used |= {pair.split(":")[1].strip() for pair in attr.split(",")}
    js = (STATIC / "app.js").read_text(encoding="utf-8")
    used |= set(re.findall(r'\bt\("([\w.]+)"', js))
    used |= set(re.findall(r'"((?:col|farm|req|out|sel|tl|status|act)(?:\.\w+)+)"', js))
    # keys built at run time from a wire value
    used |= {f"status.{s}" for s in ("requested", "hold", "confirmed", "completed", "released",
                                       "expired", "cancelled", "rejected")}
    used |= {f"action.{a}" for a in ("request", "hold", "confirm", "release", "cancel",
                                       "challenge", "move", "place", "rank", "reject", "expire",
                                       "complete")}
    used |= {f"role.{r}" for r in ("viewer", "producer", "engineer", "admin")}
    used |= {f"act.done.{a}" for a in ("hold", "confirm", "release", "cancel")}
    used |= {f"farm.state.{s}" for s in ("active", "done", "stalled", "cancelled")}
    return used


def test_every_key_the_page_uses_is_defined() -> None:
    missing = sorted(k for k in _used_keys() if k not in TABLES["en"])
    assert missing == []


def test_visible_markup_text_comes_from_the_tables() -> None:
    """Every element of index.html with text of its own carries data-i18n."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    body = html.split("<body>", 1)[1]
    # text between a tag's end and the next tag, on elements without data-i18n
    for m in re.finditer(r"<(\w+)([^<>]*)>([^<>]+)</\1>", body):
        tag, attrs, text = m.groups()
        if not text.strip():
            continue
        assert "data-i18n=" in attrs, f"<{tag}{attrs}>{text.strip()}: not translated"
