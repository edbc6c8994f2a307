import io

import numpy as np
import pytest
from conftest import textured_image
from PIL import Image

from hf_robustmed.data.png import encode_png


@pytest.mark.parametrize("shape", [(224, 224, 3), (28, 28), (97, 131, 3), (1, 1), (5, 3, 1), (16, 9, 4)])
def test_png_round_trips_through_pillow(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(image))))
    np.testing.assert_array_equal(decoded, image.reshape(decoded.shape))


def test_png_is_deterministic_and_compresses_smooth_images():
    image = textured_image(224, True)
    assert encode_png(image) == encode_png(image.copy())
    assert len(encode_png(np.zeros((224, 224, 3), np.uint8))) < 2000


def test_png_rejects_other_dtypes():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))


def _encode_after_churn(image: np.ndarray) -> bytes:
    junk = [np.random.default_rng(i).integers(0, 256, 1 << 20, dtype=np.uint8) for i in range(3)]
    del junk
    return encode_png(image)


def test_png_bytes_do_not_depend_on_the_process():
    """The same image gives the same bytes in worker processes (ISA-L's deflate did not; libdeflate does)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    images = [textured_image(64, True, seed=i) for i in range(12)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = list(pool.map(_encode_after_churn, images))
    assert remote == [encode_png(image) for image in images]
