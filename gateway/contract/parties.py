"""Party and country codes: ISO 3166-1 alpha-3, plus the Parties that ISO does not list.

The European Union is a Party to the Paris Agreement; the UNFCCC writes it ``EUU``.
"""

from __future__ import annotations

from functools import cache

import pycountry

NON_ISO_PARTIES = {"EUU": "European Union"}

# Names registries use that ISO 3166 no longer lists as a name of the country.
_NAME_ALIASES = {
    "turkey": "TUR",
    "türkiye": "TUR",
    "congo": "COG",
    "democratic republic of the congo": "COD",
    "dr congo": "COD",
    "south korea": "KOR",
    "north korea": "PRK",
    "russia": "RUS",
    "laos": "LAO",
    "iran": "IRN",
    "syria": "SYR",
    "vietnam": "VNM",
    "bolivia": "BOL",
    "venezuela": "VEN",
    "tanzania": "TZA",
    "moldova": "MDA",
    "cote d'ivoire": "CIV",
    "côte d'ivoire": "CIV",
    "ivory coast": "CIV",
}


@cache
def _alpha3_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries) | frozenset(NON_ISO_PARTIES)


def is_party_code(code: str) -> bool:
    return code in _alpha3_codes()


def party_name(code: str) -> str:
    if code in NON_ISO_PARTIES:
        return NON_ISO_PARTIES[code]
    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        raise LookupError(code)
    return str(country.name)


def party_from_alpha2(code: str) -> str | None:
    """ISO alpha-2 (as in Verra and Gold Standard serials) to alpha-3, or None."""
    country = pycountry.countries.get(alpha_2=code.upper())
    return None if country is None else str(country.alpha_3)


def party_from_name(name: str) -> str | None:
    """A country name as registries write it ('Viet Nam', 'Turkey') to alpha-3, or None."""
    key = name.strip().lower()
    if not key:
        return None
    if key in _NAME_ALIASES:
        return _NAME_ALIASES[key]
    try:
        return str(pycountry.countries.lookup(name.strip()).alpha_3)
    except LookupError:
        return None
