"""The glTF 2.0 document itself (JSON, and a GLB's binary chunk), read before trimesh
builds meshes from it: what the file uses that vrshare does not draw, and which of
the images its drawn textures need cannot be read.

trimesh drops what it cannot use without a word (an image it cannot find or decode
becomes no texture; skins, morph targets and animations are ignored), so these are
found in the document, as the glTF 2.0 specification names them.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import require
from .spec import SceneError

GLB_MAGIC = b"glTF"
GLB_JSON = 0x4E4F534A  # chunk types, little-endian ASCII "JSON" and "BIN\0"
GLB_BIN = 0x004E4942
# extensions vrshare draws as their specification says; any other one in
# extensionsUsed is named in a warning, in extensionsRequired it is an error
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
# material textures vrshare draws (texture coordinate set 0)
DRAWN_TEXTURES = (("pbrMetallicRoughness", "baseColorTexture"), (None, "emissiveTexture"))


@dataclass(frozen=True)
class Document:
    """A glTF file's JSON and, for a GLB, its binary chunk."""

    path: Path
    json: dict[str, Any]
    binary: bytes | None


def read_document(path: Path) -> Document:
    """Parse the JSON of a ``.gltf`` or the chunks of a ``.glb``; SceneError naming
    ``path`` when it is neither."""
    data = path.read_bytes()
    try:
        if data[:4] != GLB_MAGIC:
            return Document(path, json.loads(data), None)
        _, length = struct.unpack_from("<II", data, 4)
        chunks: dict[int, bytes] = {}
        at = 12
        while at + 8 <= min(length, len(data)):
            size, kind = struct.unpack_from("<II", data, at)
            chunks.setdefault(kind, data[at + 8:at + 8 + size])
            at += 8 + size + (-size % 4)
        doc = json.loads(chunks[GLB_JSON])
    except (ValueError, KeyError, struct.error) as exc:  # JSONDecodeError is a ValueError
        raise SceneError(f"{path}: not a readable glTF 2.0 file: {type(exc).__name__}: "
                         f"{exc}") from exc
    if not isinstance(doc, dict):
        raise SceneError(f"{path}: not a readable glTF 2.0 file: its JSON is not an object")
    return Document(path, doc, chunks.get(GLB_BIN))


def unsupported(doc: Document) -> list[str]:
    """What the file uses that vrshare does not draw, in words (empty: nothing).

    Raises SceneError when ``extensionsRequired`` names an extension vrshare does not
    support: the specification forbids loading such a file without it."""
    j = doc.json
    required = sorted(set(j.get("extensionsRequired", [])) - SUPPORTED_EXTENSIONS)
    if required:
        raise SceneError(f"{doc.path}: requires glTF extension(s) vrshare does not support: "
                         f"{', '.join(required)} (extensionsRequired)")
    found = []
    for key, what in (("skins", "skins"), ("animations", "animations")):
        if j.get(key):
            found.append(f"{len(j[key])} {what}")
    morphs = sum(1 for m in j.get("meshes", []) for p in m.get("primitives", [])
                 if p.get("targets"))
    if morphs:
        found.append(f"morph targets on {morphs} primitive(s)")
    extensions = sorted(set(j.get("extensionsUsed", [])) - SUPPORTED_EXTENSIONS)
    if extensions:
        found.append("extensions " + ", ".join(extensions))
    return found


def unreadable_images(doc: Document) -> dict[str, str]:
    """Images that a drawn texture (base colour, emissive) needs and that cannot be
    read: image description -> why. Each image is opened with Pillow, as trimesh
    does, so an image that fails here would have been dropped by it."""
    Image = require("PIL.Image", "scene", "decoding glTF textures")  # noqa: N806

    j = doc.json
    textures = j.get("textures", [])
    images = j.get("images", [])
    needed: set[int] = set()
    for material in j.get("materials", []):
        for parent, key in DRAWN_TEXTURES:
            info = (material.get(parent, {}) if parent else material).get(key)
            if isinstance(info, dict) and 0 <= info.get("index", -1) < len(textures):
                source = textures[info["index"]].get("source")
                if source is not None:
                    needed.add(source)
    bad = {}
    for index in sorted(needed):
        image = images[index] if 0 <= index < len(images) else {}
        name = f"image #{index}" + (f" {image['name']!r}" if image.get("name") else "") + (
            f" ({image['uri'][:60]})" if "uri" in image and not image["uri"].startswith(
                "data:") else "")
        try:
            blob = _image_bytes(doc, image)
            Image.open(io.BytesIO(blob)).verify()
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            bad[name] = str(exc) or type(exc).__name__
    return bad


def _image_bytes(doc: Document, image: dict[str, Any]) -> bytes:
    """An image's encoded bytes from its URI (data: or a file beside the model) or
    its buffer view; OSError / ValueError / KeyError when they cannot be had."""
    if "uri" in image:
        return _uri_bytes(doc, image["uri"])
    if "bufferView" not in image:
        raise ValueError("the image has neither a uri nor a bufferView")
    view = doc.json["bufferViews"][image["bufferView"]]
    buffer = doc.json["buffers"][view["buffer"]]
    data = _uri_bytes(doc, buffer["uri"]) if "uri" in buffer else doc.binary
    if data is None:
        raise ValueError("its buffer has no data (no uri and no GLB binary chunk)")
    start = view.get("byteOffset", 0)
    return data[start:start + view["byteLength"]]


def _uri_bytes(doc: Document, uri: str) -> bytes:
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1], validate=False)
    file = doc.path.parent / unquote(uri)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not found")
    return file.read_bytes()
