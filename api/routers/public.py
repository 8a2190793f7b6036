"""The public lookup: no token, read-only, rate-limited per client address.

``/public/v1/providers?q=`` searches by name or domain; ``/public/v1/providers/{id-or-domain}``
answers the stored rating document (score, grade, categories, caps, findings with fixes, last
scanned, methodology version) as it was stored, without re-encoding; ``/history`` is its time
series; ``/badge.svg`` the embeddable badge; ``/public/v1/methodology`` the methodology,
generated from the scoring table. Answers may be cached by browsers and proxies for a minute
(the badge five): a rating changes at most as often as its sites are scanned.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from api.badge import render_badge
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError
from api.methodology_page import methodology_html
from api.ratelimit import PublicLimit
from scoring.methodology import methodology_document, render_markdown
from scoring.trust import METHODOLOGY

router = APIRouter(tags=["public"])

LOOKUP_MAX_AGE: Final = 60
BADGE_MAX_AGE: Final = 300  # as shields.io: embedded badges are fetched on every page view
MAX_RESULTS: Final = 50
MAX_HISTORY: Final = 1000

Key = Annotated[
    str,
    Path(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="a provider id, or the domain of one of its sites",
    ),
]

_PUBLIC_HEADERS: Final = {
    # Read-only data meant to be embedded and fetched from other sites' pages.
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
}


def _headers(max_age: int) -> dict[str, str]:
    return {**_PUBLIC_HEADERS, "Cache-Control": f"public, max-age={max_age}"}


@router.get("/public/v1/providers", summary="Search providers by name or domain (public)")
def search(
    _: PublicLimit,
    store: StoreDep,
    q: Annotated[
        str,
        Query(
            min_length=2,
            max_length=100,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="part of a name, or a domain",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
) -> Response:
    found = store.search_providers(q, limit)
    items = [
        {
            "id": match.id,
            "name": match.name,
            "agency": match.agency,
            "domains": list(match.domains),
            "grade": match.grade,
            "score": match.score,
            "computed_at": match.computed_at,
        }
        for match in found
    ]
    return Response(
        orjson.dumps({"items": items}),
        media_type="application/json",
        headers=_headers(LOOKUP_MAX_AGE),
    )


@router.get("/public/v1/providers/{key}", summary="A provider's rating (public)")
def lookup(key: Key, _: PublicLimit, store: StoreDep) -> Response:
    doc = store.rating_doc(key)
    if doc is None:
        raise NotFoundError(f"no rated provider {key}")
    return Response(doc, media_type="application/json", headers=_headers(LOOKUP_MAX_AGE))


@router.get("/public/v1/providers/{key}/history", summary="A provider's rating over time")
def history(
    key: Key,
    _: PublicLimit,
    store: StoreDep,
    clock: ClockDep,
    days: Annotated[int, Query(ge=1, le=3650)] = 365,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = MAX_HISTORY,
) -> Response:
    provider = store.find_provider(key)
    if provider is None:
        raise NotFoundError(f"no provider {key}")
    points = store.rating_history(provider.id, clock() - timedelta(days=days), limit)
    body: dict[str, Any] = {
        "id": provider.id,
        "name": provider.name,
        "points": [
            {"at": p.at, "status": p.status, "grade": p.grade, "score": p.score} for p in points
        ],
    }
    return Response(
        orjson.dumps(body), media_type="application/json", headers=_headers(LOOKUP_MAX_AGE)
    )


@router.get(
    "/public/v1/providers/{key}/badge.svg",
    summary="An embeddable badge: grade and date, or a warning during an incident",
    response_class=Response,
)
def badge(key: Key, _: PublicLimit, store: StoreDep, request: Request) -> Response:
    provider = store.find_provider(key)
    stored = None if provider is None else store.current_rating(provider.id)
    headers = {
        **_headers(BADGE_MAX_AGE),
        # An SVG opened on its own is a document: nothing in it may run or load.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    if stored is None:
        svg = render_badge("Not rated", None)
        return Response(svg, status_code=404, media_type="image/svg+xml", headers=headers)
    etag = f'"{stored.provider}-{stored.computed_at.timestamp():.0f}-{int(stored.warning)}"'
    headers["ETag"] = etag
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    svg = render_badge(stored.grade, stored.computed_at.date(), warning=stored.warning)
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get("/public/v1/methodology", summary="The rating methodology, from the scoring table")
def methodology(_: PublicLimit) -> JSONResponse:
    return JSONResponse(methodology_document(METHODOLOGY), headers=_headers(3600))


@router.get(
    "/public/v1/methodology.md", summary="The methodology as Markdown", response_class=Response
)
def methodology_markdown(_: PublicLimit) -> Response:
    return Response(
        render_markdown(METHODOLOGY),
        media_type="text/markdown; charset=utf-8",
        headers=_headers(3600),
    )


@router.get("/methodology", summary="The methodology page", response_class=HTMLResponse)
def methodology_page(_: PublicLimit) -> HTMLResponse:
    return HTMLResponse(
        methodology_html(METHODOLOGY),
        headers={
            **_headers(3600),
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )
