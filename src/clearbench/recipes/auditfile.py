"""What every audit's result file shares (``audit.json``, ``relearn.json``, ``robustness.json``,
``precision.json``, ``crossmodal.json``): a header naming the models, data, forget split and
settings; an identity hashed from them; and the rule that a finished file of the same identity
is not redone (files are written atomically, so a file that exists is complete)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearbench.data.loading import DataSource
from clearbench.io import stable_hash, write_json_atomic
from clearbench.recipes.evaluate import earlier_result
from clearbench.recipes.stage import model_key, trained_as


def describe_model(path: str, key: dict[str, Any]) -> dict[str, Any]:
    """A model as the audit files record it: path, content key and training record."""
    return {"path": path, "key": key, "trained_as": trained_as(path)}


@dataclass(frozen=True)
class AuditFile:
    """One audit's result file: ``header`` (schema, audit, models, data, forget split and
    settings) and ``identity``, the hash of what decides its numbers."""

    path: Path
    audit: str
    header: dict[str, Any]
    identity: str
    keys: dict[str, dict[str, Any]]
    """Each model's content key (:func:`~clearbench.recipes.stage.model_key`), by name."""

    @classmethod
    def open(cls, path: Path, audit: str, schema: int, source: DataSource,
             models: Mapping[str, str], forget_split: str, settings: dict[str, Any],
             *, nest_models: bool = False) -> AuditFile:
        """The file at ``path`` of ``audit`` on ``models`` (name → path), each described in
        the header at the top level (``nest_models``: under ``"models"``)."""
        keys = {name: model_key(model) for name, model in models.items()}
        described = {name: describe_model(model, keys[name]) for name, model in models.items()}
        header = {
            "schema": schema,
            "audit": audit,
            **({"models": described} if nest_models else described),
            "data": {"clear": source.clear, "tofu": source.tofu,
                     "fingerprint": source.fingerprint()},
            "forget_split": forget_split,
            "settings": settings,
        }
        identity = stable_hash([schema, keys, header["data"]["fingerprint"], forget_split,
                                settings])
        return cls(Path(path), audit, header, identity, keys)

    def done(self) -> dict[str, Any] | None:
        """The finished file of this identity, if an earlier run left one (and says so)."""
        earlier = earlier_result(self.path, f"{self.audit} audit")
        if earlier is None or earlier.get("identity") != self.identity:
            return None
        print(f"{self.audit}: {self.path} is already done (identity {self.identity}); "
              "nothing to do")
        return earlier

    def write(self, seconds: float, results: dict[str, Any]) -> dict[str, Any]:
        """Header, identity, ``seconds`` and ``results``, written atomically; returned."""
        payload = self.header | {"identity": self.identity, "seconds": seconds, **results}
        write_json_atomic(self.path, payload)
        return payload
