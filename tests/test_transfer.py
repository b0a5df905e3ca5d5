"""dlcourse.transfer, offline: tiny stand-ins for the ImageNet bases and the cats-vs-dogs folder."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlcourse import data, transfer  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own dlcourse cache and Keras home, and no network."""
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    monkeypatch.delenv(data.PROFILE_ENV, raising=False)


def tiny_application(calls):
    """A stand-in for keras.applications.VGG16 / MobileNetV2 with the same interface."""
    def build(weights="imagenet", include_top=True, input_shape=None, **kwargs):
        calls.append({"weights": weights, "include_top": include_top, "input_shape": input_shape})
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Conv2D(4, 3, activation="relu", name="block1_conv1")(inputs)
        x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
        x = keras.layers.Conv2D(8, 3, activation="relu", name="block2_conv1")(x)
        return keras.Model(inputs, x, name="tiny_stand_in")
    return build


@pytest.mark.parametrize("name,attr", [("vgg16", "VGG16"), ("mobilenet_v2", "MobileNetV2")])
def test_full_profile_base_calls_the_keras_application(monkeypatch, name, attr):
    monkeypatch.delenv(data.OFFLINE_ENV)  # the stand-in never downloads
    calls = []
    monkeypatch.setattr(keras.applications, attr, tiny_application(calls))
    base = transfer.pretrained_base(name, input_shape=(24, 24, 3), profile="full")
    assert calls == [{"weights": "imagenet", "include_top": False, "input_shape": (24, 24, 3)}]
    # A usable, freezable base: a new head on top trains, the base's weights do not move.
    base.trainable = False
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile("rmsprop", "binary_crossentropy")
    before = [w.copy() for w in base.get_weights()]
    model.fit(np.random.rand(8, 24, 24, 3), np.arange(8) % 2, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))
    assert not base.trainable_weights


def test_full_profile_default_input_shape(monkeypatch):
    # Offline, but with weights in the Keras cache: the application is built from them.
    models = data.keras_cache_dir().parent / "models"
    models.mkdir(parents=True)
    (models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")
    calls = []
    monkeypatch.setattr(keras.applications, "VGG16", tiny_application(calls))
    transfer.pretrained_base("vgg16", profile="full")
    assert calls[0]["input_shape"] == (180, 180, 3)


def test_full_profile_base_offline_error_when_weights_missing(monkeypatch):
    def no_network(**kwargs):
        raise Exception("URL fetch failure")  # what Keras raises
    monkeypatch.setattr(keras.applications, "VGG16", no_network)
    monkeypatch.delenv(data.OFFLINE_ENV)
    with pytest.raises(data.DatasetUnavailableError, match="ImageNet weights"):
        transfer.pretrained_base("vgg16", profile="full")
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(data.DatasetUnavailableError, match="no download"):
        transfer.pretrained_base("vgg16", profile="full")


def test_small_profile_base_is_the_saved_chapter_base():
    with pytest.raises(FileNotFoundError, match="chapter 4"):
        transfer.pretrained_base("vgg16", profile="small")
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs)
    keras.Model(inputs, outputs).save(transfer.small_base_path())
    base = transfer.pretrained_base("mobilenet_v2", profile="small")
    assert base.input_shape == (None, 32, 32, 1)
    assert [layer.name for layer in base.layers][-1] == "block1_conv1"
    with pytest.raises(ValueError, match="shape"):
        transfer.pretrained_base("vgg16", input_shape=(180, 180, 3), profile="small")
    with pytest.raises(ValueError, match="Unknown"):
        transfer.pretrained_base("resnet", profile="small")


def test_preprocess_functions():
    x = np.full((1, 2, 2, 3), 255.0, dtype="float32")
    assert transfer.preprocess_function("vgg16", "full") is keras.applications.vgg16.preprocess_input
    np.testing.assert_allclose(transfer.preprocess_function("mobilenet_v2", "full")(x.copy()), 1.0)
    np.testing.assert_allclose(transfer.preprocess_function("vgg16", "small")(x), 1.0)


def write_pet_images(root, per_class=5, corrupt=True):
    """A miniature PetImages/{Cat,Dog} tree of real JPEGs (plus broken files to skip)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("Cat", "Dog"):
        (root / folder).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}.jpg", quality=90)
        if corrupt:
            (root / folder / "666.jpg").write_bytes(b"\xff\xd8 not a jpeg at all")
            (root / folder / "Thumbs.db").write_bytes(b"\x00" * 16)
    return root


def test_load_cats_vs_dogs_from_a_folder(tmp_path):
    pets = write_pet_images(tmp_path / "PetImages")
    sizes = {"train": 2, "validation": 1, "test": 2}
    train, val, test = transfer.load_cats_vs_dogs(
        profile="full", image_size=(16, 16), batch_size=3, data_dir=tmp_path, sizes=sizes)
    for ds, n in ((train, 4), (val, 2), (test, 4)):
        images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        assert images[0].shape[1:] == (16, 16, 3) and images[0].dtype == np.float32
        assert images[0].shape[0] <= 3
        labels = np.concatenate(labels)
        assert len(labels) == n and sorted(set(labels)) == [0, 1]
    subset = data.cache_dir("cats_vs_dogs_small", "2-1-2")
    copied = sorted(p.name for p in subset.rglob("*.jpg"))
    assert "666.jpg" not in copied and len(copied) == 10
    assert len({p.name for p in (subset / "train" / "cat").iterdir()}
               & {p.name for p in (subset / "test" / "cat").iterdir()}) == 0
    assert (pets / "Cat" / "666.jpg").exists()  # the original data is not touched


def test_load_cats_vs_dogs_finds_the_keras_cache(tmp_path):
    write_pet_images(data.keras_cache_dir() / "kagglecatsanddogs_5340_extracted" / "PetImages")
    train, _, _ = transfer.load_cats_vs_dogs(profile="full", image_size=(8, 8), batch_size=2,
                                             sizes={"train": 1, "validation": 1, "test": 1})
    x, y = next(iter(train))
    assert x.shape == (2, 8, 8, 3)


def test_load_cats_vs_dogs_offline_error(tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match="kagglecatsanddogs_5340.zip"):
        transfer.load_cats_vs_dogs(profile="full")
    with pytest.raises(data.DatasetUnavailableError, match="data_dir"):
        transfer.load_cats_vs_dogs(profile="full", data_dir=tmp_path / "nowhere")
    with pytest.raises(data.DatasetUnavailableError, match="profile='full'"):
        transfer.load_cats_vs_dogs(profile="small")
