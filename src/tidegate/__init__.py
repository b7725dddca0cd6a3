import sys

__version__ = "0.1.0"

# httpx loads its own command line (`httpx._main`) whenever rich and pygments are installed, as
# they are with sigstore-python; tidegate never runs it, and loading it costs every CLI start
# ~0.15 s. A None entry makes that import fail, and httpx falls back to its stub.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
