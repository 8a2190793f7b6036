"""End-of-life server software: the branches whose support has ended, with the date it ended,
and the reader of the ``Server`` and ``X-Powered-By`` banners that advertise them.

A banner is a list of ``product/version`` tokens (``Apache/2.2.15 (CentOS) OpenSSL/1.0.2k-fips
PHP/5.6.40``). Each token whose product is in :data:`EOL_BRANCHES` is matched to the longest
branch prefix of its version; the branch's end-of-life date is then compared with the time of
the observation, never with the clock, so an old report reads the same tomorrow.

A banner is a claim, not a proof: distributions backport fixes into old version numbers
(Ubuntu's nginx 1.18, RHEL's Apache 2.4.6), which is why the methodology makes this finding
advisory (a warning, minus 5 points) and never a cap.

>>> [(s.product, s.version) for s in parse_banner("Apache/2.2.15 (CentOS) PHP/5.6.40")]
[('apache', '2.2.15'), ('php', '5.6.40')]
>>> end_of_life(parse_banner("nginx/1.20.1")[0])
datetime.date(2022, 5, 24)
>>> end_of_life(parse_banner("nginx/1.29.0")[0]) is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

TABLE_AS_OF: Final = date(2026, 11, 1)
"""When the table was last reviewed: branches released or retired after it are not known."""

# Banner product names as servers send them (lower case) → the product of the table.
_PRODUCTS: Final = {
    "apache": "apache",
    "nginx": "nginx",
    "php": "php",
    "microsoft-iis": "iis",
    "openssl": "openssl",
    "python": "python",
}

# (product, branch, end of support). A branch is a version prefix; the longest prefix that
# matches wins, so ("php", (5,)) covers every 5.x not listed on its own. Sources: the projects'
# own pages (httpd.apache.org, nginx.org CHANGES, php.net/eol.php, Microsoft lifecycle for the
# Windows Server release each IIS ships with, openssl-library.org/policies/releasestrat,
# devguide.python.org/versions). nginx supports only the current stable and mainline branches,
# so a branch ends the day the next even (stable) branch is released.
EOL_BRANCHES: Final[tuple[tuple[str, tuple[int, ...], date], ...]] = (
    ("apache", (1,), date(2010, 2, 3)),
    ("apache", (2, 0), date(2013, 7, 10)),
    ("apache", (2, 1), date(2013, 7, 10)),  # development branch of 2.2
    ("apache", (2, 2), date(2017, 12, 31)),
    ("apache", (2, 3), date(2017, 12, 31)),  # development branch of 2.4
    ("nginx", (0,), date(2011, 4, 12)),
    ("nginx", (1, 0), date(2012, 4, 23)),
    ("nginx", (1, 1), date(2012, 4, 23)),
    ("nginx", (1, 2), date(2013, 4, 24)),
    ("nginx", (1, 3), date(2013, 4, 24)),
    ("nginx", (1, 4), date(2014, 4, 24)),
    ("nginx", (1, 5), date(2014, 4, 24)),
    ("nginx", (1, 6), date(2015, 4, 21)),
    ("nginx", (1, 7), date(2015, 4, 21)),
    ("nginx", (1, 8), date(2016, 4, 26)),
    ("nginx", (1, 9), date(2016, 4, 26)),
    ("nginx", (1, 10), date(2017, 4, 12)),
    ("nginx", (1, 11), date(2017, 4, 12)),
    ("nginx", (1, 12), date(2018, 4, 17)),
    ("nginx", (1, 13), date(2018, 4, 17)),
    ("nginx", (1, 14), date(2019, 4, 23)),
    ("nginx", (1, 15), date(2019, 4, 23)),
    ("nginx", (1, 16), date(2020, 4, 21)),
    ("nginx", (1, 17), date(2020, 4, 21)),
    ("nginx", (1, 18), date(2021, 4, 20)),
    ("nginx", (1, 19), date(2021, 4, 20)),
    ("nginx", (1, 20), date(2022, 5, 24)),
    ("nginx", (1, 21), date(2022, 5, 24)),
    ("nginx", (1, 22), date(2023, 4, 11)),
    ("nginx", (1, 23), date(2023, 4, 11)),
    ("nginx", (1, 24), date(2024, 4, 23)),
    ("nginx", (1, 25), date(2024, 4, 23)),
    ("nginx", (1, 26), date(2025, 4, 23)),
    ("nginx", (1, 27), date(2025, 4, 23)),
    ("php", (3,), date(2000, 10, 20)),
    ("php", (4,), date(2008, 8, 7)),
    ("php", (5,), date(2018, 12, 31)),  # 5.6, the last 5.x
    ("php", (5, 2), date(2011, 1, 6)),
    ("php", (5, 3), date(2014, 8, 14)),
    ("php", (5, 4), date(2015, 9, 3)),
    ("php", (5, 5), date(2016, 7, 21)),
    ("php", (7, 0), date(2019, 1, 10)),
    ("php", (7, 1), date(2019, 12, 1)),
    ("php", (7, 2), date(2020, 11, 30)),
    ("php", (7, 3), date(2021, 12, 6)),
    ("php", (7, 4), date(2022, 11, 28)),
    ("php", (8, 0), date(2023, 11, 26)),
    ("php", (8, 1), date(2025, 12, 31)),
    ("php", (8, 2), date(2026, 12, 31)),
    ("php", (8, 3), date(2027, 12, 31)),
    ("php", (8, 4), date(2028, 12, 31)),
    ("iis", (4,), date(2005, 6, 30)),  # Windows NT 4.0
    ("iis", (5, 0), date(2010, 7, 13)),  # Windows 2000
    ("iis", (5, 1), date(2014, 4, 8)),  # Windows XP
    ("iis", (6,), date(2015, 7, 14)),  # Windows Server 2003
    ("iis", (7, 0), date(2020, 1, 14)),  # Windows Server 2008
    ("iis", (7, 5), date(2020, 1, 14)),  # Windows Server 2008 R2
    ("iis", (8, 0), date(2023, 10, 10)),  # Windows Server 2012
    ("iis", (8, 5), date(2023, 10, 10)),  # Windows Server 2012 R2
    ("openssl", (0,), date(2015, 12, 31)),
    ("openssl", (1, 0), date(2019, 12, 31)),  # 1.0.2, the last 1.0.x
    ("openssl", (1, 0, 0), date(2015, 12, 31)),
    ("openssl", (1, 0, 1), date(2016, 12, 31)),
    ("openssl", (1, 1, 0), date(2019, 9, 11)),
    ("openssl", (1, 1, 1), date(2023, 9, 11)),
    ("openssl", (3, 0), date(2026, 9, 7)),
    ("openssl", (3, 1), date(2025, 3, 14)),
    ("openssl", (3, 2), date(2025, 11, 23)),
    ("openssl", (3, 3), date(2026, 4, 9)),
    ("openssl", (3, 4), date(2026, 10, 22)),
    ("openssl", (3, 5), date(2030, 4, 8)),
    ("python", (2,), date(2020, 1, 1)),
    ("python", (3, 5), date(2020, 9, 30)),
    ("python", (3, 6), date(2021, 12, 23)),
    ("python", (3, 7), date(2023, 6, 27)),
    ("python", (3, 8), date(2024, 10, 7)),
    ("python", (3, 9), date(2025, 10, 31)),
    ("python", (3, 10), date(2026, 10, 31)),
    ("python", (3, 11), date(2027, 10, 31)),
)

MAX_TOKENS: Final = 16  # per banner: a real one has three or four; the rest is noise

_TOKEN: Final = re.compile(r"([A-Za-z][A-Za-z0-9_.+-]{0,40})/(\d{1,4}(?:\.\d{1,4}){0,3})([a-z]?)")


@dataclass(frozen=True)
class Software:
    """One ``product/version`` a banner advertises, in the table's product names."""

    product: str
    version: str
    numbers: tuple[int, ...]


def parse_banner(banner: str) -> tuple[Software, ...]:
    """The known products a ``Server`` or ``X-Powered-By`` value names with a version.

    >>> parse_banner("Microsoft-IIS/7.5")
    (Software(product='iis', version='7.5', numbers=(7, 5)),)
    >>> parse_banner("OpenSSL/1.0.2k-fips")[0].version
    '1.0.2k'
    >>> parse_banner("cloudflare")
    ()
    """
    found: list[Software] = []
    for match in list(_TOKEN.finditer(banner[:1000]))[:MAX_TOKENS]:
        product = _PRODUCTS.get(match.group(1).lower())
        if product is None:
            continue
        numbers = tuple(int(part) for part in match.group(2).split("."))
        found.append(Software(product, match.group(2) + match.group(3), numbers))
    return tuple(found)


def end_of_life(software: Software) -> date | None:
    """The end-of-life date of the software's branch, or None when no listed branch matches
    (a supported branch, or one newer than the table)."""
    best: tuple[int, date] | None = None
    for product, branch, eol in EOL_BRANCHES:
        if product != software.product or software.numbers[: len(branch)] != branch:
            continue
        if best is None or len(branch) > best[0]:
            best = (len(branch), eol)
    return None if best is None else best[1]


def advertised_software(
    banners: tuple[tuple[str, str], ...], day: date
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Every known product the ``(header, value)`` banners advertise, and those of them past
    their branch's end of life on ``day`` (with the date), as evidence records.

    >>> advertised_software((("server", "nginx/1.29.1 PHP/7.4.3"),), date(2026, 1, 1))[1]
    [{'product': 'php', 'version': '7.4.3', 'header': 'server', 'end_of_life': '2022-11-28'}]
    """
    advertised, expired = [], []
    for header, value in banners:
        for software in parse_banner(value):
            entry = {"product": software.product, "version": software.version, "header": header}
            advertised.append(entry)
            eol = end_of_life(software)
            if eol is not None and eol <= day:
                expired.append({**entry, "end_of_life": eol.isoformat()})
    return advertised, expired
