"""Benchmark: the bounce classifier beside flufl.bounce alone (issue 12, item 5).

    python bench/bounces.py [--corpus ../shared/corpora/bounces] [--cache DIR] [--no-flufl-data]

Two data sets:

- the corpus of real bounces with Sisimai's answers (`truth.jsonl`, see its README):
  recipients found, class agreement and false permanent (a recipient whose true class is
  not permanent, judged permanent), overall, per true class and for the Japanese
  carriers' samples;
- flufl.bounce's own test data: its sdist is fetched with `pip download` into a cache
  folder at run time (never committed), and the expected addresses are read from its
  `tests/test_detectors.py` table: recipients found.

"flufl.bounce alone" is `all_failures()` on the same messages: its permanent set judged
permanent, its temporary set temporary (it has no other classes).
"""

from __future__ import annotations

import argparse
import ast
import email
import json
import re
import subprocess
import sys
import tarfile
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from flufl.bounce import all_failures  # noqa: E402

from haishin.bounces.classify import classify  # noqa: E402

CARRIER_RE = re.compile(
    r"ezweb|kddi|docomo|softbank|biglobe|au\.com|dion\.ne\.jp|auone|i\.softbank|vodafone",
    re.IGNORECASE,
)

Verdicts = dict[str, str]  # lower-cased address → class


def ours(raw: bytes) -> Verdicts:
    return {j.address.lower(): j.klass.value for j in classify(raw).recipients}


def flufl_alone(raw: bytes) -> Verdicts:
    try:
        msg = email.message_from_bytes(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            temporary, permanent = all_failures(msg)
    except Exception:
        return {}
    out = {a.decode("utf-8", "replace").lower(): "permanent" for a in permanent}
    out.update({a.decode("utf-8", "replace").lower(): "temporary" for a in temporary})
    return out


@dataclass
class Tally:
    n: int = 0
    found: int = 0
    agree: int = 0
    not_permanent: int = 0
    false_permanent: int = 0

    def add(self, truth: str, got: str | None) -> None:
        self.n += 1
        self.found += got is not None
        self.agree += got == truth
        if truth != "permanent":
            self.not_permanent += 1
            self.false_permanent += got == "permanent"

    def line(self) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:5.1f}%" if b else "    -"

        return (
            f"found {pct(self.found, self.n)}  agree {pct(self.agree, self.n)}  "
            f"false permanent {pct(self.false_permanent, self.not_permanent)}"
            f" ({self.false_permanent}/{self.not_permanent})"
        )


@dataclass
class Report:
    overall: Tally = field(default_factory=Tally)
    by_class: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    carriers: Tally = field(default_factory=Tally)


def run_corpus(corpus: Path, judge: Callable[[bytes], Verdicts]) -> Report:
    report = Report()
    for line in (corpus / "truth.jsonl").read_text().splitlines():
        entry = json.loads(line)
        raw = (corpus / "samples" / entry["file"]).read_bytes()
        got = judge(raw)
        for r in entry["recipients"]:
            verdict = got.get(r["address"].lower())
            report.overall.add(r["class"], verdict)
            report.by_class[r["class"]].add(r["class"], verdict)
            if CARRIER_RE.search(entry["file"]) or CARRIER_RE.search(r["address"]):
                report.carriers.add(r["class"], verdict)
    return report


def flufl_data(cache: Path) -> Path:
    """flufl.bounce's sdist, fetched with pip into `cache` once, unpacked."""
    cache.mkdir(parents=True, exist_ok=True)
    sdists = sorted(cache.glob("flufl*bounce-*.tar.gz"))
    if not sdists:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "flufl.bounce",
                "-d",
                str(cache),
                "-q",
            ],
            check=True,
        )
        sdists = sorted(cache.glob("flufl*bounce-*.tar.gz"))
    sdist = sdists[-1]
    unpacked = cache / sdist.name.removesuffix(".tar.gz")
    if not unpacked.exists():
        with tarfile.open(sdist) as tar:
            tar.extractall(cache, filter="data")
    return unpacked


def flufl_expected(tree: Path) -> dict[str, set[str]]:
    """file → expected addresses, from the DETECTORS table of its test_detectors.py."""
    source = (tree / "tests" / "test_detectors.py").read_text()
    expected: dict[str, set[str]] = defaultdict(set)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DETECTORS" for t in node.targets
        ):
            for _module, name, addresses, _temporary in ast.literal_eval(node.value):
                expected[name] |= {a.decode().lower() for a in addresses}
    return expected


def run_flufl(tree: Path, judge: Callable[[bytes], Verdicts]) -> tuple[int, int, int]:
    """(files, expected recipients, found)."""
    expected = flufl_expected(tree)
    total = found = 0
    for name, addresses in sorted(expected.items()):
        got = judge((tree / "tests" / "data" / name).read_bytes())
        total += len(addresses)
        found += len(addresses & set(got))
    return len(expected), total, found


def side_by_side(rows: Iterable[tuple[str, Tally, Tally]]) -> None:
    for label, a, b in rows:
        print(f"  {label:<22} n={a.n:<4} haishin: {a.line()}")
        print(f"  {'':<22} {'':<6} flufl:   {b.line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "bounces"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench-bounces")
    parser.add_argument("--no-flufl-data", action="store_true")
    args = parser.parse_args()
    if not args.corpus.exists() and (ROOT.parents[1] / "shared" / "corpora" / "bounces").exists():
        args.corpus = ROOT.parents[1] / "shared" / "corpora" / "bounces"  # a git worktree

    mine, theirs = run_corpus(args.corpus, ours), run_corpus(args.corpus, flufl_alone)
    print(f"corpus {args.corpus} ({sum(1 for _ in (args.corpus / 'samples').iterdir())} files)")
    side_by_side([("all recipients", mine.overall, theirs.overall)])
    side_by_side(
        (f"class {k}", mine.by_class[k], theirs.by_class[k]) for k in sorted(mine.by_class)
    )
    side_by_side([("Japanese carriers", mine.carriers, theirs.carriers)])
    if not args.no_flufl_data:
        tree = flufl_data(args.cache)
        for label, judge in (("haishin", ours), ("flufl", flufl_alone)):
            files, total, found = run_flufl(tree, judge)
            print(
                f"flufl.bounce test data ({tree.name}, {files} files) {label}: "
                f"recipients found {100 * found / total:.1f}% ({found}/{total})"
            )


if __name__ == "__main__":
    main()
