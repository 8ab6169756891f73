"""The backend registry: ``"auto" | "numpy" | "numba" | "cuda"``, resolved once, and
the operations of every kernel family, keyed by operation and backend.

Every entry point of rtafast takes ``array_backend=`` and calls :func:`resolve_backend`,
which returns a cached backend object. A backend is small (the protocol of
:class:`Backend`: ``name``, ``xp``, ``asarray``, ``to_numpy``, ``synchronize``,
``device_name``); its operations (``backend.cash_sum(...)``, ``backend.ts_scan(...)``,
...) come from the kernel families listed in :data:`FAMILIES`: each family is a
sub-package whose ``OPERATIONS = {operation: {backend name: module}}`` names the module
of the family that implements the operation for that backend, as a function
``operation(backend, *args)``. The module is imported on the operation's first use.
Adding a kernel family: its folder, and one entry in :data:`FAMILIES`. No other module
branches on the backend's name.

``None`` means: the environment variable ``RTAFAST_BACKEND`` if set (checked:
an unknown name raises ``ValueError`` naming the variable), else ``"auto"``.
``"auto"`` picks ``"cuda"`` when CuPy is installed and a CUDA device is present,
else ``"numba"``, else ``"numpy"``. CuPy is imported only when the cuda backend
is resolved.
"""

import functools
import importlib
import importlib.util
import os

__all__ = [
    "BACKEND_NAMES",
    "ENV_VARIABLE",
    "FAMILIES",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "auto_backend_name",
    "default_backend_name",
    "environment_backend_name",
    "operation",
    "operation_table",
    "resolve_backend",
]

#: Concrete backends, in the order ``"auto"`` prefers them (last first).
BACKEND_NAMES = ("numpy", "numba", "cuda")
#: Environment variable that overrides the default backend.
ENV_VARIABLE = "RTAFAST_BACKEND"

#: Kernel families: sub-packages of ``rtafast_kernels`` declaring ``OPERATIONS``.
FAMILIES = (
    "cash",
    "binning",
    "selection",
    "tsmap",
    "regions",
    "convolution",
    "wstat",
    "timedomain",
    "trials",
)

_instances = {}


@functools.cache
def operation_table():
    """``{operation: (family, {backend name: module})}`` of every kernel family.

    Raises
    ------
    RuntimeError
        If two families declare the same operation.
    """
    table = {}
    for family in FAMILIES:
        declared = importlib.import_module(f"{__package__}.{family}").OPERATIONS
        for name, modules in declared.items():
            if name in table:
                raise RuntimeError(f"operation {name!r} declared by {table[name][0]} and {family}")
            table[name] = (family, dict(modules))
    return table


def operation(name, backend_name):
    """The function implementing operation ``name`` on a backend (imports its module).

    Returns
    -------
    callable
        ``function(backend, *args)``.

    Raises
    ------
    AttributeError
        If no family declares the operation, or not for this backend.
    """
    table = operation_table()
    if name not in table or backend_name not in table[name][1]:
        raise AttributeError(f"no kernel family provides operation {name!r} on {backend_name!r}")
    family, modules = table[name]
    module = importlib.import_module(f"{__package__}.{family}.{modules[backend_name]}")
    return getattr(module, name)


class Backend:
    """Base of the backend objects: operations resolved through the registry.

    Subclasses (:mod:`rtafast_kernels.devices`) provide the array protocol: ``xp`` (the
    array module), ``asarray``, ``to_numpy``, ``synchronize``, ``device_name`` and
    ``bin_chunk_events``. ``backend.op(*args)`` calls the family's ``op(backend, *args)``.
    """

    def __init__(self, name):
        self.name = name

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        bound = functools.partial(operation(name, self.name), self)
        setattr(self, name, bound)  # looked up once per backend and operation
        return bound

    def __repr__(self):
        return f"<rtafast backend {self.name!r}>"


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that cannot run on this machine."""


def _cuda_status():
    """Return ``(usable, reason)`` for the cuda backend without importing CuPy."""
    import numba

    simulated = bool(numba.config.ENABLE_CUDASIM)
    if not simulated and importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed (pip install 'rtafast[cuda12]' or '[cuda13]')"
    try:
        from numba import cuda
    except ImportError as error:  # pragma: no cover - numba without CUDA support
        return False, f"numba.cuda does not import: {error}"
    if simulated:
        return True, "numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        if not cuda.is_available():
            return False, "no CUDA device or driver found"
    except Exception as error:  # noqa: BLE001 - the driver can fail in many ways
        return False, f"CUDA driver error: {error}"
    return True, "CUDA device present"


def _numba_status():
    try:
        import numba  # noqa: F401
    except ImportError as error:  # pragma: no cover - numba is a dependency
        return False, f"numba does not import: {error}"
    return True, "numba installed"


def available_backends():
    """Report which backends can run here.

    Returns
    -------
    dict
        ``{name: (usable, reason)}`` for each of :data:`BACKEND_NAMES`.
    """
    return {
        "numpy": (True, "always available"),
        "numba": _numba_status(),
        "cuda": _cuda_status(),
    }


def auto_backend_name():
    """Return the backend ``"auto"`` resolves to on this machine.

    A simulated CUDA device is never picked automatically.
    """
    import numba

    status = available_backends()
    if status["cuda"][0] and not numba.config.ENABLE_CUDASIM:
        return "cuda"
    if status["numba"][0]:
        return "numba"
    return "numpy"


def _create(name):
    from . import devices

    return devices.CudaDevice(name) if name == "cuda" else devices.HostDevice(name)


def _unknown_name(value, source):
    return ValueError(
        f"unknown rtafast backend {value!r} (from {source}); "
        f"choose one of 'auto', {', '.join(repr(n) for n in BACKEND_NAMES)}"
    )


def environment_backend_name():
    """The backend name ``$RTAFAST_BACKEND`` asks for, checked (not resolved).

    Returns
    -------
    str
        ``"auto"`` when the variable is unset or empty, else its value in lower case.

    Raises
    ------
    ValueError
        If the variable names no backend (the message names the variable and the
        valid values).
    """
    value = os.environ.get(ENV_VARIABLE)
    if value is None or not value.strip():
        return "auto"
    name = value.strip().lower()
    if name != "auto" and name not in BACKEND_NAMES:
        raise _unknown_name(value, f"${ENV_VARIABLE}")
    return name


def default_backend_name():
    """The concrete backend ``resolve_backend(None)`` gives: ``$RTAFAST_BACKEND`` or auto.

    Raises
    ------
    ValueError
        If ``$RTAFAST_BACKEND`` names no backend.
    """
    name = environment_backend_name()
    return auto_backend_name() if name == "auto" else name


def resolve_backend(backend=None):
    """Return the backend object for a name (resolved once, then cached).

    Parameters
    ----------
    backend : {None, "auto", "numpy", "numba", "cuda"} or backend object
        ``None`` reads ``$RTAFAST_BACKEND`` (default ``"auto"``; empty counts as
        unset). A backend object is returned unchanged.

    Raises
    ------
    ValueError
        If the name is not one of the above (the message says where it came from).
    TypeError
        If ``backend`` is neither a name nor a backend object.
    BackendUnavailableError
        If the backend cannot run here (the message says why).
    """
    if backend is None:
        name = environment_backend_name()
    elif isinstance(backend, str):
        name = backend.strip().lower()
        if name != "auto" and name not in BACKEND_NAMES:
            raise _unknown_name(backend, "argument array_backend")
    elif getattr(backend, "name", None) in BACKEND_NAMES and hasattr(backend, "asarray"):
        return backend
    else:
        raise TypeError(
            "array_backend must be None, a backend name ('auto', "
            f"{', '.join(repr(n) for n in BACKEND_NAMES)}) or a backend object, got "
            f"{type(backend).__name__}"
        )
    if name == "auto":
        name = auto_backend_name()
    if name not in _instances:
        usable, reason = available_backends()[name]
        if not usable:
            raise BackendUnavailableError(f"backend {name!r} is not available: {reason}")
        _instances[name] = _create(name)
    return _instances[name]
