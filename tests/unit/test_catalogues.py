"""The pages' words live in the message catalogues only (api/static/i18n): Swedish and English
have the same keys, and every key the pages name literally is in them."""

from __future__ import annotations

import json
import re

from api.pages import PAGES, STATIC

CATALOGUES = {
    lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text()) for lang in ("sv", "en")
}
# data-t="key", t("key"), and t(cond ? "key" : "other")
NAMED = re.compile(
    r"""data-t="([^"{}]+)"|\bt\("([\w.]+)"|\bt\([^()"]*\? "([\w.]+)" : "([\w.]+)"\)"""
)


def named_keys() -> set[str]:
    keys = {f"{page}_title" for page in PAGES}
    for path in STATIC.iterdir():
        if path.name.endswith((".html", ".js")):
            keys |= {k for found in NAMED.findall(path.read_text()) for k in found if k}
    return keys


def test_swedish_and_english_have_the_same_keys() -> None:
    assert set(CATALOGUES["sv"]) == set(CATALOGUES["en"])
    for lang, texts in CATALOGUES.items():
        assert all(isinstance(v, str) and v.strip() for v in texts.values()), lang


def test_every_key_a_page_names_is_in_the_catalogues() -> None:
    missing = sorted(k for k in named_keys() if k not in CATALOGUES["sv"])
    assert not missing, missing


def test_placeholders_agree_between_languages() -> None:
    for key, text in CATALOGUES["sv"].items():
        places = set(re.findall(r"\{(\w+)\}", text))
        assert places == set(re.findall(r"\{(\w+)\}", CATALOGUES["en"][key])), key
