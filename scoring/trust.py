"""Trust ratings, methodology TNM-1: every number of the methodology in one versioned table,
:data:`METHODOLOGY`, and the entry points the service calls.

* :func:`observe` folds one scan observation of one check into its finding state (principle 6:
  a worse result waits for confirmation, a fix counts at once);
* :func:`rate_site` turns a site's finding states and stream statistics into category points,
  caps and one explanation per finding;
* :func:`incident_penalties` prices a provider's incidents at a moment;
* :func:`rate_provider` aggregates the sites, subtracts the penalties, applies every cap and
  the hysteresis, and says when a provider is Not rated (or Provisional);
* :func:`band` is the band of a score alone.

Everything is pure: time is passed in, nothing is read or written. The published methodology
(``scoring/METHODOLOGY.md``, the public page) is rendered from the same table by
:mod:`scoring.methodology`.

>>> METHODOLOGY.version, sum(c.points for c in METHODOLOGY.categories)
('TNM-1', 100)
>>> band(84.9), band(85), band(39.9)
('B', 'A', 'F')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from scoring import trust_incidents, trust_provider, trust_site, trust_stability
from scoring.trust_model import (
    Category,
    FindingState,
    IncidentKind,
    IncidentRecord,
    Observation,
    Penalty,
    Rating,
    SiteInput,
    SiteRating,
)
from scoring.trust_table import (
    Aggregation,
    APlusRules,
    Bands,
    CategoryInfo,
    Deduction,
    DisclosureRules,
    ExpiryCheck,
    ExposureRules,
    FindingCap,
    HttpCheck,
    HttpRules,
    IncidentRule,
    IncidentRules,
    Methodology,
    Note,
    NotRatedRules,
    ReputationRules,
    Requirement,
    ScanCadences,
    ScoredCheck,
    Stability,
    Step,
    TlsCapRules,
    TlsRules,
)

__all__ = [
    "METHODOLOGY",
    "Methodology",
    "band",
    "incident_penalties",
    "observe",
    "rate_provider",
    "rate_site",
]

T, H, D, X, R, G = Category.T, Category.H, Category.D, Category.X, Category.R, Category.G
_DAY: Final = timedelta(days=1)

_TLS: Final = TlsRules(
    grade=ScoredCheck(
        "T1",
        T,
        "grade.tls_ssllabs_compat",
        24,
        (("A+", 24), ("A", 23), ("A-", 21), ("B", 16), ("C", 11), ("D", 6), ("E", 3)),
        "SSL-Labs-compatible grade A+ on the worst address (F, T and M earn 0)",
        "Fix the TLS findings listed with it: TLS 1.2 and 1.3 only, forward-secret AEAD "
        "suites, a trusted certificate that covers the host, HSTS of at least 6 months.",
        reads="grade",
    ),
    expiry=ExpiryCheck(
        "T2",
        "tls.expiry",
        3,
        # Days left at rating time on the worst address: >30 3, 14-30 2, 7-14 1, <7 0.
        (Step(30, 3, strict=True), Step(14, 2), Step(7, 1)),
        "more than 30 days before the certificate expires",
        "Renew the certificate well before it expires; automate it (ACME).",
    ),
    names=ScoredCheck(
        "T3",
        T,
        "tls.name_match",
        1,
        (("pass", 1),),
        "the certificate's subjectAltName covers the host",
        "Use a certificate that names the host (and its www or apex name if both are served).",
    ),
    consistency=ScoredCheck(
        "T4",
        T,
        "tls.consistency",
        2,
        (("pass", 2),),
        "the same certificate, protocols and suites on every address",
        "Deploy the same certificate and TLS configuration on every address.",
    ),
)

_HTTP: Final = HttpRules(
    points=25,
    start=100,
    checks=(
        # (check, most negative modifier of its Observatory-v6 outcomes, what passes)
        HttpCheck("http.redirection", -20, "http:// redirects to https:// on the same host"),
        HttpCheck(
            "http.content-security-policy",
            -25,
            "an enforced Content-Security-Policy without unsafe sources for scripts",
        ),
        HttpCheck(
            "http.cookies", -40, "every cookie Secure, session cookies HttpOnly, with SameSite"
        ),
        HttpCheck("http.cors", -50, "no foreign origin reflected with credentials"),
        HttpCheck(
            "http.referrer-policy",
            -5,
            "Referrer-Policy strict-origin-when-cross-origin or stricter",
        ),
        HttpCheck(
            "http.strict-transport-security",
            -20,
            "Strict-Transport-Security of at least 6 months (1 year for A+)",
        ),
        HttpCheck(
            "http.subresource-integrity",
            -50,
            "external scripts loaded over https:// with integrity attributes",
        ),
        HttpCheck("http.x-content-type-options", -5, "X-Content-Type-Options: nosniff"),
        HttpCheck(
            "http.x-frame-options", -20, "CSP frame-ancestors or X-Frame-Options SAMEORIGIN/DENY"
        ),
        HttpCheck(
            "http.cross-origin-resource-policy", -5, "a valid Cross-Origin-Resource-Policy, if any"
        ),
        HttpCheck(
            "http.cross-origin-embedder-policy", -5, "a valid Cross-Origin-Embedder-Policy, if any"
        ),
        HttpCheck(
            "http.cross-origin-opener-policy", -5, "a valid Cross-Origin-Opener-Policy, if any"
        ),
    ),
    recommendation="See the MDN guide referenced by the finding.",
    hsts_check="http.strict-transport-security",
    no_https_results=("hsts-not-implemented-no-https",),
)

_DNS: Final = (
    ScoredCheck(
        "D1",
        D,
        "dns.spf",
        3,
        (("pass", 3), ("warn", 1)),  # -all/~all pass; ?all or no all warn; else 0
        "one valid SPF record ending in -all or ~all",
        'Publish one SPF record ending in "-all" that lists every server sending mail.',
    ),
    ScoredCheck(
        "D2",
        D,
        "dns.dmarc",
        4,
        (("reject", 4), ("quarantine", 3), ("none", 1)),  # none counts only with rua (warn)
        "a DMARC record with p=reject",
        'Publish "v=DMARC1; p=reject; rua=mailto:..." at _dmarc of the domain.',
        reads="policy",
        fail_earns_nothing=True,
    ),
    ScoredCheck(
        "D3",
        D,
        "dns.dnssec",
        4,
        (("pass", 4),),  # pass is a secure chain of trust
        "the zone is DNSSEC-signed and validates (secure)",
        "Sign the zone and publish its DS record at the registrar.",
    ),
    ScoredCheck(
        "D4",
        D,
        "dns.caa",
        2,
        (("pass", 2),),
        "CAA records with an issue property",
        'Publish CAA records naming the CAs you use, e.g. 0 issue "letsencrypt.org".',
    ),
    ScoredCheck(
        "D5",
        D,
        "dns.nameservers",
        2,
        (("pass", 2), ("warn", 1)),  # two responsive servers in two networks; one network
        "at least 2 responsive authoritative name servers in at least 2 networks",
        "Serve the zone from name servers in at least two networks.",
    ),
)

_EXPOSURE: Final = ExposureRules(
    points=15,
    deductions=(
        Deduction(
            "X1",
            "exposure.high-risk-services",
            8,
            "no high-risk service reachable (Telnet, SMB, RDP, VNC, databases, Docker, "
            "Kubernetes ...); minus 8 per service class",
            "Close these ports to the internet or reach the services over a VPN.",
            per="classes",
        ),
        Deduction("X2", "exposure.ftp", 3, "FTP (21) not reachable", "Replace FTP with SFTP."),
        Deduction(
            "X3",
            "exposure.eol-software",
            5,
            "no end-of-life software advertised (advisory)",
            "Upgrade to a supported release and stop advertising versions.",
        ),
        Deduction("X4", "exposure.git", 8, "/.git/HEAD not exposed", "Deny access to /.git."),
        Deduction(
            "X5",
            "exposure.env",
            8,
            "/.env not exposed",
            "Remove /.env from the web root, then rotate every secret it held.",
        ),
        Deduction(
            "X6",
            "exposure.directory-listing",
            8,
            "no automatic directory listing",
            "Turn off automatic directory indexes.",
        ),
    ),
)

_REPUTATION: Final = ReputationRules(
    blocklist_check="reputation.blocklist",
    blocklist_points=4,
    availability_check="availability.uptime",
    availability=(Step(0.995, 3), Step(0.99, 2), Step(0.95, 1)),
    window_days=30,
    ttfb_check="availability.ttfb-p95",
    ttfb_limit_seconds=1.0,
    ttfb_points=1,
    integrity_check="availability.content-integrity",
    integrity_points=2,
    integrity_unconfirmed_points=1,
    integrity_confirmations=2,
    expectations=(
        (
            "reputation.blocklist",
            "not on a configured blocklist",
            "Find out why the name is listed, clean up, and ask the list to delist it.",
        ),
        (
            "availability.uptime",
            "up in at least 99.5 % of the probes of the last 30 days",
            "Find the cause of the outages (the probes' times are in the evidence).",
        ),
        (
            "availability.ttfb-p95",
            "95 % of home-page first bytes within 1 s",
            "Cache the home page or speed up what builds it.",
        ),
        (
            "availability.content-integrity",
            "no defacement, injected spam or unexpected page change",
            "Look at the page and the server for injected content; restore a clean copy.",
        ),
    ),
)

_DISCLOSURE: Final = DisclosureRules(
    security_txt=ScoredCheck(
        "G1",
        G,
        "disclosure.security-txt",
        3,
        (("valid", 3), ("invalid", 1)),
        "a valid /.well-known/security.txt (RFC 9116: Contact, Expires in the future)",
        "Publish /.well-known/security.txt over HTTPS (RFC 9116).",
        reads="state",
    ),
    privacy_policy=ScoredCheck(
        "G2",
        G,
        "disclosure.privacy-policy",
        2,
        (("pass", 2),),
        "a privacy-policy page linked from the home page",
        "Link the privacy policy from the home page.",
    ),
)

_C_CAP: Final = "C"

METHODOLOGY: Final[Methodology] = Methodology(
    version="TNM-1",
    categories=(
        CategoryInfo(T, "TLS & certificates", 30),
        CategoryInfo(H, "HTTP security", 25),
        CategoryInfo(D, "DNS & e-mail", 15),
        CategoryInfo(X, "exposure & hygiene", 15),
        CategoryInfo(R, "reputation, availability, integrity", 10),
        CategoryInfo(G, "disclosure", 5),
    ),
    tls=_TLS,
    http=_HTTP,
    dns=_DNS,
    exposure=_EXPOSURE,
    reputation=_REPUTATION,
    disclosure=_DISCLOSURE,
    finding_caps=(
        FindingCap(
            "http.strict-transport-security",
            "D",
            "no HTTPS at all",
            results=("hsts-not-implemented-no-https",),
        ),
        FindingCap(
            "http.redirection",
            _C_CAP,
            "HTTP is not redirected to HTTPS",
            results=("redirection-missing", "redirection-not-to-https"),
        ),
        FindingCap(
            "http.cookies",
            _C_CAP,
            "a session cookie without Secure",
            results=("cookies-session-without-secure-flag",),
        ),
        FindingCap(
            "http.cors",
            _C_CAP,
            "CORS reflects any origin with credentials",
            results=("cross-origin-resource-sharing-implemented-with-universal-access",),
        ),
        FindingCap(
            "http.subresource-integrity",
            _C_CAP,
            "external scripts over http:// without SRI",
            results=("sri-not-implemented-and-external-scripts-not-loaded-securely",),
        ),
        FindingCap("dns.dnssec", _C_CAP, "DNSSEC is bogus", evidence=(("status", "bogus"),)),
        FindingCap(
            "exposure.high-risk-services",
            _C_CAP,
            "a high-risk service is reachable from the internet",
            status="fail",
        ),
        FindingCap("exposure.git", _C_CAP, "/.git is exposed", status="fail"),
        FindingCap("exposure.env", _C_CAP, "/.env is exposed", status="fail"),
        FindingCap("dns.spf", "B", "SPF ends in +all", evidence=(("all", "+"),)),
        FindingCap(
            "http.strict-transport-security",
            "A",
            "HSTS missing or shorter than 6 months (no A+)",
            results=(
                "hsts-not-implemented",
                "hsts-header-invalid",
                "hsts-invalid-cert",
                "hsts-implemented-max-age-less-than-six-months",
            ),
        ),
    ),
    tls_caps=TlsCapRules(
        check="grade.tls_ssllabs_compat",
        carry=(
            ("A-", "A"),  # no TLS 1.3 (or HSTS, left to the HTTP check): A, no A+
            ("B", "B"),
            ("C", "C"),
            ("D", "D"),
            ("E", "D"),
            ("F", "F"),  # SSLv2, Heartbleed, ROBOT, export ciphers, MD5, key < 1024
            ("T", "F"),  # untrusted, expired or self-signed certificate
            ("M", "F"),  # certificate name mismatch
        ),
        left_to=(("A-: HSTS", "http.strict-transport-security"),),
    ),
    incidents=IncidentRules(
        rows=(
            IncidentRule(IncidentKind.DEFACEMENT, "defacement", 20, 90, 730, "F", None, True, True),
            IncidentRule(
                IncidentKind.INJECTED_CONTENT,
                "injected content",
                20,
                90,
                730,
                "F",
                None,
                True,
                True,
            ),
            IncidentRule(
                IncidentKind.MALWARE, "malware on the domain", 20, 90, 730, "F", None, True, True
            ),
            IncidentRule(
                IncidentKind.PHISHING, "phishing on the domain", 20, 90, 730, "F", None, True, True
            ),
            IncidentRule(
                IncidentKind.DATA_BREACH,
                "confirmed data breach",
                25,
                120,
                730,
                _C_CAP,
                30,
                False,
                True,
            ),
            IncidentRule(IncidentKind.DNS_HIJACK, "DNS hijack", 15, 90, 730, "F", None, True, True),
            IncidentRule(
                IncidentKind.CERTIFICATE,
                "invalid or expired certificate for 24 h or more",
                5,
                30,
                180,
            ),
            IncidentRule(IncidentKind.OUTAGE, "total outage over 24 h", 3, 30, 180),
            IncidentRule(
                IncidentKind.UNCONFIRMED_ALERT, "unconfirmed alert about the provider", 2, 14, 60
            ),
        ),
        repeat_window_days=365,
        repeat_factor=1.5,
        probation=((30, _C_CAP), (90, "B")),
    ),
    bands=Bands(
        bands=(("A", 85), ("B", 70), (_C_CAP, 55), ("D", 40)),  # A+: see a_plus
        lowest="F",
        hysteresis=1.0,
        order=("A+", "A", "B", _C_CAP, "D", "F"),
    ),
    a_plus=APlusRules(
        min_score=95,
        requirements=(
            Requirement("grade.tls_ssllabs_compat", "grade", ("A+",), "TLS sub-grade A+"),
            Requirement(
                "dns.dmarc", "policy", ("quarantine", "reject"), "DMARC quarantine or reject"
            ),
            Requirement("dns.dnssec", "status", ("secure",), "DNSSEC secure"),
            Requirement("disclosure.security-txt", "state", ("valid",), "a valid security.txt"),
        ),
        hsts_min_seconds=31_536_000,  # one year
        observatory_min=90,
        incident_free_days=180,
    ),
    aggregation=Aggregation(
        weight_divisor=450.0,
        importance=(("primary", 3), ("transaction", 2), ("other", 1)),
        max_addresses=8,
    ),
    not_rated=NotRatedRules(max_untestable=0.30, unreachable_days=7, provisional_days=14),
    stability=Stability(confirm_after=timedelta(hours=1), confirm_vantages=2),
    cadences=ScanCadences(
        availability=timedelta(minutes=5),
        http=_DAY,
        dns=_DAY,
        disclosure=_DAY,
        tls=7 * _DAY,
        exposure=7 * _DAY,
    ),
    score_decimals=1,
    notes=(
        Note("tls.protocols", T, "TLS 1.2 and 1.3 only"),
        Note("tls.ciphers", T, "forward-secret suites only, with an AEAD suite"),
        Note("tls.key", T, "a key of at least 2048 RSA-equivalent bits"),
        Note("tls.chain", T, "a complete chain to a trusted root"),
        Note("tls.signature", T, "SHA-2 or EdDSA signatures"),
        Note("tls.ocsp_stapling", T, "an OCSP response stapled"),
        Note("tls.vulnerabilities", T, "neither Heartbleed nor ROBOT"),
        Note("availability.status", R, "the home page answers 2xx, 3xx, 401 or 403"),
        Note("availability.ttfb", R, "the first byte of the home page within 1 s"),
    ),
    areas=(
        ("grade.tls_", T),
        ("grade.http_", H),
        ("tls.", T),
        ("http.", H),
        ("dns.", D),
        ("exposure.", X),
        ("availability.", R),
        ("reputation.", R),
        ("disclosure.", G),
    ),
)


def band(score: float, table: Methodology = METHODOLOGY) -> str:
    """The band a score earns without A+ eligibility: A, B, C, D or F."""
    return trust_stability.band_of(score, eligible=False, table=table)


def observe(
    state: FindingState | None, observation: Observation, table: Methodology = METHODOLOGY
) -> FindingState:
    """Fold ``observation`` into the finding state of its check (see
    :func:`scoring.trust_stability.observe`)."""
    return trust_stability.observe(state, observation, table)


def rate_site(site: SiteInput, now: datetime, table: Methodology = METHODOLOGY) -> SiteRating:
    """One site's posture, caps and explanations (see :func:`scoring.trust_site.rate_site`)."""
    return trust_site.rate_site(site, now, table)


def incident_penalties(
    incidents: Sequence[IncidentRecord], now: datetime, table: Methodology = METHODOLOGY
) -> tuple[Penalty, ...]:
    """What each incident costs at ``now`` (see :mod:`scoring.trust_incidents`)."""
    return tuple(a.penalty for a in trust_incidents.assess(incidents, now, table))


def rate_provider(
    provider: str,
    sites: Sequence[SiteInput],
    incidents: Sequence[IncidentRecord],
    now: datetime,
    *,
    registered_at: datetime,
    previous: Rating | None = None,
    table: Methodology = METHODOLOGY,
) -> Rating:
    """A provider's rating at ``now`` (see :func:`scoring.trust_provider.rate_provider`)."""
    return trust_provider.rate_provider(
        provider,
        sites,
        incidents,
        now,
        registered_at=registered_at,
        previous=previous,
        table=table,
    )
