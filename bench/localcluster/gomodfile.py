"""Reading a published module's go.mod and writing what a wrapper module must repeat of it.

Go ignores the ``replace`` and ``exclude`` directives of a dependency, which is what lets a
wrapper module build a release that replaces its own sub-modules with local directories:
the wrapper repeats the pins that matter and points the rest at published tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass


class BinaryBuildError(RuntimeError):
    """A bench binary could not be built; the message carries the tail of the go output."""


@dataclass
class GoMod:
    """The parts of a go.mod file that the wrappers copy or check."""

    go: str = ""
    godebug: list[str] = dataclasses.field(default_factory=list)
    require: dict[str, str] = dataclasses.field(default_factory=dict)
    # (old path, old version or "", new path, new version or "" for a directory)
    replace: list[tuple[str, str, str, str]] = dataclasses.field(default_factory=list)
    exclude: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def parse_go_mod(text: str) -> GoMod:
    """Parse the directives of a go.mod that the wrappers need.

    Handles single-line and block forms of ``godebug``, ``require``, ``replace`` and
    ``exclude``; other directives are ignored.
    """
    mod = GoMod()
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            _add_directive(mod, block, line)
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest == "(":
            block = verb
            continue
        if verb == "go":
            mod.go = rest
        else:
            _add_directive(mod, verb, rest)
    return mod


def _add_directive(mod: GoMod, verb: str, args: str) -> None:
    fields = args.split()
    if verb == "godebug":
        mod.godebug.append(args)
    elif verb == "require" and len(fields) >= 2:
        mod.require[fields[0]] = fields[1]
    elif verb == "exclude" and len(fields) == 2:
        mod.exclude.append((fields[0], fields[1]))
    elif verb == "replace":
        left, _, right = args.partition("=>")
        lf, rf = left.split(), right.split()
        if lf and rf:
            mod.replace.append((lf[0], lf[1] if len(lf) > 1 else "", rf[0], rf[1] if len(rf) > 1 else ""))


def _is_local_target(path: str) -> bool:
    return path.startswith(("./", "../", "/"))


def format_block(verb: str, lines: Sequence[str]) -> str:
    if not lines:
        return ""
    body = "\n".join(f"\t{line}" for line in lines)
    return f"{verb} (\n{body}\n)"


def carried_overrides(dep: GoMod, module: str) -> str:
    """Render the replaces/excludes a wrapper must repeat from a dependency's go.mod.

    Go ignores the replaces of a dependency. A replace that pins another module version
    is repeated so the build uses what the release was tested with; a replace to a local
    directory is dropped, which is only sound when the requirement it shadows names a
    real published version (checked here).
    """
    replaces: list[str] = []
    for old, old_v, new, new_v in dep.replace:
        if _is_local_target(new):
            required = dep.require.get(old)
            if required is not None and required.startswith("v0.0.0") and "-" not in required:
                raise BinaryBuildError(
                    f"{module} replaces {old} with local path {new} and requires it at "
                    f"{required}, which is not published; the wrapper needs an explicit "
                    "replacement for it"
                )
            continue
        left = f"{old} {old_v}".strip()
        replaces.append(f"{left} => {new} {new_v}".strip())
    parts = [format_block("replace", replaces)]
    parts.append(format_block("exclude", [f"{p} {v}" for p, v in dep.exclude]))
    return "\n\n".join(p for p in parts if p)


def staging_overrides(dep: GoMod, module: str, staging_version: str) -> str:
    """Point every staging module the release requires at its published tag.

    The list comes from the release's own go.mod: modules it replaces with
    ``./staging/...`` and requires at the unpublished v0.0.0. Staging modules the release
    does not require (e.g. sample-cli-plugin) are left out, as the proxy need not serve
    them. Any other local replace is handled like in :func:`_carried_overrides`.
    """
    staging: list[str] = []
    rest = GoMod(go=dep.go, require=dep.require, exclude=dep.exclude)
    for entry in dep.replace:
        old, _, new, _ = entry
        if new.startswith("./staging/"):
            if dep.require.get(old) == "v0.0.0":
                staging.append(old)
        else:
            rest.replace.append(entry)
    if not staging:
        raise BinaryBuildError(f"{module}: found no staging modules in its go.mod")
    lines = [f"{m} => {m} {staging_version}" for m in sorted(staging)]
    carried = carried_overrides(rest, module)
    return "\n\n".join(p for p in (format_block("replace", lines), carried) if p)
