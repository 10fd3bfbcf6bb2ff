"""The recipe layer: ``import secfl`` gives what users need, without the optional extras."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

import secfl
from secfl.errors import MissingDependency, SecflError
from secfl.hazmat.rng import Csprng

ROOT = Path(__file__).resolve().parents[2]

LAZY = {
    "federated_train": ("secfl.integrations.torch", "torch"),
    "SecureAggregation": ("secfl.integrations.flower", "flwr"),
    "SecflClientMod": ("secfl.integrations.flower", "flwr"),
    "secfl_mod": ("secfl.integrations.flower", "flwr"),
}


def test_all_names_resolve():
    assert len(set(secfl.__all__)) == len(secfl.__all__)
    for name in secfl.__all__:
        assert getattr(secfl, name) is not None, name


def test_all_exports_the_error_family():
    import secfl.errors

    assert set(secfl.errors.__all__) <= set(secfl.__all__)
    for name in secfl.errors.__all__:
        assert issubclass(getattr(secfl, name), SecflError)


def test_lazy_names_are_not_in_all():
    # `from secfl import *` must not need an extra.
    assert not set(LAZY) & set(secfl.__all__)


def test_version_is_defined_once_and_read_by_hatch():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    Version(secfl.__version__)  # PEP 440, or InvalidVersion
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    source = ROOT / project["tool"]["hatch"]["version"]["path"]
    assert source == ROOT / "secfl" / "__init__.py"
    # hatch's default pattern for a version file
    pattern = r"(?im)^(__version__|VERSION) *= *(['\"])v?(?P<version>.+?)\2"
    found = [m["version"] for m in re.finditer(pattern, source.read_text())]
    assert found == [secfl.__version__]


def test_import_pulls_in_neither_torch_nor_flwr():
    code = (
        "import sys\n"
        "import secfl\n"
        "from secfl import *\n"
        "loaded = {'torch', 'flwr'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
    )


@pytest.mark.parametrize("name", sorted(LAZY))
def test_lazy_names_load_on_first_access(name):
    module, dependency = LAZY[name]
    pytest.importorskip(dependency)
    value = getattr(secfl, name)
    assert value is getattr(sys.modules[module], name)
    assert name in dir(secfl)


@pytest.mark.parametrize("name", sorted(LAZY))
def test_a_missing_extra_is_a_secfl_error(monkeypatch, name):
    _, dependency = LAZY[name]
    monkeypatch.delitem(vars(secfl), name, raising=False)  # drop a cached earlier access
    monkeypatch.setitem(sys.modules, dependency, None)  # makes `import dependency` fail
    with pytest.raises(MissingDependency, match=r"pip install 'secfl\[") as info:
        getattr(secfl, name)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, SecflError)


def test_unknown_name_is_an_attribute_error():
    assert not hasattr(secfl, "no_such_name")


def test_rng_is_the_seedable_csprng():
    assert secfl.Rng is Csprng
    seed = bytes(range(32))
    assert secfl.Rng(seed=seed).bytes(64) == secfl.Rng(seed=seed).bytes(64)
    assert secfl.Rng().bytes(32) != secfl.Rng().bytes(32)


USER_FACING = [
    ROOT / "README.md",
    ROOT / "docs" / "user-guide.md",
    ROOT / "docs" / "getting-started.md",
    *sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in {".py", ".md", ".toml"}),
]


@pytest.mark.parametrize("path", USER_FACING, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_facing_files_do_not_import_hazmat(path):
    hazmat = re.compile(r"secfl\.hazmat|from\s+secfl\s+import\s+.*\bhazmat\b")
    lines = path.read_text().splitlines()
    hits = [f"{i}: {line}" for i, line in enumerate(lines, 1) if hazmat.search(line)]
    assert not hits, "use the public names (import secfl) instead:\n" + "\n".join(hits)
