"""The test suite's own layout: pytest's default import mode needs unique basenames."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_and_helper_modules_have_unique_names():
    # Test folders have no __init__.py, so pytest imports each module by its bare name:
    # two test_api.py files in different folders stop the whole run at collection.
    modules = [p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts]
    names = Counter(p.name for p in modules if p.name != "conftest.py")
    assert [name for name, count in names.items() if count > 1] == []
