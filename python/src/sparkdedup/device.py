"""Device resolution: "auto" | "cpu" | "gpu", decided once on the driver and logged.

A requested GPU that is not usable is an error (BackendUnavailableError), never a silent
fallback to the CPU. GPU libraries are only probed here, never imported at package import.
"""

from __future__ import annotations

import importlib.util
import logging

from sparkdedup.config import DEVICES
from sparkdedup.errors import BackendUnavailableError, ConfigError

log = logging.getLogger("sparkdedup")

_GPU_HINT = (
    "install the GPU extra (pip install 'sparkdedup[gpu]', plus cudf from RAPIDS) on a machine "
    "with an NVIDIA GPU, or pass device='cpu'"
)


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy  # noqa: PLC0415 - GPU libraries are imported only when asked for

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any CUDA driver/runtime failure means "no usable GPU"
        return False


def resolve_device(device: str) -> str:
    """Resolve "auto" | "cpu" | "gpu" to "cpu" or "gpu".

    "auto" picks "gpu" when a CUDA device is usable from this process, else "cpu"; "gpu"
    raises BackendUnavailableError when none is.
    """
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device == "cpu":
        resolved = "cpu"
    elif gpu_available():
        resolved = "gpu"
    elif device == "gpu":
        raise BackendUnavailableError(
            f"device='gpu' was requested but no usable CUDA GPU was found: {_GPU_HINT}"
        )
    else:
        resolved = "cpu"
    log.info("sparkdedup device: %s (requested %s)", resolved, device)
    return resolved
