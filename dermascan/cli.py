"""``python -m dermascan``: analyze, batch, evaluate and explain-check from the command line.

Exit codes: 0 success, 2 usage errors and unreadable inputs (one-line message on
stderr, never a traceback), 1 an unexpected internal failure (also one line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from .cam import DEFAULT_METHOD, METHOD_NAMES
from .errors import DermascanError, InvalidImage
from .evaluation.explain_check import DEFAULT_LIMIT
from .inference.preprocessing import RESIZE_POLICIES, SCALINGS
from .inference.views import TRANSFORMS
from .render.numbers import percent
from .reviews import admin as reviews_admin

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints usage + message; keep it to one line
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _thresholds(text: str) -> dict[str, float]:
    try:
        medium, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected MEDIUM,HIGH, e.g. 0.2,0.5") from None
    return {"medium": medium, "high": high}


def _tta_views(text: str) -> list[str]:
    # "none" is the explicit empty list: it overrides a card's views, where no flag keeps them.
    return [] if text.strip().lower() == "none" else _csv_list(text)


def _add_model_flags(p: argparse.ArgumentParser, *, several_cams: bool = False) -> None:
    g = p.add_argument_group("model (each flag overrides the model card)")
    cam_help = (f"a heatmap method to check, repeatable: {', '.join(METHOD_NAMES)} (default: all)" if several_cams
                else f"heatmap method: {', '.join(METHOD_NAMES)} (default: the card's, else {DEFAULT_METHOD})")
    g.add_argument("--model", help="a .keras or .h5 file (default: $DERMASCAN_MODEL, else the bundled model)")
    g.add_argument("--card", help="model card JSON (default: <model stem>.card.json beside the model)")
    g.add_argument("--labels", type=_csv_list, help="class labels in output order, comma-separated")
    g.add_argument("--malignant", type=_csv_list, help="labels that count as malignant, comma-separated")
    g.add_argument("--preprocessing", choices=sorted(SCALINGS), help="pixel scaling")
    g.add_argument("--resize", choices=sorted(RESIZE_POLICIES), help="resize policy")
    g.add_argument("--layer", help="CAM layer name (default: the last spatial layer)")
    g.add_argument("--cam", dest="cam_method", metavar="METHOD", choices=METHOD_NAMES,
                   action="append" if several_cams else "store", help=cam_help)
    g.add_argument("--temperature", type=float, help="softmax calibration temperature")
    g.add_argument("--tta", type=_tta_views, metavar="VIEWS",
                   help="test-time augmentation views averaged in every analysis, comma-separated "
                   f"({', '.join(TRANSFORMS)}); 'none' turns the card's off")
    g.add_argument("--thresholds", type=_thresholds, help="triage thresholds MEDIUM,HIGH")
    g.add_argument("--trust-model-code", action="store_true",
                   help="load a model whose layers carry Python code (Lambda, custom classes); "
                   "that code runs on this machine, so only for files you trust")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (analyze, batch, evaluate, explain-check, fit-gate, info, serve, reviews)."""
    parser = _Parser(prog="python -m dermascan", description="DermaScan Review engine: skin-lesion AI second opinion.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("analyze", help="differential, malignancy score and Grad-CAM for images")
    p.add_argument("images", nargs="+", help="image files")
    _add_model_flags(p)
    p.add_argument("--class", dest="class_label", help="explain this class instead of the top one")
    p.add_argument("--alpha", type=float, default=0.4, help="overlay opacity in [0, 1] (default 0.4)")
    p.add_argument("--overlay-dir", help="also write <image>.gradcam.png overlays here")
    p.add_argument("--json", action="store_true", help="print the full JSON record(s)")

    p = sub.add_parser("batch", help="score a folder, images or .zip archives into a CSV")
    p.add_argument("inputs", nargs="+", help="folders, image files or .zip archives of images")
    p.add_argument("--csv", required=True, help="output CSV path")
    _add_model_flags(p)

    p = sub.add_parser("evaluate", help="metrics on a labelled image set")
    p.add_argument("images_dir", help="folder with the images")
    p.add_argument("labels_csv", help="CSV with columns image_id,dx")
    _add_model_flags(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser("explain-check", help="heatmap sanity (model randomisation) and faithfulness per CAM method")
    p.add_argument("images_dir", help="folder with the images")
    p.add_argument("labels_csv", nargs="?", help="optional CSV with columns image_id,dx: check only those images")
    _add_model_flags(p, several_cams=True)
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"at most this many images (default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("fit-gate", help="fit the input gate's out-of-distribution statistics from training images")
    p.add_argument("images_dir", help="folder with the model's training images")
    p.add_argument("labels_csv", nargs="?", help="optional CSV image_id,dx[,split]: true classes (and train / val "
                   "rows: train fits, val sets the threshold); without it the model's top class is used")
    _add_model_flags(p)

    p = sub.add_parser("info", help="what the engine detects about a model")
    _add_model_flags(p)

    p = sub.add_parser("serve", help="the HTTP API (POST /api/predict, GET /api/health, /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_model_flags(p)

    reviews_admin.add_parser(sub)
    return parser


def _load(args, **extra):
    from .model.card import default_malignant
    from .model.lesion import load_model

    overrides = dict(labels=args.labels, malignant_labels=args.malignant, preprocessing=args.preprocessing,
                     resize=args.resize, cam_layer=args.layer, cam_method=args.cam_method, temperature=args.temperature,
                     thresholds=args.thresholds, tta=args.tta, **extra)
    if args.labels is not None and args.malignant is None:
        overrides["malignant_labels"] = default_malignant(args.labels)
    return load_model(args.model, card=args.card, trust_code=args.trust_model_code, **overrides)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 10) == 0:
        print(f"{done}/{total} images", file=sys.stderr, flush=True)


def _cmd_analyze(args) -> int:
    from .intake.images import read_file_bytes

    model = _load(args)
    class_label = args.class_label
    if class_label is not None:
        model.class_index(class_label)  # validate before reading files
    records, failed = [], 0
    for path in map(Path, args.images):
        try:
            analysis = model.analyze(read_file_bytes(path), class_label=class_label, name=path.name)
        except DermascanError as exc:
            failed += 1
            print(f"error: {path.name}: {exc}", file=sys.stderr)
            records.append({"file": path.name, "error": str(exc)})
            continue
        if args.overlay_dir:
            from .render.png import png_bytes

            out_dir = Path(args.overlay_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{path.stem}.gradcam.png").write_bytes(png_bytes(analysis.overlay(args.alpha)))
        records.append(analysis.to_dict(args.alpha) if args.json else analysis)
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2, allow_nan=False))
    else:
        for rec in records:
            if isinstance(rec, dict):
                continue
            top = rec.predictions[:3]
            diff = ", ".join(f"{p['label']} {percent(p['probability'], 1)}" for p in top)
            print(f"{rec.name}: {diff} | malignancy {percent(rec.malignant_score, 1)} ({rec.triage})")
            print(f"  {rec.explanation}")
            for w in rec.warnings:
                print(f"  warning: {w}")
            for reason in rec.gate.reasons if rec.gate is not None else ():
                print(f"  indeterminate: {reason}")
    return EXIT_USAGE if failed else EXIT_OK


def _expand_inputs(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths.extend(sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")))
        else:
            paths.append(item)
    return paths


def _refused(reason: str):
    def read() -> bytes:
        raise InvalidImage(reason)

    return read


def _batch_sources(paths: list[Path], stack: contextlib.ExitStack) -> list:
    """Sources for image files and for the images inside .zip files (the Batch page's archive code and limits).

    A refused entry (after the archive's readable ones) or an unusable archive becomes a source that
    fails with its reason: it gets an error row and the batch goes on.
    """
    from .inference.batch import file_sources
    from .intake.archive import open_zip

    sources: list = []
    for path in paths:
        if path.suffix.lower() != ".zip":
            sources.extend(file_sources([path]))
            continue
        try:
            listing = open_zip(stack.enter_context(open(path, "rb")))  # noqa: SIM115 - closed by the stack
        except OSError:
            sources.append((path.name, _refused("The archive could not be read.")))
            continue
        except DermascanError as exc:
            sources.append((path.name, _refused(str(exc))))
            continue
        # Entry names carry the archive's name, so rows from two archives can be told apart.
        sources.extend((f"{path.name}/{name}", read) for name, read in listing.sources())
        sources.extend((f"{path.name}/{name}", _refused(reason)) for name, reason in listing.refused)
    return sources


def _cmd_batch(args) -> int:
    from .inference.batch import run_batch
    from .reviews.csvio import CaseCsvWriter, run_context
    from .reviews.records import CaseRecord

    paths = _expand_inputs(args.inputs)
    if not paths:
        raise DermascanError("No input files were found.")
    model = _load(args)
    out = Path(args.csv)
    errors = 0
    context = run_context(model.card, source="cli")  # what a failure row still says about the run
    with contextlib.ExitStack() as stack:
        sources = _batch_sources(paths, stack)
        if not sources:
            raise DermascanError("No images were found in the inputs.")
        # The Review log export's format (csvio): same columns, BOM, formula-safe cells.
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = CaseCsvWriter(fh, model.labels)
            for done, item in enumerate(run_batch(model, sources, with_cam=False), start=1):
                reason = item.error
                if reason is None:
                    try:
                        record = CaseRecord.from_analysis(item.analysis, source="cli")
                        record.file_name = item.name
                        writer.write_case(record.validate())
                    except ValueError as exc:  # a field the record refuses (e.g. an over-long file name)
                        reason = f"The result could not be recorded: {exc}."
                if reason is not None:
                    errors += 1
                    writer.write_failure(item.name, reason, **context)
                _progress(done, len(sources))
    print(f"Wrote {len(sources)} rows to {out.name} ({errors} with errors).", file=sys.stderr)
    return EXIT_OK


def _cmd_evaluate(args) -> int:
    from .evaluation.evaluate import evaluate_folder, format_report

    model = _load(args)
    report = evaluate_folder(model, args.images_dir, args.labels_csv, progress=_progress)
    print(json.dumps(report, indent=2, allow_nan=False) if args.json else format_report(report))
    return EXIT_OK


def _cmd_explain_check(args) -> int:
    from .evaluation.explain_check import explain_check, format_check, read_images

    if args.limit < 1:
        raise DermascanError("--limit must be at least 1.")
    methods = list(dict.fromkeys(args.cam_method or METHOD_NAMES))
    model = _load(argparse.Namespace(**{**vars(args), "cam_method": methods[0]}))
    images, unreadable = read_images(args.images_dir, args.labels_csv, args.limit)
    for name in unreadable:
        print(f"warning: {name} could not be read; skipped", file=sys.stderr)
    report = explain_check(model, images, methods, progress=_progress)
    report["unreadable_images"] = unreadable
    print(json.dumps(report, indent=2, allow_nan=False) if args.json else format_check(report))
    return EXIT_OK


def _cmd_fit_gate(args) -> int:
    from .gate.fit import fit_gate_from_folder

    model = _load(args, gate={})  # refitting must work while the old statistics are stale or broken
    sidecar, threshold, summary = fit_gate_from_folder(model, args.images_dir, args.labels_csv, progress=_progress)
    print(f"Wrote {sidecar.name} ({summary['n_fit']} images fitted, threshold {threshold:.4g} on "
          f"{summary['n_threshold']} held-out images) and the card's gate entry.", file=sys.stderr)
    return EXIT_OK


def _cmd_info(args) -> int:
    model = _load(args)
    print(json.dumps(model.describe(), indent=2, allow_nan=False))
    return EXIT_OK


def _cmd_serve(args) -> int:
    from .api.server import serve

    return serve(lambda: _load(args), host=args.host, port=args.port)


COMMANDS = {"analyze": _cmd_analyze, "batch": _cmd_batch, "evaluate": _cmd_evaluate,
            "explain-check": _cmd_explain_check, "fit-gate": _cmd_fit_gate, "info": _cmd_info, "serve": _cmd_serve,
            "reviews": reviews_admin.run}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except DermascanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # the CLI never shows a traceback
        print(f"error: unexpected failure ({type(exc).__name__}); rerun with -v for details", file=sys.stderr)
        logging.getLogger(__name__).info("unexpected failure", exc_info=True)
        return EXIT_FAILURE
