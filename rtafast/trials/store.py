"""A trials run's output directory: the manifest and one Parquet file per batch.

Layout and columns: :mod:`rtafast.trials.schema`. A batch file is written atomically
(a temporary file renamed onto its final name) with the batch's run information in its
Parquet metadata (``rtafast.batch``: JSON): a batch file that exists is complete. So a
run that is stopped (killed, a machine lost) and started again with the same config and
``--n`` finds the batches already written, runs only the others, and never writes a
batch twice; the manifest (rewritten atomically after each batch) is rebuilt from the
files' metadata when it lags behind them.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..pipeline.atomic import atomic_path, write_atomic
from .schema import BATCH_DIR, MANIFEST_NAME, SCHEMA, batch_file_name

__all__ = ["TrialStore", "read_batch_info"]

#: Parquet metadata key of a batch's run information.
INFO_KEY = b"rtafast.batch"
#: Manifest keys that must match for a restarted run to continue a directory.
_SAME_RUN_KEYS = ("config", "hypothesis", "exposures_s", "batch_size", "seed", "blind", "n")


def read_batch_info(path):
    """The run information stored in a batch file's metadata (dict)."""
    metadata = pq.read_schema(path).metadata or {}
    if INFO_KEY not in metadata:
        raise ValueError(f"{path}: not a batch file of rtafast trials (no {INFO_KEY.decode()})")
    return json.loads(metadata[INFO_KEY])


class TrialStore:
    """The output directory of a trials run (see the module's notes).

    Parameters
    ----------
    outdir : str or `~pathlib.Path`
    """

    def __init__(self, outdir):
        self.outdir = Path(outdir)
        self.batch_dir = self.outdir / BATCH_DIR
        self.manifest_path = self.outdir / MANIFEST_NAME
        self.manifest = None

    def open(self, manifest):
        """Create the directory, or check that it holds this very run; returns the
        ``(exposure_index, batch)`` pairs already written.

        Raises
        ------
        ValueError
            The directory holds another run (naming the keys that differ), or is a file.
        """
        if self.outdir.exists() and not self.outdir.is_dir():
            raise ValueError(f"{self.outdir}: exists and is not a directory")
        if self.manifest_path.exists():
            old = json.loads(self.manifest_path.read_text())
            differ = [key for key in _SAME_RUN_KEYS if old.get(key) != manifest.get(key)]
            if differ:
                raise ValueError(
                    f"{self.outdir} holds trials of another run (differs in: "
                    f"{', '.join(differ)}): give a new output directory, or the same "
                    "config, --n and seed to continue it"
                )
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        written = self._written()
        self.manifest = dict(manifest, batches=sorted(written.values(), key=_batch_order))
        self._save()
        return set(written)

    def _written(self):
        written = {}
        for path in sorted(self.batch_dir.glob("e*-b*.parquet")):
            info = read_batch_info(path)
            info["file"] = f"{BATCH_DIR}/{path.name}"
            written[info["exposure_index"], info["batch"]] = info
        return written

    def write(self, table, info):
        """Write one batch's rows (atomically) and record it in the manifest."""
        if table.schema != SCHEMA:
            raise ValueError("batch rows do not have the trials schema")
        name = batch_file_name(info["exposure_index"], info["batch"])
        metadata = {INFO_KEY: json.dumps(info).encode()}
        with atomic_path(self.batch_dir / name) as temporary:
            pq.write_table(table.replace_schema_metadata(metadata), temporary)
        self.manifest["batches"].append(dict(info, file=f"{BATCH_DIR}/{name}"))
        self.manifest["batches"].sort(key=_batch_order)
        self._save()

    def _save(self):
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=1) + "\n")

    def read_all(self):
        """Every written batch's rows as one `pyarrow.Table` (by exposure, then trial)."""
        paths = sorted(self.batch_dir.glob("e*-b*.parquet"))
        if not paths:
            return SCHEMA.empty_table()
        return pa.concat_tables([pq.read_table(path, schema=SCHEMA) for path in paths])


def _batch_order(info):
    return info["exposure_index"], info["batch"]
