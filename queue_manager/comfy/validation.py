"""Validate an API-format prompt against object_info as ComfyUI 0.25.0's ``POST /prompt`` does.

It reproduces ``execution.validate_prompt`` / ``validate_inputs`` of ComfyUI 0.25.0 (the server of
``comfyui-reference/captures/comfyui-0.25.0``): the same 400 bodies and ``node_errors``, the same
partial acceptance (one valid output is enough; the failing branches are reported beside a 200),
the same conversions of widget values, and the node-specific checks ComfyUI's built-in nodes add
(``VALIDATE_INPUTS`` / ``validate_inputs``: LoadImage's "Invalid image file", and so on).

It is pure: no I/O, clock or network. The one outside fact ComfyUI consults, whether a file named
by a loader node exists, comes from the caller (``input_file_exists``).

Where ComfyUI's order comes from iterating a Python ``set`` (a node's inputs, the output nodes),
it changes with each server process's hash seed; here it is the order of ``object_info`` and of
the prompt. ComfyUI's tracebacks (``extra_info.traceback``) name its own source lines; here they
are empty lists.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any

FileExists = Callable[[str], bool]
"""Says whether a loader node's file exists. It gets the widget value unchanged, e.g.
``"photo.png"``, ``"sub/photo.png"`` or ``"photo.png [output]"`` (see split_annotated_filename), and
should answer like ComfyUI's ``os.path.exists(os.path.join(folder, name))``."""

ANY_TYPE = "*"
MATCH_TYPE = "COMFY_MATCHTYPE_V3"
COMBO_TYPE = "COMBO"
_AUTOGROW = "COMFY_AUTOGROW_V3"
_DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
_DYNAMIC_SLOT = "COMFY_DYNAMICSLOT_V3"
# Longer combo lists are not echoed back in errors (think thousands of model paths).
_COMBO_ECHO_LIMIT = 20
# ComfyUI converts widget values of these types before checking them, and queues the result.
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "STRING": str,
    "BOOLEAN": bool,
}


@dataclass(frozen=True)
class ValidationResult:
    """What ComfyUI decides about one prompt."""

    ok: bool  # True: accepted (200), possibly with node_errors for the branches that failed
    error: dict[str, Any] | None  # the top-level {"type","message","details","extra_info"}
    node_errors: dict[str, Any]  # node id -> {"errors", "dependent_outputs", "class_type"}
    outputs: list[str]  # the output nodes that will run (ComfyUI's outputs_to_execute)
    # The prompt as ComfyUI queues it: validation converts widget values in place
    # ("64" -> 64 for an INT, {"__value__": v} -> v). The caller's prompt is left untouched.
    prompt: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return 200 if self.ok else 400


class ServerCrash(Exception):
    """ComfyUI raises outside its per-output guard on this prompt (a node that is not an object, a
    class_type that is a list, ...): the real server answers 500 "Server got itself in trouble"."""


def validate_prompt(
    prompt: object,
    object_info: Mapping[str, Any],
    *,
    input_file_exists: FileExists | None = None,
    partial_execution_targets: Container[Any] | None = None,
) -> ValidationResult:
    """Validate ``prompt`` (the request's ``prompt`` value, any JSON) as ComfyUI 0.25.0 would.

    ``input_file_exists`` answers for loader nodes (LoadImage, LoadLatent, LoadAudio, LoadVideo,
    Load3D); without it a file counts as existing when object_info's combo lists it.
    ``partial_execution_targets`` restricts the outputs, as the request field of that name does.
    Raises ServerCrash where the real server would answer 500.
    """
    working = _working_copy(prompt)
    try:
        found = _output_nodes(working, object_info, partial_execution_targets)
    except Exception as ex:  # ComfyUI has no guard around this loop: the request dies with a 500
        raise ServerCrash(f"{type(ex).__name__}: {ex}") from ex
    if isinstance(found, dict):
        return ValidationResult(False, found, {}, [], working)
    if not found:
        error = _error("prompt_no_outputs", "Prompt has no outputs", "", {})
        return ValidationResult(False, error, {}, [], working)
    return _validate_outputs(_Checker(working, object_info, input_file_exists), found)


def response_body(result: ValidationResult, prompt_id: str, number: float) -> dict[str, Any]:
    """The JSON body ComfyUI answers with (status: ``result.status``)."""
    if result.ok:
        return {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
    return {"error": result.error, "node_errors": result.node_errors}


def submission_error(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 400 body for a request ComfyUI turns away before validating its prompt, else None."""
    if "prompt" not in body:
        error = _error("no_prompt", "No prompt provided", "No prompt provided", {})
        return {"error": error, "node_errors": {}}
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not _is_canonical_uuid(prompt_id):
        error = _error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
            "omit it to let the server generate one",
            {},
        )
        return {"error": error, "node_errors": {}}
    return None


def split_annotated_filename(name: str) -> tuple[str, str]:
    """``"a.png [output]"`` -> ``("a.png", "output")``; unannotated names live in ``input``.

    Like ComfyUI it drops one more character than the tag (the space before it).
    """
    for folder in ("output", "input", "temp"):
        tag = f"[{folder}]"
        if name.endswith(tag):
            return name[: -(len(tag) + 1)], folder
    return name, "input"


# -- the prompt as a whole ------------------------------------------------------------------------


def _working_copy(prompt: object) -> dict[str, Any]:
    if isinstance(prompt, Mapping):
        return copy.deepcopy(dict(prompt))
    # ComfyUI iterates whatever it got: an empty list or string has no nodes, hence no outputs;
    # anything else fails inside its loop.
    if isinstance(prompt, list | str) and not prompt:
        return {}
    raise ServerCrash(f"prompt is a {type(prompt).__name__}, not an object")


def _output_nodes(
    prompt: dict[str, Any], object_info: Mapping[str, Any], targets: Container[Any] | None
) -> list[str] | dict[str, Any]:
    """The output nodes to check, in prompt order, or the error for the first unusable node."""
    outputs: list[str] = []
    for node_id in prompt:
        node = prompt[node_id]
        if "class_type" not in node:
            return _missing_class_type(node_id, node)
        class_type = node["class_type"]
        info = object_info.get(class_type)
        if info is None:
            return _unknown_class(node_id, node, class_type)
        if info.get("output_node") is True and (targets is None or node_id in targets):
            outputs.append(node_id)
    return outputs


def _missing_class_type(node_id: str, node: Any) -> dict[str, Any]:
    title = node.get("_meta", {}).get("title")
    return _error(
        "missing_node_type",
        f"Node '{title or f'ID #{node_id}'}' has no class_type. "
        "The workflow may be corrupted or a custom node is missing.",
        f"Node ID '#{node_id}'",
        {"node_id": node_id, "class_type": None, "node_title": title},
    )


def _unknown_class(node_id: str, node: Any, class_type: Any) -> dict[str, Any]:
    title = node.get("_meta", {}).get("title", class_type)
    return _error(
        "missing_node_type",
        f"Node '{title}' not found. The custom node may not be installed.",
        f"Node ID '#{node_id}'",
        {"node_id": node_id, "class_type": class_type, "node_title": title},
    )


def _validate_outputs(checker: _Checker, outputs: list[str]) -> ValidationResult:
    good: list[str] = []
    failed: list[list[dict[str, Any]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        verdict = checker.output(output)
        if verdict.ok:
            good.append(output)
            continue
        failed.append(verdict.errors)
        # As in ComfyUI: every node checked so far that has errors of its own gets this output in
        # dependent_outputs, whether or not it feeds it. Nodes that failed only because something
        # upstream did are not listed.
        for node_id, seen in checker.validated.items():
            if seen.ok or not seen.errors:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": list(seen.errors),
                    "dependent_outputs": [],
                    "class_type": checker.prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)
    node_errors = copy.deepcopy(node_errors)  # errors hold object_info and prompt values
    if good:
        return ValidationResult(True, None, node_errors, good, checker.prompt)
    # Only the output nodes' own errors make the summary; upstream ones are in node_errors.
    details = "\n".join(f"{e['message']}: {e['details']}" for errors in failed for e in errors)
    error = _error(
        "prompt_outputs_failed_validation", "Prompt outputs failed validation", details, {}
    )
    return ValidationResult(False, error, node_errors, [], checker.prompt)


# -- one node -------------------------------------------------------------------------------------


@dataclass
class _Verdict:
    ok: bool
    errors: list[dict[str, Any]]


class _Checker:
    """Walks the graph from each output node, memoising each node's verdict as ComfyUI does."""

    def __init__(
        self,
        prompt: dict[str, Any],
        object_info: Mapping[str, Any],
        file_exists: FileExists | None,
    ) -> None:
        self.prompt = prompt
        self.object_info = object_info
        self.file_exists = file_exists
        self.validated: dict[Any, _Verdict] = {}

    def output(self, node_id: str) -> _Verdict:
        try:
            return self.node(node_id, [])
        except Exception as ex:
            verdict = _Verdict(False, [_exception_error(ex)])
            self.validated[node_id] = verdict
            return verdict

    def node(self, node_id: Any, visiting: list[Any]) -> _Verdict:
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in visiting:
            return self._cycle(node_id, visiting)
        inputs = self.prompt[node_id]["inputs"]
        class_type = self.prompt[node_id]["class_type"]
        declared = _declared_inputs(self.object_info[class_type]["input"], inputs)
        custom = _CUSTOM_CHECKS.get(class_type)
        errors: list[dict[str, Any]] = []
        upstream_ok = True
        received_types: dict[str, Any] = {}
        for name in declared.names():
            category, spec = declared.lookup(name)
            input_type, extra = _spec_parts(spec)
            if name not in inputs:
                if category == "required":
                    errors.append(_required_missing(name, declared.dynamic))
                continue
            value = inputs[name]
            if isinstance(value, list):
                link = _Link(name, value, [input_type, extra], received_types)
                upstream_ok = self._linked(node_id, link, custom, visiting, errors) and upstream_ok
            else:
                self._widget(inputs, name, value, input_type, extra, custom, errors)
        if custom is not None:
            errors.extend(self._custom(inputs, declared, custom, received_types))
        # A cycle found below this node may already have recorded an error for it: keep both.
        before = self.validated.get(node_id, _Verdict(True, []))
        verdict = _Verdict(
            before.ok and upstream_ok and not errors,
            before.errors + [e for e in errors if e not in before.errors],
        )
        self.validated[node_id] = verdict
        return verdict

    def _cycle(self, node_id: Any, visiting: list[Any]) -> _Verdict:
        path = [*visiting[visiting.index(node_id) :], node_id]
        members = list(dict.fromkeys(path))
        shown = " -> ".join(f"{n} ({self.prompt[n]['class_type']})" for n in path)
        for member in members:
            extra = {"node_id": member, "cycle_nodes": list(members)}
            error = _error("dependency_cycle", "Dependency cycle detected", shown, extra)
            self.validated[member] = _Verdict(False, [error])
        return self.validated[node_id]

    def _linked(
        self,
        node_id: Any,
        link: _Link,
        custom: _CustomCheck | None,
        visiting: list[Any],
        errors: list[dict[str, Any]],
    ) -> bool:
        """Check one ``[node id, slot]`` input; False when the node it comes from failed."""
        if len(link.value) != 2:
            errors.append(link.bad_shape())
            return True
        source = link.value[0]
        # A missing source node raises KeyError here, out of this node's check (as in ComfyUI).
        received = self._return_types(self.prompt[source]["class_type"])[link.value[1]]
        link.received_types[link.name] = received
        # A node whose check takes ``input_types`` judges link types itself.
        if not (custom and custom.takes_input_types) and not types_match(received, link.config[0]):
            errors.append(link.mismatch(received))
            return True
        try:
            visiting.append(node_id)
            try:
                upstream = self.node(source, visiting)
            finally:
                visiting.pop()
        except Exception as ex:
            self.validated[source] = _Verdict(False, [link.inner_exception(ex)])
            return False
        return upstream.ok

    def _return_types(self, class_type: Any) -> list[Any] | tuple[Any, ...]:
        output = self.object_info[class_type]["output"]
        # V3 nodes keep RETURN_TYPES as a list, V1 nodes as a tuple: only the wording of an
        # out-of-range slot's IndexError tells them apart.
        if "output_matchtypes" in self.object_info[class_type]:
            return list(output)
        return tuple(output)

    def _widget(
        self,
        inputs: Any,
        name: str,
        value: Any,
        input_type: Any,
        extra: Any,
        custom: _CustomCheck | None,
        errors: list[dict[str, Any]],
    ) -> None:
        config = [input_type, extra]
        try:
            # {"__value__": v} lets a list travel as a value (a bare list means a link).
            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
                inputs[name] = value
            convert = _CONVERTERS.get(input_type) if isinstance(input_type, str) else None
            if convert is not None:
                value = convert(value)
                inputs[name] = value
        except Exception as ex:
            errors.append(_conversion_error(name, value, input_type, config, ex))
            return
        # Inputs that the node's own check takes are left to it (e.g. LoadImage's image list).
        if custom is not None and (name in custom.params or custom.has_kwargs):
            return
        error = _range_error(name, value, extra, config) or _combo_error(
            name, value, input_type, extra, config
        )
        if error is not None:
            errors.append(error)

    def _custom(
        self,
        inputs: Any,
        declared: _Declared,
        custom: _CustomCheck,
        received_types: dict[str, Any],
    ) -> list[dict[str, Any]]:
        arguments = {
            name: value
            for name, value in _check_arguments(inputs, declared).items()
            if name in custom.params or custom.has_kwargs
        }
        if custom.takes_input_types:
            arguments["input_types"] = received_types
        outcome = custom.call(arguments, self._exists_for(declared, custom))
        if outcome is True:
            return []
        # ComfyUI repeats the node's one verdict for every argument the check received.
        reason = "" if outcome is False else f" - {outcome}"
        return [
            _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"{name}{reason}",
                {"input_name": name},
            )
            for name in arguments
        ]

    def _exists_for(self, declared: _Declared, custom: _CustomCheck) -> FileExists:
        if self.file_exists is not None:
            return self.file_exists
        options = _combo_options(declared, custom.params[0]) if custom.params else None
        return lambda name: _listed(name, options)


@dataclass(frozen=True)
class _Link:
    """One linked input of the node being checked, and the errors it can give."""

    name: str
    value: list[Any]
    config: list[Any]
    received_types: dict[str, Any]

    def bad_shape(self) -> dict[str, Any]:
        return _error(
            "bad_linked_input",
            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
            self.name,
            {"input_name": self.name, "input_config": self.config, "received_value": self.value},
        )

    def mismatch(self, received: Any) -> dict[str, Any]:
        return _error(
            "return_type_mismatch",
            "Return type mismatch between linked nodes",
            f"{self.name}, received_type({received}) mismatch input_type({self.config[0]})",
            {
                "input_name": self.name,
                "input_config": self.config,
                "received_type": received,
                "linked_node": self.value,
            },
        )

    def inner_exception(self, ex: Exception) -> dict[str, Any]:
        # Recorded on the source node, but named after this node's input.
        return _error(
            "exception_during_inner_validation",
            "Exception when validating inner node",
            str(ex),
            {
                "input_name": self.name,
                "input_config": self.config,
                "exception_message": str(ex),
                "exception_type": _type_name(ex),
                "traceback": [],
                "linked_node": self.value,
            },
        )


# -- input declarations -----------------------------------------------------------------------


@dataclass
class _Declared:
    """A node's inputs for this prompt: V3 dynamic inputs expanded by the values present."""

    required: dict[str, Any] = field(default_factory=dict)
    optional: dict[str, Any] = field(default_factory=dict)
    dynamic: bool = False  # some inputs sit under a dotted path ("images.image0")

    def group(self, category: str) -> dict[str, Any]:
        return self.required if category == "required" else self.optional

    def names(self) -> list[str]:
        return [*self.required, *(n for n in self.optional if n not in self.required)]

    def lookup(self, name: str) -> tuple[str, Any]:
        if name in self.required:
            return "required", self.required[name]
        return "optional", self.optional[name]

    def spec(self, name: Any) -> Any:
        if name in self.required:
            return self.required[name]
        return self.optional.get(name)


def _declared_inputs(spec_groups: Mapping[str, Any], live: Any) -> _Declared:
    declared = _Declared()
    _declare(declared, live, spec_groups, None)
    return declared


def _declare(
    out: _Declared, live: Any, groups: Mapping[str, Any], prefix: list[str] | None
) -> None:
    for category, group in groups.items():
        if category not in ("required", "optional"):
            continue  # hidden inputs are filled by the server, never validated
        for name, spec in group.items():
            kind = spec[0]
            expand = _EXPANDERS.get(kind) if isinstance(kind, str) else None
            if expand is not None:
                expand(out, live, spec, category, [*(prefix or []), name])
                continue
            out.group(category)[_dotted(prefix, name)] = spec
            if prefix:
                out.dynamic = True


def _dotted(prefix: list[str] | None, name: str) -> str:
    return ".".join([*prefix, name]) if prefix else name


def _expand_autogrow(out: _Declared, live: Any, spec: Any, category: str, path: list[str]) -> None:
    """``images`` -> ``images.image0`` (required up to ``min``), ``images.image1`` ..."""
    template = spec[1]["template"]
    if "names" in template:
        least, names = template["min"], list(template["names"])
    elif "prefix" in template:
        least = template["min"]
        names = [f"{template['prefix']}{i}" for i in range(template["max"])]
    else:
        raise UnboundLocalError(
            "cannot access local variable 'names' where it is not associated with a value"
        )
    groups = [(cat, specs) for cat, specs in template["input"].items() if len(specs) > 0]
    if not groups:
        raise Exception(
            "template_input could not be determined from required or optional; "
            "this should never happen."
        )
    template_required = groups[0][0] == "required"
    template_spec = next(iter(groups[0][1].values()))
    present: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        full = _dotted(path, name)
        slot = "required" if index < least and template_required else "optional"
        out.group(slot)[full] = template_spec
        chosen = present.setdefault(slot, {})
        if full in live:
            chosen[name] = template_spec
    if not any(present.values()):
        out.dynamic = True  # ComfyUI still records the (empty) group's path
    _declare(out, live, present, path)


def _expand_dynamic_combo(
    out: _Declared, live: Any, spec: Any, category: str, path: list[str]
) -> None:
    """The chosen option's inputs join the node; an unknown choice adds nothing, not even itself."""
    full = ".".join(path)
    if full not in live:
        return
    choice = live[full]
    for option in spec[1]["options"]:
        if option["key"] == choice:
            _declare(out, live, option["inputs"], path)
            out.group(category)[full] = spec
            out.dynamic = True
            return


def _expand_dynamic_slot(
    out: _Declared, live: Any, spec: Any, category: str, path: list[str]
) -> None:
    full = ".".join(path)
    if full in live:
        _declare(out, live, spec[1]["inputs"], path)
        out.group(category)[full] = spec
        out.dynamic = True


_EXPANDERS: dict[str, Callable[[_Declared, Any, Any, str, list[str]], None]] = {
    _AUTOGROW: _expand_autogrow,
    _DYNAMIC_COMBO: _expand_dynamic_combo,
    _DYNAMIC_SLOT: _expand_dynamic_slot,
}


def _spec_parts(spec: Any) -> tuple[Any, Any]:
    extra = spec[1] if len(spec) > 1 else {}
    if extra is None:
        raise AssertionError
    return spec[0], extra


def _combo_options(declared: _Declared, name: str) -> Any:
    spec = declared.spec(name)
    if spec is None:
        return None
    input_type, extra = _spec_parts(spec)
    if isinstance(input_type, list):
        return input_type
    return extra.get("options") if input_type == COMBO_TYPE else None


def _listed(name: str, options: Any) -> bool:
    """Without a file oracle, object_info's list (the server's input folder) stands in for it."""
    base, folder = split_annotated_filename(name)
    if options is None or folder != "input":
        return True  # nothing to judge by (LoadImageOutput's list is fetched separately)
    return bool(base in options)


# -- types and values -----------------------------------------------------------------------------


def types_match(received: Any, expected: Any) -> bool:
    """May an output of type ``received`` feed an input of type ``expected``?

    Types are comma-separated unions ("IMAGE,MASK"): any overlap will do; "*" matches anything;
    MatchType inputs are left to the frontend; a classic combo list may feed a "COMBO" input.
    """
    if received == expected:
        return True
    if ANY_TYPE in (received, expected) or MATCH_TYPE in (received, expected):
        return True
    if isinstance(received, list) and expected == COMBO_TYPE:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    received_set = {t.strip() for t in received.split(",")}
    expected_set = {t.strip() for t in expected.split(",")}
    if ANY_TYPE in received_set or ANY_TYPE in expected_set:
        return True
    return bool(received_set & expected_set)


def _range_error(name: str, value: Any, extra: Any, config: list[Any]) -> dict[str, Any] | None:
    if "min" in extra and value < extra["min"]:
        message = "Value {} smaller than min of {}".format(value, extra["min"])
        kind = "value_smaller_than_min"
    elif "max" in extra and value > extra["max"]:
        message = "Value {} bigger than max of {}".format(value, extra["max"])
        kind = "value_bigger_than_max"
    else:
        return None
    return _error(
        kind, message, name, {"input_name": name, "input_config": config, "received_value": value}
    )


def _combo_error(
    name: str, value: Any, input_type: Any, extra: Any, config: list[Any]
) -> dict[str, Any] | None:
    if not isinstance(input_type, list) and input_type != COMBO_TYPE:
        return None
    options = extra.get("options", []) if input_type == COMBO_TYPE else input_type
    if extra.get("multiselect", False) and isinstance(value, list):
        invalid = [v for v in value if v not in options]
    else:
        invalid = [value] if value not in options else []
    if not invalid:
        return None
    shown: list[Any] | None = config
    listing = str(options)  # Python's list repr, quotes and all
    if len(options) > _COMBO_ECHO_LIMIT:
        listing, shown = f"(list of length {len(options)})", None
    return _error(
        "value_not_in_list",
        "Value not in list",
        f"{name}: {', '.join(repr(v) for v in invalid)} not in {listing}",
        {"input_name": name, "input_config": shown, "received_value": value},
    )


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


def _check_arguments(inputs: Any, declared: _Declared) -> dict[str, Any]:
    """What a node's own check is called with: declared inputs, links as None (not run yet)."""
    arguments: dict[str, Any] = {}
    for name in inputs:
        value = inputs[name]
        spec = declared.spec(name)
        extra = _spec_parts(spec)[1] if spec is not None else None
        if _is_link(value) and (not extra or not extra.get("rawLink", False)):
            arguments[name] = None
        elif spec is not None:
            arguments[name] = value
    return arguments


# -- the node-specific checks of ComfyUI 0.25.0's built-in nodes ----------------------------------

_Check = Callable[[Mapping[str, Any], FileExists], object]


@dataclass(frozen=True)
class _CustomCheck:
    """A node's VALIDATE_INPUTS / validate_inputs: which inputs it takes, and what it says."""

    qualname: str  # for Python's wording when a required argument is missing
    params: tuple[str, ...]
    required: tuple[str, ...]
    check: _Check
    has_kwargs: bool = False  # takes every input, so ComfyUI checks none of them itself

    @property
    def takes_input_types(self) -> bool:
        return "input_types" in self.params

    def call(self, arguments: Mapping[str, Any], exists: FileExists) -> object:
        missing = [p for p in self.required if p not in arguments]
        if missing:
            raise _missing_arguments(self.qualname, missing)
        return self.check(arguments, exists)


def _missing_arguments(qualname: str, names: list[str]) -> TypeError:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        listed = quoted[0]
    elif len(quoted) == 2:
        listed = f"{quoted[0]} and {quoted[1]}"
    else:
        listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    plural = "s" if len(names) > 1 else ""
    return TypeError(
        f"{qualname}() missing {len(names)} required positional argument{plural}: {listed}"
    )


def _exists_annotated(name: Any, exists: FileExists) -> bool:
    # folder_paths parses the annotation first, so a non-string fails here, as it does there.
    split_annotated_filename(name)
    return exists(name)


def _file_check(param: str, kind: str) -> _Check:
    def check(arguments: Mapping[str, Any], exists: FileExists) -> object:
        name = arguments[param]
        if not _exists_annotated(name, exists):
            return f"Invalid {kind} file: {name}"
        return True

    return check


def _load_3d_check(arguments: Mapping[str, Any], exists: FileExists) -> object:
    model_file = arguments["model_file"]
    if not model_file or model_file == "none":
        return True
    if not _exists_annotated(model_file, exists):
        return f"Invalid 3D model file: {model_file}"
    return True


_KLING_CAMERA = ("horizontal_movement", "vertical_movement", "pan", "tilt", "roll", "zoom")


def _kling_camera_check(arguments: Mapping[str, Any], exists: FileExists) -> object:
    if not any(not math.isclose(arguments[p], 0.0) for p in _KLING_CAMERA):
        return "Invalid camera control configs: at least one of the values must be non-zero"
    return True


def _flux_ultra_check(arguments: Mapping[str, Any], exists: FileExists) -> object:
    _check_aspect_ratio(arguments["aspect_ratio"], low=1 / 4, high=4 / 1)
    return True


def _check_aspect_ratio(text: Any, *, low: float, high: float) -> None:
    """comfy_api_nodes' validate_aspect_ratio_string: it raises, so the node's check errors out."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"Aspect ratio must be 'X:Y' (e.g., 16:9), got '{text}'.")
    try:
        a, b = int(parts[0].strip()), int(parts[1].strip())
    except ValueError as exc:
        raise ValueError(
            f"Aspect ratio must contain integers separated by ':', got '{text}'."
        ) from exc
    if a <= 0 or b <= 0:
        raise ValueError(f"Aspect ratio parts must be positive integers, got {a}:{b}.")
    ratio = a / b
    # ComfyUI writes "≤" for both bounds, the lower one included.
    for bound, outside in ((low, ratio < low), (high, ratio > high)):
        if outside:
            raise ValueError(f"Aspect ratio `{ratio:.2g}` must be ≤ {bound:.2g}.")


def _tripo_conversion_check(arguments: Mapping[str, Any], exists: FileExists) -> object:
    allowed = ("MODEL_TASK_ID", "RIG_TASK_ID", "RETARGET_TASK_ID")
    if arguments["input_types"]["original_model_task_id"] not in allowed:
        return "original_model_task_id must be MODEL_TASK_ID, RIG_TASK_ID or RETARGET_TASK_ID type"
    return True


def _accept(arguments: Mapping[str, Any], exists: FileExists) -> object:
    return True


_LOAD_IMAGE = _CustomCheck(
    "LoadImage.VALIDATE_INPUTS", ("image",), ("image",), _file_check("image", "image")
)
_CUSTOM_CHECKS: dict[str, _CustomCheck] = {
    "LoadImage": _LOAD_IMAGE,
    "LoadImageMask": _LOAD_IMAGE,  # subclasses of LoadImage
    "LoadImageOutput": _LOAD_IMAGE,
    "LoadLatent": _CustomCheck(
        "LoadLatent.VALIDATE_INPUTS", ("latent",), ("latent",), _file_check("latent", "latent")
    ),
    "LoadAudio": _CustomCheck(
        "LoadAudio.validate_inputs", ("audio",), ("audio",), _file_check("audio", "audio")
    ),
    "LoadVideo": _CustomCheck(
        "LoadVideo.validate_inputs", ("file",), ("file",), _file_check("file", "video")
    ),
    "Load3D": _CustomCheck(
        "Load3D.validate_inputs", ("model_file",), ("model_file",), _load_3d_check, True
    ),
    # Its options are written in the frontend, so it opts out of every check.
    "CustomCombo": _CustomCheck(
        "CustomComboNode.validate_inputs", ("choice", "index"), ("choice",), _accept, True
    ),
    # Unknown "gpu:N" devices are let through to fall back at run time.
    "SelectModelDevice": _CustomCheck(
        "SelectModelDeviceNode.validate_inputs", ("device",), (), _accept
    ),
    "SelectCLIPDevice": _CustomCheck(
        "SelectCLIPDeviceNode.validate_inputs", ("device",), (), _accept
    ),
    "SelectVAEDevice": _CustomCheck(
        "SelectVAEDeviceNode.validate_inputs", ("device",), (), _accept
    ),
    "KlingCameraControls": _CustomCheck(
        "KlingCameraControls.validate_inputs", _KLING_CAMERA, _KLING_CAMERA, _kling_camera_check
    ),
    "FluxProUltraImageNode": _CustomCheck(
        "FluxProUltraImageNode.validate_inputs",
        ("aspect_ratio",),
        ("aspect_ratio",),
        _flux_ultra_check,
    ),
    "TripoConversionNode": _CustomCheck(
        "TripoConversionNode.validate_inputs",
        ("input_types",),
        ("input_types",),
        _tripo_conversion_check,
    ),
}


# -- error records --------------------------------------------------------------------------------


def _error(kind: str, message: str, details: str, extra_info: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def _required_missing(name: str, dynamic: bool) -> dict[str, Any]:
    # For dynamic inputs ComfyUI names only the last part of the path in details.
    details = name.split(".")[-1] if dynamic else name
    return _error(
        "required_input_missing", "Required input is missing", details, {"input_name": name}
    )


def _conversion_error(
    name: str, value: Any, input_type: Any, config: list[Any], ex: Exception
) -> dict[str, Any]:
    return _error(
        "invalid_input_type",
        f"Failed to convert an input value to a {input_type} value",
        f"{name}, {value}, {ex}",
        {
            "input_name": name,
            "input_config": config,
            "received_value": value,
            "exception_message": str(ex),
        },
    )


def _exception_error(ex: Exception) -> dict[str, Any]:
    return _error(
        "exception_during_validation",
        "Exception when validating node",
        str(ex),
        {"exception_type": _type_name(ex), "traceback": []},
    )


def _type_name(ex: Exception) -> str:
    kind = type(ex)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_canonical_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
