"""cnnkit: convolutional networks for images, text and audio on Keras 3.

Public API: `cnnkit.train`, `cnnkit.finetune`, `cnnkit.evaluate`, `cnnkit.predict`, `cnnkit.blocks`,
`cnnkit.backbones`, `cnnkit.data` (docs/API.md). See docs/ARCHITECTURE.md for the module map.
"""
import os

from cnnkit import native_logs

# TensorFlow's C++ start-up chatter hides cnnkit's own output; a user who sets the level sees it all.
# The level cnnkit sets is marked as its own, so that processes started from this one (`python -m
# cnnkit`, workers) inherit the filter rather than take the level for the user's.
native_logs.FILTER = "TF_CPP_MIN_LOG_LEVEL" not in os.environ or os.environ.get(native_logs.OWN_LEVEL) == "1"
if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ[native_logs.OWN_LEVEL] = "1"

__version__ = "0.1.0"

with native_logs.quiet_native_stderr(native_logs.FILTER):  # the first import of TensorFlow
    from cnnkit import blocks  # noqa: E402
    from cnnkit.errors import CnnkitError  # noqa: E402

    # Every layer class a saved cnnkit model can hold is registered with Keras on import, so that
    # `import cnnkit; keras.models.load_model(path, safe_mode=True)` loads any run's model.
    from cnnkit.backbones import applications as _applications  # noqa: E402,F401  (ImagenetPreprocess)
    from cnnkit.features import audio as _audio  # noqa: E402,F401  (LogMelSpectrogram, FitLength, ...)
    from cnnkit.features import image as _image  # noqa: E402,F401  (Cutout, HorizontalFlip, ImageShift)
    from cnnkit.features import text as _text  # noqa: E402,F401  (Standardize: start and end tokens)


def __getattr__(name):
    # The API pulls in TensorFlow data code and tasks; import it on first use.
    if name in ("train", "finetune", "evaluate", "predict", "load_run"):
        from cnnkit import api

        return getattr(api, name)
    if name == "backbones":
        import cnnkit.backbones as backbones

        return backbones
    if name == "data":
        import cnnkit.data as data

        return data
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")


__all__ = ["train", "finetune", "evaluate", "predict", "load_run", "blocks", "backbones", "data", "CnnkitError", "__version__"]
