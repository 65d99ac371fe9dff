"""sortition: a stratified sortition engine for citizens' assemblies."""

__version__ = "0.1.0"
