"""The real-data datasets rtafast is tested and benchmarked on (not installed: a
source checkout's development tooling, used by tests/, benchmarks/ and ``rtafast bench``).

The data are the public files in ``../shared/data`` (or ``$RTAFAST_DATA``): the
H.E.S.S. DL3 DR1 Crab runs and the CTA 1DC Galactic-plane run 110380. These
builders use gammapy only (they are the reference analyses, not fast paths).
"""

import os
import re
from pathlib import Path

import astropy.units as u
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion

__all__ = [
    "DATA_ENV_VARIABLE",
    "HESS_CRAB_RUNS",
    "CRAB_POSITION",
    "GALACTIC_CENTER",
    "DataNotFoundError",
    "find_data_dir",
    "missing_data_file",
    "hess_crab_dataset",
    "cta_1dc_dataset",
    "point_source_models",
]

# the flux-only model of the reference analyses is the demo's (runtime) one
from rtafast.simulate import point_source_models  # noqa: E402

#: Environment variable naming the shared data folder.
DATA_ENV_VARIABLE = "RTAFAST_DATA"
#: The four H.E.S.S. DL3 DR1 Crab Nebula runs.
HESS_CRAB_RUNS = (23523, 23526, 23559, 23592)
#: Crab Nebula position used by the reference analyses (ICRS).
CRAB_POSITION = SkyCoord(83.633, 22.014, unit="deg", frame="icrs")
#: Galactic Centre source of CTA 1DC (Sgr A*), in Galactic coordinates.
GALACTIC_CENTER = SkyCoord(359.944, -0.046, unit="deg", frame="galactic")
#: CTA 1DC run 110380 (Galactic plane survey, pointing at l=0, b=-1.3).
CTA_1DC_RUN = 110380


class DataNotFoundError(FileNotFoundError):
    """The shared real-data folder is not on this machine."""


def find_data_dir(required=None):
    """Return the shared data folder: ``$RTAFAST_DATA``, else ``../shared/data``.

    When ``$RTAFAST_DATA`` is set (non-empty) it is the only place looked at: a
    path that does not exist, or lacks ``required``, is an error, never a silent
    fall-back to another copy.

    Parameters
    ----------
    required : str, optional
        A sub-folder that must exist (e.g. ``"hess-dl3-dr1"``).

    Raises
    ------
    DataNotFoundError
        Saying where it looked (and naming ``$RTAFAST_DATA`` when it was set).
    """
    what = f"with {required}/ " if required else ""
    value = os.environ.get(DATA_ENV_VARIABLE, "")
    if value.strip():
        folder = Path(value).expanduser()
        if not folder.exists():
            raise DataNotFoundError(
                f"${DATA_ENV_VARIABLE} is set to {value}, which does not exist; "
                "point it at the shared data folder or unset it"
            )
        if not folder.is_dir():
            raise DataNotFoundError(
                f"${DATA_ENV_VARIABLE} is set to {value}, which is not a folder"
            )
        if required is not None and not (folder / required).is_dir():
            raise DataNotFoundError(
                f"${DATA_ENV_VARIABLE} is set to {value}, which has no {required}/ folder"
            )
        return folder
    project_root = Path(__file__).resolve().parent.parent
    candidates = [project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir() and (required is None or (candidate / required).is_dir()):
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise DataNotFoundError(
        f"shared data folder {what}not found (looked in {looked}); set ${DATA_ENV_VARIABLE}"
    )


#: How astropy's FITS reader names a file it cannot find (gammapy's readers raise it).
_NOT_FOUND = re.compile(r"File not found: (\S+)")


def missing_data_file(error):
    """The absent real-data file an error is about, or None.

    For a partial copy of the data (e.g. the folders a GPU lease carries): an
    ``OSError`` whose file (``error.filename``, or astropy's "File not found: PATH")
    does not exist and lies under ``$RTAFAST_DATA`` or ``$GAMMAPY_DATA``.
    """
    if not isinstance(error, OSError):
        return None
    name = error.filename
    if name is None:
        found = _NOT_FOUND.search(str(error))
        name = found.group(1) if found else None
    if name is None or Path(name).exists():
        return None
    roots = [os.environ.get(var, "") for var in (DATA_ENV_VARIABLE, "GAMMAPY_DATA")]
    path = Path(name).expanduser().absolute()
    for root in filter(str.strip, roots):
        if path.is_relative_to(Path(root).expanduser().absolute()):
            return str(path)
    return None


def _data_subdir(data_dir, sub):
    """``data_dir/sub`` (``data_dir`` given, or found), checked to be a folder."""
    if not data_dir:
        return find_data_dir(sub) / sub
    folder = Path(data_dir).expanduser() / sub
    if not folder.is_dir():
        raise DataNotFoundError(f"data folder {data_dir} has no {sub}/ folder ({folder})")
    return folder


def _get_observations(store, runs, where):
    try:
        return store.get_observations(list(runs))
    except FileNotFoundError as error:
        raise DataNotFoundError(
            f"the files of run(s) {[int(r) for r in runs]} are not all in {where}: {error}"
        ) from error


def _geom(center, frame, energy_axis):
    from gammapy.maps import WcsGeom

    return WcsGeom.create(
        skydir=center, binsz=0.02, width=(2.5, 2.5), frame=frame, axes=[energy_axis]
    )


def _reduce(observations, geom, energy_axis_true, exclusion_center, name):
    from gammapy.datasets import MapDataset
    from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker

    stacked = MapDataset.create(geom, energy_axis_true=energy_axis_true, name=name)
    maker = MapDatasetMaker()
    safe = SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=2.5 * u.deg)
    exclusion = ~geom.to_image().region_mask([CircleSkyRegion(exclusion_center, 0.3 * u.deg)])
    fov = FoVBackgroundMaker(method="scale", exclusion_mask=exclusion)
    for observation in observations:
        empty = MapDataset.create(geom, energy_axis_true=energy_axis_true)
        dataset = maker.run(empty, observation)
        dataset = safe.run(dataset, observation)
        dataset = fov.run(dataset)
        stacked.stack(dataset)
    return stacked


def _axes():
    from gammapy.maps import MapAxis

    energy = MapAxis.from_energy_bounds(1, 10, 6, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(0.5, 20, 12, unit="TeV", name="energy_true")
    return energy, energy_true


def hess_crab_dataset(data_dir=None, runs=HESS_CRAB_RUNS, frame="icrs"):
    """Stacked MapDataset of the H.E.S.S. DL3 DR1 Crab runs (gammapy's reduction).

    0.02 deg pixels over 2.5 x 2.5 deg around the Crab; reconstructed energy
    1-10 TeV in 6 bins, true energy 0.5-20 TeV in 12 bins; safe mask offset-max
    2.5 deg + aeff-default; FoV background scaled per run with a 0.3 deg exclusion.
    """
    from gammapy.data import DataStore

    root = _data_subdir(data_dir, "hess-dl3-dr1")
    store = DataStore.from_dir(root)
    observations = _get_observations(store, runs, root)
    energy, energy_true = _axes()
    geom = _geom(CRAB_POSITION.transform_to(frame), frame, energy)
    return _reduce(observations, geom, energy_true, CRAB_POSITION, "hess-crab")


def cta_1dc_dataset(data_dir=None):
    """MapDataset of CTA 1DC run 110380 around the Galactic Centre, with its IRF.

    Same binning and reduction as :func:`hess_crab_dataset`, in Galactic
    coordinates, centred on Sgr A*.
    """
    from gammapy.data import DataStore

    root = _data_subdir(data_dir, "cta-1dc")
    store = DataStore.from_dir(root / "index" / "gps")
    # The index stores CALDB-relative IRF paths: point CALDB at the shared copy.
    os.environ.setdefault("CALDB", str(root / "caldb"))
    observations = _get_observations(store, [CTA_1DC_RUN], root)
    energy, energy_true = _axes()
    geom = _geom(GALACTIC_CENTER, "galactic", energy)
    return _reduce(observations, geom, energy_true, GALACTIC_CENTER, "cta-1dc-gc")
