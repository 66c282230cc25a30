"""Why a run's model says what it says: Grad-CAM for images and spectrograms, per-token
saliency for text (`cnnkit explain`), and each convolution block's activations as image grids
(`cnnkit featuremaps`).

Every task's end-to-end model is front (preprocessing) -> backbone -> head ("head" layer);
both tools split it there, so they work for any backbone, cnnkit's own or keras.applications.
"""
from __future__ import annotations

import html
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkit import runs, tasks
from cnnkit.errors import CnnkitError
from cnnkit.features.text import READABLE, unknown_words_layer


# ------------------------------------------------------------------ model surgery
def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model, keras.layers.Layer]:
    """(front, backbone, head) of an end-to-end task model.

    front: raw input -> what the backbone takes (normalised images (B, h, w, c), embedded
    tokens (B, steps, width) or normalised spectrograms (B, frames, bins, 1)).
    Raises:
        CnnkitError: for a model without cnnkit's "head" layer (a custom model with its own
            classifier), whose backbone is not one layer, or that averages several members.
    """
    names = [layer.name for layer in model.layers]
    # Several networks (member_01, ...) cannot be split; one network with a naive-Bayes member is split
    # as one without (the member, beside the network, is left out).
    if any(name.startswith("member_") for name in names):
        raise CnnkitError("This run's model averages several networks (model.members > 1): featuremaps (and Grad-CAM) "
                          "need one backbone and head. Train with model.members=1 to see its feature maps; "
                          "`cnnkit explain` gives the ensemble's token saliency.")
    if "head" not in names:
        raise CnnkitError("This run's model has no cnnkit head (a custom model with its own classifier): "
                          "explain and featuremaps need the task's head after a backbone.")
    # The backbone is the last model before the head (a text model's n-gram branch may sit between).
    before = model.layers[: names.index("head")]
    backbone = next((layer for layer in reversed(before) if isinstance(layer, keras.Model) and layer.name != "nb_member"),
                    None)
    if backbone is None:
        raise CnnkitError(f"No backbone model before the head of {model.name} (layers: {', '.join(names)}).")
    # backbone.input is the nested model's own input; the tensor fed to it in this model's graph
    # is on the node of the call.
    for node in backbone._inbound_nodes:
        try:
            front = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, node.input_tensors[0], name="front")
            break
        except ValueError:  # a node of another graph (the training model that shares the layer)
            continue
    else:
        raise CnnkitError(f"Could not find the input of backbone {backbone.name} in model {model.name}.")
    return front, backbone, model.get_layer("head")


def spatial_layers(backbone: keras.Model, rank: int) -> list[keras.layers.Layer]:
    """The layers of the backbone's graph whose outputs are feature maps of `rank` (4: images
    and spectrograms, 3: sequences), in order, the input left out."""
    return [layer for layer in backbone.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == rank]


# ------------------------------------------------------------------ Grad-CAM and saliency
def grad_cam(model: keras.Model, x: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM (Selvaraju et al. 2017) on the backbone's last feature map.

    Args:
        x: one raw input batch of size 1 (what the end-to-end model takes).
        class_index: the class to explain (default: the predicted one).
    Returns:
        (cam (h', w') in [0, 1] at the feature map's resolution, probabilities (num_classes,)).
    """
    front, backbone, head = split_model(model)
    maps = spatial_layers(backbone, 4)
    if not maps:
        raise CnnkitError(f"Backbone {backbone.name} has no 2D feature maps for Grad-CAM.")
    # The model is cut at the last feature map: input -> maps, maps -> backbone output (nothing
    # when the maps are the output). Asking one model for both would give the gradient of a copy.
    target = maps[-1].output
    to_maps = keras.Model(backbone.inputs, target)
    after = None if maps[-1] is backbone.layers[-1] else keras.Model(target, backbone.output)
    inputs = front(x, training=False)
    with tf.GradientTape() as tape:
        features = to_maps(inputs, training=False)
        tape.watch(features)
        probs = head(after(features, training=False) if after is not None else features, training=False)
        c = int(np.argmax(probs[0])) if class_index is None else class_index
        score = probs[:, c]
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # (1, 1, 1, channels)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cam, np.asarray(probs[0])


def token_saliency(model: keras.Model, text: str, class_index: int | None = None):
    """Gradient x input saliency of each token of `text` for a text-cls model: of the CNN's
    embedded input, the n-gram branch's logits (if any) held fixed. For an ensemble
    (`model.members`), whose probabilities are the mean of its members', the attribution is
    the mean of the CNN members' (each on its own embedding of the same tokens): the first-order
    share of each token in their averaged probability. The naive-Bayes member (`model.nb_member`),
    which has no embedding, is not in the saliency; the probabilities shown are the saved model's.

    Returns:
        (tokens (list of str, padding dropped), scores in [0, 1] per token, probabilities
        (num_classes,) of the model).
    """
    x = tf.constant([text])
    ids = model.get_layer("vectorize")(x).numpy()[0]
    vocab = model.get_layer("vectorize").get_vocabulary()
    networks, inputs = [layer for layer in model.layers if layer.name.startswith("member_")], ids[None]
    unknown = unknown_words_layer(model)
    if networks and unknown is not None and len(networks[0].inputs) == 2:  # members read unknown words' n-grams
        inputs = [tf.constant(ids[None]), unknown([x, tf.constant(ids[None])])]
    if not networks:  # one network (with or without a naive-Bayes member, which has no embedding)
        networks, inputs = [model], x
    probs = np.asarray(model(x, training=False)[0])
    c = int(np.argmax(probs)) if class_index is None else class_index
    scores = np.abs(np.mean([gradient_x_input(net, inputs, ids, c) for net in networks], axis=0))
    keep = ids != 0
    # Out-of-vocabulary words show as [UNK] ([UNK:word] where the model reads their subwords);
    # preprocess.boundaries' start and end tokens as [start], [end].
    words = unknown.words(x).numpy()[0] if unknown is not None else None
    tokens = [f"[UNK:{words[step].decode('utf-8', 'replace')}]" if i == 1 and words is not None
              else READABLE.get(vocab[i], vocab[i]) for step, i in zip(np.flatnonzero(keep), ids[keep])]
    scores = scores[keep]
    scores = scores / scores.max() if scores.size and scores.max() > 0 else scores
    return tokens, scores, probs


def gradient_x_input(network: keras.Model, inputs, ids: np.ndarray, class_index: int) -> np.ndarray:
    """(sequence_length,) signed gradient x input of class `class_index`'s probability for each
    step of `network`'s embedded input, summed over the embedding width. `network`: a text model
    with a head (the task's model on strings, or an ensemble member on token ids); `inputs`: a
    batch of one that it takes; `ids`: the text's token ids (sequence_length,), which an n-gram
    branch reads (its logits are held fixed)."""
    front, backbone, head = split_model(network)
    embedded = front(inputs, training=False)
    has_ngrams = "ngram_logits" in [layer.name for layer in network.layers]
    extra = network.get_layer("ngram_logits")(ids[None]) if has_ngrams else None
    with tf.GradientTape() as tape:
        tape.watch(embedded)
        score = head(backbone(embedded, training=False), extra_logits=extra, training=False)[:, class_index]
    grads = tape.gradient(score, embedded)[0].numpy()
    return (grads * embedded[0].numpy()).sum(axis=-1)


# ------------------------------------------------------------------ pictures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def upsample(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`cam` (h', w') bilinearly resized to `shape`."""
    return tf.image.resize(cam[..., None], shape, method="bilinear").numpy()[..., 0]


def save_overlay(background: np.ndarray, cam: np.ndarray, path: Path, title: str, spectrogram: bool = False) -> None:
    """The input beside the input with the Grad-CAM heat map over it, as one PNG.

    background: an image (h, w, c) in [0, 255], or a spectrogram (frames, bins) (drawn with
    time across and frequency up)."""
    plt = _plt()
    cam = upsample(cam, background.shape[:2])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, overlay in zip(axes, (False, True)):
        if spectrogram:
            ax.imshow(background.T, origin="lower", aspect="auto", cmap="magma")
            if overlay:
                ax.imshow(cam.T, origin="lower", aspect="auto", cmap="jet", alpha=0.45)
            ax.set_xlabel("frame")
            ax.set_ylabel("mel bin")
        else:
            img = background[..., 0] if background.shape[-1] == 1 else background.astype("uint8")
            ax.imshow(img, cmap="gray" if background.shape[-1] == 1 else None)
            if overlay:
                ax.imshow(cam, cmap="jet", alpha=0.45)
            ax.axis("off")
    axes[0].set_title("input")
    axes[1].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def saliency_html(tokens: list[str], scores: np.ndarray, title: str) -> str:
    """The tokens as HTML, each on a red background as strong as its saliency."""
    spans = "".join(f'<span style="background:rgba(220,30,30,{0.08 + 0.8 * s:.2f});padding:2px 3px;margin:1px;'
                    f'border-radius:3px" title="{s:.3f}">{html.escape(t)}</span> ' for t, s in zip(tokens, scores))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;line-height:2'>"
            f"<h3>{html.escape(title)}</h3><p>{spans}</p><p style='color:#666'>Gradient x input saliency of each "
            f"token for the class above (darker: more influence).</p></body></html>\n")


def slug(path: str) -> str:
    name = Path(path).name if path not in ("-", "") else "input"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "input"


# ------------------------------------------------------------------ the commands
def load(run_dir: str):
    run_path, cfg_dict, class_names = runs.read_run(run_dir)
    from cnnkit.api import config_from_run

    cfg = config_from_run(cfg_dict)
    return run_path, cfg, class_names, tasks.get(cfg.task), runs.load_model(run_path)


def read_one(task_obj, cfg, item: str):
    """One raw input for the model (batch of 1) from a file (text: a file, else the text itself)."""
    if cfg.task == "text-cls" and not Path(item).is_file():
        return np.asarray([item], dtype=object)
    x, _, skipped = task_obj.read_inputs([item], cfg)
    if skipped:
        raise CnnkitError(f"{item}: {skipped[0][1]}")
    return x[:1]


def explain(run_dir: str, inputs: list[str], out: str | None = None, label: str | None = None) -> list[dict]:
    """Writes an explanation per input into `out` (default RUN_DIR/explain): a Grad-CAM PNG
    for images and audio, a token-saliency HTML page for text (an input that is not a file is
    taken as the text itself). Returns [{input, label, probability, file}]."""
    run_path, cfg, class_names, task_obj, model = load(run_dir)
    out_dir = Path(out) if out else run_path / "explain"
    out_dir.mkdir(parents=True, exist_ok=True)
    class_index = None
    if label is not None:
        if label not in class_names:
            raise CnnkitError(f"--label {label!r} is not a class of this run: {', '.join(class_names)}.")
        class_index = class_names.index(label)
    # A flip-TTA model: Grad-CAM follows the unflipped view; the class and probability are the saved model's
    has_tta = task_obj.without_tta(model) is not None
    results = []
    for item in inputs:
        x = read_one(task_obj, cfg, item)
        if cfg.task == "text-cls":
            tokens, scores, probs = token_saliency(model, str(x[0]), class_index)
            c = int(np.argmax(probs)) if class_index is None else class_index
            path = out_dir / f"{slug(item)}-saliency.html"
            path.write_text(saliency_html(tokens, scores, f"{class_names[c]} ({probs[c]:.3f})"), encoding="utf-8")
        else:
            if has_tta:
                probs = model.predict(x, verbose=0)[0]
                c = int(np.argmax(probs)) if class_index is None else class_index
                cam, _ = grad_cam(model, x, c)
            else:
                cam, probs = grad_cam(model, x, class_index)
                c = int(np.argmax(probs)) if class_index is None else class_index
            path = out_dir / f"{slug(item)}-gradcam.png"
            title = f"Grad-CAM: {class_names[c]} ({probs[c]:.3f})"
            if cfg.task == "speech-cls":
                spec = keras.Model(model.inputs, model.get_layer("logmel").output)(x, training=False).numpy()[0, ..., 0]
                save_overlay(spec, cam, path, title, spectrogram=True)
            else:
                save_overlay(np.asarray(x[0], dtype="float32"), cam, path, title)
        results.append({"input": item, "label": class_names[c], "probability": round(float(probs[c]), 4), "file": str(path)})
    return results


def feature_maps(run_dir: str, inputs: list[str], out: str | None = None, max_channels: int = 16) -> list[dict]:
    """Writes, per input, one PNG per convolution block of the backbone into
    `out`/<input>/NN-<layer>.png (default RUN_DIR/featuremaps): the first `max_channels`
    channels of its activation as a grid (sequences: channels x steps as one heat map).
    Returns [{input, files}]."""
    run_path, cfg, class_names, task_obj, model = load(run_dir)
    front, backbone, _ = split_model(model)
    rank = 4 if len(backbone.input.shape) == 4 else 3
    layers = spatial_layers(backbone, rank)
    if not layers:
        raise CnnkitError(f"Backbone {backbone.name} has no convolution feature maps to show.")
    probe = keras.Model(backbone.inputs, [layer.output for layer in layers])
    out_root = Path(out) if out else run_path / "featuremaps"
    plt = _plt()
    # A flip-TTA model: Grad-CAM follows the unflipped view; the class and probability are the saved model's
    has_tta = task_obj.without_tta(model) is not None
    results = []
    for item in inputs:
        x = read_one(task_obj, cfg, item)
        acts = probe(front(x, training=False), training=False)
        acts = acts if isinstance(acts, (list, tuple)) else [acts]
        folder = out_root / slug(item)
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for i, (layer, a) in enumerate(zip(layers, acts), start=1):
            a = np.asarray(a)[0]
            path = folder / f"{i:02d}-{layer.name}.png"
            if rank == 3:  # (steps, channels): one heat map
                fig, ax = plt.subplots(figsize=(8, 3))
                ax.imshow(a[:, :64].T, aspect="auto", cmap="viridis")
                ax.set_xlabel("step")
                ax.set_ylabel("channel")
            else:
                n = min(max_channels, a.shape[-1])
                cols = int(np.ceil(np.sqrt(n)))
                rows = int(np.ceil(n / cols))
                fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
                for k, ax in enumerate(axes.flat):
                    ax.axis("off")
                    if k < n:
                        m = a[..., k].T if cfg.task == "speech-cls" else a[..., k]
                        ax.imshow(m, cmap="viridis", origin="lower" if cfg.task == "speech-cls" else "upper")
            fig.suptitle(f"{layer.name}: {' x '.join(map(str, a.shape))}")
            fig.tight_layout()
            fig.savefig(path, dpi=80)
            plt.close(fig)
            files.append(str(path))
        results.append({"input": item, "files": files})
    return results
