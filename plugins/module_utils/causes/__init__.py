"""The cause catalog: every module in this package that declares CAUSE (a findings.Cause) and detect(fleet).

A cause declares itself once, in its own module: its place in the ranking
(`position`: KB 919091's order of causes, then the other public write-ups'), whether and
in which order it is fixed (`fix`: findings.Fix), its fix arguments and the
variable its role registers. Everything here is derived from those
declarations, so adding a cause is adding its module (and its role, when it
has a fix): no list to edit.
"""
from __future__ import annotations

import importlib
import os

_HELPERS = ("common",)  # modules of this package that are not causes
_CATALOG: list | None = None


def modules():
    """The detector modules, in catalog (ranking) order."""
    global _CATALOG
    if _CATALOG is None:
        here = os.path.dirname(os.path.abspath(__file__))
        names = sorted(f[:-3] for f in os.listdir(here)
                       if f.endswith(".py") and not f.startswith("_") and f[:-3] not in _HELPERS)
        found = [importlib.import_module(f"{__name__}.{n}") for n in names]
        for m in found:
            if getattr(m, "CAUSE", None) is None or m.CAUSE.id != m.__name__.rsplit(".", 1)[1]:
                raise ImportError(f"{m.__name__}: a cause module declares CAUSE with its own file name as id")
        positions = [m.CAUSE.position for m in found]
        if len(set(positions)) != len(positions):
            raise ImportError(f"two causes share a catalog position: {sorted(positions)}")
        _CATALOG = sorted(found, key=lambda m: m.CAUSE.position)
    return list(_CATALOG)


def catalog():
    """{cause id: Cause} in catalog order."""
    return {m.CAUSE.id: m.CAUSE for m in modules()}


def module(cause_id: str):
    """The module of one cause; KeyError names the known ones."""
    for m in modules():
        if m.CAUSE.id == cause_id:
            return m
    raise KeyError(f"unknown cause {cause_id!r} (known: {', '.join(m.CAUSE.id for m in modules())})")


def fixable(on: str = "server") -> tuple[str, ...]:
    """The causes with a fix that runs `on` servers or network devices, in the order a fix run takes them."""
    fixes = [m.CAUSE for m in modules() if m.CAUSE.fix is not None and m.CAUSE.fix.on == on]
    return tuple(c.id for c in sorted(fixes, key=lambda c: (c.fix.order, c.position)))


def __getattr__(name: str):
    # The names callers used before the declarations: derived, never written down twice.
    if name == "CAUSE_IDS":
        return tuple(catalog())
    if name == "FIXABLE":
        return fixable("server")
    if name == "NETWORK_FIXABLE":
        return fixable("network")
    raise AttributeError(name)
