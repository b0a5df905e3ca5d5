"""Pretrained convolutional bases and the cats-vs-dogs data, in both data profiles.

Chapter 4 (transfer learning) runs offline, so it cannot download ImageNet weights. In the
``small`` profile it trains its own little base on Fashion-MNIST classes 0-4 and saves it in
``dlcourse.data.cache_dir("models")``; :func:`pretrained_base` loads that file. In the
``full`` profile (a networked GPU kernel) the same call returns a real Keras application
with ImageNet weights, and :func:`load_cats_vs_dogs` gives the classic small cats-vs-dogs
data set built from the Kaggle/Microsoft images::

    from dlcourse import transfer

    base = transfer.pretrained_base("vgg16", profile="full")        # ImageNet VGG16, no top
    preprocess = transfer.preprocess_function("vgg16", profile="full")
    train_ds, val_ds, test_ds = transfer.load_cats_vs_dogs(profile="full")

The profile comes from the ``profile=`` argument or ``$DLCOURSE_PROFILE`` (default ``small``),
as in :mod:`dlcourse.data`. With ``DLCOURSE_OFFLINE=1`` nothing tries the network: a missing
download raises :class:`dlcourse.data.DatasetUnavailableError` at once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dlcourse import data

# ----------------------------------------------------------------------- pretrained bases

#: Keras application constructor and preprocessing module for each supported name.
APPLICATIONS = {
    "vgg16": ("VGG16", "vgg16"),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
}
#: How the no-top ImageNet weight files of each application begin, in ``$KERAS_HOME/models``.
WEIGHT_FILE_PREFIX = {"vgg16": "vgg16_weights_", "mobilenet_v2": "mobilenet_v2_weights_"}
DEFAULT_INPUT_SHAPE = (180, 180, 3)
#: File name of the chapter's own base (small profile), inside ``cache_dir("models")``.
SMALL_BASE_FILE = "fashion04_conv_base.keras"


def small_base_path() -> Path:
    """Where chapter 4 saves its own pretrained base (``cache_dir("models")``)."""
    return data.cache_dir("models") / SMALL_BASE_FILE


def _check_name(name: str) -> str:
    key = name.lower()
    if key not in APPLICATIONS:
        raise ValueError(f"Unknown pretrained base {name!r}; choose one of {sorted(APPLICATIONS)}.")
    return key


def pretrained_base(name: str = "vgg16", input_shape=None, profile: str | None = None):
    """A pretrained convolutional base without its classifier (``include_top=False``).

    full: ``keras.applications.VGG16`` or ``MobileNetV2`` with ImageNet weights, for color
    images of ``input_shape`` (default 180x180x3); Keras downloads the weights once.
    small: the chapter's own base, trained on Fashion-MNIST classes 0-4 (28x28x1 gray images in [0, 1])
    and saved at :func:`small_base_path`; ``name`` is only checked, and ``input_shape``, if
    given, must match the saved base. A missing file raises ``FileNotFoundError`` that says
    how to make it.
    """
    import keras

    key = _check_name(name)
    if data.resolve_profile(profile) == "full":
        constructor = getattr(keras.applications, APPLICATIONS[key][0])
        shape = tuple(input_shape or DEFAULT_INPUT_SHAPE)
        return _with_network_check(
            f"the ImageNet weights of {APPLICATIONS[key][0]}", _weights_cached(key),
            lambda: constructor(weights="imagenet", include_top=False, input_shape=shape))
    path = small_base_path()
    if not path.exists():
        raise FileNotFoundError(
            f"No pretrained base at {path}. In the 'small' profile the base is the one chapter 4 "
            f"trains on Fashion-MNIST classes 0-4: run the chapter's section 'Pretrained networks' once "
            f"(it saves the file there), or use profile='full' on a networked kernel for "
            f"ImageNet {APPLICATIONS[key][0]}.")
    base = keras.models.load_model(path)
    if input_shape is not None and tuple(base.input_shape[1:]) != tuple(input_shape):
        raise ValueError(f"The small-profile base takes inputs of shape {base.input_shape[1:]}, "
                         f"not {tuple(input_shape)}.")
    return base


def preprocess_function(name: str = "vgg16", profile: str | None = None):
    """The input preprocessing that goes with :func:`pretrained_base` (pixels 0-255 in).

    full: ``keras.applications.vgg16.preprocess_input`` (BGR, ImageNet mean subtracted) or
    ``keras.applications.mobilenet_v2.preprocess_input`` (scaled to [-1, 1]).
    small: divide by 255, the [0, 1] range the chapter's base was trained on.
    """
    import keras

    key = _check_name(name)
    if data.resolve_profile(profile) == "full":
        return getattr(keras.applications, APPLICATIONS[key][1]).preprocess_input
    return _scale_to_unit


def _scale_to_unit(x):
    return x / 255.0


def _weights_cached(key: str) -> bool:
    """Whether Keras already holds no-top ImageNet weights for this application."""
    models = data.keras_cache_dir().parent / "models"
    return any(p.name.startswith(WEIGHT_FILE_PREFIX[key]) and "no" in p.name
               for p in models.glob("*.h5"))


def _with_network_check(what: str, cached: bool, make):
    """Run ``make()``, which may download; turn offline failures into a clear error."""
    how = (f"The 'full' profile needs {what}, which Keras downloads into "
           f"{data.keras_cache_dir().parent}. This kernel cannot download it: run on a kernel "
           f"with internet access, copy the Keras cache from a machine that has it (or point "
           f"KERAS_HOME at it), or use profile='small'.")
    if not cached and os.environ.get(data.OFFLINE_ENV, "") not in ("", "0"):
        raise data.DatasetUnavailableError(how + f" ({data.OFFLINE_ENV} is set, so no download "
                                                 f"was tried.)")
    try:
        return make()
    except Exception as exc:  # Keras raises bare Exceptions on URL failures
        if isinstance(exc, (ValueError, TypeError)):
            raise  # a wrong argument, not a download problem
        raise data.DatasetUnavailableError(how + f" (The download failed: {exc})") from exc


# ----------------------------------------------------------------------- cats vs dogs

CATS_VS_DOGS_URL = ("https://download.microsoft.com/download/3/E/1/"
                    "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip")
CATS_VS_DOGS_ZIP = "kagglecatsanddogs_5340.zip"
#: Images per class in each split, as in Chollet's "cats_vs_dogs_small".
DEFAULT_SIZES = {"train": 1000, "validation": 500, "test": 1000}


def is_valid_jpeg(path) -> bool:
    """True for a JPEG with a JFIF header; the Kaggle set holds ~1 600 broken files without one
    (the same test as the Keras example that uses this data)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(11)
    except OSError:
        return False
    return head[:2] == b"\xff\xd8" and b"JFIF" in head


def find_pet_images(data_dir=None) -> Path:
    """The extracted ``PetImages`` folder (with ``Cat/`` and ``Dog/``), downloading if needed.

    Looks in ``data_dir`` if given, else in the Keras cache
    (``datasets/kagglecatsanddogs_5340_extracted``); if it is not there, downloads the
    786 MB zip with ``keras.utils.get_file`` unless ``DLCOURSE_OFFLINE`` is set.
    """
    if data_dir is not None:
        candidates = [Path(data_dir), Path(data_dir) / "PetImages"]
    else:
        root = data.keras_cache_dir()
        candidates = [root / "kagglecatsanddogs_5340_extracted" / "PetImages", root / "PetImages"]
    for folder in candidates:
        if (folder / "Cat").is_dir() and (folder / "Dog").is_dir():
            return folder
    how = (f"The 'full' profile needs the Kaggle/Microsoft cats-vs-dogs images (786 MB zip), "
           f"which Keras downloads and extracts into {data.keras_cache_dir()}/"
           f"kagglecatsanddogs_5340_extracted/PetImages. Looked in: "
           f"{', '.join(str(c) for c in candidates)}. Run on a kernel with internet access, or "
           f"download {CATS_VS_DOGS_URL}, unzip it and pass data_dir= the PetImages folder.")
    if data_dir is not None or os.environ.get(data.OFFLINE_ENV, "") not in ("", "0"):
        raise data.DatasetUnavailableError(how)
    import keras

    try:
        extracted = keras.utils.get_file(CATS_VS_DOGS_ZIP, CATS_VS_DOGS_URL, extract=True)
    except Exception as exc:
        raise data.DatasetUnavailableError(how + f" (The download failed: {exc})") from exc
    return Path(extracted) / "PetImages"


def make_small_subset(pet_images, target, sizes=None) -> Path:
    """Copy the first valid JPEGs of each class into ``target/{train,validation,test}/{cat,dog}``.

    Broken JPEGs are skipped (see :func:`is_valid_jpeg`); the splits never share a file.
    A ``.complete`` marker makes later calls reuse the folder.
    """
    sizes = dict(DEFAULT_SIZES, **(sizes or {}))
    target = Path(target)
    if (target / ".complete").exists():
        return target
    for cls, folder in (("cat", "Cat"), ("dog", "Dog")):
        files = sorted((Path(pet_images) / folder).glob("*.jpg"), key=lambda p: (len(p.name), p.name))
        files = [f for f in files if is_valid_jpeg(f)]
        need = sum(sizes.values())
        if len(files) < need:
            raise ValueError(f"{folder}: {len(files)} valid JPEGs, {need} needed for {sizes}.")
        start = 0
        for split, n in sizes.items():
            out = target / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in files[start:start + n]:
                shutil.copyfile(f, out / f.name)
            start += n
    (target / ".complete").write_text(repr(sizes))
    return target


def load_cats_vs_dogs(profile: str | None = None, image_size=(180, 180), batch_size: int = 32,
                      data_dir=None, sizes=None, seed: int = data.DEFAULT_SEED):
    """Cats (0) vs dogs (1): train, validation and test ``tf.data`` datasets.

    Batches are ``(float32 images (B, H, W, 3) with pixels 0-255, int32 labels (B,))``;
    only the training set is shuffled. ``sizes`` gives images per class and split (default
    1 000 / 500 / 1 000). ``data_dir`` is the extracted ``PetImages`` folder; by default it is
    looked up in the Keras cache and downloaded if missing. Only the ``full`` profile has
    this data; the ``small`` profile raises ``DatasetUnavailableError``.
    """
    import keras

    if data.resolve_profile(profile) != "full":
        raise data.DatasetUnavailableError(
            "Cats vs dogs is only in the 'full' profile (786 MB of photos): pass "
            "profile='full' or set DLCOURSE_PROFILE=full on a networked kernel.")
    sizes = dict(DEFAULT_SIZES, **(sizes or {}))
    pets = find_pet_images(data_dir)
    tag = "-".join(str(sizes[k]) for k in ("train", "validation", "test"))
    subset = make_small_subset(pets, data.cache_dir("cats_vs_dogs_small", tag), sizes)

    def split(name, shuffle):
        return keras.utils.image_dataset_from_directory(
            subset / name, image_size=tuple(image_size), batch_size=batch_size,
            label_mode="int", class_names=["cat", "dog"], shuffle=shuffle, seed=seed,
            verbose=False)

    return split("train", True), split("validation", False), split("test", False)
