"""Built-in synthetic hospitals: head CTs with traumatic hematomas, per-site scanners and labels."""

from ichfed.phantom.generate import SynthCase, synth_case, synth_site
from ichfed.phantom.profiles import BUILTIN, SiteProfile, load_profile

__all__ = ["BUILTIN", "SiteProfile", "SynthCase", "load_profile", "synth_case", "synth_site"]
