"""The reference Watcher agent (SPEC §11). Standalone: no Django, only its own requirements."""
