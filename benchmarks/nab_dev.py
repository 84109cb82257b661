"""What our univariate detectors score on the NAB dev subset, next to Numenta HTM.

Runs every detector of ``detectors.univariate.UNIVARIATE``, in its ranking (default parameters, or
``--param name.key=value``) over the 18 series of ``shared/benchmarks/nab-dev`` with
``evaluation.backtest.score_nab_corpus_with``, optimises one threshold per profile on the
subset, and prints the normalised NAB scores (standard / reward_low_FP_rate /
reward_low_FN_rate) beside Numenta HTM's reference results scored the same way, with timings
(seconds for the 18 series, detection and scoring, and microseconds per reading).

Detectors that take ``input_min`` / ``input_max`` / ``series_length`` get each series' minimum,
maximum and length, as NAB gives every detector ``inputMin`` / ``inputMax`` and the
probationary period (``evaluation.backtest.SERIES_FACTS``).

    python benchmarks/nab_dev.py [--nab-dir DIR] [--keep DIR] [--json FILE]
        [--detector NAME ...] [--param windowed_gaussian.window_size=2000 ...]
        [--score-digits 12]

``--score-digits 12`` writes scores as NAB's published (Python 2) results files did; with it
``windowed_gaussian`` reproduces NAB's own Windowed Gaussian numbers on this subset
(12.07 / 4.81 / 16.04). At full precision the low-FP optimum can sit closer to 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from detectors.univariate import UNIVARIATE
from evaluation.backtest import score_nab_corpus_with
from evaluation.nab import PROFILE_NAMES, default_nab_dir, load_windows, score_corpus

SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def _detector_params(pairs: list[str]) -> dict[str, dict[str, str]]:
    params: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name, dot, param = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--param wants detector.key=value, got {pair!r}")
        params.setdefault(name, {})[param] = value
    return params


def _row_count(nab_dir: Path) -> int:
    """Readings in the subset (the rows every detector scores)."""
    total = 0
    for series in load_windows(nab_dir):
        with open(nab_dir / "data" / series, encoding="utf-8") as f:
            total += sum(1 for line in f if line.strip()) - 1
    return total


def _row(label: str, scores: dict[str, float], seconds: float, note: str = "") -> str:
    cells = "".join(f"{scores[p]:>10.2f}" for p in PROFILE_NAMES)
    if len(label) >= 28:  # long labels (with parameters) get a line of their own
        label = label + "\n" + " " * 28
    return f"{label:<28}{cells}{seconds:>9.1f}s  {note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nab-dir", type=Path, default=None, help="NAB dev subset folder")
    parser.add_argument("--keep", type=Path, default=None, help="keep the results CSVs here")
    parser.add_argument("--json", type=Path, default=None, help="also write the reports here")
    parser.add_argument("--detector", action="append", choices=sorted(UNIVARIATE))
    parser.add_argument("--param", action="append", default=[], metavar="DETECTOR.KEY=VALUE")
    parser.add_argument(
        "--score-digits",
        type=int,
        default=None,
        metavar="N",
        help="round written scores to N significant digits (NAB files: 12)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    nab_dir = args.nab_dir or default_nab_dir()
    if not (nab_dir / "combined_windows.json").is_file():
        print(f"NAB dev subset not found at {nab_dir}", file=sys.stderr)
        return 2
    params = _detector_params(args.param)
    names = args.detector or list(UNIVARIATE)  # the registry's ranking, best first
    rows = _row_count(nab_dir)

    header = f"{'detector':<28}" + "".join(f"{SHORT[p]:>10}" for p in PROFILE_NAMES)
    print(f"NAB dev subset ({nab_dir}), thresholds optimised on these 18 series")
    print(header + f"{'time':>10}")
    print("-" * len(header + " " * 10))
    reports = {}

    started = time.perf_counter()
    reference = score_corpus(nab_dir / "reference" / "numenta", nab_dir)
    print(
        _row(
            "numenta HTM (reference)", reference.normalised, time.perf_counter() - started, "scoring + optimising only"
        )
    )
    reports["numenta"] = reference.to_json()

    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = args.keep / name if args.keep else Path(tmp)
            started = time.perf_counter()
            report = score_nab_corpus_with(name, params.get(name, {}), nab_dir, out_dir, score_digits=args.score_digits)
            elapsed = time.perf_counter() - started
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in params[name].items())})" if name in params else "")
        print(_row(label, report.normalised, elapsed, f"detection + scoring, {1e6 * elapsed / rows:.0f} µs/row"))
        reports[name] = report.to_json()

    print("\nthresholds:")
    for name, body in reports.items():
        print(f"  {name:<26}" + "  ".join(f"{SHORT[p]}={t!r}" for p, t in body["thresholds"].items()))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
