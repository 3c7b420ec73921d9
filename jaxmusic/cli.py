"""`jaxmusic <command>`: prepare, train, convert, embed, probe, language, bench, quickstart.

Errors a user can fix (a bad config key, a batch that does not divide, a missing
dataset, a diverged loss) end the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from pathlib import Path

from jaxmusic.config import ConfigError
from jaxmusic.evaluate.probe import ProbeConfig


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="config file, optionally with an argument: configs/clmr_samplecnn.py:runlocal. "
        "Override any key with --config.KEY=VALUE (e.g. --config.batch_size=16)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxmusic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="write training-ready ArrayRecord shards")
    prep_sub = prep.add_subparsers(dest="source", required=True)
    s = prep_sub.add_parser("synth", help="the built-in synthetic music (deterministic)")
    s.add_argument("--out", required=True)
    s.add_argument("--clips", type=int, default=800)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sample-rate", type=int, default=16000)
    s.add_argument("--duration", type=float, default=5.0, help="seconds per clip")
    f = prep_sub.add_parser("folder", help="your own audio files, with optional labels and captions")
    f.add_argument("--in", dest="in_dir", required=True, help="folder searched (recursively) for audio")
    f.add_argument("--out", required=True)
    f.add_argument(
        "--labels",
        help="CSV/TSV `path,<task columns>[,split]` (comma, semicolon or tab; UTF-8) or JSON {path: {task: value}}",
    )
    f.add_argument(
        "--path-column",
        help="the labels column naming the files (default: path, else the first of file, filename, "
        "file_name, audio, audio_path, track; case-insensitive)",
    )
    f.add_argument(
        "--task", action="append", metavar="COLUMN[:KIND][=NAME]",
        help="a labels column to use as a task (repeatable; given, only these are tasks); "
        "KIND single|multi|regression forces its kind, NAME renames it",
    )  # fmt: skip
    f.add_argument(
        "--split", metavar="TRAIN/VALID/TEST",
        help="fractions of the seeded split of files the labels give no split (default 80/10/10; "
        "100/0/0 puts everything in train)",
    )  # fmt: skip
    f.add_argument("--captions", help='JSON lines {"path": ..., "caption": ...}')
    f.add_argument("--sample-rate", type=int, default=22050)
    f.add_argument("--workers", type=int, default=1, help="decoding processes")
    f.add_argument("--seed", type=int, default=0, help="seed of the split of files given none")
    f.add_argument("--clips-per-shard", type=int, default=256, help=argparse.SUPPRESS)
    from jaxmusic.evaluate.language import DEFAULT_PROMPT
    from jaxmusic.prepare.adapters import ADAPTERS

    for name, adapter in ADAPTERS.items():
        a = prep_sub.add_parser(
            name, help=adapter.help, description=sys.modules[type(adapter).__module__].__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        a.add_argument("--out", required=True)
        a.add_argument("--sample-rate", type=int, default=22050)
        a.add_argument("--workers", type=int, default=1, help="decoding processes")
        a.add_argument("--seed", type=int, default=0, help="seed of any split the dataset does not fix")
        adapter.add_arguments(a)

    t = sub.add_parser("train", help="pre-train an encoder (resumes from --workdir)")
    _add_config(t)
    t.add_argument("--workdir", required=True)
    d = t.add_argument_group("multi-process (one command per process)")
    d.add_argument("--distributed", action="store_true", help="join the cluster's runtime (Cloud TPU, SLURM)")
    d.add_argument("--coordinator", help="HOST:PORT of process 0, e.g. 127.0.0.1:12355")
    d.add_argument("--num-processes", type=int)
    d.add_argument("--process-id", type=int)

    e = sub.add_parser("embed", help="embed every clip with a trained or random-init encoder")
    _add_config(e)
    e.add_argument("--workdir", help="training workdir whose newest checkpoint to use")
    e.add_argument("--random-init", action="store_true", help="use an untrained encoder instead")
    e.add_argument("--seed", type=int, default=0, help="seed of the random-init encoder")
    e.add_argument("--out", required=True)

    p = sub.add_parser(
        "probe", help="probes on embeddings, one per task",
        description="Override the probe with --probe.KEY=VALUE, e.g. --probe.learning_rates=(1e-4,1e-3) "
        "--probe.model=mlp; keys: " + ", ".join(f.name for f in dataclasses.fields(ProbeConfig)),
    )  # fmt: skip
    p.add_argument("--embeddings", required=True, help="a folder written by `jaxmusic embed`")
    p.add_argument("--tasks", nargs="*", help="tasks to probe (default: all)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0, help="the probe's seed (--probe.seeds for several)")

    lang = sub.add_parser(
        "language", help="text-to-audio and audio-to-text retrieval and zero-shot tagging of an audio-text run",
        description="Scores every captioned clip of a split against every caption (recall@1/5/10, median "
        "rank) and every clip against one prompt per class of each class or tag task (zero-shot), with "
        "chance levels, using the model and tokenizer saved in --workdir.",
    )  # fmt: skip
    lang.add_argument("--workdir", required=True, help="workdir of a run trained with a language objective")
    lang.add_argument("--data", help="prepared dataset (default: the one the run trained on)")
    lang.add_argument("--split", default="test")
    lang.add_argument("--prompt", default=DEFAULT_PROMPT, help="zero-shot prompt; {tag} is each class name")
    lang.add_argument("--tasks", nargs="*", help="tasks to tag zero-shot (default: every class and tag task)")
    lang.add_argument("--out", help="also write the results to this JSON file")
    lang.add_argument("--batch-size", type=int, default=32, help="clips or texts per compiled batch")
    lang.add_argument("--bootstrap", type=int, default=1000, help="resamples per 95%% interval (0: none)")

    b = sub.add_parser(
        "bench", help="measure embedders on datasets under the papers' protocols (a suite file)",
        description="Override any suite key with --suite.KEY=VALUE, e.g. --suite.probe.learning_rates=(1e-4,1e-3). "
        "Re-running with the same --out skips finished jobs and retries failed ones.",
    )  # fmt: skip
    b.add_argument(
        "--suite", required=True, help="suite file, optionally with an argument: suites/few_shot.py:runlocal"
    )
    b.add_argument("--out", required=True)

    v = sub.add_parser("convert", help="turn released weights into a checkpoint that `embed` takes")
    v_sub = v.add_subparsers(dest="source", required=True)
    vc = v_sub.add_parser(
        "clmr",
        help="CLMR's PyTorch SampleCNN checkpoints (Lightning .ckpt or a state dict); needs torch",
        description="Reads the checkpoint with torch.load(weights_only=True): no code from the file runs. "
        "Then: jaxmusic embed --config configs/clmr_samplecnn.py --workdir OUT --config.data.dir=DATA --out EMB",
    )
    vc.add_argument("--in", dest="in_path", required=True, help="CLMR checkpoint file")
    vc.add_argument("--out", required=True, help="new folder for the jaxmusic checkpoint and its config")
    vc.add_argument("--config", default="configs/clmr_samplecnn.py", help="the config describing the encoder")

    q = sub.add_parser("quickstart", help="the whole pipeline on synthetic music, on a CPU, in minutes")
    q.add_argument("--workdir", default="jaxmusic-quickstart")
    q.add_argument("--config", default="configs/quickstart.py")
    q.add_argument("--seed", type=int, default=0)
    return parser


def _split_overrides(rest: list[str]) -> list[str]:
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        raise ConfigError(f"unrecognised arguments: {' '.join(bad)}")
    return rest


def _probe_config(rest: list[str], seed: int) -> ProbeConfig:
    """The probe command's ProbeConfig from `--probe.KEY=VALUE` arguments."""
    import ml_collections

    from jaxmusic.config import apply_override

    fields = dataclasses.asdict(ProbeConfig(seeds=(seed,)))
    config = ml_collections.ConfigDict(fields)
    for item in rest:
        if not item.startswith("--probe."):
            raise ConfigError(f"unrecognised argument {item!r}: probe settings look like --probe.KEY=VALUE")
        apply_override(config, item, prefix="probe")
    try:
        return ProbeConfig.from_mapping(config.to_dict())
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _match_training(config, workdir: Path):
    """Embed the data a run trained on, with the encoder it trained: take `data.dir` from
    the run's saved config when none is given, and refuse a different model."""
    from jaxmusic.train.checkpoint import changed_keys, saved_config

    try:
        saved = saved_config(workdir)
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    changed = changed_keys(saved.get("model", {}), config.model.to_dict())
    if changed:
        raise ConfigError(
            f"--config's model differs from the one in {workdir} ({', '.join(changed[:3])}): use the same config"
        )
    if not config.data.dir:
        config.data.dir = saved["data"]["dir"]
    return config


def _library_log(workdir: Path) -> None:
    """Send the libraries' own log records (Orbax, Grain: absl logging) to
    `WORKDIR/library.log`, so the terminal shows jaxmusic's messages and the one-line
    errors, and the libraries' details, tracebacks included, are kept for debugging."""
    import logging

    import jax

    from jaxmusic.paths import is_remote

    if is_remote(workdir) or workdir.is_file() or not (workdir.is_dir() or workdir.parent.is_dir()):
        return  # the trainer's own checks name the problem
    workdir.mkdir(exist_ok=True)

    class QuietFileHandler(logging.FileHandler):
        def handleError(self, record: logging.LogRecord) -> None:
            pass  # a full disk must not turn a log line into a traceback on the terminal

    handler = QuietFileHandler(workdir / f"library-{jax.process_index()}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("absl")
    logger.addHandler(handler)
    logger.propagate = False

    def unraisable(info: sys.UnraisableHookArgs) -> None:
        # Exceptions Python can only ignore (e.g. Orbax's asyncio callbacks after a failed
        # save, at shutdown) go to the same file, not onto the terminal after our one line.
        text = "".join(traceback.format_exception(info.exc_type, info.exc_value, info.exc_traceback))
        logger.error("exception ignored in %r: %s", info.object, text)

    sys.unraisablehook = unraisable


def _prepare(args: argparse.Namespace) -> int:
    from jaxmusic.prepare.adapters import ADAPTERS
    from jaxmusic.prepare.folder import prepare_folder
    from jaxmusic.prepare.items import REJECTED, prepare_items
    from jaxmusic.prepare.splits import parse_fractions

    common = {"sample_rate": args.sample_rate, "workers": args.workers, "seed": args.seed}
    missing: list[str] = []
    if args.source == "folder":
        extra = {}
        if args.split:
            try:
                extra["split_fractions"] = parse_fractions(args.split)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        manifest = prepare_folder(
            args.in_dir, args.out, labels_file=args.labels, captions_file=args.captions,
            path_column=args.path_column, tasks=args.task, clips_per_shard=args.clips_per_shard,
            **extra, **common,
        )  # fmt: skip
    else:
        d = ADAPTERS[args.source].items(args)
        missing = d.missing
        manifest = prepare_items(d.items, args.out, name=d.name, tasks=d.tasks, source=d.source, **common)
    counts = ", ".join(f"{k} {v['clips']}" for k, v in manifest["splits"].items())
    print(
        f"prepared {args.out}: {counts} clips at {manifest['sample_rate']} Hz; "
        f"{manifest['rejected']} files rejected (see {Path(args.out) / REJECTED})"
    )
    if missing:
        print(f"note: {len(missing)} listed files are missing on disk (first: {missing[0]})")
    source = manifest["source"]
    unmatched = source.get("unmatched_labels", 0)
    if unmatched:
        print(f"note: {unmatched} entries of {args.labels} name no audio file under {args.in_dir}")
    for line in _summary(manifest, Path(args.out) / REJECTED):
        print(line)
    return 0


def _summary(manifest: dict, rejected_path: Path) -> list[str]:
    """What was prepared, beyond the counts: tasks, split, copies, rejections by reason."""
    import collections
    import json

    source = manifest["source"]
    kinds = source.get("task_kinds", {})
    ranges = source.get("label_ranges", {})
    lines = []
    for task, spec in manifest["tasks"].items():
        if spec["kind"] == "regression":
            what = "regression" + (f", {ranges[task][0]:g} to {ranges[task][1]:g}" if task in ranges else "")
        else:
            what = f"{spec['kind']}-label, {len(spec['classes'])} classes"
        how = f" ({kinds[task]})" if task in kinds else ""
        lines.append(f"task {task}: {what}{how}")
    if source.get("split"):
        lines.append(f"split: {source['split']} — {source.get('split_note', '')}".rstrip(" —"))
    copies = source.get("duplicate_content", 0)
    if copies:
        lines.append(
            f"note: {copies} files hold the same bytes as another file; each set of copies stays in one split"
        )
    if rejected_path.exists():
        reasons = collections.Counter(
            json.loads(line)["reason"] for line in rejected_path.read_text().splitlines() if line.strip()
        )
        if reasons:
            lines.append("rejected: " + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())))
    return lines


def run(argv: list[str]) -> int:
    """Parse `argv` and run the command; returns the exit code."""
    args, rest = _parser().parse_known_args(argv)
    from jaxmusic import config as config_lib

    if args.command == "prepare":
        _split_overrides(rest)
        if args.source != "synth":
            return _prepare(args)
        from jaxmusic.prepare.synthetic import prepare_synth

        manifest = prepare_synth(
            args.out,
            clips=args.clips,
            seed=args.seed,
            sample_rate=args.sample_rate,
            duration_s=args.duration,
        )
        counts = ", ".join(f"{k} {v['clips']}" for k, v in manifest["splits"].items())
        print(f"prepared {args.out}: {counts} clips at {manifest['sample_rate']} Hz")
        return 0

    if args.command == "probe":
        from jaxmusic.evaluate.report import run_probes

        run_probes(args.embeddings, args.out, tasks=args.tasks, config=_probe_config(rest, args.seed))
        return 0

    if args.command == "language":
        _split_overrides(rest)
        from jaxmusic.data.records import write_json_atomic
        from jaxmusic.evaluate.language import evaluate_language, markdown

        results = evaluate_language(
            args.workdir, args.data, args.split, args.prompt, args.tasks, args.batch_size, args.bootstrap
        )
        print(markdown(results))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(Path(args.out), results)
            print(f"wrote {args.out}")
        return 0

    if args.command == "bench":
        from jaxmusic.evaluate.bench import bench

        results = bench(args.suite, args.out, rest)
        failed = results["failed"]
        print(
            f"bench: {len(results['cells'])} cells in {args.out}/report.md"
            + (f"; {len(failed)} jobs failed" if failed else "")
        )
        return 1 if failed else 0

    if args.command == "convert":
        from jaxmusic.convert.clmr import convert_clmr

        out = convert_clmr(args.in_path, args.out, config_lib.load(args.config, _split_overrides(rest)))
        print(f"wrote {out}; embed it with --workdir {out}")
        return 0

    if args.command == "quickstart":
        _split_overrides(rest)
        from jaxmusic.quickstart import quickstart

        quickstart(args.workdir, config_lib.load(args.config, rest), seed=args.seed)
        return 0

    config = config_lib.load(args.config, _split_overrides(rest))

    if args.command == "train":
        from jaxmusic.prepare.synthetic import ensure_dataset
        from jaxmusic.train import distributed
        from jaxmusic.train.trainer import train_and_evaluate

        distributed.initialize(args.distributed, args.coordinator, args.num_processes, args.process_id)
        _library_log(Path(args.workdir))

        config = ensure_dataset(config, args.workdir)
        result = train_and_evaluate(config, args.workdir)
        if result.get("finished"):
            print(
                f"{args.workdir} is already trained to step {result['step']} (total_steps): nothing to do; "
                "raise --config.total_steps to train longer"
            )
        else:
            print(f"trained to step {result['step']}: loss {result['loss']:.4f} ({args.workdir})")
        return 0

    if args.command == "embed":
        from jaxmusic.evaluate.embed import write_embeddings

        if args.random_init == bool(args.workdir):
            raise ConfigError("embed needs exactly one of --workdir (trained) or --random-init")
        if args.workdir:
            config = _match_training(config, Path(args.workdir))
        elif not config.data.dir:
            raise ConfigError("with --random-init, pass --config.data.dir=PREPARED_DATASET")
        out = write_embeddings(config, args.workdir, args.out, seed=args.seed)
        print(f"wrote embeddings to {out}")
        return 0
    raise AssertionError(args.command)


def main() -> None:
    """Console entry point."""
    from jaxmusic.convert.clmr import ConvertError
    from jaxmusic.data.records import RecordError
    from jaxmusic.evaluate.embed import EmbeddingsError
    from jaxmusic.evaluate.language import LanguageEvalError
    from jaxmusic.prepare.items import PrepareError
    from jaxmusic.train.checkpoint import CheckpointWriteError, ResumeError
    from jaxmusic.train.trainer import TrainingDiverged

    try:
        sys.exit(run(sys.argv[1:]))
    except (
        ConfigError,
        ConvertError,
        RecordError,
        EmbeddingsError,
        LanguageEvalError,
        PrepareError,
        ResumeError,
        CheckpointWriteError,
        TrainingDiverged,
        FileNotFoundError,
        FileExistsError,
    ) as e:
        print(f"jaxmusic: error: {e}", file=sys.stderr)
        if isinstance(e, CheckpointWriteError):
            # A failed save leaves Orbax's background threads mid-write; skip the
            # interpreter's shutdown, where they would print tracebacks after the line above.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        sys.exit(2)
    except KeyboardInterrupt:
        print("jaxmusic: interrupted; completed checkpoints and shards are kept", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
