"""Hugging Face hub ids as models, resolved through huggingface_hub and its local cache.

    resolve_hub("mlx-community/Qwen2.5-7B-Instruct-4bit")        -> an mlx-lm folder (MLX)
    resolve_hub("bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M")      -> the Q4_K_M GGUF in that repo
    resolve_hub("org/repo:model-q8_0.gguf")                        -> that file
    cached_models()                                                -> rows for list_models()

The cache is read first. With ``HF_HUB_OFFLINE=1`` (ragnb's tests, air-gapped machines) a model
that is not cached is a one-line ModelError naming the ``hf download`` command that fetches it;
online, huggingface_hub downloads it into the cache. llama.cpp's own ``Llama.from_pretrained``
is never used: it lists the repo online even when the file is cached.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import MissingDependencyError, ModelError

INSTALL = INSTALLS["hub"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(:[^/\\:]+)?$")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as "org/repo", "org/repo:FILE.gguf" or "org/repo:QUANT".

    A bare "dir/file.gguf" is a path, not a repo.

    >>> is_hub_id("bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M"), is_hub_id("models/x.gguf")
    (True, False)
    """
    return bool(_ID.match(text)) and not (":" not in text and text.lower().endswith(".gguf"))


def split_id(text: str) -> tuple[str, str | None]:
    """("org/repo", "Q4_K_M" or "FILE.gguf" or None) of a hub id.

    >>> split_id("org/repo:Q4_K_M")
    ('org/repo', 'Q4_K_M')
    """
    repo, _, selector = text.partition(":")
    return repo, selector or None


def hub_cache() -> Path:
    """The hub cache folder, from the environment at call time ($HF_HUB_CACHE, $HF_HOME/hub,
    ~/.cache/huggingface/hub): huggingface_hub reads it once, at import."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    """True when $HF_HUB_OFFLINE asks huggingface_hub never to go online."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_command(repo: str, selector: str | None) -> str:
    """The command that puts the model into the cache.

    >>> download_command("org/repo", "Q4_K_M")
    'hf download org/repo --include "*Q4_K_M*.gguf"'
    """
    if selector is None:
        return f"hf download {repo}"
    if selector.lower().endswith(".gguf"):
        return f"hf download {repo} {selector}"
    return f'hf download {repo} --include "*{selector}*.gguf"'


def resolve_hub(text: str):
    """A :class:`ModelRef` for the hub id `text`: a GGUF file or an mlx-lm folder.

    Raises:
        ModelError: not cached while offline (names the download command), a repo with several
            GGUFs and no quantization named (lists them), a repo with no model in it.
        MissingDependencyError: huggingface_hub is not installed.
    """
    from ragnb.generate.models import ModelRef

    repo, selector = split_id(text)
    snapshot = _snapshot(repo, selector)
    files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    ggufs = [f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower()]
    if ggufs or selector:
        chosen = _choose_gguf(repo, selector, ggufs)
        # the snapshot's own name, not the blob it links to: llama.cpp finds the other parts
        # of a split GGUF next to the first under their names
        return ModelRef(name=text, kind="base", format="gguf", path=snapshot / chosen)
    if "config.json" in files:
        return ModelRef(name=text, kind="base", format="mlx", path=snapshot, backends=("mlx",))
    raise ModelError(
        f"hub repo {repo!r} holds neither a GGUF file nor a model folder (config.json); "
        f"use a GGUF repo or an mlx-community repo"
    )


def _choose_gguf(repo: str, selector: str | None, ggufs: list[str]) -> str:
    """The GGUF file `selector` names among `ggufs` (the first part of a split file)."""
    if selector is None:
        candidates = ggufs
    elif selector.lower().endswith(".gguf"):
        candidates = [f for f in ggufs if f == selector or f.rsplit("/", 1)[-1] == selector]
    else:
        quant = re.compile(rf"(?<![A-Za-z0-9]){re.escape(selector)}(?![A-Za-z0-9_])", re.I)
        candidates = [f for f in ggufs if quant.search(f.rsplit("/", 1)[-1])]
    firsts = [f for f in candidates if not _SPLIT.search(f) or _SPLIT.search(f).group(1) == "00001"]
    if len(firsts) == 1:
        return firsts[0]
    if not firsts:
        held = ", ".join(ggufs) or "no GGUF file"
        raise ModelError(
            f"hub repo {repo!r} has no GGUF matching {selector!r} in the cache (it holds "
            f"{held}): run `{download_command(repo, selector)}`"
        )
    names = ", ".join(f"{repo}:{f.rsplit('/', 1)[-1]}" for f in firsts)
    raise ModelError(f"hub repo {repo!r} holds {len(firsts)} GGUF files: name one, e.g. {names}")


def _snapshot(repo: str, selector: str | None) -> Path:
    """The cached snapshot folder of `repo`; downloads what `selector` needs when online."""
    try:
        import huggingface_hub as hf
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub (for hub model ids)", INSTALL) from exc
    cache = hub_cache()
    try:
        folder = Path(hf.snapshot_download(repo, cache_dir=cache, local_files_only=True))
        if selector is None or _has_selected(folder, selector):
            return folder
    except LocalEntryNotFoundError:
        pass
    except HFValidationError as exc:
        raise ModelError(f"{repo!r} is neither a file nor a valid hub id ({exc})") from exc
    if offline():
        missing = f"{repo}:{selector}" if selector else repo
        raise ModelError(
            f"model {missing!r} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE "
            f"is set: run `{download_command(repo, selector)}` (or `huggingface-cli download` "
            f"with the same arguments) while online; no local path of that name exists either"
        )
    return _download(hf, repo, selector, cache)


def _has_selected(folder: Path, selector: str) -> bool:
    try:
        _choose_gguf("", selector, [p.name for p in folder.glob("**/*.gguf")])
    except ModelError:
        return False
    return True


def _download(hf, repo: str, selector: str | None, cache: Path) -> Path:
    """Download `repo` (only the chosen GGUF of a GGUF repo) into the cache."""
    try:
        files = hf.list_repo_files(repo)
        ggufs = [f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower()]
        patterns = None
        if ggufs:
            chosen = _choose_gguf(repo, selector, ggufs)
            split = _SPLIT.search(chosen)
            patterns = [chosen[: split.start()] + "-*.gguf" if split else chosen]
        return Path(hf.snapshot_download(repo, cache_dir=cache, allow_patterns=patterns))
    except ModelError:
        raise
    except Exception as exc:  # huggingface_hub raises many kinds: network, auth, 404
        raise ModelError(
            f"could not download {repo!r} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); check the id, or run "
            f"`{download_command(repo, selector)}`"
        ) from exc


def cached_models() -> list[dict]:
    """One row per generation model in the hub cache (read from disk, nothing imported).

    A GGUF repo gives one row per GGUF file ("org/repo:FILE.gguf", or "org/repo" when it holds
    one); a model folder with config.json and safetensors gives "org/repo" for MLX.
    Sentence-transformers repos (modules.json) are embedders and are left out.
    """
    root = hub_cache()
    rows = []
    for repo_dir in sorted(root.glob("models--*")):
        ref = repo_dir / "refs" / "main"
        try:
            snapshot = repo_dir / "snapshots" / ref.read_text().strip()
        except OSError:
            continue
        if not snapshot.is_dir():
            continue
        repo = repo_dir.name[len("models--") :].replace("--", "/", 1)
        files = [p for p in snapshot.rglob("*") if p.is_file()]
        names = {p.relative_to(snapshot).as_posix() for p in files}
        ggufs = sorted(
            n for n in names if n.lower().endswith(".gguf") and "mmproj" not in n.lower()
        )
        ggufs = [n for n in ggufs if not _SPLIT.search(n) or _SPLIT.search(n).group(1) == "00001"]
        for name in ggufs:
            path = snapshot / name
            model = repo if len(ggufs) == 1 else f"{repo}:{name.rsplit('/', 1)[-1]}"
            rows.append(_row(model, ["llamacpp", "mlx"], path, path.stat().st_size))
        if not ggufs and "config.json" in names and "modules.json" not in names:
            weights = [p for p in files if p.suffix == ".safetensors"]
            if weights:
                rows.append(_row(repo, ["mlx"], snapshot, sum(p.stat().st_size for p in weights)))
    return rows


def _row(name: str, backends: list[str], path: Path, size: int) -> dict:
    return {
        "name": name,
        "kind": "hub",
        "installed": True,
        "backends": backends,
        "path": str(path),
        "size_mb": round(size / 1e6, 1),
        "base_model": None,
        "default": False,
    }
