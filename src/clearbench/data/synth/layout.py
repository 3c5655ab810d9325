"""Write configs in the hub layout: ``README.md`` listing the configs, one parquet per config.

``datasets.load_dataset(folder, NAME, split="train")`` then loads a config exactly like it
loads ``therem/CLEAR`` or ``locuslab/TOFU``. Nothing written here embeds a timestamp, so the
same rows always give the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from clearbench.data.schema import Column, features

PARQUET_NAME = "train-00000-of-00001.parquet"


def png(image: Image.Image) -> dict[str, Any]:
    """An image as the ``datasets`` Image feature stores it: PNG bytes, no path."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def write_configs(
    root: Path,
    tables: dict[str, list[dict[str, Any]]],
    schemas: dict[str, tuple[Column, ...]],
    description: str,
) -> dict[str, int]:
    """Write every config of ``schemas`` from ``tables`` (rows may hold extra keys, ignored;
    an optional column is written only when the rows have it).

    Returns the row count of each config.
    """
    if set(tables) != set(schemas):
        raise ValueError(f"configs {sorted(tables)} do not match the schemas {sorted(schemas)}")
    info, listing = [], []
    for config, columns in schemas.items():
        rows = tables[config]
        columns = tuple(c for c in columns if not c.optional or (rows and c.name in rows[0]))
        feats = features(columns)
        batch = {column.name: [row[column.name] for row in rows] for column in columns}
        path = root / config / PARQUET_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pydict(feats.encode_batch(batch), schema=feats.arrow_schema)
        pq.write_table(table, path)
        size = path.stat().st_size
        # Sizes in `dataset_info` also make `datasets` cache a regenerated folder afresh.
        info.append(
            f"- config_name: {config}\n  splits:\n  - name: train\n    num_bytes: {size}\n"
            f"    num_examples: {len(rows)}\n  download_size: {size}\n  dataset_size: {size}\n"
        )
        listing.append(
            f"- config_name: {config}\n  data_files:\n  - split: train\n"
            f"    path: {config}/train-*.parquet\n"
        )
    header = f"dataset_info:\n{''.join(info)}configs:\n{''.join(listing)}"
    (root / "README.md").write_text(f"---\n{header}---\n\n{description}\n")
    return {config: len(tables[config]) for config in schemas}
