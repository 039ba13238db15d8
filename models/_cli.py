"""The command line parser every ``python -m models.<tool>`` shares."""

from __future__ import annotations

import argparse


def cli_parser(spec, doc: str | None) -> argparse.ArgumentParser:
    """A parser whose usage line names the command as it is typed.

    Parameters
    ----------
    spec : importlib.machinery.ModuleSpec or None
        The tool module's ``__spec__``: under ``python -m`` its ``__name__`` is
        ``__main__`` and ``sys.argv[0]`` its file, so argparse said ``usage: evaluate.py``.
    doc : str or None
        The module's docstring, shown as the description.
    """
    prog = f"python -m {spec.name}" if spec is not None else None
    return argparse.ArgumentParser(prog=prog, description=doc, allow_abbrev=False,
                                   formatter_class=argparse.RawTextHelpFormatter)


def bounded(kind, minimum, *, strict=False):
    """An argparse ``type``: a number of ``kind`` at least ``minimum`` (above it if ``strict``).

    Checked as the command line is read, so a meaningless value (``--base-filters 0``,
    ``--lr 0``) is one argparse error with exit status 2, before any data is read or
    the run folder touched, not a traceback from deep inside Keras.

    Parameters
    ----------
    kind : {int, float}
    minimum : int or float
    strict : bool
        Refuse ``minimum`` itself too.

    Examples
    --------
    >>> bounded(int, 1)("3")
    3
    """
    import math

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def progress_bar(items, desc: str, unit: str = "img", **kwargs):
    """``items`` wrapped in a tqdm bar, or ``items`` as they are without tqdm.

    tqdm comes with the ``train`` extra only; scoring a folder
    (``python -m models.evaluate`` inside the server's image, say) must not fail
    for the want of a progress bar.
    """
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit=unit, **kwargs)


class UsageError(Exception):
    """A mistake in the command line or in what it points at (a folder, a run, a file).

    The tools report it as one line and exit with 2, as argparse does for its
    own checks: a traceback would bury the one thing the user has to change.
    """


def reports_usage_errors(main):
    """Wrap a tool's ``main(argv)``: a :class:`UsageError` is one line on stderr and exit 2."""
    import functools
    import sys

    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run
