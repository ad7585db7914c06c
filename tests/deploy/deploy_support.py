"""Offline checks for the scale-out assets: KubeRay CRD validation, pins, CLI commands.

Nothing here touches the network or a Kubernetes cluster:

- :func:`crd_validator` validates a manifest against the ``openAPIV3Schema`` of
  its CRD the way ``kubectl apply --validate=strict`` would: unknown fields are
  errors (structural schemas prune them; strict validation refuses them),
  ``x-kubernetes-list-type`` map/set lists must have unique keys, ``int32`` and
  ``int64`` formats are range-checked, ``x-kubernetes-int-or-string`` accepts
  both, and the few CEL rules (``x-kubernetes-validations``) in the KubeRay
  CRDs are evaluated by hand-written equivalents (an unknown rule is an error,
  never silently passed).
- :func:`check_command` checks a command line against a click command tree
  (Ray's CLI, TradePulse's CLI): subcommands, option names, flags vs. options
  with a value, the number of positional arguments.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import jsonschema
import yaml
from packaging.requirements import Requirement

__all__ = [
    "CRD_DIR",
    "REPO_ROOT",
    "SHARED_CRD_DIR",
    "VENDORED_CRD_DIR",
    "CommandCheck",
    "CrdSchema",
    "ImageTag",
    "check_command",
    "check_sweep",
    "crd_validator",
    "documented_sweep_command",
    "load_crd_schemas",
    "load_yaml_documents",
    "metadata_problems",
    "package_version",
    "parse_image",
    "pinned_ray_version",
    "python_tag",
    "ray_cli",
    "shell_commands",
    "sweep_command",
    "sweep_signature",
    "tradepulse_cli",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: In CI the repository is cloned with ``shared/`` beside it.
SHARED_CRD_DIR = REPO_ROOT.parent / "shared" / "kuberay-crds"
#: The same files vendored into the repository (KubeRay, Apache-2.0; see its README),
#: so a clone anywhere can validate; a test checks they equal ``SHARED_CRD_DIR``.
VENDORED_CRD_DIR = REPO_ROOT / "deploy" / "kuberay-crds"
CRD_DIR = SHARED_CRD_DIR if SHARED_CRD_DIR.is_dir() else VENDORED_CRD_DIR

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


# --------------------------------------------------------------------------- pins


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pinned_ray_version() -> str:
    """Return the exact Ray version pinned by ``ray[...]==X`` in pyproject.toml."""
    for line in _pyproject()["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == "ray":
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1, f"ray must be pinned with one ==, got {line!r}"
            assert specifiers[0].operator == "==", f"ray must be pinned with ==, got {line!r}"
            return specifiers[0].version
    raise AssertionError("pyproject.toml does not depend on ray")


def package_version() -> str:
    """Return TradePulse's version from pyproject.toml."""
    version: str = _pyproject()["project"]["version"]
    return version


def python_tag() -> str:
    """Return the Python the package targets as an image tag part (``py311``).

    Taken from ``requires-python`` (``>=3.11``): the oldest supported Python,
    which is the one the images ship.
    """
    match = re.fullmatch(r">=\s*3\.(\d+)", _pyproject()["project"]["requires-python"])
    assert match, "requires-python must read '>=3.N'"
    return f"py3{match.group(1)}"


@dataclass(frozen=True)
class ImageTag:
    """A TradePulse image reference split into its parts."""

    repository: str
    package_version: str
    ray_version: str
    python_tag: str


_IMAGE = re.compile(
    r"^(?P<repository>[^:@\s]+/tradepulse):(?P<package>[0-9][^-]*)"
    r"-ray(?P<ray>[0-9][0-9.]*)-(?P<python>py3[0-9]+)$"
)


def parse_image(image: str) -> ImageTag:
    """Split ``<registry>/tradepulse:<version>-ray<ray>-py<python>``.

    Raises:
        AssertionError: ``image`` does not have that form.
    """
    match = _IMAGE.match(image)
    assert match, (
        f"image {image!r} is not <registry>/tradepulse:<version>-ray<ray version>-py<python>"
    )
    return ImageTag(match["repository"], match["package"], match["ray"], match["python"])


# --------------------------------------------------------------------------- YAML


#: libyaml's safe loader when PyYAML has it (the CRDs are 3 MB of YAML).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_documents(path: Path) -> list[Any]:
    """Return every non-empty YAML document of ``path`` (safe loading)."""
    with path.open(encoding="utf-8") as handle:
        documents = yaml.load_all(handle, Loader=_LOADER)
        return [document for document in documents if document is not None]


# --------------------------------------------------------------------------- CRDs


@dataclass(frozen=True)
class CrdSchema:
    """The schema of one served version of a CRD."""

    api_version: str
    kind: str
    storage: bool
    schema: Mapping[str, Any]


@functools.cache
def load_crd_schemas(crd_dir: Path = CRD_DIR) -> dict[tuple[str, str], CrdSchema]:
    """Return ``(apiVersion, kind) -> schema`` for every served version in ``crd_dir``.

    Raises:
        FileNotFoundError: ``crd_dir`` is missing or holds no CRD.
    """
    if not crd_dir.is_dir():
        raise FileNotFoundError(
            f"KubeRay CRDs not found at {crd_dir}: the tests expect the shared/ folder "
            "beside the repository (shared/kuberay-crds/ray.io_*.yaml) or the vendored "
            "copy in deploy/kuberay-crds/"
        )
    schemas: dict[tuple[str, str], CrdSchema] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        for document in load_yaml_documents(path):
            if document.get("kind") != "CustomResourceDefinition":
                continue
            group = document["spec"]["group"]
            kind = document["spec"]["names"]["kind"]
            for version in document["spec"]["versions"]:
                if version.get("served"):
                    api_version = f"{group}/{version['name']}"
                    schemas[(api_version, kind)] = CrdSchema(
                        api_version,
                        kind,
                        bool(version.get("storage")),
                        version["schema"]["openAPIV3Schema"],
                    )
    if not schemas:
        raise FileNotFoundError(f"no CustomResourceDefinition in {crd_dir}/*.yaml")
    return schemas


def _strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a CRD schema in which unknown fields are errors."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _strict(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_strict(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _has(value: object, name: str) -> bool:
    return isinstance(value, Mapping) and name in value


#: The CEL rules of the KubeRay CRDs, as Python predicates over ``self``.
#: ``self == oldSelf`` is a transition rule: it only applies to updates, so it
#: holds for a manifest that is being created.
CEL_RULES: dict[str, Callable[[Any], bool]] = {
    "self == oldSelf": lambda self: True,
    "self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']": lambda self: (
        self in ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")
    ),
    "!(has(self.jobStatus) && has(self.jobDeploymentStatus))": lambda self: (
        not (_has(self, "jobStatus") and _has(self, "jobDeploymentStatus"))
    ),
    "has(self.jobStatus) || has(self.jobDeploymentStatus)": lambda self: (
        _has(self, "jobStatus") or _has(self, "jobDeploymentStatus")
    ),
    "!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))": lambda self: (
        not ((_has(self, "onSuccess") or _has(self, "onFailure")) and _has(self, "deletionRules"))
    ),
    "((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))": lambda self: (
        (_has(self, "onSuccess") and _has(self, "onFailure")) or _has(self, "deletionRules")
    ),
}


def _cel_validations(
    validator: Any, rules: list[Mapping[str, str]], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    for rule in rules:
        predicate = CEL_RULES.get(rule["rule"])
        if predicate is None:
            yield jsonschema.ValidationError(
                f"no offline evaluator for the CEL rule {rule['rule']!r}: "
                "add one to CEL_RULES in tests/deploy/deploy_support.py"
            )
        elif not predicate(instance):
            yield jsonschema.ValidationError(rule.get("message", f"CEL rule {rule['rule']!r}"))


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list) or list_type == "atomic":
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield jsonschema.ValidationError(f"duplicate entry {item!r} in a set list")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        item_properties = schema.get("items", {}).get("properties", {})
        seen_keys: set[tuple[Any, ...]] = set()
        for item in instance:
            if not isinstance(item, Mapping):
                continue
            key = tuple(
                item.get(name, item_properties.get(name, {}).get("default")) for name in keys
            )
            if key in seen_keys:
                yield jsonschema.ValidationError(
                    f"duplicate entry with {dict(zip(keys, key, strict=True))} in a map list"
                )
            seen_keys.add(key)


_FORMATS = jsonschema.FormatChecker()


def _check_int_format(name: str) -> Callable[[object], bool]:
    low, high = _INT_RANGES[name]

    def check(value: object) -> bool:
        return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high

    return check


for _name in _INT_RANGES:
    _FORMATS.checks(_name)(_check_int_format(_name))

_KubernetesValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"x-kubernetes-validations": _cel_validations, "x-kubernetes-list-type": _list_type},
)


@functools.cache
def _cached_validator(api_version: str, kind: str, crd_dir: Path) -> Any:
    crd = load_crd_schemas(crd_dir)[(api_version, kind)]
    return _KubernetesValidator(_strict(crd.schema), format_checker=_FORMATS)


def crd_validator(api_version: str, kind: str, crd_dir: Path = CRD_DIR) -> Any:
    """Return a strict jsonschema validator for ``kind`` at ``api_version``.

    Raises:
        KeyError: no CRD in ``crd_dir`` serves that kind at that version.
    """
    return _cached_validator(api_version, kind, crd_dir)


def metadata_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with a manifest's ``metadata`` (the CRD schemas leave it open)."""
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping):
        return ["metadata is missing"]
    problems = []
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        problems.append(f"metadata.name {name!r} is not a DNS-1035 label of at most 63 chars")
    for section in ("labels", "annotations"):
        for key, value in (metadata.get(section) or {}).items():
            if not isinstance(value, str):
                problems.append(f"metadata.{section}.{key} must be a string, got {value!r}")
    return problems


# --------------------------------------------------------------------------- CLIs


@functools.cache
def ray_cli() -> Any:
    """Return Ray's ``ray`` click group (the installed, pinned Ray)."""
    from ray.scripts.scripts import cli

    return cli


def tradepulse_cli() -> Any:
    """Return TradePulse's ``tradepulse`` command group (typer's click)."""
    import typer.main

    from tradepulse.cli import app

    command = typer.main.get_command(app)
    assert _is_group(command)
    return command


def documented_sweep_command() -> click.Command:
    """Return ``tradepulse sweep`` as issue #4 documents it (until the real one exists)."""
    return click.Command(
        "sweep",
        params=[
            click.Argument(["data"]),
            click.Option(["--strategy"], required=True),
            click.Option(["--grid"], multiple=True),
            click.Option(["--values"], multiple=True),
            click.Option(["--random"]),
            click.Option(["--seed"]),
            click.Option(["--config"]),
            click.Option(["--commission"]),
            click.Option(["--cash"]),
            click.Option(["--address"]),
            click.Option(["--out"], required=True),
            click.Option(["--resume"], is_flag=True),
            click.Option(["--json"], is_flag=True),
            click.Option(["--top"]),
        ],
    )


@dataclass
class CommandCheck:
    """A command line parsed against a click command tree."""

    path: list[str]
    options: dict[str, list[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    arguments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# Ray's CLI uses click, TradePulse's typer, which vendors its own copy of click
# (typer._click): the checks go by attributes, not by class.
def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _params(command: Any, kind: str) -> list[Any]:
    return [param for param in command.params if param.param_type_name == kind]


def _takes_value(option: Any) -> bool:
    return not (option.is_flag or option.count)


def check_command(root: Any, argv: list[str]) -> CommandCheck:
    """Parse ``argv`` (without the program name) against ``root``.

    Options are recorded by their parameter name (``options`` for options with
    a value, ``flags`` for flags); ``problems`` lists unknown subcommands and
    options, flags given a value, options missing theirs, missing required
    options and surplus or missing positional arguments.
    """
    result = CommandCheck(path=[root.name or "?"])
    command = root
    index = 0
    while _is_group(command):
        if index >= len(argv):
            result.problems.append(f"{' '.join(result.path)}: missing subcommand")
            return result
        sub = command.commands.get(argv[index])
        if sub is None:
            result.problems.append(f"{' '.join(result.path)}: no subcommand {argv[index]!r}")
            return result
        result.path.append(argv[index])
        command = sub
        index += 1

    by_flag: dict[str, Any] = {}
    for param in _params(command, "option"):
        for name in (*param.opts, *param.secondary_opts):
            by_flag[name] = param
    where = " ".join(result.path)
    while index < len(argv):
        token = argv[index]
        index += 1
        if token == "--":
            result.arguments.extend(argv[index:])
            break
        if token.startswith("-") and len(token) > 1:
            name, has_value, value = token.partition("=")
            option = by_flag.get(name)
            if option is None or option.name is None:
                result.problems.append(f"{where}: no option {name!r}")
                continue
            if not _takes_value(option):
                if has_value:
                    result.problems.append(f"{where}: flag {name} takes no value")
                result.flags.add(option.name)
                continue
            if not has_value:
                if index >= len(argv):
                    result.problems.append(f"{where}: option {name} needs a value")
                    break
                value = argv[index]
                index += 1
            result.options.setdefault(option.name, []).append(value)
        else:
            result.arguments.append(token)

    arguments = _params(command, "argument")
    capacity = sum(param.nargs for param in arguments if param.nargs > 0)
    unbounded = any(param.nargs < 0 for param in arguments)
    needed = sum(max(param.nargs, 1) for param in arguments if param.required)
    if not unbounded and len(result.arguments) > capacity:
        result.problems.append(f"{where}: too many arguments {result.arguments[capacity:]}")
    if len(result.arguments) < needed:
        result.problems.append(f"{where}: {needed} argument(s) needed, got {result.arguments}")
    for param in _params(command, "option"):
        if param.required and param.name not in result.options:
            result.problems.append(f"{where}: missing required option {param.opts[0]}")
    return result


# --------------------------------------------------------------------------- shell


def shell_commands(text: str) -> list[list[str]]:
    """Split shell text into simple commands (argv lists).

    Handles ``;``, ``&&``, ``||``, ``|`` and line continuations; drops leading
    ``VAR=value`` assignments and comments.
    """
    commands: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if set(token) <= set(";&|"):
                if current:
                    commands.append(current)
                current = []
            elif current or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
                current.append(token)
        if current:
            commands.append(current)
    return commands


# --------------------------------------------------------------------------- sweeps

#: Options that say where a sweep runs and where it writes, not what it computes.
HOST_OPTIONS = frozenset({"address", "out", "resume", "json", "top"})


def sweep_command() -> tuple[Any, bool]:
    """Return ``tradepulse sweep`` and whether it is the real command.

    Until the sweep CLI is registered, the command documented in issue #4
    stands in (:func:`documented_sweep_command`).
    """
    real = tradepulse_cli().commands.get("sweep")
    if real is not None:
        return real, True
    return documented_sweep_command(), False


def check_sweep(argv: list[str]) -> CommandCheck:
    """Check ``tradepulse sweep ...`` (``argv`` with the program name).

    Beyond :func:`check_command`: the strategy exists, and every ``--grid
    k=start:stop:step`` and ``--values k=a,b`` names one of its parameters with
    values inside the parameter's declared range.
    """
    from tradepulse.strategy import UnknownStrategyError, load_strategy, param_specs

    if argv[:2] != ["tradepulse", "sweep"]:
        return CommandCheck(path=argv[:2], problems=[f"not a tradepulse sweep: {argv}"])
    command, _ = sweep_command()
    result = check_command(command, argv[2:])
    names = result.options.get("strategy", [])
    if len(names) != 1:
        result.problems.append(f"exactly one --strategy needed, got {names}")
        return result
    try:
        specs = param_specs(load_strategy(names[0]).params_type)
    except UnknownStrategyError as error:
        result.problems.append(str(error))
        return result
    for text in result.options.get("grid", []):
        name, _, spec = text.partition("=")
        parts = spec.split(":")
        if name not in specs or len(parts) != 3:
            result.problems.append(f"--grid {text!r}: want k=start:stop:step, k in {list(specs)}")
            continue
        try:
            start, stop = (specs[name].parse(part) for part in parts[:2])
            step = float(parts[2])
        except (ValueError, TypeError) as error:  # ParameterError is a ValueError
            result.problems.append(f"--grid {text!r}: {error}")
            continue
        if not (step > 0 and start <= stop):
            result.problems.append(f"--grid {text!r}: need step > 0 and start <= stop")
    for text in result.options.get("values", []):
        name, _, values = text.partition("=")
        if name not in specs:
            result.problems.append(f"--values {text!r}: {name!r} is not in {list(specs)}")
            continue
        for value in values.split(","):
            try:
                specs[name].parse(value)
            except (ValueError, TypeError) as error:
                result.problems.append(f"--values {text!r}: {error}")
    return result


def sweep_signature(check: CommandCheck) -> tuple[object, ...]:
    """Return what a sweep computes: data file name, strategy, grids, other settings."""
    what = {name: sorted(values) for name, values in check.options.items()}
    for name in HOST_OPTIONS:
        what.pop(name, None)
    data = [Path(argument).name for argument in check.arguments]
    flags = sorted(check.flags - HOST_OPTIONS)
    return (data, sorted(what.items()), flags)
