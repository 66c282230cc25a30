"""Data sources and input pipelines: `sources` (SRC -> labelled splits), `image` (images -> tf.data)."""
from cnnkit.datasets.sources import LoadedData, Split, ensure_splits, load_source

__all__ = ["LoadedData", "Split", "ensure_splits", "load_source"]
