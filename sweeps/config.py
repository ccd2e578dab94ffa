"""Study configs: YAML in ``sweeps/configs`` (or a user's file) loaded into frozen dataclasses.

A study names its corpus, languages, byte budgets, seeds, the model and the optimisation of each
trial kind (``pretrain``, ``scratch``, ``finetune``), the resources of one trial and where the run
folder lives. The model and training sections load into :class:`xfer.model.ModelConfig` and
:class:`xfer.training.TrainConfig` themselves, so the YAML can only name fields those have.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.resources import Resources, check_resources, check_workers
from xfer.boundary import finite, read_yaml
from xfer.errors import XferError
from xfer.schema import MAX_INT, build, check_keys, check_name, nearest
from xfer.training.config import KINDS, Kind

if TYPE_CHECKING:
    from sweeps.downstream import DownstreamSection
    from xfer.model import ModelConfig
    from xfer.training.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
NAMED_CORPORA = ("synthetic", "mc4", "bundled")  # names xfer.data.prepare knows; else a folder


def _bytes(*default: Any) -> Any:
    """A dataclass field holding a byte count (YAML may say ``10K``, ``6M``, ``6e9``)."""
    if not default:
        return field(metadata={"bytes": True})
    return field(default=default[0], metadata={"bytes": True})


@dataclass(frozen=True)
class Languages:
    """Which languages pretrain (sources) and which are finetuned on (targets). Every source is
    finetuned on every target but itself; ``extra_pairs`` adds [source, target] pairs outside
    that grid (the paper's pt->es control). Empty lists mean the corpus's default languages."""

    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    extra_pairs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Budgets:
    """Byte budgets: one pretrain budget; finetune budgets D_F; scratch budgets (default: D_F),
    which may extend beyond D_F at both ends so finetuned perplexities land inside the curve."""

    pretrain: int = _bytes()
    finetune: tuple[int, ...] = _bytes()
    scratch: tuple[int, ...] = _bytes(())


@dataclass(frozen=True)
class DataSettings:
    """Dataset preparation: held-out sizes (bytes) and the shuffle seed."""

    dev_bytes: int = _bytes(100_000)
    test_bytes: int = _bytes(100_000)
    seed: int = 0


@dataclass(frozen=True)
class Estimate:
    """For ``--dry-run``: a device's peak FLOP/s and the share of it training achieves."""

    device: str = "cpu"
    peak_flops: float = 1.0e11
    utilisation: float = 0.3


@dataclass(frozen=True)
class RunSettings:
    """Where results go. ``output`` is the parent of run folders (shared storage on a cluster:
    data and trial folders live there); ``storage`` is Ray Tune's storage path (default
    ``<run folder>/tune``; may be ``gs://...``). ``max_failures``: retries per trial.
    ``keep_step_checkpoints``: keep a finished trial's step checkpoints (weights and optimiser
    state), which nothing in the study reads again; by default only its best checkpoint stays."""

    output: str = "runs"
    storage: str | None = None
    max_failures: int = 2
    keep_step_checkpoints: bool = False


@dataclass(frozen=True)
class Analysis:
    """Options passed to ``xfer.analysis.analyse.analyse``: the budget of the headline table (bytes;
    default its choice), a fastText language-ID model file, whether to run contamination, and
    Eq. 1's interpolation ("loglog", the default: log bytes against log perplexity; "linear" in
    bytes, the paper's; or "log" bytes against perplexity). They change no trial, so
    they are left out of the config hash: the same study with other analysis options
    re-analyses its run folder without retraining."""

    budget: int | None = _bytes(None)
    lid_model: str | None = None
    contamination: bool = True
    interp: str = "loglog"  # xfer.analysis.transfer.DEFAULT_INTERP (bench/calibration.py)


@dataclass(frozen=True)
class StudyConfig:
    """One whole study. ``model`` and ``train`` hold the library's own config objects."""

    name: str
    corpus: str
    languages: Languages
    budgets: Budgets
    seeds: tuple[int, ...]
    data: DataSettings
    model: ModelConfig
    train: dict[Kind, TrainConfig]
    resources: Resources = Resources()
    estimate: Estimate = Estimate()
    run: RunSettings = RunSettings()
    analysis: Analysis = Analysis()
    downstream: DownstreamSection | None = None
    pretrain_seeds: tuple[int, ...] = ()  # empty: one pretrain per seed (see sweeps.trials)
    lr_search: dict[Kind, tuple[float, ...]] = field(default_factory=dict)  # see _lr_search

    def to_dict(self) -> dict:
        """Plain JSON-able dict (what trials receive through Ray Tune's ``param_space``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in out.items()}
        out["train"] = {kind: asdict(cfg) for kind, cfg in self.train.items()}
        out["downstream"] = self.downstream.to_dict() if self.downstream else None
        return json.loads(json.dumps(out))

    @classmethod
    def from_dict(cls, data: dict) -> StudyConfig:
        """The config again from :meth:`to_dict`'s output: how a trial rebuilds it on the far
        side of Ray's boundary (one function, the same types as the driver's)."""
        from sweeps.downstream import DownstreamSection
        from xfer.model import ModelConfig
        from xfer.training.config import TrainConfig

        typed = {name: build(section, data[name], name) for name, section in SECTIONS.items()}
        return cls(name=data["name"], corpus=data["corpus"], seeds=tuple(data["seeds"]),
                   model=ModelConfig.from_dict(data["model"]),
                   train={Kind(k): TrainConfig.from_dict(v) for k, v in data["train"].items()},
                   downstream=DownstreamSection.from_dict(data["downstream"])
                   if data.get("downstream") else None,
                   pretrain_seeds=tuple(data.get("pretrain_seeds", ())),
                   lr_search={Kind(k): tuple(v) for k, v in data.get("lr_search", {}).items()},
                   **typed)

    def digest(self) -> str:
        """Hash of everything that changes results (not resources, estimates, run paths, the
        analysis options, or training settings a run may change when it resumes: device,
        threads, checkpointing)."""
        from xfer.training.config import RESUMABLE_CHANGES

        d = self.to_dict()
        for key in ("resources", "estimate", "run", "analysis"):
            d.pop(key)
        for cfg in d["train"].values():  # where a run executes, not what it computes
            _resolve_auto_precision(cfg)
            for key in RESUMABLE_CHANGES:
                cfg.pop(key, None)
        if d["downstream"] is None:  # keeps the hashes of studies made before the section
            d.pop("downstream")
        else:
            _resolve_auto_precision(d["downstream"])
            for key in ("threads", "device"):
                d["downstream"].pop(key, None)
        if not d["model"].get("rel_bias_slope"):  # likewise (older models had no slope)
            d["model"].pop("rel_bias_slope", None)
        for key in ("pretrain_seeds", "lr_search"):  # likewise
            if not d[key]:
                d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def scratch_budgets(self) -> tuple[int, ...]:
        """Scratch budgets, defaulting to the finetune budgets."""
        return self.budgets.scratch or self.budgets.finetune


def _resolve_auto_precision(cfg: dict) -> None:
    """``precision: auto`` as hashed: bf16 where the device makes it bf16 (so fp32 and bf16
    runs never share a run folder, and auto on a GPU shares bf16's); on cpu it stays "auto",
    which keeps the hashes (run folders) of the CPU studies made before this rule."""
    from xfer.training.config import effective_precision

    if cfg.get("precision", "auto") == "auto" and \
            effective_precision(str(cfg.get("device", "cpu")), "auto") == "bf16":
        cfg["precision"] = "bf16"


TOP_KEYS = [f.name for f in fields(StudyConfig)]
SECTIONS = {"languages": Languages, "budgets": Budgets, "data": DataSettings,
            "resources": Resources, "estimate": Estimate, "run": RunSettings,
            "analysis": Analysis}  # the plain dataclass sections of a StudyConfig


def available_configs() -> list[str]:
    """Names of the bundled configs (``default``, ``paper``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A bundled config name or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise XferError(f"config file not found: {path}")
        return path
    bundled = CONFIG_DIR / f"{name_or_path}.yaml"
    if not bundled.is_file():
        hint = nearest(name_or_path, available_configs())
        raise XferError(f"unknown config {name_or_path!r}{hint}"
                        f"; bundled: {', '.join(available_configs())}, or give a .yaml path")
    return bundled


def load_config(name_or_path: str) -> StudyConfig:
    """Load and validate a study config (bundled name or YAML path)."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path)  # a regular file, size, depth, aliases, duplicate keys, numbers
    try:
        return config_from_dict(data, default_name=path.stem)
    except XferError as exc:
        raise XferError(f"{path}: {exc}") from None


def config_from_dict(data: Any, default_name: str = "study") -> StudyConfig:
    """Validate a parsed config mapping into a :class:`StudyConfig`."""
    from xfer.model import MODEL_CONFIGS, ModelConfig

    if not isinstance(data, dict):
        raise XferError(f"config must be a mapping of keys to values, got {type(data).__name__}")
    check_keys(data, TOP_KEYS, "config")
    for required in ("corpus", "budgets"):
        if required not in data:
            raise XferError(f"config: missing key {required!r}")
    name = data.get("name", default_name)
    corpus = data["corpus"]
    if not isinstance(name, str) or not isinstance(corpus, str):
        raise XferError("config: name and corpus must be strings")
    check_name(name, "name")  # one path component: the run folder is <output>/<name>-<hash>
    check_corpus(corpus)

    languages = _languages(build(Languages, data.get("languages"), "languages"), corpus)
    budgets = build(Budgets, data["budgets"], "budgets")
    _check_increasing(budgets.finetune, "budgets.finetune")
    _check_increasing(budgets.scratch, "budgets.scratch")
    if not budgets.finetune:
        raise XferError("budgets.finetune: give at least one budget")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise XferError(f"seeds: expected a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise XferError(f"seeds: repeated seed in {seeds!r}")
    if min(seeds) < 0 or max(seeds) > MAX_INT:
        raise XferError(f"seeds: must be integers from 0 to 2**63-1, got {min(seeds)} to "
                        f"{max(seeds)}")
    pretrain_seeds = _pretrain_seeds(data.get("pretrain_seeds", []))
    lr_search = _lr_search(data.get("lr_search", []))

    model_section = dict(data.get("model") or {})
    preset = model_section.pop("preset", "tiny")
    if preset not in MODEL_CONFIGS:
        raise XferError(f"model.preset: unknown model config {preset!r}"
                        f"{nearest(str(preset), list(MODEL_CONFIGS))}")
    model = build(ModelConfig, model_section, "model", base=MODEL_CONFIGS[preset])
    resources = check_resources(build(Resources, data.get("resources"), "resources"))
    run = build(RunSettings, data.get("run"), "run")
    if run.max_failures < 0:
        raise XferError(f"run.max_failures: must be 0 or more, got {run.max_failures}")
    from sweeps.downstream import check_section

    train = _train_configs(data.get("train"))
    check_workers(train, resources)
    return StudyConfig(
        name=name, corpus=corpus, languages=languages, budgets=budgets, seeds=tuple(seeds),
        data=build(DataSettings, data.get("data"), "data"), model=model, train=train,
        resources=resources, estimate=_check_estimate(build(Estimate, data.get("estimate"),
                                                            "estimate")),
        run=run, analysis=_check_analysis(build(Analysis, data.get("analysis"), "analysis")),
        downstream=check_section(data.get("downstream"), languages),
        pretrain_seeds=pretrain_seeds, lr_search=lr_search,
    )


def _lrs(value: Any, where: str) -> tuple[float, ...]:
    """Distinct positive learning rates."""
    ok = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1e6 for v in value)
    if not ok or len(set(value)) != len(value):
        raise XferError(f"{where}: expected a list of distinct positive numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _lr_search(value: Any) -> dict[Kind, tuple[float, ...]]:
    """``lr_search``: one list of lrs for scratch runs and finetunes alike, or a list per kind
    (``{scratch: [...], finetune: [...]}``, each around its own optimum) of the same length:
    both sides get the same search budget. Empty: no search."""
    if not isinstance(value, dict):
        lrs = _lrs(value, "lr_search")
        return {Kind.SCRATCH: lrs, Kind.FINETUNE: lrs} if lrs else {}
    check_keys(value, [Kind.SCRATCH, Kind.FINETUNE], "lr_search")
    grids = {Kind(k): _lrs(v, f"lr_search.{k}") for k, v in value.items()}
    if set(grids) != {Kind.SCRATCH, Kind.FINETUNE} or len(set(map(len, grids.values()))) > 1:
        raise XferError("lr_search: give scratch and finetune lists of the same length (the "
                        f"same search budget for both sides), got {value!r}")
    return grids


def _pretrain_seeds(value: Any) -> tuple[int, ...]:
    """``pretrain_seeds``: a list of distinct non-negative integers (empty: one per seed)."""
    if not isinstance(value, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_INT for s in value):
        raise XferError(f"pretrain_seeds: expected a list of non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise XferError(f"pretrain_seeds: repeated seed in {value!r}")
    return tuple(value)


def check_corpus(corpus: str) -> None:
    """``corpus`` is a known corpus name or an existing folder."""
    if corpus not in NAMED_CORPORA and not Path(corpus).expanduser().is_dir():
        raise XferError(f"corpus: folder {corpus!r} does not exist (or name one of "
                        f"{', '.join(NAMED_CORPORA)})")


def _check_analysis(analysis: Analysis) -> Analysis:
    """``interp`` is one of Eq. 1's interpolations."""
    from xfer.analysis.transfer import INTERPOLATIONS

    if analysis.interp not in INTERPOLATIONS:
        raise XferError(f"analysis.interp: must be one of {', '.join(INTERPOLATIONS)}, got "
                        f"{analysis.interp!r}")
    return analysis


def _check_estimate(estimate: Estimate) -> Estimate:
    """``peak_flops`` a positive finite FLOP/s, ``utilisation`` a share in (0, 1]."""
    finite(estimate.peak_flops, "estimate.peak_flops", 0, 1e21, low_open=True)
    finite(estimate.utilisation, "estimate.utilisation", 0, 1, low_open=True)
    return estimate


def _check_increasing(values: tuple[int, ...], where: str) -> None:
    for a, b in zip(values, values[1:], strict=False):
        if b <= a:
            raise XferError(f"{where}: budgets must strictly increase: {a} then {b}")


def _languages(langs: Languages, corpus: str) -> Languages:
    """Fill empty source/target lists with the corpus's default languages; check codes."""
    sources, targets = langs.sources, langs.targets
    if corpus == "synthetic":
        from xfer.data import synthetic

        sources = sources or tuple(synthetic.DEFAULT_LANGUAGES)
        targets = targets or tuple(synthetic.DEFAULT_LANGUAGES)
        for lang in {*sources, *targets, *(x for p in langs.extra_pairs for x in p)}:
            if lang not in synthetic.LANGUAGES:
                raise XferError(f"languages: unknown generated language {lang!r}"
                                f"{nearest(lang, list(synthetic.LANGUAGES))}")
    if not sources or not targets:
        raise XferError("languages: give sources and targets (lists of language codes)")
    for lang in sorted({*sources, *targets, *(x for p in langs.extra_pairs for x in p)}):
        check_name(lang, "languages")  # codes name trial keys and data folders
    for where, codes in (("sources", sources), ("targets", targets)):
        if len(set(codes)) != len(codes):
            raise XferError(f"languages.{where}: repeated language in {list(codes)}")
    for src, tgt in langs.extra_pairs:
        if src == tgt:
            raise XferError(f"languages.extra_pairs: source equals target: {src}")
    return Languages(tuple(sources), tuple(targets), langs.extra_pairs)


def _train_configs(section: Any) -> dict[str, Any]:
    """``train:`` holds settings common to all kinds plus a sub-mapping per kind that overrides
    them; each kind becomes one :class:`xfer.training.TrainConfig` (its ``kind`` set here, its
    ``seed`` per trial from ``seeds``)."""
    from xfer.training.config import TrainConfig

    section = dict(section or {})
    per_kind = {kind: section.pop(kind, None) or {} for kind in KINDS}
    settable = [f.name for f in fields(TrainConfig) if f.name not in ("kind", "seed")]
    check_keys(section, settable + list(KINDS), "train")
    out = {}
    for kind in KINDS:
        if not isinstance(per_kind[kind], dict):
            raise XferError(f"train.{kind}: expected a mapping, got {per_kind[kind]!r}")
        check_keys(per_kind[kind], settable, f"train.{kind}")
        out[kind] = build(TrainConfig, {**section, **per_kind[kind], "kind": kind},
                          f"train.{kind}")
    return out
