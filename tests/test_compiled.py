"""The modules setup.py compiles with mypyc: used when current, the same answers as Python,
and never a stale build after their source changes."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from importlib import import_module
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from monitor import compiled
from monitor.bench import corpus
from monitor.collectors import importers
from monitor.scoring import Score, default_scorer
from tests.conftest import ROOT, require

EXTENSION = EXTENSION_SUFFIXES[0]


def setup_py_modules() -> list[str]:
    """Return the module names setup.py's COMPILED lists."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            paths = ast.literal_eval(node.value)
            return [".".join(Path(p).with_suffix("").parts) for p in paths]
    raise AssertionError("setup.py has no COMPILED")


def require_compiled() -> None:
    require(compiled.STATE == "compiled", f"the modules run from source: {compiled.REASON}")


def run_python(code: str, *, path: Path | None = None, pure: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_PYTHON_ENV}
    if pure:
        env[compiled.PURE_PYTHON_ENV] = "1"
    if path is not None:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=path or ROOT,  # `-c` puts the working directory first on sys.path
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_every_module_setup_compiles_runs_compiled_when_installed() -> None:
    require_compiled()
    names = setup_py_modules()
    assert sorted(names) == sorted(compiled.compiled_sources())
    for name in names:
        assert str(import_module(name).__file__).endswith(tuple(EXTENSION_SUFFIXES)), name


ANSWERS = """
import json, sys
from pathlib import Path
from monitor import compiled
from monitor.collectors import importers
from monitor.matching import BrandMatcher
from monitor.config import BrandConfig
from monitor.scoring import default_scorer
paths = {k: Path(v) for k, v in json.loads(sys.argv[1]).items()}
scorer = default_scorer()
matcher = BrandMatcher(BrandConfig("Northwind Bank", ("Northwind", "NWB", "$NWB"),
                                   ("Northwind Traders",)))
answers = []
for source, path in paths.items():
    convert = importers.converter("jsonl", source, {})
    for line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        mention = convert(importers.parse_line(line))
        text = mention.full_text
        answers.append([mention.external_id, mention.published_at.isoformat(), text,
                        mention.content_hash, matcher.matches(text), list(scorer.score(text))])
print(json.dumps({"state": compiled.STATE, "answers": answers}))
"""


def test_compiled_and_python_modules_give_the_same_answers(tmp_path: Path) -> None:
    """Parsing, matching, hashing and scoring, compiled and as Python, on 3,000 rows of the
    benchmark's corpus (reposts, cross-posts, texts that do not name the brand)."""
    require_compiled()
    paths = corpus.write(corpus.CorpusSpec(3000, reposts=0.2), tmp_path / "corpus")
    argument = json.dumps({source: str(path) for source, path in paths.items()})
    code = f"import sys; sys.argv[1:] = [{argument!r}]\n{ANSWERS}"
    ours, pure = (json.loads(run_python(code, pure=p).splitlines()[-1]) for p in (False, True))
    assert (ours["state"], pure["state"]) == ("compiled", "source")
    assert len(ours["answers"]) == 3000
    assert {answer[4] for answer in ours["answers"]} == {True, False}
    assert ours["answers"] == pure["answers"]


def _copy_package(tmp_path: Path) -> Path:
    package = Path(compiled.PACKAGE_DIR)
    shutil.copytree(package, tmp_path / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / package.name


PROBE = (
    "import monitor, monitor.vader, monitor.scoring; from monitor import compiled; "
    "print(monitor.__file__, compiled.STATE, monitor.vader.__file__, "
    "monitor.scoring.default_scorer().score('the breach was a disaster').compound)"
)


def test_a_source_changed_since_compiling_runs_all_modules_from_source(tmp_path: Path) -> None:
    """An edit (or a git pull) in an editable install must not leave the old build running."""
    require_compiled()
    package = _copy_package(tmp_path)
    where, state, vader_file, compound = run_python(PROBE, path=tmp_path).split()[:4]
    assert where.startswith(str(package)) and state == "compiled"
    assert vader_file.endswith(EXTENSION) and vader_file.startswith(str(package))

    with (package / "text.py").open("a", encoding="utf-8") as source:
        source.write("\n# an edit\n")
    output = run_python(PROBE, path=tmp_path)
    _, state, vader_file, compound_from_source = output.split()[:4]
    assert state == "source"
    assert vader_file == str(package / "vader.py")  # not only the changed one: all or none
    assert compound_from_source == compound
    assert "changed since compiled: monitor.text" in output
    assert "pip install -e ." in output


def test_compiled_sources_and_what_changed(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("a", "sub/b", "plain"):
        (package / f"{name}.py").write_text(f"NAME = {name!r}\n")
    for name in ("a", "sub/b", "orphan"):  # an orphan build has no source: not a module of ours
        (package / f"{name}{EXTENSION}").write_bytes(b"")
    sources = compiled.compiled_sources(package)
    assert sources == {"pkg.a": package / "a.py", "pkg.sub.b": package / "sub" / "b.py"}

    digest = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in sources.items()}
    assert compiled.changed_since_compiled(sources, digest) == []
    assert compiled.changed_since_compiled(sources, {"pkg.a": digest["pkg.a"]}) == ["pkg.sub.b"]
    (package / "a.py").write_text("NAME = 'edited'\n")
    assert compiled.changed_since_compiled(sources, digest) == ["pkg.a"]


def test_without_the_shared_library_the_modules_run_from_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(compiled.PURE_PYTHON_ENV, raising=False)
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("NAME = 'a'\n")
    (package / f"a{EXTENSION}").write_bytes(b"")
    finders = list(sys.meta_path)
    try:
        state, why = compiled.choose(package)
        assert state == "source" and compiled.SHARED_LIBRARY in why
        assert isinstance(sys.meta_path[0], compiled.SourceFinder)
        assert sys.meta_path[0].sources == {"pkg.a": package / "a.py"}
    finally:
        sys.meta_path[:] = finders
    assert compiled.choose(tmp_path / "nothing")[0] == "not built"


@pytest.mark.parametrize(
    "value",
    [
        importers.Record(3, {"text": "a line"}),
        default_scorer().score("the breach was a disaster"),
        Score(0.5, "positive", ("refunds",)),
    ],
)
def test_values_that_cross_between_processes_survive_pickling(value: object) -> None:
    """Records go to import workers; compiled frozen dataclasses could not be unpickled."""
    assert pickle.loads(pickle.dumps(value)) == value
