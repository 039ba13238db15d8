"""Every model tool's usage line names the command as it is typed."""

from __future__ import annotations

import importlib

import pytest

TOOLS = ["evaluate", "export", "pretrain", "robustness", "soup", "train", "train_lesion",
         "train_refine", "tune", "unpack"]


@pytest.mark.parametrize("tool", TOOLS)
def test_the_usage_line_is_the_command(tool, capsys):
    # It said "usage: evaluate.py", the file argparse found in sys.argv[0].
    module = importlib.import_module(f"models.{tool}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m models.{tool} ")


@pytest.mark.parametrize("tool, flag, value", [
    ("train", "--limit", "0"), ("train", "--limit", "-3"), ("train", "--patience", "-1"),
    ("train", "--lr", "0"), ("train", "--lr", "nan"), ("train", "--swa-lr", "0"),
    ("train_lesion", "--limit", "0"), ("train_lesion", "--lr", "-1"),
    ("train_lesion", "--patience", "-2"), ("train_refine", "--lr", "0"),
    ("pretrain", "--limit", "-1"), ("pretrain", "--lr", "0"),
])
def test_a_meaningless_number_is_refused_as_the_command_line_is_read(tool, flag, value,
                                                                      tmp_path, capsys):
    # Audit 803 F6: --limit 0 trained on everything, --limit -3 sliced images off the
    # end, --patience -1 and --lr 0 were taken; each trained and exited 0.
    module = importlib.import_module(f"models.{tool}")
    with pytest.raises(SystemExit) as done:
        module.parse_args(["--data", str(tmp_path), flag, value])
    assert done.value.code == 2
    assert f"error: argument {flag}: " in capsys.readouterr().err


def test_the_smallest_meaningful_numbers_are_taken(tmp_path):
    from models import train

    args = train.parse_args(["--data", str(tmp_path), "--limit", "1", "--patience", "0",
                             "--lr", "1e-6"])
    assert (args.limit, args.patience, args.lr) == (1, 0, 1e-6)
