"""Unit tests of the course runtime package `dlcourse`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dlcourse
from dlcourse import data, plots
from conftest import OFFLINE_ENV

LOADERS = [data.load_digits, data.load_images, data.load_binary, data.load_regression]


# ---------------------------------------------------------------- profiles

def test_profile_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROFILE", "full")
    assert data.resolve_profile("small") == "small"
    assert data.resolve_profile() == "full"
    monkeypatch.delenv("DLCOURSE_PROFILE")
    assert data.resolve_profile() == "small"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="small.*full"):
        data.resolve_profile("medium")


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_small_splits_are_disjoint_complete_and_deterministic(loader):
    a, b = loader(), loader()
    assert a.profile == "small"
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    n = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert len(a.y_train) == len(a.x_train) and len(a.y_test) == len(a.x_test)
    assert min(len(a.x_val), len(a.x_test)) >= 0.15 * n
    # No example appears in two splits (rows are unique in all four data sets).
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}
    train, val, test = rows(a.x_train), rows(a.x_val), rows(a.x_test)
    assert not (train & val) and not (train & test) and not (val & test)
    c = loader(seed=1)
    assert not np.array_equal(a.x_train, c.x_train), "the seed must change the shuffle"


def test_small_digits_are_real_images_in_0_255():
    s = data.load_digits()
    assert s.x_train.dtype == np.uint8 and s.x_train.shape[1:] == (8, 8)
    assert s.x_train.max() == 255 and s.num_classes == 10
    assert set(np.unique(s.y_train)) == set(range(10))


def test_sample_photos_and_cifar_style_patches():
    photos = data.sample_photos()
    assert len(photos) == 2 and photos[0].shape == (427, 640, 3) and photos[0].dtype == np.uint8
    s = data.load_images()
    assert s.x_train.shape[1:] == (32, 32, 3) and s.class_names == ["china", "flower"]


# ---------------------------------------------------------------- full profile, offline

def _write_fake_keras_cache(home):
    """Tiny files in the layout the Keras loaders leave in $KERAS_HOME/datasets."""
    d = home / "datasets"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(d / "mnist.npz", x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             y_test=np.arange(6) % 10)
    cifar = d / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (cifar / name).write_bytes(pickle.dumps(batch))
    seqs = np.empty(10, dtype=object)
    for i in range(10):
        seqs[i] = [int(v) for v in rng.integers(1, 50, 12)]  # plain ints, as in the real file
    np.savez(d / "imdb.npz", x_train=seqs, y_train=np.arange(10) % 2, x_test=seqs[:4],
             y_test=np.arange(4) % 2)
    np.savez(d / "boston_housing.npz", x=rng.normal(size=(30, 13)), y=rng.normal(20, 5, 30))


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_full_profile_reads_the_keras_cache(loader, tmp_path, monkeypatch):
    _write_fake_keras_cache(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    full, small = loader(profile="full", num_words=40) if loader is data.load_binary \
        else loader(profile="full"), loader()
    assert full.profile == "full" and len(full.x_train) and len(full.x_val) and len(full.x_test)
    for part in ("x_train", "x_val", "x_test", "y_train"):
        f, s = getattr(full, part), getattr(small, part)
        assert f.ndim == s.ndim and f.dtype.kind == s.dtype.kind, \
            f"{part}: full {f.dtype}{f.shape} is not the same kind as small {s.dtype}{s.shape}"


def test_full_cifar_is_channels_last_from_planar_rows(tmp_path, monkeypatch):
    _write_fake_keras_cache(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    s = data.load_images(profile="full", val_fraction=0)
    assert s.x_train.shape == (20, 32, 32, 3) and s.num_classes == 10
    raw = pickle.loads((tmp_path / "datasets/cifar-10-batches-py-target/cifar-10-batches-py/test_batch").read_bytes())
    np.testing.assert_array_equal(s.x_test[0, :, :, 0].ravel(), raw[b"data"][0, :1024])
    np.testing.assert_array_equal(s.x_test[0, :, :, 2].ravel(), raw[b"data"][0, 2048:])


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_full_profile_offline_without_cache_says_how_to_get_the_data(loader, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("DLCOURSE_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError) as err:
        loader(profile="full")
    msg = str(err.value)
    assert str(tmp_path / "datasets") in msg and "profile='small'" in msg and "internet" in msg


def test_failed_keras_download_becomes_the_clear_error(tmp_path, monkeypatch):
    """Without the offline flag the real Keras loader tries, fails, and we explain."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DLCOURSE_OFFLINE")
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    with pytest.raises(data.DatasetUnavailableError, match="download failed"):
        data.load_regression(profile="full")


# ---------------------------------------------------------------- device and seeding

def test_setup_prints_a_device_table(capsys):
    info = dlcourse.setup(seed=3)
    out = capsys.readouterr().out
    assert info.kind in ("CPU", "GPU")
    for row in ("device", "name", "memory", "precision policy", "tensorflow", "keras"):
        assert row in out
    if info.kind == "CPU":
        assert info.precision_policy == "float32"


def test_mixed_precision_on_cpu_is_refused():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this kernel has a GPU")
    with pytest.raises(RuntimeError, match="GPU"):
        dlcourse.setup(mixed_precision=True, verbose=False)


def test_seed_everything_makes_keras_training_repeatable():
    import keras

    def train():
        dlcourse.seed_everything(7)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dropout(0.5), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        x = np.random.default_rng(0).normal(size=(64, 4))
        model.fit(x, x.sum(1), epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    first, second = train(), train()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    dlcourse.seed_everything(7)
    seven = np.random.random(3)
    dlcourse.seed_everything(8)
    assert not np.array_equal(seven, np.random.random(3)), "different seeds, same numbers"


def test_gpu_branch_sets_memory_growth_and_mixed_precision(monkeypatch, capsys):
    """The GPU path, on a CPU machine: TensorFlow's device queries answer as a GPU would."""
    import keras
    import tensorflow as tf

    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake_gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth",
                        lambda dev, flag: grown.append((dev.name, flag)))
    details = {"device_name": "Test GPU", "compute_capability": (8, 0)}
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda dev: details)
    monkeypatch.setattr(tf.config.experimental, "get_memory_info",
                        lambda dev: {"current": 2**20, "peak": 2**20})
    try:
        info = dlcourse.setup(seed=None)
        assert grown == [(fake_gpu.name, True)]
        assert info.kind == "GPU" and "Test GPU" in info.name and "8.0" in info.name
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert "mixed_float16" in capsys.readouterr().out
        # An old card without tensor cores keeps float32.
        details["compute_capability"] = (6, 1)
        assert dlcourse.setup(seed=None, verbose=False).precision_policy == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---------------------------------------------------------------- plots

def test_plot_history_draws_train_and_val_curves():
    hist = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.4, 0.6, 0.7]}
    fig = plots.plot_history(hist)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    assert len(axes[0].lines) == 2
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), hist["val_loss"])
    with pytest.raises(ValueError, match="empty"):
        plots.plot_history({})
    with pytest.raises(ValueError, match="Not in the history"):
        plots.plot_history(hist, metrics=["mae"])


def test_image_grid_lays_out_and_labels_images():
    imgs = np.random.default_rng(0).random((10, 8, 8))
    fig = plots.image_grid(imgs, labels=list("abcdefghij"), ncols=4)
    assert len(fig.axes) == 12
    assert [ax.get_title() for ax in fig.axes[:10]] == list("abcdefghij")
    with pytest.raises(ValueError, match="images"):
        plots.image_grid(np.zeros((4, 4)))


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "c"))
    path = data.cache_dir("models")
    assert path == tmp_path / "c" / "models" and path.is_dir()


# ---------------------------------------------------------------- Fashion-MNIST through Keras

def _fake_fashion_files(folder, n_train=12, n_test=6):
    """Stand-in files in the real IDX layout Keras parses (8/16-byte headers, gzip)."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(b"\0" * 8 + labels.tobytes()))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(b"\0" * 16 + images.tobytes()))
    return folder


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    import keras.src.backend.config as kconfig

    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(kconfig, "_KERAS_DIR", str(home))
    return home


def test_fashion_mnist_is_the_real_data_set_through_keras():
    """The Debian files, through keras.datasets.fashion_mnist: 60 000 + 10 000 real images."""
    s = data.load_fashion_mnist()
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (50_000, 10_000, 10_000)
    assert s.x_train.shape[1:] == (28, 28) and s.x_train.dtype == np.uint8
    assert s.class_names[0] == "T-shirt/top" and s.num_classes == 10
    assert np.bincount(s.y_test).tolist() == [1000] * 10  # the official balanced test set
    small = data.load_fashion_mnist(n_train=500)
    assert len(small.x_train) == 500 and len(small.x_val) == 10_000
    np.testing.assert_array_equal(small.x_train, s.x_train[:500])
    rows = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}
    assert not rows(s.x_val[:2000]) & rows(s.x_train[:20000])


def test_fashion_mnist_cache_is_seeded_with_links_keras_then_reads(tmp_path, empty_keras_home):
    system = _fake_fashion_files(tmp_path / "debian")
    s = data.load_fashion_mnist(val_fraction=1 / 6)
    links = sorted((empty_keras_home / "datasets" / "fashion-mnist").iterdir())
    assert [p.name for p in links] == sorted(data.FASHION_MNIST_FILES)
    # Not our files: the real system files, because FASHION_MNIST_SYSTEM_DIR is the default.
    assert all(p.is_symlink() for p in links)
    assert data.seed_keras_cache(system) == [], "files already in the cache are left alone"
    # A fresh cache seeded from the stand-ins: Keras's loader parses them.
    for p in links:
        p.unlink()
    assert len(data.seed_keras_cache(system)) == 4
    fake = data.load_fashion_mnist(val_fraction=1 / 6)
    assert (len(fake.x_train), len(fake.x_val), len(fake.x_test)) == (10, 2, 6)
    assert len(s.x_test) == 10_000


@pytest.mark.parametrize("offline_flag", ["1", ""])
def test_fashion_mnist_without_files_or_network_names_both_remedies(
        tmp_path, empty_keras_home, monkeypatch, offline_flag):
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "not-installed")
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DLCOURSE_OFFLINE", offline_flag)  # "" = try Keras's download
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load_fashion_mnist()
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "internet access" in msg
    assert ("no download was tried" in msg) == bool(offline_flag)


def test_cached_training_reuses_until_the_code_changes(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile("sgd", "mse")
        h = m.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=2, verbose=0)
        return m, h

    m1, h1, hit1 = data.cached_training("tiny", train)
    m2, h2, hit2 = data.cached_training("tiny", train)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    assert h1 == h2 and len(h1["loss"]) == 2
    np.testing.assert_array_equal(m1.get_weights()[0], m2.get_weights()[0])
    data.cached_training("tiny", train, key="other data")
    assert len(calls) == 2, "a different key must retrain"
