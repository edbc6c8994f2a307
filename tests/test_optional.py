import pytest

from hf_robustmed._optional import require


def test_a_missing_optional_dependency_names_its_extra():
    assert require("json", "data", "anything").dumps([1]) == "[1]"
    with pytest.raises(ImportError, match=r"reading things needs no_such_pkg: pip install 'hf-robustmed\[data\]'"):
        require("no_such_pkg.sub", "data", "reading things")
    with pytest.raises(ImportError, match="needs scikit-image"):  # the pip name, not the import name
        require("skimage.no_such_module", "space", "samples")
