"""Image Alchemy engine: plain Python over torch/diffusers. Never imports Qt."""

import os

__version__ = "0.1.0"

# transformers >= 5 swaps layers of every model it loads for compute kernels fetched from the Hugging
# Face Hub (the `kernels` package) unless told not to, and refuses to load at all when that package
# is missing. The app downloads nothing unasked and the frozen app leaves `kernels` out
# (packaging/bundle_contents.py, OPTIONAL_ACCELERATORS); a user who wants Hub kernels sets it to YES.
os.environ.setdefault("USE_HUB_KERNELS", "NO")
