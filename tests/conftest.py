import os

os.environ.setdefault("VRSHARE_BACKEND", "numpy")
