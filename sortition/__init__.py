"""sortition: a stratified sortition engine for citizens' assemblies."""

import os as _os

# The numerical work here is on small matrices (strata × quota groups), where BLAS threads only
# add overhead; worse, they spin-wait when the cores are busy (measured: solves 2.5× slower on a
# loaded 2-core machine). One thread unless the caller says otherwise; this takes effect only
# when sortition is imported before numpy, as the command line does.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
