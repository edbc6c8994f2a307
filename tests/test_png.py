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
