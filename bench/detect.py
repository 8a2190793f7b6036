"""Detection evaluation: what the rules and anomaly detectors find, how fast, and at what cost.

Four measurements, each beside its baseline in the same run:

1. **KDD99** (``../shared/data/kdd99``, HTTP and SMTP, per-row labels, online in stream order):
   ROC-AUC, PR-AUC and rows/s of our detector (:class:`scoring.guarded.GuardedHalfSpaceTrees`
   on the features' fixed ranges) and of river's ``MinMaxScaler | HalfSpaceTrees()`` defaults.
2. **Benign background**: the seeded mixed capture of ``bench/make_capture.py`` (generated,
   real-looking agency uplink traffic), metered by our sensor and fed to the service's
   :class:`~api.pipeline.Pipeline` (rules + anomaly detectors) in batches. Every detection on it
   is a false alert; reported per 10,000 flows, as detections and as alerts (distinct source
   and entity, which the store merges).
3. **Attacks**: every labelled capture (the traffic lab's, and ``../shared/data``'s where
   present), metered, moved in time to just after the background, and fed record by record, in
   the order the sensor would export them, to a copy of the warmed-up pipeline. Per activity:
   detected or not, by what, and the time from its first packet to the first alert (the end
   time of the record that raised it; the host-minute detector's after its minute closes).
   Per flow: ROC-AUC and PR-AUC of the flow detector's scores on background + attack flows,
   beside a plain river ``HalfSpaceTrees`` behind a ``MinMaxScaler`` on the raw numbers.
4. **Throughput** on one core: flow records/s through rules + anomaly detectors, through the
   rules alone, and through the baseline river pipeline alone.

Run from the repository root::

    .venv/bin/python bench/detect.py            # ~3 minutes on 2 cores
    .venv/bin/python bench/detect.py --packets 2000000 --skip-kdd
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.pipeline import (  # noqa: E402  (after the path is set)
    BUILTIN_RULES,
    Pipeline,
    detection_from_anomaly,
)
from rules.engine import Detection  # noqa: E402
from rules.loader import load_rules  # noqa: E402
from scoring.anomaly import FLOW_CONFIG  # noqa: E402
from scoring.features import FLOW_FEATURES, Feature, flow_features  # noqa: E402
from scoring.guarded import GuardedHalfSpaceTrees  # noqa: E402
from sensors.flows import FlowExporter, FlowMeter  # noqa: E402
from sensors.packet import PacketDecoder  # noqa: E402
from sensors.pcapfile import read_frames  # noqa: E402

SHARED: Final = REPO.parent / "shared" / "data"
GENERATOR: Final = REPO / "bench" / "make_capture.py"
BATCH: Final = 1000
LAB_ATTACKS: Final = ("nmap_syn", "nmap_connect", "bruteforce", "dns_tunnel", "beacon")
SHARED_ATTACKS: Final = (
    "zeek-traces/ssh/sshguess.pcap",
    "zeek-traces/ftp/bruteforce.pcap",
    "zeek-traces/rfb/vnc-scanner.pcap",
    "slips/test19-malicious-ssh/malicious-ssh-bruteforce.pcap",
    "slips/test12-icmp-portscan.pcap",
    "slips/test7-malicious.pcap",
    "slips/test-cc/test-cc-capture-1.pcap",
    "malicious-dns/iodine.pcap",
    "malicious-dns/dnscat2.pcap",
    "malicious-dns/dns2tcp.pcap",
    "malicious-dns/dnsextrator.pcap",
    "malicious-dns/sods.pcap",
)
KDD_LIMITS: Final = (-2.5, 17.0)  # the data set's log(x + 0.1) of seconds and bytes
RAW_KEYS: Final = (
    "source.bytes",
    "destination.bytes",
    "source.packets",
    "destination.packets",
    "event.duration",
    "destination.port",
)

Record = dict[str, Any]


# -- scores ------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), by the rank-sum formula."""
    from scipy.stats import rankdata

    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: the mean of the precision at each attack, in descending score order
    (tied scores ranked together)."""
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked = scores[order], labels[order]
    # A group of tied scores is one threshold: give each member the group's last position.
    last_of_group = np.r_[np.nonzero(np.diff(ranked_scores))[0], len(ranked) - 1]
    group_end = np.repeat(last_of_group, np.diff(np.r_[-1, last_of_group]))
    hits = np.cumsum(ranked)[group_end]
    precision = hits / (group_end + 1)
    positives = ranked.sum()
    return float((precision * ranked).sum() / positives) if positives else math.nan


def baseline_model() -> Any:
    from river import anomaly, preprocessing

    return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)


def stream_scores(model: Any, rows: Iterable[dict[str, float]]) -> tuple[np.ndarray, float]:
    """Score then learn each row, river's online protocol; (scores, rows per second)."""
    scores = []
    started = time.perf_counter()
    judge = getattr(model, "judge", None)
    for x in rows:
        if judge is not None:
            scores.append(judge(x).score)
        else:
            scores.append(model.score_one(x))
            model.learn_one(x)
    elapsed = time.perf_counter() - started
    return np.asarray(scores), len(scores) / elapsed


# -- 1. KDD99 ----------------------------------------------------------------------------


def kdd(limit: int | None) -> list[tuple[str, str, float, float, float, int]]:
    from scipy.io import loadmat

    rows = []
    for name in ("http", "smtp"):
        path = SHARED / "kdd99" / f"{name}.mat"
        if not path.exists():
            print(f"KDD99 {name}: {path} is absent, skipped")
            continue
        data = loadmat(path)
        x, y = data["X"][:limit], data["y"].ravel()[:limit].astype(int)
        features = tuple(
            Feature(f"f{i}", f"f{i}", *KDD_LIMITS, log=False) for i in range(x.shape[1])
        )
        vectors = [{f"f{i}": float(v) for i, v in enumerate(row)} for row in x]
        for label, model in (
            ("ours: GuardedHalfSpaceTrees", GuardedHalfSpaceTrees(features)),
            (
                "ours, learning every 2nd point (the flow detector's setting)",
                GuardedHalfSpaceTrees(features, learn_every=FLOW_CONFIG.learn_every),
            ),
            ("baseline: MinMaxScaler \\| HalfSpaceTrees()", baseline_model()),
        ):
            scores, rate = stream_scores(model, vectors)
            rows.append((name, label, roc_auc(y, scores), pr_auc(y, scores), rate, len(y)))
    return rows


# -- 2./3. captures through the pipeline -------------------------------------------------


def meter(path: Path, sensor: str) -> list[Record]:
    """The records our sensor makes of ``path``, in the order it would export them."""
    decoder, flows = PacketDecoder(), FlowMeter()
    exporter = FlowExporter(sensor)
    records: list[Record] = []
    for frame in read_frames(path):
        packet = decoder.decode(frame.ts_ns, frame.linktype, frame.data)
        if packet is not None:
            flows.add(packet, frame.data)
            records.extend(exporter.record(flow) for flow in flows.drain())
    flows.flush()
    records.extend(exporter.record(flow) for flow in flows.drain())
    for record in records:
        record["observer.name"] = sensor
    return records


def shifted(records: list[Record], to: datetime) -> list[Record]:
    """``records`` moved in time so that the first starts at ``to``."""
    first = min(datetime.fromisoformat(r["event.start"]) for r in records)
    delta = to - first
    out = []
    for record in records:
        moved = dict(record)
        for key in ("event.start", "event.end"):
            moved[key] = (datetime.fromisoformat(record[key]) + delta).isoformat()
        out.append(moved)
    return out


def end_of(records: Iterable[Record]) -> datetime:
    return max(datetime.fromisoformat(r["event.end"]) for r in records)


def generated_capture(cache: Path, packets: int, seed: int) -> Path:
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:8]
    path = cache / f"mixed-{packets}-seed{seed}-{digest}.pcap"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...")
        command = [sys.executable, str(GENERATOR), "--packets", str(packets), "--seed", str(seed)]
        subprocess.run([*command, "--out", str(path)], cwd=REPO, check=True, timeout=1800)
    return path


def attack_captures() -> list[tuple[str, Path]]:
    found = [
        (f"lab/{name}", REPO / "api" / "demo" / "lab" / f"{name}.pcap") for name in LAB_ATTACKS
    ]
    found += [(name, SHARED / name) for name in SHARED_ATTACKS if (SHARED / name).exists()]
    return found


@dataclass
class AttackResult:
    name: str
    flows: int
    detected_by: Counter[str]
    first_alert_s: float | None


def alerts(detections: Iterable[Detection]) -> int:
    """What the store would open: one alert per source and entity (repeats merge)."""
    return len({(d.source, d.entity) for d in detections})


def run_attack(name: str, records: list[Record], warmed: Pipeline) -> AttackResult:
    pipeline = copy.deepcopy(warmed)
    start = min(datetime.fromisoformat(r["event.start"]) for r in records)
    ids = {r["event.id"] for r in records}
    hosts = {r["source.ip"] for r in records}
    detected: Counter[str] = Counter()
    first: float | None = None

    def note(found: list[Detection], at: datetime) -> None:
        nonlocal first
        for detection in found:
            if set(detection.event_ids) & ids or detection.entity in hosts:
                detected[detection.title] += 1
                seconds = (at - start).total_seconds()
                first = seconds if first is None else min(first, seconds)

    for record in records:
        note(pipeline.detect([record]), datetime.fromisoformat(record["event.end"]))
    if pipeline.anomaly is not None:  # minutes still open close 30 s after their end
        last = end_of(records)
        closing = last.replace(second=0, microsecond=0) + timedelta(seconds=90)
        note([detection_from_anomaly(f) for f in pipeline.anomaly.flush()], closing)
    return AttackResult(name, len(records), detected, first)


def raw_vector(record: Record) -> dict[str, float]:
    return {key: float(record.get(key) or 0) for key in RAW_KEYS}


def per_flow_auc(
    background: list[Record], attacks: list[list[Record]], seed: int
) -> list[tuple[str, float, float, int, int]]:
    """Attack flows inserted at seeded random places after the first fifth of the background;
    each detector scores and learns the same stream."""
    rng = np.random.default_rng(seed)
    stream: list[tuple[Record, int]] = [(r, 0) for r in background]
    inserts = [(r, 1) for records in attacks for r in records]
    positions = np.sort(rng.integers(len(stream) // 5, len(stream), size=len(inserts)))
    for offset, (position, item) in enumerate(zip(positions, inserts, strict=True)):
        stream.insert(int(position) + offset, item)
    labels = np.asarray([label for _, label in stream])
    ours = FLOW_CONFIG.model(FLOW_FEATURES)  # the service's flow detector, as a sensor gets it
    results = []
    for label, model, vectorise in (
        ("ours: flow detector (GuardedHalfSpaceTrees)", ours, flow_features),
        (
            "baseline: MinMaxScaler \\| HalfSpaceTrees() on raw numbers",
            baseline_model(),
            raw_vector,
        ),
    ):
        scores, _ = stream_scores(model, (vectorise(r) for r, _ in stream))
        results.append(
            (label, roc_auc(labels, scores), pr_auc(labels, scores), int(labels.sum()), len(labels))
        )
    return results


# -- 4. throughput -----------------------------------------------------------------------


def throughput(records: list[Record]) -> list[tuple[str, float]]:
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    rates = []
    for label, pipeline in (
        ("rules + anomaly detectors (the service's pipeline)", Pipeline.from_directories(None)),
        ("rules alone", Pipeline(load_rules([BUILTIN_RULES]))),
    ):
        started = time.perf_counter()
        for batch in batches:
            pipeline.detect(batch)
        rates.append((label, len(records) / (time.perf_counter() - started)))
    vectors = [raw_vector(r) for r in records]
    _, rate = stream_scores(baseline_model(), vectors)
    rates.append(("baseline river MinMaxScaler \\| HalfSpaceTrees() alone", rate))
    return rates


# -- report ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--packets", type=int, default=600_000, help="background capture size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kdd-rows", type=int, default=None, help="first N rows only")
    parser.add_argument("--skip-kdd", action="store_true")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    cache = (
        args.cache
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trustwatch-bench"
    )
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as promised

    if not args.skip_kdd:
        print("\n## KDD99 (online, stream order)\n")
        print("| set | detector | ROC-AUC | PR-AUC | rows/s | rows |\n|---|---|---|---|---|---|")
        for name, label, roc, pr, rate, n in kdd(args.kdd_rows):
            print(f"| {name} | {label} | {roc:.3f} | {pr:.3f} | {rate:,.0f} | {n:,} |")

    capture = generated_capture(cache, args.packets, args.seed)
    background = meter(capture, "bench")
    print(f"\n## Benign background: {capture.name}, {len(background):,} flows\n")
    warmed = Pipeline.from_directories(None)
    false: list[Detection] = []
    for i in range(0, len(background), BATCH):
        false.extend(warmed.detect(background[i : i + BATCH]))
    per_10k = 10_000 / len(background)
    by_source = Counter(d.source.split(":")[0] + ":" + d.title for d in false)
    print(f"false detections per 10,000 benign flows: {len(false) * per_10k:.2f}")
    print(f"false alerts (distinct source and entity) per 10,000: {alerts(false) * per_10k:.2f}")
    for what, count in by_source.most_common():
        print(f"  {what}: {count}")

    after = end_of(background) + timedelta(seconds=1)
    captured = [(name, shifted(meter(path, "bench"), after)) for name, path in attack_captures()]
    print("\n## Attacks (after the background, on the warmed-up pipeline)\n")
    print("| activity | flows | detected | by | first alert after |\n|---|---|---|---|---|")
    for name, records in captured:
        if not records:
            print(f"| {name} | 0 | - | no flows | - |")
            continue
        result = run_attack(name, records, warmed)
        by = ", ".join(f"{title} ({n})" for title, n in result.detected_by.most_common()) or "-"
        when = "-" if result.first_alert_s is None else f"{result.first_alert_s:.1f} s"
        yes = "yes" if result.detected_by else "**no**"
        print(f"| {name} | {result.flows} | {yes} | {by} | {when} |")

    print("\n## Per-flow anomaly scores (background + attack flows)\n")
    print("| detector | ROC-AUC | PR-AUC | attack flows | flows |\n|---|---|---|---|---|")
    for label, roc, pr, positives, n in per_flow_auc(
        background, [r for _, r in captured], args.seed
    ):
        print(f"| {label} | {roc:.3f} | {pr:.3f} | {positives:,} | {n:,} |")

    print("\n## Throughput, one core (flow records/s)\n")
    rates = throughput(background)
    base = rates[-1][1]
    print("| what | records/s | vs baseline |\n|---|---|---|")
    for label, rate in rates:
        print(f"| {label} | {rate:,.0f} | {rate / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
