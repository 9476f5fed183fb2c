"""snnrobust: a small library for adversarial robustness experiments on spiking neural networks.

The library knows nothing about Snakemake; the workflow calls it through ``python -m snnrobust``.
"""

__version__ = "0.1.0"
