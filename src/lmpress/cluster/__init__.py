"""Scale-out: archive members coded by worker processes on this machine (`-T N`) or by
the workers of a Ray cluster (`--ray ADDRESS`), with archives byte-identical to one
process.

Why identical: a file is cut into members of `member_bytes` input bytes whatever the
number of workers (fileobj.py), every member is an independent archive coded with exact
integer arithmetic, and results are written back in input order. A pool only decides
*where* each member is coded. docs/CLUSTER.md has the commands and measured scaling.

LocalPool starts its workers with multiprocessing's "spawn", which imports the main
module again in each worker: a script that makes one needs the usual
`if __name__ == "__main__":` guard.

    >>> from lmpress.cluster import LocalPool  # doctest: +SKIP
    >>> with LocalPool("lmpress-small-v1", n_workers=2) as pool:  # doctest: +SKIP
    ...     with lmpress.open("big.txt.lmp", "wb", pool=pool) as f:
    ...         f.write(data)
"""

from .pools import LocalPool, PoolError, RayPool, make_pool
from .work import Settings

__all__ = ["LocalPool", "PoolError", "RayPool", "Settings", "make_pool"]
