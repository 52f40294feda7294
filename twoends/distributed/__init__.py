"""Running a twoends classifier on more than one machine.

``twoends.distributed.ray`` runs a classifier inside Ray Data (``map_batches`` with
one model per actor) and writes the one Prediction schema. It is imported only
when asked for, so ``import twoends`` never imports Ray.
"""

# nothing at the package level: the Ray engine is the module twoends.distributed.ray
__all__: list[str] = []
