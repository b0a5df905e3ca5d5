"""Data sets with two profiles, so that a chapter's code never changes between them.

``small`` (the default) works offline. It uses real data that ships inside installed
packages: scikit-learn's handwritten digits, breast-cancer and diabetes tables, and its two
sample photographs.

``full`` is for networked (GPU) kernels. It uses the real Keras loaders: MNIST, CIFAR-10,
IMDB and Boston housing. A copy already in the Keras cache (``$KERAS_HOME/datasets``, by
default ``~/.keras/datasets``) is read directly; otherwise Keras downloads it. Offline and
without a cached copy, a :class:`DatasetUnavailableError` says how to get the data.

Choose the profile with the ``profile=`` argument, or for a whole kernel with the
environment variable ``DLCOURSE_PROFILE`` (the argument wins).

Fashion-MNIST is in both profiles: Keras's own loader reads it, from a Keras cache that
:func:`seed_keras_cache` fills with links to Debian's ``dataset-fashion-mnist`` files where
they are installed (so it runs offline), and that Keras fills by downloading elsewhere.

Every loader returns a :class:`Splits`: train, validation and test arrays, the same kind in
both profiles.

============  =============================  ==============================
loader        small (offline)                full (Keras loader)
============  =============================  ==============================
digits        sklearn digits, 8x8 gray       MNIST, 28x28 gray
fashion       Fashion-MNIST, 28x28 gray      Fashion-MNIST (the same files)
images        32x32 patches of 2 photos      CIFAR-10, 32x32x3, 10 classes
binary        breast cancer, 30 features     IMDB, 10 000-word multi-hot
regression    diabetes, 10 features          Boston housing, 13 features
============  =============================  ==============================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROFILES = ("small", "full")
PROFILE_ENV = "DLCOURSE_PROFILE"
# Set to 1 to fail at once, without trying the network, when `full` data is not cached.
OFFLINE_ENV = "DLCOURSE_OFFLINE"
DEFAULT_SEED = 0


class DatasetUnavailableError(RuntimeError):
    """The ``full`` profile needs a download that cannot happen here."""


@dataclass
class Splits:
    """Train/validation/test arrays of one data set.

    Images are uint8 in channels-last layout, (N, H, W) for gray and (N, H, W, 3) for color;
    tables are float; class labels are int64 vectors; regression targets are float64.
    """

    name: str
    profile: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def train(self):
        return self.x_train, self.y_train

    @property
    def val(self):
        return self.x_val, self.y_val

    @property
    def test(self):
        return self.x_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{part}={getattr(self, 'x_' + part).shape}"
                           for part in ("train", "val", "test"))
        return f"Splits({self.name!r}, profile={self.profile!r}, {shapes})"


CACHE_ENV = "DLCOURSE_CACHE"


def cache_dir(*parts: str) -> Path:
    """A folder for things a chapter makes once and reuses (a pretrained base, say).

    ``$DLCOURSE_CACHE`` if set, else ``~/.cache/dlcourse``; never inside the repository.
    """
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dlcourse")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_profile(profile: str | None = None) -> str:
    """The argument if given, else ``$DLCOURSE_PROFILE``, else ``small``."""
    chosen = profile or os.environ.get(PROFILE_ENV) or "small"
    if chosen not in PROFILES:
        raise ValueError(f"Unknown data profile {chosen!r}; choose one of {PROFILES} "
                         f"(argument profile= or environment variable {PROFILE_ENV}).")
    return chosen


# --------------------------------------------------------------------------- splitting

def _shuffle_split(x, y, val_fraction, test_fraction, seed):
    """Shuffle once with a fixed seed, then cut test and validation off the end."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum below 1.")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = int(round(len(x) * test_fraction))
    n_val = int(round(len(x) * val_fraction))
    n_train = len(x) - n_test - n_val
    return (x[:n_train], y[:n_train], x[n_train:n_train + n_val], y[n_train:n_train + n_val],
            x[n_train + n_val:], y[n_train + n_val:])


def _carve_val(x_train, y_train, x_test, y_test, val_fraction, seed):
    """For data sets with a fixed test set: shuffle train, keep its tail for validation."""
    order = np.random.default_rng(seed).permutation(len(x_train))
    x_train, y_train = x_train[order], y_train[order]
    n_val = int(round(len(x_train) * val_fraction))
    cut = len(x_train) - n_val
    return x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:], x_test, y_test


# --------------------------------------------------------------------------- full profile

def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded data sets (``$KERAS_HOME/datasets``)."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        from keras.src.backend.config import keras_home  # ~/.keras, or /tmp/.keras

        home = keras_home()
    return Path(home) / "datasets"


def _download_with_keras(name: str, loader, cached: str, size: str):
    """Call a real Keras loader, turning a failed download into a clear error."""
    how = (f"The 'full' profile needs the {name} data set ({size}), which Keras downloads "
           f"into {keras_cache_dir()}/{cached}. This kernel cannot download it. Either run on "
           f"a kernel with internet access, copy the file from a machine that has it into "
           f"that folder (or point KERAS_HOME at a folder holding datasets/{cached}), or use "
           f"the offline data: profile='small' or {PROFILE_ENV}=small.")
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DatasetUnavailableError(how + f" ({OFFLINE_ENV} is set, so no download was tried.)")
    try:
        return loader()
    except Exception as exc:  # Keras raises a bare Exception on URL failures
        raise DatasetUnavailableError(how + f" (The download failed: {exc})") from exc


def _load_npz(path: Path, keys):
    with np.load(path, allow_pickle=False) as f:
        return [f[k] for k in keys]


# Each _full_* reads the Keras cache; when the file is missing, the real Keras loader
# downloads (and verifies) it once, and the cached copy is then read the same way.

def _full_mnist():
    path = keras_cache_dir() / "mnist.npz"
    if not path.exists():
        import keras

        _download_with_keras("MNIST", keras.datasets.mnist.load_data, "mnist.npz", "11 MB")
    return _load_npz(path, ["x_train", "y_train", "x_test", "y_test"])


def _cifar_batch(path: Path):
    # The same restricted unpickler Keras uses: only numpy arrays, nothing executable.
    from keras.src.datasets.cifar import load_batch

    return load_batch(str(path))


def _full_cifar10():
    folder = keras_cache_dir() / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    if not (folder / "test_batch").exists():
        import keras

        _download_with_keras("CIFAR-10", keras.datasets.cifar10.load_data,
                             "cifar-10-batches-py-target/cifar-10-batches-py/", "163 MB")
    # The batches are channel-planar rows (N, 3, 32, 32); turn them channels-last.
    parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts]).transpose(0, 2, 3, 1)
    y_train = np.concatenate([np.asarray(p[1]) for p in parts])
    x_test, y_test = _cifar_batch(folder / "test_batch")
    return x_train, y_train, x_test.transpose(0, 2, 3, 1), np.asarray(y_test)


def _multi_hot(sequences, num_words):
    out = np.zeros((len(sequences), num_words), dtype="float32")
    for i, seq in enumerate(sequences):
        idx = np.asarray(seq, dtype=np.int64)
        out[i, idx[idx < num_words]] = 1.0
    return out


def _full_imdb(num_words: int):
    path = keras_cache_dir() / "imdb.npz"
    if not path.exists():
        import keras

        _download_with_keras("IMDB", keras.datasets.imdb.load_data, "imdb.npz", "17 MB")
    # Keras' own restricted unpickler: the ragged sequences are object arrays.
    from keras.src.datasets import npz_utils

    f = npz_utils.load_npz(str(path))
    # Raw word ranks (1 = most frequent), so index < num_words keeps the top words.
    return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _full_boston():
    path = keras_cache_dir() / "boston_housing.npz"
    if not path.exists():
        import keras

        _download_with_keras("Boston housing", keras.datasets.boston_housing.load_data,
                             "boston_housing.npz", "57 kB")
    x, y = _load_npz(path, ["x", "y"])
    # The same shuffle and 80/20 cut as keras.datasets.boston_housing.load_data().
    idx = np.arange(len(x))
    np.random.RandomState(113).shuffle(idx)
    x, y = x[idx], y[idx]
    cut = int(len(x) * 0.8)
    return x[:cut], y[:cut], x[cut:], y[cut:]


# --------------------------------------------------------------------------- Fashion-MNIST

# Debian's package dataset-fashion-mnist installs the original files here, under the same
# names keras.datasets.fashion_mnist.load_data() downloads.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                       "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def seed_keras_cache(system_dir: Path | None = None) -> list[Path]:
    """Link Debian's Fashion-MNIST files into the Keras cache, where Keras looks first.

    ``keras.datasets.fashion_mnist.load_data()`` downloads into
    ``$KERAS_HOME/datasets/fashion-mnist/`` only the files that are not there yet (it checks
    no hash for them), so links to the installed originals make the same call run offline.
    Files already in the cache are left alone. Returns the links made.
    """
    source = Path(system_dir or FASHION_MNIST_SYSTEM_DIR)
    target = _keras_own_datasets_dir() / "fashion-mnist"
    made = []
    for name in FASHION_MNIST_FILES:
        src, dst = source / name, target / name
        if src.is_file() and not dst.exists():
            target.mkdir(parents=True, exist_ok=True)
            if dst.is_symlink():  # a dangling link from an older install
                dst.unlink()
            dst.symlink_to(src)
            made.append(dst)
    return made


def _keras_own_datasets_dir() -> Path:
    # Keras reads KERAS_HOME once, at import; get_file() then uses that folder, so the links
    # must go there even if the variable changed later.
    from keras.src.backend.config import keras_home

    return Path(keras_home()) / "datasets"


def _keras_fashion_mnist():
    seed_keras_cache()
    cached = _keras_own_datasets_dir() / "fashion-mnist"
    missing = [n for n in FASHION_MNIST_FILES if not (cached / n).exists()]
    if missing:
        how = (f"Fashion-MNIST is not on this machine: {', '.join(missing)} are neither in "
               f"{cached} nor in {FASHION_MNIST_SYSTEM_DIR}. Either install Debian's package "
               f"(sudo apt-get install dataset-fashion-mnist, which `make env` does), or run "
               f"on a kernel with internet access, where Keras downloads the 30 MB itself.")
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise DatasetUnavailableError(how + f" ({OFFLINE_ENV} is set, so no download "
                                          "was tried.)")
    else:
        how = ""
    import keras

    try:
        return keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # Keras raises a bare Exception on URL failures
        if not how:
            raise
        raise DatasetUnavailableError(how + f" (The download failed: {exc})") from exc


def load_fashion_mnist(profile: str | None = None, val_fraction: float = 1 / 6,
                       seed: int = DEFAULT_SEED, n_train: int | None = None) -> Splits:
    """Zalando's Fashion-MNIST: 28x28 gray clothing images, 10 classes, uint8 (N, 28, 28).

    The same real data in both profiles, through ``keras.datasets.fashion_mnist``: 60 000
    training images (of which ``val_fraction``, by default 10 000, become the validation
    split) and the official 10 000 test images. ``n_train`` keeps only the first
    ``n_train`` (shuffled) training images, a limited-data regime; validation and test stay
    whole. The profile argument is accepted for symmetry with the other loaders.
    """
    profile = resolve_profile(profile)
    (xa, ya), (xb, yb) = _keras_fashion_mnist()
    parts = list(_carve_val(xa, ya.astype(np.int64), xb, yb.astype(np.int64),
                            val_fraction, seed))
    if n_train is not None:
        if not 0 < n_train <= len(parts[0]):
            raise ValueError(f"n_train must be in 1..{len(parts[0])}, not {n_train}")
        parts[0], parts[1] = parts[0][:n_train], parts[1][:n_train]
    return Splits("fashion", profile, *parts, class_names=list(FASHION_MNIST_CLASSES),
                  description="Fashion-MNIST (Zalando), 28x28 gray, 0-255")


# --------------------------------------------------------------------------- loaders

def load_digits(profile: str | None = None, val_fraction: float = 0.2,
                test_fraction: float = 0.2, seed: int = DEFAULT_SEED) -> Splits:
    """Handwritten digits 0-9 as uint8 gray images (N, H, W).

    small: scikit-learn's 1 797 real 8x8 digits (UCI), rescaled from 0-16 to 0-255.
    full: MNIST, 60 000 + 10 000 28x28 digits.
    """
    profile = resolve_profile(profile)
    names = [str(d) for d in range(10)]
    if profile == "small":
        from sklearn.datasets import load_digits as sk_digits

        d = sk_digits()
        x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
        parts = _shuffle_split(x, d.target.astype(np.int64), val_fraction, test_fraction, seed)
        desc = "scikit-learn handwritten digits (UCI ML), 8x8 gray, 0-255"
    else:
        xa, ya, xb, yb = _full_mnist()
        parts = _carve_val(xa, ya.astype(np.int64), xb, yb.astype(np.int64), val_fraction, seed)
        desc = "MNIST, 28x28 gray, 0-255"
    return Splits("digits", profile, *parts, class_names=names, description=desc)


PHOTO_NAMES = ["china", "flower"]


def sample_photos() -> list[np.ndarray]:
    """scikit-learn's two real photos (a Chinese temple, a flower), uint8 (427, 640, 3)."""
    from sklearn.datasets import load_sample_images

    return [np.asarray(img, dtype=np.uint8) for img in load_sample_images().images]


def photo_patches(size: int = 32, stride: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Cut both sample photos into size x size patches (by default not overlapping, so no
    pixel is in two splits); the label says which photo a patch comes from."""
    xs, ys = [], []
    for label, photo in enumerate(sample_photos()):
        h, w, _ = photo.shape
        for top in range(0, h - size + 1, stride):
            for left in range(0, w - size + 1, stride):
                xs.append(photo[top:top + size, left:left + size])
                ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def load_images(profile: str | None = None, val_fraction: float = 0.2,
                test_fraction: float = 0.2, seed: int = DEFAULT_SEED) -> Splits:
    """Small color images (N, 32, 32, 3), uint8, CIFAR-10's shape and layout.

    small: 520 non-overlapping 32x32 patches of scikit-learn's two sample photos, labelled
    by photo (2 classes). Neighbouring patches are alike, so it suits pipelines, filters and
    demos better than accuracy claims. full: CIFAR-10 (10 classes).
    """
    profile = resolve_profile(profile)
    if profile == "small":
        x, y = photo_patches()
        parts = _shuffle_split(x, y, val_fraction, test_fraction, seed)
        return Splits("images", profile, *parts, class_names=list(PHOTO_NAMES),
                      description="32x32 patches of scikit-learn's two sample photos")
    xa, ya, xb, yb = _full_cifar10()
    parts = _carve_val(xa, ya.astype(np.int64), xb, yb.astype(np.int64), val_fraction, seed)
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    return Splits("images", profile, *parts, class_names=names, description="CIFAR-10")


def load_binary(profile: str | None = None, val_fraction: float = 0.2,
                test_fraction: float = 0.2, seed: int = DEFAULT_SEED,
                num_words: int = 10_000) -> Splits:
    """A binary classification table: float features (N, D) and 0/1 labels.

    small: Wisconsin breast cancer, 569 x 30 (1 = benign). full: IMDB reviews as multi-hot
    vectors of the ``num_words`` most frequent words (1 = positive).
    """
    profile = resolve_profile(profile)
    if profile == "small":
        from sklearn.datasets import load_breast_cancer

        d = load_breast_cancer()
        parts = _shuffle_split(d.data.astype(np.float64), d.target.astype(np.int64),
                               val_fraction, test_fraction, seed)
        return Splits("binary", profile, *parts, class_names=list(d.target_names),
                      description="Wisconsin breast cancer (scikit-learn), 30 features")
    xa, ya, xb, yb = _full_imdb(num_words)
    parts = _carve_val(_multi_hot(xa, num_words), np.asarray(ya, dtype=np.int64),
                       _multi_hot(xb, num_words), np.asarray(yb, dtype=np.int64),
                       val_fraction, seed)
    return Splits("binary", profile, *parts, class_names=["negative", "positive"],
                  description=f"IMDB reviews, multi-hot over {num_words} words")


def load_regression(profile: str | None = None, val_fraction: float = 0.2,
                    test_fraction: float = 0.2, seed: int = DEFAULT_SEED) -> Splits:
    """A small regression table: float features (N, D) and float targets (N,).

    small: diabetes progression, 442 x 10. full: Boston housing prices, 506 x 13.
    """
    profile = resolve_profile(profile)
    if profile == "small":
        from sklearn.datasets import load_diabetes

        d = load_diabetes(scaled=False)
        parts = _shuffle_split(d.data.astype(np.float64), d.target.astype(np.float64),
                               val_fraction, test_fraction, seed)
        return Splits("regression", profile, *parts,
                      description="diabetes disease progression (scikit-learn), 10 features")
    xa, ya, xb, yb = _full_boston()
    parts = _carve_val(xa.astype(np.float64), ya.astype(np.float64),
                       xb.astype(np.float64), yb.astype(np.float64), val_fraction, seed)
    return Splits("regression", profile, *parts,
                  description="Boston housing prices (thousands of dollars), 13 features")


# --------------------------------------------------------------------------- reuse

def cached_training(name: str, train, *, key: str = ""):
    """Train once per code version, then reuse: ``train()`` returns ``(model, history)``.

    The cache entry is keyed by the source code of ``train`` (IPython keeps cell sources, so
    this works for functions defined in a notebook), ``key`` (say, the data's size) and the
    Keras version, so that editing the code retrains. Stored in ``cache_dir("models")`` as
    ``<name>-<hash>.keras`` plus the history as JSON. Returns ``(model, history_dict,
    from_cache)``.
    """
    import hashlib
    import inspect
    import json

    import keras

    try:
        source = inspect.getsource(train)
    except (OSError, TypeError):
        source = getattr(getattr(train, "__code__", None), "co_code", b"").hex()
    digest = hashlib.sha256("\n".join([source, key, keras.__version__]).encode()).hexdigest()[:12]
    folder = cache_dir("models")
    model_path = folder / f"{name}-{digest}.keras"
    hist_path = folder / f"{name}-{digest}.history.json"
    if model_path.exists() and hist_path.exists():
        return keras.models.load_model(model_path), json.loads(hist_path.read_text()), True
    model, history = train()
    logs = getattr(history, "history", history) or {}
    logs = {k: [float(v) for v in vals] for k, vals in logs.items()}
    tmp = model_path.with_suffix(".tmp.keras")
    model.save(tmp)
    tmp.replace(model_path)  # atomic: a build killed mid-save leaves no half file
    hist_path.write_text(json.dumps(logs))
    return model, logs, False
