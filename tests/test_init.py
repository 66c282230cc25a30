"""`import cnnkit`: what a bare import makes ready."""
import subprocess
import sys

# Registered for compiling (schedules, losses, metrics, optimizers), which a saved run's model.keras
# does not hold: the model is saved without its training configuration.
COMPILE_ONLY = ("cnnkit.training", "cnnkit.optimizers")

CHECK = "COMPILE_ONLY = " + repr(COMPILE_ONLY) + """
import importlib, pkgutil, keras, cnnkit
def registered():
    return {k: v.__module__ for k, v in keras.saving.get_custom_objects().items() if k.startswith("cnnkit>")}
bare = registered()
for m in pkgutil.walk_packages(cnnkit.__path__, "cnnkit."):
    if m.name not in ("cnnkit.__main__",):
        importlib.import_module(m.name)
everything = registered()
print(sorted(k + " (" + v + ")" for k, v in everything.items() if k not in bare and v not in COMPILE_ONLY))
"""


def test_a_bare_import_registers_every_layer_a_saved_model_can_hold():
    """`import cnnkit; keras.models.load_model(RUN/model.keras)` needs every class a saved model holds
    registered by the import alone: text runs hold `Standardize` (preprocess.boundaries), image runs
    `Cutout`, `HorizontalFlip`, `ImageShift`. Checked in a fresh process: every cnnkit module
    imported afterwards registers nothing more (but compile-time objects)."""
    out = subprocess.run([sys.executable, "-c", CHECK],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
