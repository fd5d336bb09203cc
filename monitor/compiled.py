"""Whether the modules setup.py compiles with mypyc run compiled, or from their sources.

A compiled module sits beside its source, and Python imports it first. After the source
changes (an edit, a `git pull` in an editable install) it would go on running the old code.
So before any of them is imported, the package compares each source with the hash recorded
when it was compiled. If any differs, or REPMON_PURE_PYTHON is set, all of them are imported
from source: compiled modules call each other directly, so it is all or none.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parent  # never compiled itself: __file__ is right
SOURCES_RECORD = "compiled-sources.json"  # written by setup.py
SHARED_LIBRARY = "_compiled__mypyc"  # the code of all compiled modules; each has a shim
PURE_PYTHON_ENV = "REPMON_PURE_PYTHON"

State = Literal["compiled", "source", "not built"]

log = logging.getLogger(__name__)


def compiled_sources(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Return {module name: source file} for every module with a compiled build beside it."""
    found: dict[str, Path] = {}
    for built in package_dir.rglob("*"):  # one walk: this runs at every start
        suffix = next((s for s in EXTENSION_SUFFIXES if built.name.endswith(s)), None)
        source = built.with_name(built.name.removesuffix(suffix) + ".py") if suffix else None
        if source is not None and source.is_file():
            parts = source.relative_to(package_dir).with_suffix("").parts
            found[".".join((package_dir.name, *parts))] = source
    return found


def changed_since_compiled(sources: Mapping[str, Path], record: Mapping[str, str]) -> list[str]:
    """Return the modules whose source is not the one recorded when they were compiled."""
    return sorted(
        name
        for name, source in sources.items()
        if record.get(name) != hashlib.sha256(source.read_bytes()).hexdigest()
    )


class SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the given modules from their .py files, passing over their compiled builds."""

    def __init__(self, sources: Mapping[str, Path]) -> None:
        self.sources = dict(sources)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self.sources.get(fullname)
        return importlib.util.spec_from_file_location(fullname, source) if source else None


def _read_record(package_dir: Path) -> dict[str, str]:
    try:
        record = json.loads((package_dir / SOURCES_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def choose(package_dir: Path = PACKAGE_DIR) -> tuple[State, str]:
    """Decide, before any compiled module is imported, which builds are used; return the
    state and why. Installs a SourceFinder unless the compiled builds are current."""
    sources = compiled_sources(package_dir)
    if not sources:
        return "not built", "none installed (no C compiler at install, or REPMON_PURE_PYTHON=1)"
    if os.environ.get(PURE_PYTHON_ENV):
        why = f"{PURE_PYTHON_ENV} is set"
    elif not any(package_dir.glob(SHARED_LIBRARY + ".*")):
        why = f"the compiled modules' shared library {SHARED_LIBRARY} is missing"
    else:
        changed = changed_since_compiled(sources, _read_record(package_dir))
        if not changed:
            return "compiled", f"{len(sources)} modules compiled with mypyc"
        why = f"changed since compiled: {', '.join(changed)}"
        log.warning(
            "%s; running all %d compiled modules from their Python sources, which is "
            "slower. Run `pip install -e .` again to compile them afresh.",
            why,
            len(sources),
        )
    sys.meta_path.insert(0, SourceFinder(sources))
    return "source", why


STATE, REASON = choose()
