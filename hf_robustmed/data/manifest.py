"""The build manifest of a benchmark folder (``benchmark.json``): the one type every reader and writer of it uses.

The builder writes it (:mod:`hf_robustmed.data.builder`); the card, the evaluation, the few-shot training set, the
description figures, the Hub upload and the demo read it through :meth:`BenchmarkManifest.read`, which names what is
wrong with a folder (no manifest, an interrupted build, a damaged or foreign file) in one line.

The JSON layout is kept as the builder has always written it (``json.dumps(..., indent=1)``, keys in this order)::

    {"name", "complete", "fingerprint", "settings": {"seed", "grey", "shard_rows", "generator", "sources"},
     "seeding", "datasets": {id: {"class_names", "multilabel", "license", "citation", "homepage", "description",
     "suite", "rgb", "source_rgb", "splits", "corruptions"}}, "configs": {config: {split: rows}}}

Manifests of older builds lack ``fingerprint``, ``settings.sources`` and ``source_rgb``; they still load, with
``None`` for those fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..files import atomic_path

MANIFEST = "benchmark.json"
STAGING = ".staging"  # hidden: datasets' data-file discovery skips names starting with a dot
CARD = "README.md"

_REQUIRED = object()


class _Fields:
    """Reads typed fields of one JSON object, naming the object and the field in any error."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise _Malformed(f"{where} is a {type(data).__name__}, not an object")
        self.data, self.where = data, where

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        if key not in self.data:
            if default is _REQUIRED:
                raise _Malformed(f"{self.where} has no {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            names = " or ".join(_JSON_NAMES[k] for k in _kinds(kind))
            raise _Malformed(f"{self.where}[{key!r}] is {value!r}, not {names}")
        return value

    def counts(self, key: str) -> dict[str, int]:
        """A ``{name: count}`` object of non-negative integers."""
        value = self.get(key, dict)
        for name, count in value.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise _Malformed(f"{self.where}[{key!r}][{name!r}] is {count!r}, not a row count")
        return dict(value)

    def names(self, key: str) -> tuple[str, ...]:
        """A list of strings."""
        value = self.get(key, list)
        if not all(isinstance(item, str) for item in value):
            raise _Malformed(f"{self.where}[{key!r}] holds something other than strings")
        return tuple(value)


_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


class _Malformed(ValueError):
    """A manifest whose content is not what the builder writes (the message says what is wrong)."""


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """What a build's bytes depend on, besides its sources' content (the fingerprint is a SHA-256 of these).

    Attributes:
        seed: Base seed of the corruptions' random draws.
        grey: ``native`` (grey images stored one-channel) or ``rgb`` (stored replicated to RGB).
        shard_rows: Images per Parquet shard.
        generator: ``hf-robustmed {version}`` of the build.
        sources: Per source split, its dataset, split, suite, configs, row count, image shape, classes and content
            SHA-256; ``None`` in manifests of builds made before fingerprints.
    """

    seed: int
    grey: str
    shard_rows: int
    generator: str
    sources: tuple[dict, ...] | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "settings") -> BuildSettings:
        fields = _Fields(data, where)
        sources = fields.get("sources", list, None)
        if sources is not None and not all(isinstance(source, dict) for source in sources):
            raise _Malformed(f"{where}['sources'] holds something other than objects")
        return cls(
            seed=fields.get("seed", int),
            grey=fields.get("grey", str),
            shard_rows=fields.get("shard_rows", int),
            generator=fields.get("generator", str),
            sources=None if sources is None else tuple(sources),
        )

    def to_dict(self) -> dict:
        data = {"seed": self.seed, "grey": self.grey, "shard_rows": self.shard_rows, "generator": self.generator}
        if self.sources is not None:
            data["sources"] = list(self.sources)
        return data


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """One source dataset of a benchmark: its classes, provenance, suite and what was built of it.

    Attributes:
        class_names: Class names in label order.
        multilabel: Whether a row has several labels.
        license, citation, homepage, description: The source's documentation (for the card).
        suite: The corruption parameter suite; ``None`` for an imported release (precomputed images).
        rgb: Whether the stored images are RGB.
        source_rgb: Whether the source images were RGB (a ``grey="rgb"`` build stores grey ones replicated);
            ``None`` in manifests of builds made before it was recorded.
        splits: Source split → rows.
        corruptions: The corruptions built, in suite order.
    """

    class_names: tuple[str, ...]
    multilabel: bool
    license: str
    citation: str
    homepage: str
    description: str
    suite: str | None
    rgb: bool
    source_rgb: bool | None = None
    splits: dict[str, int]
    corruptions: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DatasetInfo:
        fields = _Fields(data, where)
        return cls(
            class_names=fields.names("class_names"),
            multilabel=fields.get("multilabel", bool),
            license=fields.get("license", str),
            citation=fields.get("citation", str),
            homepage=fields.get("homepage", str),
            description=fields.get("description", str),
            suite=fields.get("suite", (str, type(None))),
            rgb=fields.get("rgb", bool),
            source_rgb=fields.get("source_rgb", bool, None),
            splits=fields.counts("splits"),
            corruptions=fields.names("corruptions"),
        )

    def to_dict(self) -> dict:
        data = {
            "class_names": list(self.class_names),
            "multilabel": self.multilabel,
            "license": self.license,
            "citation": self.citation,
            "homepage": self.homepage,
            "description": self.description,
            "suite": self.suite,
            "rgb": self.rgb,
        }
        if self.source_rgb is not None:
            data["source_rgb"] = self.source_rgb
        return {**data, "splits": dict(self.splits), "corruptions": list(self.corruptions)}


@dataclass(frozen=True, kw_only=True)
class BenchmarkManifest:
    """A benchmark build's manifest (``benchmark.json``).

    Attributes:
        name: The benchmark's name (``MedMNIST-C`` …).
        complete: Whether the build finished (a staged manifest is not; a published one is).
        fingerprint: SHA-256 identifying the build's bytes; ``None`` for builds made before fingerprints.
        settings: The build settings.
        seeding: How the random draws are seeded, in words.
        datasets: Dataset id → its description.
        configs: Config name (``{dataset}-clean``, ``{dataset}-{corruption}-{severity}``) → split → rows.
    """

    name: str
    complete: bool = True
    fingerprint: str | None = None
    settings: BuildSettings
    seeding: str
    datasets: dict[str, DatasetInfo]
    configs: dict[str, dict[str, int]]

    @classmethod
    def read(cls, folder: str | Path, *, complete: bool = True) -> BenchmarkManifest:
        """The manifest of a benchmark folder.

        Args:
            folder: The benchmark folder.
            complete: Refuse a manifest of an unfinished build.

        Raises:
            ValueError: If the folder holds no manifest (naming how to build one), an interrupted build, or a
                manifest that is not valid JSON or not what the builder writes.
        """
        manifest = cls.load(manifest_path(folder))
        if complete and not manifest.complete:
            raise ValueError(f"the benchmark in {folder} is incomplete (its build was interrupted): rerun the build")
        return manifest

    @classmethod
    def load(cls, path: str | Path) -> BenchmarkManifest:
        """A manifest file, finished or not.

        Raises:
            ValueError: If the file is not valid JSON, or not a manifest the builder writes.
        """
        path = Path(path)
        try:
            return cls.from_dict(_read_json(path))
        except _Malformed as error:
            raise ValueError(
                f"{path} is not a benchmark manifest hf-robustmed can read ({error}); rebuild the benchmark"
            ) from None

    @classmethod
    def from_dict(cls, data: Any) -> BenchmarkManifest:
        """The manifest of ``benchmark.json``'s parsed content.

        Raises:
            ValueError: Naming the first field that is missing or of the wrong type.
        """
        fields = _Fields(data, "the manifest")
        datasets = fields.get("datasets", dict)
        configs = fields.get("configs", dict)
        return cls(
            name=fields.get("name", str),
            complete=fields.get("complete", bool, True),
            fingerprint=fields.get("fingerprint", str, None),
            settings=BuildSettings.from_dict(fields.get("settings", dict)),
            seeding=fields.get("seeding", str),
            datasets={key: DatasetInfo.from_dict(info, f"datasets[{key!r}]") for key, info in datasets.items()},
            configs={name: _Fields(configs, "configs").counts(name) for name in configs},
        )

    def to_dict(self) -> dict:
        """The JSON content, keys in the builder's order (fields an older build lacks stay absent)."""
        data: dict[str, Any] = {"name": self.name, "complete": self.complete}
        if self.fingerprint is not None:
            data["fingerprint"] = self.fingerprint
        return {
            **data,
            "settings": self.settings.to_dict(),
            "seeding": self.seeding,
            "datasets": {key: info.to_dict() for key, info in self.datasets.items()},
            "configs": {name: dict(splits) for name, splits in self.configs.items()},
        }

    def write(self, path: str | Path) -> Path:
        """Writes the manifest to ``path`` atomically, as the builder always has (one-space indent)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def completed(self) -> BenchmarkManifest:
        """This manifest, marked complete."""
        return replace(self, complete=True)


def manifest_path(folder: str | Path) -> Path:
    """The published manifest of a benchmark folder.

    Raises:
        ValueError: If the folder is missing, holds an interrupted build (a staging area, no manifest), or has no
            manifest at all (naming ``hf-robustmed build``).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if path.is_file():
        return path
    if not folder.is_dir():
        raise ValueError(f"no benchmark folder {folder}")
    if (folder / STAGING).is_dir():
        raise ValueError(
            f"{folder} holds no complete benchmark build, only an unfinished build interrupted before it wrote "
            f"{MANIFEST} (its shards are in {STAGING}): rerun the build to complete it"
        )
    raise ValueError(
        f"{folder} is not a benchmark folder: it holds no complete benchmark build (it has no {MANIFEST}; build one "
        "with `hf-robustmed build`)"
    )


def build_state(folder: str | Path) -> Literal["none", "unfinished", "complete"]:
    """Whether a folder holds no build, an unfinished one (a staging area, or a manifest not marked complete) or a
    complete one. Reads only the manifest's ``complete`` flag, so that it answers for any build's manifest.

    Raises:
        ValueError: If the manifest is not valid JSON.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if (folder / STAGING).is_dir():
        return "unfinished"
    if not path.is_file():
        return "none"
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a benchmark manifest hf-robustmed can read (not an object); rebuild it")
    return "complete" if data.get("complete", True) else "unfinished"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the benchmark folder is damaged: rebuild it") from None
