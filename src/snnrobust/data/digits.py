"""``digits``: scikit-learn's embedded 8×8 handwritten digits, upsampled to RGB; never downloads."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from snnrobust.data.images import RawImages
from snnrobust.data.sources import image_source
from snnrobust.data.transforms import resize_to_uint8
from snnrobust.options import PositiveInt, Range, Seed


N_DIGITS = 1797  # sklearn's load_digits()


def digits_test_size(test_fraction: float = 0.2, **_) -> int:
    """sklearn's train_test_split puts ceil(fraction · n) samples in the test split."""
    return math.ceil(test_fraction * N_DIGITS)


@image_source("digits", test_size=digits_test_size)
def build_digits(image_size: PositiveInt = 32, split_seed: Seed = 0,
                 test_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.2) -> RawImages:
    """Stratified, seeded train/test split of the 1,797 digits; pixels 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images[:, None].astype(np.float32) * (255.0 / 16.0)
    x = resize_to_uint8(np.repeat(x, 3, axis=1), image_size)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    return RawImages(x_tr, y_tr, x_te, y_te, name="digits", num_classes=10,
                     classes=[str(c) for c in bunch.target_names])
