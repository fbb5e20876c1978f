"""Load mailflow's knowledge file and apply inventory overrides."""
from __future__ import annotations

import copy
import os
import pickle
from typing import Any

# ansible-core's guarded import: module_utils must import without PyYAML (ansible-test sanity's import test
# holds them to what a managed host has); the controller, which reads the knowledge file, always has it.
from ansible.module_utils.common.yaml import HAS_YAML, yaml_load

KNOWLEDGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "knowledge.yml")
_CONFIDENCE = ("confirmed", "inferred", "unconfirmed")
# The knowledge file as last parsed, pickled: {(path, mtime_ns, size): bytes}. Every caller gets its own copy
# (callers merge into it), and unpickling is ~50 times cheaper than parsing the YAML again.
_PARSED: dict[tuple, bytes] = {}


class KnowledgeError(ValueError):
    pass


def merge(base: Any, override: Any) -> Any:
    """Dicts merge key by key; anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def _parsed(path: str) -> dict:
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _PARSED:
        if not HAS_YAML:
            raise KnowledgeError("reading the knowledge file needs PyYAML (ansible-core's own dependency)")
        with open(path, encoding="utf-8") as fh:
            data = yaml_load(fh)
        _PARSED.clear()
        _PARSED[key] = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.loads(_PARSED[key])


def warm(path: str = KNOWLEDGE_FILE) -> None:
    """Parse the knowledge file now, so processes forked later (ansible's workers, one per host and task) start
    with it parsed. Quiet on failure: load() reports the problem where it matters."""
    try:
        _parsed(path)
    except Exception:  # noqa: BLE001 - a warm-up never fails its importer; load() raises the real error
        pass


def load(overrides: dict | None = None, path: str = KNOWLEDGE_FILE) -> dict:
    data = _parsed(path)
    if overrides:
        if not isinstance(overrides, dict):
            raise KnowledgeError("mailflow_knowledge must be a dict merged over knowledge.yml")
        data = merge(data, overrides)
    for item_id, item in data.get("collect", {}).items():
        if item.get("confidence") not in _CONFIDENCE:
            raise KnowledgeError(f"knowledge collect.{item_id}: confidence must be one of {_CONFIDENCE}")
        if "op" not in item:
            raise KnowledgeError(f"knowledge collect.{item_id}: no op")
        if item.get("scope", "host") not in ("host", "org"):
            raise KnowledgeError(f"knowledge collect.{item_id}: scope must be host or org, not {item.get('scope')!r}")
    return data
