"""The README's ``corrupt_batch(..., num_workers=2)`` snippet works pasted into a script as written, with no
``if __name__ == "__main__":`` guard (issue #12, item 12)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hf_robustmed.corruptions import corrupt_batch

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from hf_robustmed.corruptions import corrupt_batch

    print("top level ran", flush=True)  # a worker that re-ran this script would print it again
    images = np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    outs = corrupt_batch(images, "zoom_blur", 5, suite="medimeta-c", num_workers=2, chunk_size=2)
    np.save(sys.argv[1], outs)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only; elsewhere the guard is needed")
def test_unguarded_script_with_workers(tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("top level ran") == 1  # the workers did not re-run the script
    images = np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    expected = corrupt_batch(images, "zoom_blur", 5, suite="medimeta-c")  # in this process
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
