"""A built wheel, installed where the checkout is out of sight, carries its prompts and seeds and answers.

Installing torch and the rest into a fresh virtualenv takes far too long here, so the new venv
gets only the wheel (``--no-deps``) and sees this venv's third-party packages through a path
line in a ``.pth`` file. A path line does not run that directory's own ``.pth`` files, so the
checkout's editable-install finder stays inactive: ``import rag`` finds the installed wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

QUESTION = "What has Ankara proposed for the Israel-Palestine conflict?"


def _shipped(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).iterdir() if p.is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources so no build/ or egg-info lands in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("rag", "prompts", "seeds"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, cwd=tmp,
    )
    assert built.returncode == 0, built.stderr
    (path,) = (tmp / "dist").glob("rag-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed and this venv's site-packages as a plain path."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_rag_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    return venv


def _env(**extra: str) -> dict[str, str]:
    """The environment minus anything that would point back at the checkout or pick the folders."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RAG_SEEDS_DIR", "RAG_PROMPTS_DIR", "RAG_INDEX_DIR"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "HF_HUB_OFFLINE": "1", **extra}


def test_the_wheel_carries_the_prompts_and_the_seeds(wheel: Path):
    with zipfile.ZipFile(wheel) as whl:
        for folder in ("prompts", "seeds"):
            files = _shipped(folder)
            assert files
            for f in files:
                assert whl.read(f"rag/_{folder}/{f.name}") == f.read_bytes()
        assert "rag/__main__.py" in whl.namelist()


LOCATIONS = """
import json, sys
from pathlib import Path
import rag
from rag import Settings
from rag.answer.prompts import DEFAULT_PROMPTS_DIR, Prompts
settings = Settings()
Prompts(settings.prompts_dir)  # every template readable
finders = [getattr(f, "__module__", "") for f in sys.meta_path] + list(sys.modules)
print(json.dumps({
    "rag": rag.__file__, "defaults": str(DEFAULT_PROMPTS_DIR), "prompts": str(settings.prompts_dir),
    "seeds": str(settings.seeds_dir), "path": [str(Path(p).resolve()) for p in sys.path],
    "editable": [name for name in finders if name.startswith("__editable__")],
}))
"""


def test_an_installed_wheel_uses_its_own_prompts_and_seeds_not_the_checkout(venv: Path, tmp_path: Path):
    result = subprocess.run([venv / "bin" / "python", "-c", LOCATIONS], capture_output=True, text=True,
                            env=_env(), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    where = json.loads(result.stdout)
    package = Path(where["rag"]).parent
    assert package.is_relative_to(venv), where["rag"]
    assert Path(where["defaults"]) == Path(where["prompts"]) == package / "_prompts"
    assert Path(where["seeds"]) == package / "_seeds"
    assert not where["editable"]  # the checkout's editable-install finder did not run
    assert str(ROOT) not in where["path"]


@pytest.mark.real_models
def test_an_installed_wheel_answers_a_question_about_its_seed_article(venv: Path, tmp_path: Path):
    result = subprocess.run(
        [venv / "bin" / "rag", "ask", "--json", QUESTION], capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=_env(RAG_LLM="smollm2-135m-instruct", RAG_INDEX_DIR=str(tmp_path / "index")),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not answer["refused"], answer
    assert answer["citations"] and answer["model"] == "smollm2-135m-instruct"
    assert any("guarantor" in c["quote"] for c in answer["citations"]), answer["citations"]
