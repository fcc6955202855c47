"""Module types: importing this package registers every type declared in its files."""
import importlib
import pkgutil

from .registry import (
    REGISTRY,
    ModuleType,
    Op,
    OpSpec,
    ParamError,
    ParamSpec,
    ShapeError,
    categories,
    module_type,
    register,
    resolve_params,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name != "registry" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY", "ModuleType", "Op", "OpSpec", "ParamError", "ParamSpec", "ShapeError",
           "categories", "module_type", "register", "resolve_params"]
