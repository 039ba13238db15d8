"""Every command line refuses an abbreviated option.

argparse takes any unambiguous prefix of a long option by default: ``python -m
models.export ... --replace`` was ``--replace-shipped`` and overwrote the shipped
weights, and a misspelt option could be taken for another. Each parser is built with
``allow_abbrev=False``: an abbreviation is an unknown argument, exit status 2.
"""

from __future__ import annotations

import importlib

import pytest

CASES = [
    # (module, function, argv, the abbreviation)
    ("models.export", "main", ["--data", "d", "--out", "o", "--replace"], "--replace"),
    ("models.evaluate", "main", ["--data", "d", "--js", "out.json"], "--js"),
    ("models.train", "parse_args", ["--data", "d", "--epo", "3"], "--epo"),
    ("vectorizer._cli", "main", ["trace", "mask.png", "--turd", "2"], "--turd"),
    ("annotation_client.prune_uploads", "main", ["--older-than-days", "3", "--dry"], "--dry"),
    ("annotation_client.export", "main", ["--out", "o", "--work", "w"], "--work"),
]


@pytest.mark.parametrize(("module", "function", "argv", "abbreviation"), CASES,
                         ids=[case[0] for case in CASES])
def test_an_abbreviated_option_is_refused(module, function, argv, abbreviation, capsys):
    entry = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as exited:
        entry(argv)
    assert exited.value.code == 2
    assert f"unrecognized arguments: {abbreviation}" in capsys.readouterr().err


@pytest.mark.parametrize(("module", "builder", "argv", "abbreviation"), [
    ("model_server.__main__", "build_parser", ["--work", "2"], "--work"),
    ("annotation_client.__main__", "_parser", ["--de"], "--de"),
])
def test_the_services_refuse_an_abbreviated_option(module, builder, argv, abbreviation,
                                                    capsys):
    parser = getattr(importlib.import_module(module), builder)()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(argv)
    assert exited.value.code == 2
    assert f"unrecognized arguments: {abbreviation}" in capsys.readouterr().err
