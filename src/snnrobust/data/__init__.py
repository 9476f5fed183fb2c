"""Datasets: a registry of sources, each prepared once into a checksummed-input, pickle-free .npz file.

``prepare_dataset(source, out, **opts)`` writes the file; ``load_prepared(out)`` reads it back for training,
attacks and analysis. Importing this package registers every source.
"""

from snnrobust.data.prepared import PreparedData, load_prepared
from snnrobust.data.sources import DATASETS, prepare_dataset

# Each import registers its sources in DATASETS.
from snnrobust.data import cifar10_dvs, digits, graphs, npz, tinyimagenet, torchvision_sets  # noqa: E402,F401

__all__ = ["DATASETS", "PreparedData", "load_prepared", "prepare_dataset"]
