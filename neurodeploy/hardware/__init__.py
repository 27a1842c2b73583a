"""Hardware descriptions: cited per-target physical constants (see ``docs/profiles.md``)."""

from .profiles import Constant, HardwareProfile, list_profiles, load_profile

__all__ = ["Constant", "HardwareProfile", "load_profile", "list_profiles"]
