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
