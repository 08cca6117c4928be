"""Commands on saved models: eval, predict, compare, disagreements, tradeoffs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.cli.jobs import format_results_table
from core.specs import SpecError
from core.texts import Text, is_pair, show_text


def cmd_eval(args: argparse.Namespace) -> int:
    from core.scoring import evaluate_models
    from core.specs import DatasetSpec

    dataset = DatasetSpec(name=args.dataset, validation=args.validation,
                          text_column=args.text_column, text_pair_column=args.text_pair_column,
                          label_column=args.label_column, task=args.task,
                          max_eval_examples=args.max_eval_examples)
    description, models = evaluate_models(args.models, dataset, args.runs_dir,
                                          max_length=args.max_length, device=args.device,
                                          measure=not args.no_speed)
    print(description)
    print(format_results_table({"models": models}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.devices import resolve_device
    from core.evaluation import predict_proba
    from core.models import load_classifier

    texts = _texts_from_args(args, list(args.texts), "predict")
    device = resolve_device(args.device)
    model, tokenizer, _ = load_classifier(args.model, runs_dir=args.runs_dir)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = predict_proba(model.to(device), tokenizer, texts, max_length=args.max_length,
                          device=device)
    for text, row in zip(texts, probs, strict=True):
        label = names[int(row.argmax())]
        if args.json:
            shown = {"text": text[0], "text_pair": text[1]} if is_pair(text) else {"text": text}
            print(json.dumps({**shown, "label": label,
                              "probabilities": dict(zip(names, map(float, row), strict=True))}))
        else:
            print(f"{label}\t{row.max():.3f}\t{show_text(text)[:100]}")
    return 0


def _texts_from_args(args: argparse.Namespace, texts: list[str], command: str) -> list[Text]:
    """The texts of ``predict``/``compare``: the given ones (zipped with ``--text-pair``
    into pairs) and those of ``--file`` (pairs where the file has two text columns)."""
    from core.data import read_texts_file

    rows: list[Text] = list(texts)
    if args.text_pair:
        if len(args.text_pair) != len(texts):
            raise SpecError(f"{command}: {len(texts)} texts but {len(args.text_pair)} "
                            f"--text-pair values; give one second text per text")
        rows = list(zip(texts, args.text_pair, strict=True))
    if args.file:
        rows += read_texts_file(args.file, args.text_column, args.text_pair_column)
    elif args.text_column or args.text_pair_column:
        raise SpecError(f"{command}: --text-column and --text-pair-column name a --file's "
                        f"columns; give --file too")
    if not rows:
        raise SpecError(f"{command}: give texts as arguments, with --text, or --file")
    if len({is_pair(t) for t in rows}) > 1:
        raise SpecError(f"{command}: the texts mix single texts and pairs; give pairs "
                        f"throughout (--text-pair for each text) or none")
    return rows


def _print_table(table: Any, as_json: bool, limit: int | None = None) -> None:
    if limit is not None:
        table = table.head(limit)
    if as_json:
        for record in table.to_dict(orient="records"):
            print(json.dumps(record, default=str))
    else:
        print(table.to_string(index=False, max_colwidth=60) if len(table) else "no rows")


def cmd_compare(args: argparse.Namespace) -> int:
    from core.compare import compare

    texts = _texts_from_args(args, list(args.text), "compare")
    table = compare(texts, args.models, runs_dir=args.runs_dir, max_length=args.max_length,
                    device=args.device)
    _print_table(table, args.json)
    return 0


def cmd_disagreements(args: argparse.Namespace) -> int:
    from core.compare import disagreements

    table = disagreements(args.model_a, args.model_b, runs_dir=args.runs_dir, mode=args.mode,
                          true_label=args.true_label, predicted_label=args.predicted_label)
    _print_table(table, args.json, args.limit)
    return 0


def cmd_tradeoffs(args: argparse.Namespace) -> int:
    from core.compare import tradeoffs

    _print_table(tradeoffs(args.runs_dir), args.json)
    return 0
